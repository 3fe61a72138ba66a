// Fuzzes parse_config_text (common/config.h) with the input as the file.
//
// Besides not crashing, the result must hold together: the same text
// parses the same way twice; errors come in file order, each on a line
// that exists and at a column inside it, whole-file errors last; a
// configuration without errors has listeners and values inside their
// bounds, and written back out as text (every value quoted) it parses
// without errors into the same configuration.
#include "common/config.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using maild::Config;
using maild::ConfigError;
using maild::ConfigResult;

namespace {

bool same_listeners(const Config &a, const Config &b)
{
	return std::ranges::equal(a.listeners, b.listeners, [](const maild::Listener &x, const maild::Listener &y) {
		return x.kind == y.kind && x.address == y.address && x.port == y.port;
	});
}

bool same_values(const Config &a, const Config &b)
{
	return a.hostname == b.hostname && same_listeners(a, b) && a.tls_certificate == b.tls_certificate &&
	    a.tls_key == b.tls_key && a.database == b.database && a.spool == b.spool && a.mail_store == b.mail_store &&
	    a.empty_dir == b.empty_dir && a.control_socket == b.control_socket && a.pidfile == b.pidfile &&
	    a.role_user == b.role_user && a.max_connections == b.max_connections &&
	    a.max_connections_per_address == b.max_connections_per_address &&
	    a.max_message_size == b.max_message_size && a.max_recipients == b.max_recipients &&
	    a.max_line_length == b.max_line_length && a.max_sessions_per_user == b.max_sessions_per_user &&
	    a.command_timeout == b.command_timeout && a.data_timeout == b.data_timeout &&
	    a.idle_timeout == b.idle_timeout && a.max_command_length == b.max_command_length &&
	    a.max_errors == b.max_errors && a.pipelining_guard == b.pipelining_guard &&
	    a.received_auth_user == b.received_auth_user && a.queue_retry_min == b.queue_retry_min &&
	    a.queue_retry_max == b.queue_retry_max;
}

bool same_errors(const std::vector<ConfigError> &a, const std::vector<ConfigError> &b)
{
	return std::ranges::equal(a, b, [](const ConfigError &x, const ConfigError &y) {
		return x.file == y.file && x.line == y.line && x.col == y.col && x.message == y.message;
	});
}

std::string quote(std::string_view s)
{
	std::string q = "\"";
	for (char c : s) {
		if (c == '"' || c == '\\')
			q += '\\';
		q += c;
	}
	return q + "\"";
}

// Every value, explicitly, in a fresh order (listeners last).
std::string to_text(const Config &c)
{
	std::string t;
	auto line = [&](std::string_view keyword, const std::string &value) {
		t += std::string(keyword) + " " + quote(value) + "\n";
	};
	if (!c.hostname.empty())
		line("hostname", c.hostname);
	if (!c.tls_certificate.empty())
		line("tls-certificate", c.tls_certificate);
	if (!c.tls_key.empty())
		line("tls-key", c.tls_key);
	line("database", c.database);
	line("spool", c.spool);
	line("mail-store", c.mail_store);
	line("empty-dir", c.empty_dir);
	line("control-socket", c.control_socket);
	line("pidfile", c.pidfile);
	for (const auto &info : maild::kRoles)
		if (info.role != maild::Role::Parent)
			t += "user " + std::string(info.name) + " " + quote(c.user(info.role)) + "\n";
	line("max-connections", std::to_string(c.max_connections));
	line("max-connections-per-address", std::to_string(c.max_connections_per_address));
	line("max-message-size", std::to_string(c.max_message_size));
	line("max-recipients", std::to_string(c.max_recipients));
	line("max-line-length", std::to_string(c.max_line_length));
	line("max-sessions-per-user", std::to_string(c.max_sessions_per_user));
	line("command-timeout", std::to_string(c.command_timeout));
	line("data-timeout", std::to_string(c.data_timeout));
	line("idle-timeout", std::to_string(c.idle_timeout));
	line("max-command-length", std::to_string(c.max_command_length));
	line("max-errors", std::to_string(c.max_errors));
	line("pipelining-guard", c.pipelining_guard ? "yes" : "no");
	line("received-auth-user", c.received_auth_user ? "yes" : "no");
	line("queue-retry-min", std::to_string(c.queue_retry_min));
	line("queue-retry-max", std::to_string(c.queue_retry_max));
	for (const auto &l : c.listeners)
		t += "listen " + std::string(maild::to_string(l.kind)) + " port " + std::to_string(l.port) + " address " +
		    quote(l.address) + "\n";
	return t;
}

void check_errors(std::string_view text, const ConfigResult &r)
{
	std::vector<std::size_t> lengths; // of each line, by number - 1
	for (std::size_t start = 0; start < text.size();) {
		std::size_t nl = text.find('\n', start);
		std::size_t end = nl == text.npos ? text.size() : nl;
		lengths.push_back(end - start);
		start = end + 1;
	}
	int previous = 1;
	for (const ConfigError &e : r.errors) {
		if (e.file != "fuzz.conf" || e.message.empty())
			__builtin_trap();
		if (e.line == 0) {
			previous = 0;
			continue;
		}
		// File order, and nothing tied to a line after a whole-file error.
		if (previous == 0 || e.line < previous || static_cast<std::size_t>(e.line) > lengths.size())
			__builtin_trap();
		if (e.col < 1 || static_cast<std::size_t>(e.col) > lengths[static_cast<std::size_t>(e.line) - 1])
			__builtin_trap();
		previous = e.line;
	}
}

void check_config(const Config &c)
{
	if (c.listeners.empty())
		__builtin_trap();
	for (const auto &l : c.listeners)
		if (l.port == 0 || l.address.empty() || l.line < 1)
			__builtin_trap();
	if (c.tls_certificate.empty() != c.tls_key.empty())
		__builtin_trap();
	for (const std::string *path : {&c.database, &c.spool, &c.mail_store, &c.empty_dir, &c.control_socket,
		 &c.pidfile})
		if (path->empty() || path->front() != '/' || path->find('\0') != std::string::npos)
			__builtin_trap();
	if (c.max_connections < 1 || c.max_connections > 1000000 || c.max_message_size < 1024 ||
	    c.max_message_size > 1024ull * 1024 * 1024 || c.max_line_length < 998 || c.max_line_length > 1048576 ||
	    c.command_timeout < 10 || c.command_timeout > 3600 || c.data_timeout < 10 || c.data_timeout > 3600 ||
	    c.idle_timeout < 60 || c.idle_timeout > 86400 || c.max_command_length < 512 ||
	    c.max_command_length > 65536 || c.max_errors < 1 || c.max_errors > 1000 || c.queue_retry_min < 1 ||
	    c.queue_retry_min > c.queue_retry_max || c.queue_retry_max > 86400)
		__builtin_trap();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	std::string_view text(reinterpret_cast<const char *>(data), size);
	ConfigResult r = maild::parse_config_text(text, "fuzz.conf");
	ConfigResult again = maild::parse_config_text(text, "fuzz.conf");
	if (!same_errors(r.errors, again.errors) || !same_values(r.config, again.config))
		__builtin_trap();
	check_errors(text, r);
	for (const ConfigError &e : r.errors)
		(void)maild::format_error(e);
	if (!r.ok())
		return 0;
	check_config(r.config);
	std::string written = to_text(r.config);
	ConfigResult reread = maild::parse_config_text(written, "fuzz.conf");
	if (!reread.ok() || !same_values(r.config, reread.config))
		__builtin_trap();
	return 0;
}
