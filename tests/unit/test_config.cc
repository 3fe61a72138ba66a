// maild.conf: the parser (every error class with its line, column and
// message; defaults; every keyword; quoting and comments), the keyword table
// against maild.conf(5) and etc/maild.conf, the broken configurations in
// tests/configs/ against their `# expect:` lines, and the environment checks
// on files and directories made for each test.
#include "tests/unit/temp_dir.h"
#include "common/config.h"

#include <criterion/criterion.h>

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

using namespace std::literals;
using maild::ConfigError;
using maild::ConfigResult;
using maild::ListenerKind;
using maild::Role;

namespace fs = std::filesystem;

namespace {

ConfigResult parse(std::string_view text)
{
	return maild::parse_config_text(text, "test.conf");
}

std::string all_errors(const std::vector<ConfigError> &errors)
{
	std::string s;
	for (const auto &e : errors)
		s += "\n  " + maild::format_error(e);
	return s.empty() ? " (none)" : s;
}

std::string read_text(const fs::path &path)
{
	std::ifstream in(path, std::ios::binary);
	std::ostringstream s;
	s << in.rdbuf();
	return s.str();
}

void write_text(const fs::path &path, std::string_view text, mode_t mode = 0600)
{
	std::ofstream(path, std::ios::binary) << text;
	chmod(path.c_str(), mode);
}

bool has_error(const std::vector<ConfigError> &errors, int line, int col, std::string_view substring)
{
	return std::ranges::any_of(errors, [&](const ConfigError &e) {
		return e.line == line && e.col == col && e.message.find(substring) != std::string::npos;
	});
}

// Expects exactly one error, at line:col, whose message contains `want`.
void expect_error(std::string_view text, int line, int col, std::string_view want)
{
	ConfigResult r = parse(text);
	std::string got = all_errors(r.errors);
	cr_expect(r.errors.size() == 1 && has_error(r.errors, line, col, want),
	    "for %s\n got:%s\n want: test.conf:%d:%d: ...%s...", std::string(text).c_str(), got.c_str(), line, col,
	    std::string(want).c_str());
}

using maild::test::TempDir;

// Makes a self-signed certificate and its key with the openssl command.
void make_cert(const TempDir &dir, const std::string &cert, const std::string &key)
{
	std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
			  "-subj /CN=mail.example.org -keyout '" +
	    key + "' -out '" + cert + "' >'" + dir / "openssl.log" + "' 2>&1";
	cr_assert(std::system(cmd.c_str()) == 0, "openssl failed: %s", read_text(dir / "openssl.log").c_str());
	chmod(key.c_str(), 0600);
}

// A configuration whose directories all exist in `dir`.
std::string dirs_config(const TempDir &dir)
{
	fs::create_directories(dir / "spool");
	fs::create_directories(dir / "mail");
	fs::create_directories(dir / "db");
	return "listen smtp\n"
	       "spool " +
	    dir / "spool" + "\nmail-store " + dir / "mail" + "\ndatabase " + dir / "db/maild.db" + "\n";
}

} // namespace

// --- The small functions ----------------------------------------------------

Test(config, listener_kinds)
{
	struct {
		ListenerKind kind;
		std::string_view name;
		uint16_t port;
		bool tls;
	} want[] = {
	    {ListenerKind::Smtp, "smtp", 25, false},
	    {ListenerKind::Submission, "submission", 587, false},
	    {ListenerKind::Submissions, "submissions", 465, true},
	    {ListenerKind::Imap, "imap", 143, false},
	    {ListenerKind::Imaps, "imaps", 993, true},
	    {ListenerKind::Pop3, "pop3", 110, false},
	    {ListenerKind::Pop3s, "pop3s", 995, true},
	};
	for (const auto &w : want) {
		cr_expect(maild::to_string(w.kind) == w.name, "to_string(%s)", std::string(w.name).c_str());
		cr_expect_eq(maild::default_port(w.kind), w.port, "default_port(%s)", std::string(w.name).c_str());
		cr_expect_eq(maild::implicit_tls(w.kind), w.tls, "implicit_tls(%s)", std::string(w.name).c_str());
		std::string text = "tls-certificate /c.pem\ntls-key /k.pem\nlisten " + std::string(w.name) + "\n";
		ConfigResult r = parse(text);
		cr_assert(r.ok(), "listen %s:%s", std::string(w.name).c_str(), all_errors(r.errors).c_str());
		cr_assert_eq(r.config.listeners.size(), 1u);
		cr_expect(r.config.listeners[0].kind == w.kind);
		cr_expect_eq(r.config.listeners[0].port, w.port);
		cr_expect_eq(r.config.listeners[0].address, "127.0.0.1");
		cr_expect_eq(r.config.listeners[0].line, 3);
	}
}

Test(config, format_error)
{
	cr_expect_eq(maild::format_error({"a.conf", 3, 7, "bad"}), "a.conf:3:7: bad");
	cr_expect_eq(maild::format_error({"a.conf", 3, 0, "bad"}), "a.conf:3: bad");
	cr_expect_eq(maild::format_error({"a.conf", 0, 0, "bad"}), "a.conf: bad");
}

Test(config, root_dirs)
{
	ConfigResult r = parse("listen smtp\ndatabase /db/dir/maild.db\nspool /sp\nmail-store /ms\nempty-dir /e\n");
	cr_assert(r.ok(), "%s", all_errors(r.errors).c_str());
	const maild::Config &c = r.config;
	cr_expect_eq(c.root_dir(Role::Parent), "");
	for (Role role : {Role::Control, Role::Smtpd, Role::Mta, Role::Imapd, Role::Pop3d})
		cr_expect_eq(c.root_dir(role), "/e", "%s", std::string(maild::to_string(role)).c_str());
	cr_expect_eq(c.root_dir(Role::Lookup), "/db/dir");
	cr_expect_eq(c.root_dir(Role::Queue), "/sp");
	cr_expect_eq(c.root_dir(Role::Deliver), "/ms");

	r = parse("listen smtp\ndatabase /maild.db\n");
	cr_expect_eq(r.config.root_dir(Role::Lookup), "/");
}

// --- Values -------------------------------------------------------------------

Test(config, defaults)
{
	ConfigResult r = parse("listen smtp\n");
	cr_assert(r.ok(), "%s", all_errors(r.errors).c_str());
	const maild::Config &c = r.config;
	cr_expect_eq(c.path, "test.conf");
	cr_expect_eq(c.hostname, "", "parse_config_text leaves the host name to load_config");
	cr_expect(c.tls_certificate.empty() && c.tls_key.empty());
	cr_expect_eq(c.database, "/var/lib/maild/maild.db");
	cr_expect_eq(c.spool, "/var/spool/maild");
	cr_expect_eq(c.mail_store, "/var/vmail");
	cr_expect_eq(c.empty_dir, "/var/empty/maild");
	cr_expect_eq(c.control_socket, "/run/maild/control.sock");
	cr_expect_eq(c.pidfile, "/run/maild/maild.pid");
	for (const auto &info : maild::kRoles)
		cr_expect(c.user(info.role) == info.default_user, "user of %s: got %s", std::string(info.name).c_str(),
		    c.user(info.role).c_str());
	cr_expect_eq(c.max_connections, 1000u);
	cr_expect_eq(c.max_connections_per_address, 20u);
	cr_expect_eq(c.max_message_size, 35ull * 1024 * 1024);
	cr_expect_eq(c.max_recipients, 100u);
	cr_expect_eq(c.max_line_length, 998u);
	cr_expect_eq(c.max_sessions_per_user, 20u);
	cr_expect_eq(c.command_timeout, 300u);
	cr_expect_eq(c.data_timeout, 600u);
	cr_expect_eq(c.idle_timeout, 1800u);
	cr_expect(c.positions.empty(), "defaults have no position");
}

Test(config, every_keyword)
{
	const char *text = "hostname mx1.Example.org\n"
			   "listen smtp\n"
			   "listen submissions address ::1 port 10465\n"
			   "listen imaps port 10993 address 192.0.2.1\n"
			   "tls-certificate /etc/maild/cert.pem\n"
			   "tls-key /etc/maild/key.pem\n"
			   "database /srv/db/m.db\n"
			   "spool /srv/spool\n"
			   "mail-store /srv/mail\n"
			   "empty-dir /var/empty\n"
			   "control-socket /run/m.sock\n"
			   "pidfile /run/m.pid\n"
			   "user control c1\n"
			   "user lookup l1\n"
			   "user queue q1\n"
			   "user deliver d1\n"
			   "user smtpd s1\n"
			   "user mta m1\n"
			   "user imapd i1\n"
			   "user pop3d p1\n"
			   "max-connections 7\n"
			   "max-connections-per-address 3\n"
			   "max-recipients 1000000\n"
			   "max-sessions-per-user 1\n"
			   "max-message-size 1G\n"
			   "max-line-length 1000\n"
			   "command-timeout 10s\n"
			   "data-timeout 1h\n"
			   "idle-timeout 24h\n";
	ConfigResult r = parse(text);
	cr_assert(r.ok(), "%s", all_errors(r.errors).c_str());
	const maild::Config &c = r.config;
	cr_expect_eq(c.hostname, "mx1.Example.org");
	cr_assert_eq(c.listeners.size(), 3u);
	cr_expect(c.listeners[1].kind == ListenerKind::Submissions);
	cr_expect_eq(c.listeners[1].address, "::1");
	cr_expect_eq(c.listeners[1].port, 10465);
	cr_expect_eq(c.listeners[2].address, "192.0.2.1");
	cr_expect_eq(c.listeners[2].port, 10993);
	cr_expect_eq(c.tls_certificate, "/etc/maild/cert.pem");
	cr_expect_eq(c.tls_key, "/etc/maild/key.pem");
	cr_expect_eq(c.database, "/srv/db/m.db");
	cr_expect_eq(c.spool, "/srv/spool");
	cr_expect_eq(c.mail_store, "/srv/mail");
	cr_expect_eq(c.empty_dir, "/var/empty");
	cr_expect_eq(c.control_socket, "/run/m.sock");
	cr_expect_eq(c.pidfile, "/run/m.pid");
	cr_expect_eq(c.user(Role::Control), "c1");
	cr_expect_eq(c.user(Role::Lookup), "l1");
	cr_expect_eq(c.user(Role::Queue), "q1");
	cr_expect_eq(c.user(Role::Deliver), "d1");
	cr_expect_eq(c.user(Role::Smtpd), "s1");
	cr_expect_eq(c.user(Role::Mta), "m1");
	cr_expect_eq(c.user(Role::Imapd), "i1");
	cr_expect_eq(c.user(Role::Pop3d), "p1");
	cr_expect_eq(c.user(Role::Parent), "root");
	cr_expect_eq(c.max_connections, 7u);
	cr_expect_eq(c.max_connections_per_address, 3u);
	cr_expect_eq(c.max_recipients, 1000000u);
	cr_expect_eq(c.max_sessions_per_user, 1u);
	cr_expect_eq(c.max_message_size, 1024ull * 1024 * 1024);
	cr_expect_eq(c.max_line_length, 1000u);
	cr_expect_eq(c.command_timeout, 10u);
	cr_expect_eq(c.data_timeout, 3600u);
	cr_expect_eq(c.idle_timeout, 86400u);
	// Positions point at the value of each configured keyword.
	cr_expect_eq(c.position_of("tls-key").line, 6);
	cr_expect_eq(c.position_of("tls-key").col, 9);
	cr_expect_eq(c.position_of("user pop3d").line, 20);
	cr_expect_eq(c.position_of("user pop3d").col, 12);
	cr_expect_eq(c.position_of("pidfile").line, 12);
	cr_expect_eq(c.position_of("nonsense").line, 0);
}

Test(config, sizes_and_durations)
{
	struct Case {
		std::string_view line;
		uint64_t want;
	};
	const Case sizes[] = {{"1K", 1024}, {"1k", 1024}, {"1024", 1024}, {"10M", 10ull << 20}, {"3m", 3ull << 20},
	    {"1g", 1ull << 30}, {"1073741824", 1ull << 30}, {"0001K", 1024}};
	for (const Case &c : sizes) {
		ConfigResult r = parse("listen smtp\nmax-message-size " + std::string(c.line) + "\n");
		cr_expect(r.ok() && r.config.max_message_size == c.want, "max-message-size %s: got %llu%s",
		    std::string(c.line).c_str(), static_cast<unsigned long long>(r.config.max_message_size),
		    all_errors(r.errors).c_str());
	}
	const Case durations[] = {{"10", 10}, {"10s", 10}, {"2m", 120}, {"1h", 3600}, {"3599", 3599}};
	for (const Case &c : durations) {
		ConfigResult r = parse("listen smtp\ncommand-timeout " + std::string(c.line) + "\n");
		cr_expect(r.ok() && r.config.command_timeout == c.want, "command-timeout %s: got %u%s",
		    std::string(c.line).c_str(), r.config.command_timeout, all_errors(r.errors).c_str());
	}
	ConfigResult r = parse("listen smtp\nidle-timeout 1m\n");
	cr_expect(r.ok() && r.config.idle_timeout == 60);
}

Test(config, bounds)
{
	struct Case {
		std::string_view text;
		std::string_view want; // empty: accepted
	} cases[] = {
	    {"max-message-size 1023", "max-message-size: 1023 is out of range (1K to 1G)"},
	    {"max-message-size 1025M", "out of range (1K to 1G)"},
	    {"max-message-size 99999999999999999999999", "out of range"},
	    {"max-message-size 18014398509481984K", "out of range"}, // 2^54 K overflows 64 bits
	    {"max-message-size 1T", "is not a size"},
	    {"max-message-size -1", "is not a size"},
	    {"max-message-size K", "is not a size"},
	    {"max-message-size 1.5M", "is not a size"},
	    {"max-line-length 997", "max-line-length: 997 is out of range (998 to 1048576)"},
	    {"max-line-length 1048576", ""},
	    {"max-line-length 1048577", "out of range (998 to 1048576)"},
	    {"max-connections 0", "max-connections: 0 is out of range (1 to 1000000)"},
	    {"max-connections 1000000", ""},
	    {"max-connections 1000001", "out of range (1 to 1000000)"},
	    {"max-connections +5", "max-connections: \"+5\" is not a number"},
	    {"max-connections 5K", "is not a number"},
	    {"max-connections-per-address 0", "out of range (1 to 1000000)"},
	    {"max-recipients 0", "max-recipients: 0 is out of range (1 to 1000000)"},
	    {"max-sessions-per-user 1000001", "out of range (1 to 1000000)"},
	    {"command-timeout 9", "command-timeout: 9 is out of range (10s to 1h)"},
	    {"command-timeout 61m", "out of range (10s to 1h)"},
	    {"command-timeout 1d", "is not a duration"},
	    {"command-timeout 10S", "is not a duration"},
	    {"data-timeout 3601", "data-timeout: 3601 is out of range (10s to 1h)"},
	    {"idle-timeout 59s", "idle-timeout: 59s is out of range (1m to 24h)"},
	    {"idle-timeout 25h", "out of range (1m to 24h)"},
	    {"idle-timeout 86400", ""},
	};
	for (const auto &c : cases) {
		ConfigResult r = parse("listen smtp\n" + std::string(c.text) + "\n");
		std::size_t space = c.text.find(' ');
		if (c.want.empty())
			cr_expect(r.ok(), "%s:%s", std::string(c.text).c_str(), all_errors(r.errors).c_str());
		else
			cr_expect(r.errors.size() == 1 && has_error(r.errors, 2, static_cast<int>(space) + 2, c.want),
			    "%s: got%s\n want 2:%zu: %s", std::string(c.text).c_str(), all_errors(r.errors).c_str(),
			    space + 2, std::string(c.want).c_str());
	}
}

Test(config, host_names)
{
	std::string label63(63, 'a');
	std::string long_name = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b'); // 253
	const std::string good[] = {"a", "mail", "mx-1.example.org", "1.2.3.4", "A.B", label63, long_name};
	for (const auto &name : good) {
		ConfigResult r = parse("listen smtp\nhostname " + name + "\n");
		cr_expect(r.ok() && r.config.hostname == name, "%s:%s", name.c_str(), all_errors(r.errors).c_str());
	}
	const std::string bad[] = {"-a.org", "a-.org", "a..org", ".a.org", "a.org.", "a_b.org", "a b",
	    label63 + "a.org", long_name + "c", "\"\"", "é.org"};
	for (const auto &name : bad) {
		ConfigResult r = parse("listen smtp\nhostname " + name + "\n");
		cr_expect(has_error(r.errors, 2, 10, "is not a valid host name") ||
			(name == "a b" && has_error(r.errors, 2, 12, "too many arguments")),
		    "%s:%s", name.c_str(), all_errors(r.errors).c_str());
	}
}

Test(config, listeners)
{
	ConfigResult r = parse("listen smtp port 2525 address 0:0:0:0:0:0:0:1\n"
			       "listen smtp address ::ffff:127.0.0.1\n"
			       "listen imap address 10.0.0.1 port 1\n"
			       "listen pop3 port 65535\n"
			       "listen smtp address 0.0.0.0 port 26\n"
			       "listen smtp address :: port 26\n");
	cr_assert(r.ok(), "%s", all_errors(r.errors).c_str());
	const auto &l = r.config.listeners;
	cr_assert_eq(l.size(), 6u);
	cr_expect_eq(l[0].address, "::1", "addresses are stored in one spelling");
	cr_expect_eq(l[0].port, 2525);
	cr_expect_eq(l[1].address, "::ffff:127.0.0.1");
	cr_expect_eq(l[2].port, 1);
	cr_expect_eq(l[3].port, 65535);
	cr_expect_eq(l[3].address, "127.0.0.1");
	cr_expect_eq(l[5].line, 6);

	expect_error("listen smtp\nlisten submission port 25\n", 2, 8,
	    "duplicate listener 127.0.0.1:25 (first at line 1)");
	expect_error("listen smtp address ::1\nlisten smtp address 0::1\n", 2, 8, "duplicate listener [::1]:25");
	expect_error("listen smtp address :: port 26\nlisten smtp address ::1 port 26\n", 2, 8,
	    "duplicate listener [::1]:26: overlaps [::]:26 (line 1)");
	expect_error("listen smtp address 10.1.1.1\nlisten smtp address 0.0.0.0\n", 2, 8,
	    "duplicate listener 0.0.0.0:25: overlaps 10.1.1.1:25 (line 1)");
	expect_error("listen smtp port 25 port 26\n", 1, 21, "listen: duplicate option port");
	expect_error("listen smtp address 127.0.0.1 address ::1\n", 1, 31, "listen: duplicate option address");
	expect_error("listen smtp port\n", 1, 13, "listen: port needs a value");
	expect_error("listen smtp address\n", 1, 13, "listen: address needs a value");
	expect_error("listen smtp port x\n", 1, 18, "listen: port \"x\" is not a number");
	expect_error("listen smtp port 0\n", 1, 18, "listen: port 0 is out of range (1 to 65535)");
	expect_error("listen smtp port 65536\n", 1, 18, "out of range (1 to 65535)");
	expect_error("listen smtp address 127.1\n", 1, 21, "is not a numeric IPv4 or IPv6 address");
	expect_error("listen smtp address 127.0.0.01\n", 1, 21, "is not a numeric IPv4 or IPv6 address");
	expect_error("listen smtp address fe80::1%eth0\n", 1, 21, "is not a numeric IPv4 or IPv6 address");
	expect_error("listen SMTP\n", 1, 8, "listen: unknown listener kind \"SMTP\"");
	expect_error("listen\n", 1, 1, "listen: missing argument, expected listen KIND [address ADDRESS] [port PORT]");
}

Test(config, users)
{
	expect_error("listen smtp\nuser smtpd\n", 2, 1, "user: missing argument, expected user ROLE NAME");
	expect_error("listen smtp\nuser smtpd a b\n", 2, 14, "user: too many arguments");
	expect_error("listen smtp\nuser maild x\n", 2, 6, "unknown role \"maild\" (maild is the parent");
	expect_error("listen smtp\nuser parent x\n", 2, 6,
	    "unknown role \"parent\" (expected one of control, lookup, queue, deliver, smtpd, mta, imapd, pop3d)");
	expect_error("listen smtp\nuser smtpd root\n", 2, 12, "user: smtpd must not run as root");
	expect_error("listen smtp\nuser smtpd 9lives\n", 2, 12, "is not a valid user name");
	expect_error("listen smtp\nuser smtpd a$\n", 2, 12, "is not a valid user name");
	expect_error("listen smtp\nuser smtpd " + std::string(33, 'a') + "\n", 2, 12, "is not a valid user name");
	ConfigResult r = parse("listen smtp\nuser smtpd " + std::string(32, 'a') + "\nuser mta _a-1_\n");
	cr_expect(r.ok(), "%s", all_errors(r.errors).c_str());
	cr_expect_eq(r.config.user(Role::Mta), "_a-1_");
	cr_expect_eq(r.config.user(Role::Imapd), "_maild", "unconfigured roles keep their default");
}

Test(config, paths)
{
	for (std::string_view keyword :
	    {"database"sv, "spool"sv, "mail-store"sv, "empty-dir"sv, "control-socket"sv, "pidfile"sv,
		"tls-certificate"sv, "tls-key"sv}) {
		std::string k(keyword);
		int col = static_cast<int>(k.size()) + 2;
		std::string tls = k.starts_with("tls-") ? (k == "tls-key" ? "tls-certificate /c\n" : "tls-key /k\n") : "";
		expect_error("listen smtp\n" + tls + k + " relative/path\n", tls.empty() ? 2 : 3, col,
		    k + ": \"relative/path\" is not an absolute path");
		expect_error("listen smtp\n" + tls + k + " /a/../b\n", tls.empty() ? 2 : 3, col, "has a \"..\" component");
		expect_error("listen smtp\n" + tls + k + " \"\"\n", tls.empty() ? 2 : 3, col, "is not an absolute path");
		expect_error("listen smtp\n" + tls + k + " /" + std::string(4096, 'x') + "\n", tls.empty() ? 2 : 3, col,
		    "is longer than");
	}
	ConfigResult r = parse("listen smtp\nspool /a/..b/c../.../x/\n");
	cr_expect(r.ok() && r.config.spool == "/a/..b/c../.../x/", "only a whole \"..\" component is refused:%s",
	    all_errors(r.errors).c_str());
	std::string socket = "/" + std::string(106, 's'); // 107 bytes: the longest that fits
	r = parse("listen smtp\ncontrol-socket " + socket + "\n");
	cr_expect(r.ok(), "%s", all_errors(r.errors).c_str());
	expect_error("listen smtp\ncontrol-socket " + socket + "s\n", 2, 16, "is longer than 107 bytes");
}

Test(config, tls_pairing)
{
	expect_error("listen smtp\ntls-certificate /c.pem\n", 2, 17, "tls-certificate without tls-key");
	expect_error("listen smtp\ntls-key /k.pem\n", 2, 9, "tls-key without tls-certificate");
	expect_error("listen pop3s port 9995\n", 1, 8, "listen pop3s: implicit TLS needs tls-certificate and tls-key");
	ConfigResult half = parse("listen imaps\ntls-certificate /c.pem\n");
	cr_expect(half.errors.size() == 2 && has_error(half.errors, 1, 8, "listen imaps: implicit TLS needs") &&
		has_error(half.errors, 2, 17, "tls-certificate without tls-key"),
	    "%s", all_errors(half.errors).c_str());
	// A listener declared before the TLS lines that satisfy it is fine.
	ConfigResult r = parse("listen submissions\ntls-key /k\ntls-certificate /c\n");
	cr_expect(r.ok(), "%s", all_errors(r.errors).c_str());
	// A bad key path is reported as itself, not as a missing key.
	expect_error("listen smtp\ntls-certificate /c.pem\ntls-key k.pem\n", 3, 9,
	    "tls-key: \"k.pem\" is not an absolute path");
}

// --- Words ----------------------------------------------------------------------

Test(config, quoting)
{
	ConfigResult r = parse("\"listen\" \"smtp\"\n"
			       "spool \"/var/my spool\"\n"
			       "mail-store \"/m\\\"a\\\\b\"\n"
			       "database \"/d#not a comment\"# a comment\n"
			       "pidfile \"/p\"\t# after a tab\n"
			       "empty-dir \"/e'\"\n");
	cr_assert(r.ok(), "%s", all_errors(r.errors).c_str());
	cr_expect_eq(r.config.listeners.size(), 1u);
	cr_expect_eq(r.config.spool, "/var/my spool");
	cr_expect_eq(r.config.mail_store, "/m\"a\\b");
	cr_expect_eq(r.config.database, "/d#not a comment");
	cr_expect_eq(r.config.pidfile, "/p");
	cr_expect_eq(r.config.empty_dir, "/e'");
	cr_expect_eq(r.config.position_of("spool").col, 7, "the column of a quoted word is its opening quote");

	expect_error("listen smtp\nspool \"/a\n", 2, 7, "unterminated quote");
	expect_error("listen smtp\nspool \"/a\\\"\n", 2, 7, "unterminated quote");
	expect_error("listen smtp\nspool \"/a\\\n", 2, 10, "invalid escape in quotes");
	expect_error("listen smtp\nspool \"/a\\t\"\n", 2, 10, "invalid escape in quotes");
	expect_error("listen smtp\nspool \"/a\"b\n", 2, 11, "expected a blank after the closing quote");
	expect_error("listen smtp\nspool \"/a\"\"b\"\n", 2, 11, "expected a blank after the closing quote");
	expect_error("listen smtp\nspool /a\"b\"\n", 2, 9, "quote inside a word");
	expect_error("listen smtp\nspool /a\"\n", 2, 9, "quote inside a word");
	// Outside quotes a backslash is an ordinary byte.
	r = parse("listen smtp\nspool /a\\b\n");
	cr_expect(r.ok() && r.config.spool == "/a\\b", "%s", all_errors(r.errors).c_str());
}

Test(config, comments_and_blanks)
{
	ConfigResult r = parse("# a comment\n"
			       "\n"
			       "   \t  \n"
			       "  # indented comment \"with an open quote\n"
			       "\tlisten\tsmtp\t# trailing\n"
			       "spool /a#b c\n"
			       "listen imap#\n"
			       "pidfile /p"); // no final newline
	cr_assert(r.ok(), "%s", all_errors(r.errors).c_str());
	cr_expect_eq(r.config.listeners.size(), 2u);
	cr_expect_eq(r.config.listeners[0].line, 5);
	cr_expect_eq(r.config.spool, "/a", "# in a word starts a comment");
	cr_expect_eq(r.config.pidfile, "/p");
	cr_expect_eq(r.config.position_of("pidfile").line, 8);
	// Columns count bytes: a tab is one column.
	expect_error("listen smtp\n\t\tspool x\n", 2, 9, "spool: \"x\" is not an absolute path");
	cr_expect(parse("").errors.size() == 1 && has_error(parse("").errors, 0, 0, "no listeners configured"));
}

Test(config, control_bytes)
{
	expect_error("listen smtp\nlisten imap\r\n", 2, 12, "carriage return not allowed");
	expect_error("listen smtp\nspool /a\rb\n", 2, 9, "carriage return not allowed");
	expect_error("listen smtp\n# comment\r\n", 2, 10, "carriage return not allowed");
	expect_error("listen smtp\nspool \"/a\rb\"\n", 2, 10, "carriage return not allowed");
	expect_error("listen smtp\nspool /a\0b\n"sv, 2, 9, "NUL byte not allowed");
	expect_error("listen smtp\n#\0\n"sv, 2, 2, "NUL byte not allowed");
	expect_error("listen smtp\nspool /a\x1b\n", 2, 9, "control character 0x1b not allowed");
	expect_error("listen smtp\nspool /a\x7f\n", 2, 9, "control character 0x7f not allowed");
	expect_error("listen smtp\nspool /a\f\n", 2, 9, "control character 0x0c not allowed");
	// A CRLF file: every line is refused, none is half-read.
	ConfigResult r = parse("listen smtp\r\nspool /a\r\n");
	cr_expect(r.errors.size() == 3 && has_error(r.errors, 1, 12, "carriage return") &&
		has_error(r.errors, 2, 9, "carriage return") && has_error(r.errors, 0, 0, "no listeners"),
	    "%s", all_errors(r.errors).c_str());
	// Bytes above 0x7f are not control characters.
	r = parse("listen smtp\nspool /é\n");
	cr_expect(r.ok() && r.config.spool == "/é", "%s", all_errors(r.errors).c_str());
}

Test(config, keywords_and_arguments)
{
	expect_error("listen smtp\nHostname a\n", 2, 1, "unknown keyword \"Hostname\" (did you mean \"hostname\"?)");
	expect_error("listen smtp\nmax-conections 5\n", 2, 1, "(did you mean \"max-connections\"?)");
	expect_error("listen smtp\nlisten-on smtp\n", 2, 1, "unknown keyword \"listen-on\"");
	ConfigResult r = parse("listen smtp\nfrobnicate yes\n");
	cr_expect(r.errors.size() == 1 && r.errors[0].message == "unknown keyword \"frobnicate\"",
	    "no suggestion when nothing is close:%s", all_errors(r.errors).c_str());
	expect_error("listen smtp\nspool\n", 2, 1, "spool: missing argument, expected spool PATH");
	expect_error("listen smtp\nspool /a /b\n", 2, 10, "spool: too many arguments, expected spool PATH");
	expect_error("listen smtp\nmax-recipients 5 6 7\n", 2, 18, "max-recipients: too many arguments");
	expect_error("listen smtp\nidle-timeout\n", 2, 1,
	    "idle-timeout: missing argument, expected idle-timeout DURATION");
	expect_error("listen smtp\nmax-message-size # 10M\n", 2, 1, "max-message-size: missing argument");
}

Test(config, duplicates)
{
	for (std::string_view keyword : maild::config_keywords()) {
		if (keyword == "listen" || keyword == "user")
			continue;
		// Whatever the values: the second line is a duplicate.
		std::string k(keyword);
		ConfigResult r = parse("listen smtp\n" + k + " x\n\n" + k + " y\n");
		cr_expect(has_error(r.errors, 4, 1, "duplicate " + k + " (first at line 2)"), "%s:%s", k.c_str(),
		    all_errors(r.errors).c_str());
	}
	expect_error("listen smtp\nuser queue q\nuser smtpd s\nuser queue r\n", 4, 6,
	    "duplicate user queue (first at line 2)");
}

Test(config, collects_every_error_in_file_order)
{
	ConfigResult r = parse("tls-key /k\n"               // 1: without certificate
			       "listen imaps port 0\n"      // 2: bad port, so no listener
			       "bogus\n"                    // 3
			       "spool \"/x\n"               // 4
			       "max-recipients 0\n"         // 5
			       "spool /a\r\n"               // 6
			       "listen submissions\n"       // 7: needs TLS
			       "user nobody x\n");          // 8
	const struct {
		int line, col;
		std::string_view message;
	} want[] = {
	    {1, 9, "tls-key without tls-certificate"},
	    {2, 19, "listen: port 0 is out of range"},
	    {3, 1, "unknown keyword \"bogus\""},
	    {4, 7, "unterminated quote"},
	    {5, 16, "max-recipients: 0 is out of range"},
	    {6, 9, "carriage return not allowed"},
	    {7, 8, "listen submissions: implicit TLS needs"},
	    {8, 6, "user: unknown role \"nobody\""},
	};
	cr_assert_eq(r.errors.size(), std::size(want), "%s", all_errors(r.errors).c_str());
	for (std::size_t i = 0; i < std::size(want); i++) {
		const ConfigError &e = r.errors[i];
		cr_expect(e.file == "test.conf" && e.line == want[i].line && e.col == want[i].col &&
			e.message.find(want[i].message) != std::string::npos,
		    "error %zu: got %s, want %d:%d: %s", i, maild::format_error(e).c_str(), want[i].line, want[i].col,
		    std::string(want[i].message).c_str());
	}
	// The errors not tied to a line come last.
	r = parse("bogus\nspool x\n");
	cr_assert_eq(r.errors.size(), 3u, "%s", all_errors(r.errors).c_str());
	cr_expect_eq(r.errors[2].line, 0);
	cr_expect_eq(maild::format_error(r.errors[2]), "test.conf: no listeners configured");
}

// --- The keyword table against the documentation ----------------------------------

Test(config, keyword_table_sorted_and_unique)
{
	auto keywords = maild::config_keywords();
	cr_assert_eq(keywords.size(), 38u);
	cr_expect(std::ranges::adjacent_find(keywords, std::ranges::greater_equal{}) == keywords.end());
}

Test(config, man_page_documents_every_keyword)
{
	std::string page = read_text(fs::path(MAILD_SOURCE_DIR) / "man/maild.conf.5");
	cr_assert(!page.empty(), "cannot read man/maild.conf.5");
	std::set<std::string> documented;
	std::istringstream lines(page);
	for (std::string line; std::getline(lines, line);) {
		if (!line.starts_with(".It Ic "))
			continue;
		std::string word = line.substr(7, line.find(' ', 7) - 7);
		cr_expect(documented.insert(word).second, "maild.conf.5 documents %s twice", word.c_str());
	}
	std::set<std::string> implemented(maild::config_keywords().begin(), maild::config_keywords().end());
	for (const auto &k : implemented)
		cr_expect(documented.count(k), "keyword %s is not documented in maild.conf.5", k.c_str());
	for (const auto &k : documented)
		cr_expect(implemented.count(k), "maild.conf.5 documents %s, which the parser does not know", k.c_str());
}

Test(config, example_shows_every_keyword)
{
	fs::path example = fs::path(MAILD_SOURCE_DIR) / "etc/maild.conf";
	std::string text = read_text(example);
	ConfigResult r = maild::parse_config_text(text, example.string());
	cr_expect(r.ok(), "etc/maild.conf:%s", all_errors(r.errors).c_str());
	for (const auto &l : r.config.listeners)
		cr_expect(l.address == "127.0.0.1" || l.address == "::1", "etc/maild.conf listens on %s", l.address.c_str());
	// Every keyword appears at the start of a line, commented out or not.
	for (std::string_view keyword : maild::config_keywords()) {
		std::string k(keyword);
		cr_expect(text.starts_with(k + " ") || text.find("\n" + k + " ") != std::string::npos ||
			text.find("\n#" + k + " ") != std::string::npos,
		    "etc/maild.conf does not show %s", k.c_str());
	}
	// Uncommented, the defaults shown are the defaults.
	std::string uncommented;
	std::istringstream lines(text);
	for (std::string line; std::getline(lines, line);) {
		bool shown = std::ranges::any_of(maild::config_keywords(),
		    [&](std::string_view k) { return line.starts_with("#" + std::string(k) + " "); });
		bool other_listener = line.starts_with("#listen ") || line.starts_with("#hostname ") ||
		    line.starts_with("#tls-");
		uncommented += (shown && !other_listener ? line.substr(1) : line) + "\n";
	}
	ConfigResult all = maild::parse_config_text(uncommented, "uncommented");
	ConfigResult none = parse("listen smtp\n");
	cr_assert(all.ok(), "uncommented etc/maild.conf:%s", all_errors(all.errors).c_str());
	const maild::Config &a = all.config, &d = none.config;
	cr_expect(a.database == d.database && a.spool == d.spool && a.mail_store == d.mail_store &&
		a.empty_dir == d.empty_dir && a.control_socket == d.control_socket && a.pidfile == d.pidfile &&
		a.role_user == d.role_user);
	cr_expect(a.max_connections == d.max_connections &&
		a.max_connections_per_address == d.max_connections_per_address &&
		a.max_message_size == d.max_message_size && a.max_recipients == d.max_recipients &&
		a.max_line_length == d.max_line_length && a.max_sessions_per_user == d.max_sessions_per_user &&
		a.command_timeout == d.command_timeout && a.data_timeout == d.data_timeout &&
		a.idle_timeout == d.idle_timeout);
}

// --- The files in tests/configs ------------------------------------------------------

Test(config, good_conf)
{
	fs::path good = fs::path(MAILD_SOURCE_DIR) / "tests/configs/good.conf";
	ConfigResult r = maild::parse_config_text(read_text(good), good.string());
	cr_expect(r.ok(), "good.conf:%s", all_errors(r.errors).c_str());
	cr_expect_eq(r.config.listeners.size(), 8u);
	cr_expect_eq(r.config.mail_store, "/srv/mail store");
}

// Each bad-*.conf starts with `# expect: LINE:COL: SUBSTRING`. A file that
// parses is environmental and goes through load_config, unprivileged;
// LINE 0 means an error not tied to a line. A file that fails to parse must
// fail in exactly the one expected way.
Test(config, bad_configs)
{
	int seen = 0;
	for (const auto &entry : fs::directory_iterator(fs::path(MAILD_SOURCE_DIR) / "tests/configs")) {
		std::string name = entry.path().filename().string();
		if (!name.starts_with("bad-") || !name.ends_with(".conf"))
			continue;
		seen++;
		std::string path = entry.path().string();
		std::string text = read_text(entry.path());
		int line = -1, col = -1, consumed = 0;
		int fields = std::sscanf(text.c_str(), "# expect: %d:%d: %n", &line, &col, &consumed);
		cr_assert(fields == 2 && consumed > 0, "%s: no `# expect: LINE:COL: message` first line", name.c_str());
		std::string want = text.substr(consumed, text.find('\n') - consumed);
		cr_assert(!want.empty(), "%s: empty expected message", name.c_str());

		ConfigResult r = maild::parse_config_text(text, path);
		bool environmental = r.ok();
		if (environmental)
			r = maild::load_config(path, false);
		else
			cr_expect_eq(r.errors.size(), 1u, "%s: more than the expected error:%s", name.c_str(),
			    all_errors(r.errors).c_str());
		auto found = std::ranges::find_if(r.errors, [&](const ConfigError &e) {
			return e.line == line && e.col == col && e.message.find(want) != std::string::npos;
		});
		cr_expect(found != r.errors.end(), "%s: want %d:%d: ...%s...; got:%s", name.c_str(), line, col,
		    want.c_str(), all_errors(r.errors).c_str());
		if (found != r.errors.end() && line > 0) {
			std::string prefix = path + ":" + std::to_string(line) + ":" + std::to_string(col) + ": ";
			cr_expect(maild::format_error(*found).starts_with(prefix), "%s: formatted as %s", name.c_str(),
			    maild::format_error(*found).c_str());
		}
	}
	cr_expect_geq(seen, 17, "only %d bad configurations found", seen);
}

// --- load_config and the environment -------------------------------------------------

Test(config, load_config_reads_the_file)
{
	TempDir dir;
	std::string path = dir / "maild.conf";
	ConfigResult r = maild::load_config(path, false);
	cr_expect(r.errors.size() == 1 && r.errors[0].line == 0 &&
		maild::format_error(r.errors[0]) == path + ": cannot read: No such file or directory",
	    "%s", all_errors(r.errors).c_str());

	write_text(path, dirs_config(dir));
	r = maild::load_config(path, false);
	cr_expect(r.ok(), "%s", all_errors(r.errors).c_str());
	cr_expect_eq(r.config.path, path);
	char name[256] = {};
	gethostname(name, sizeof name - 1);
	cr_expect_eq(r.config.hostname, name, "an unset hostname comes from the system");

	write_text(path, dirs_config(dir) + "hostname mx.example.org\n");
	r = maild::load_config(path, false);
	cr_expect_eq(r.config.hostname, "mx.example.org");

	write_text(path, "listen smtp\n" + std::string(maild::kMaxConfigSize, '#'));
	r = maild::load_config(path, false);
	cr_expect(r.errors.size() == 1 && r.errors[0].message.find("is larger than 131072 bytes") != std::string::npos,
	    "%s", all_errors(r.errors).c_str());

	r = maild::load_config(dir.path.string(), false);
	cr_expect(r.errors.size() == 1 && r.errors[0].message.find("is not a regular file") != std::string::npos,
	    "%s", all_errors(r.errors).c_str());

	// Syntax errors stop before the environment is looked at.
	write_text(path, "listen smtp\nspool /nonexistent/spool\nbogus\n");
	r = maild::load_config(path, false);
	cr_expect(r.errors.size() == 1 && r.errors[0].line == 3, "%s", all_errors(r.errors).c_str());
}

Test(config, data_directories)
{
	TempDir dir;
	maild::Config config = parse(dirs_config(dir)).config;
	std::vector<ConfigError> errors = maild::check_config_environment(config, false);
	cr_expect(errors.empty(), "%s", all_errors(errors).c_str());

	// Missing directories are no error: maild creates them at start.
	std::string text = "listen smtp\nspool " + dir / "no-spool" + "\nmail-store " + dir / "no-mail" +
	    "\ndatabase " + dir / "no-db/maild.db" + "\nempty-dir " + dir / "no-empty" + "\n";
	config = parse(text).config;
	errors = maild::check_config_environment(config, false);
	cr_expect(errors.empty(), "%s", all_errors(errors).c_str());

	// A path through a file is an error (ENOTDIR), not a missing directory.
	write_text(dir / "file", "x");
	config = parse("listen smtp\nspool " + dir / "file/spool" + "\n").config;
	errors = maild::check_config_environment(config, false);
	cr_expect(has_error(errors, 2, 7, "spool " + dir / "file/spool" + ": Not a directory"), "%s",
	    all_errors(errors).c_str());

	chmod((dir / "mail").c_str(), 0777);
	config = parse("listen smtp\nspool " + dir / "file" + "\nmail-store " + dir / "mail\n").config;
	errors = maild::check_config_environment(config, false);
	cr_expect(has_error(errors, 2, 7, "is not a directory") &&
		has_error(errors, 3, 12, "mail-store " + dir / "mail" + ": is writable by everyone (mode 0777)"),
	    "%s", all_errors(errors).c_str());

	// Default paths have no line: "file: message".
	config = parse("listen smtp\n").config;
	config.mail_store = dir / "mail";
	errors = maild::check_config_environment(config, false);
	cr_expect(has_error(errors, 0, 0, "mail-store " + dir / "mail" + ": is writable by everyone"), "%s",
	    all_errors(errors).c_str());
}

Test(config, tls_files)
{
	TempDir dir;
	std::string cert = dir / "cert.pem", key = dir / "key.pem";
	make_cert(dir, cert, key);
	std::string base = dirs_config(dir) + "listen submissions\ntls-certificate " + cert + "\n";
	auto check = [&](const std::string &key_path) {
		ConfigResult r = parse(base + "tls-key " + key_path + "\n");
		cr_assert(r.ok(), "%s", all_errors(r.errors).c_str());
		return maild::check_config_environment(r.config, false);
	};
	// tls-certificate is on line 6, tls-key on line 7, both values at column 9 or 17.
	std::vector<ConfigError> errors = check(key);
	cr_expect(errors.empty(), "a matching pair, key mode 0600:%s", all_errors(errors).c_str());
	chmod(key.c_str(), 0640);
	errors = check(key);
	cr_expect(errors.empty(), "a group may read the key:%s", all_errors(errors).c_str());

	chmod(key.c_str(), 0644);
	errors = check(key);
	cr_expect(errors.size() == 1 && has_error(errors, 7, 9, "tls-key " + key + ": is readable by others (mode 0644)"),
	    "%s", all_errors(errors).c_str());
	chmod(key.c_str(), 0602);
	errors = check(key);
	cr_expect(has_error(errors, 7, 9, "is accessible by others (mode 0602)"), "%s", all_errors(errors).c_str());
	chmod(key.c_str(), 0660);
	errors = check(key);
	cr_expect(has_error(errors, 7, 9, "is writable by its group (mode 0660)"), "%s", all_errors(errors).c_str());
	chmod(key.c_str(), 0600);

	// Owned by someone else (needs root to arrange).
	if (geteuid() == 0) {
		cr_assert(chown(key.c_str(), 65534, 65534) == 0);
		errors = check(key);
		cr_expect(has_error(errors, 7, 9, "is owned by uid 65534, not root or the current user"), "%s",
		    all_errors(errors).c_str());
		cr_assert(chown(key.c_str(), 0, 0) == 0);
	}

	// Another key: the pair does not match.
	std::string cert2 = dir / "cert2.pem", key2 = dir / "key2.pem";
	make_cert(dir, cert2, key2);
	errors = check(key2);
	cr_expect(errors.size() == 1 &&
		has_error(errors, 7, 9, "tls-key " + key2 + ": does not match the certificate in " + cert),
	    "%s", all_errors(errors).c_str());

	// Not a key, not a certificate, missing files, an encrypted key.
	write_text(dir / "not-a-key.pem", read_text(cert), 0600);
	errors = check(dir / "not-a-key.pem");
	cr_expect(errors.size() == 1 && has_error(errors, 7, 9, "no usable PEM private key"), "%s",
	    all_errors(errors).c_str());
	errors = check(dir / "missing.pem");
	std::string missing = dir / "missing.pem";
	cr_expect(has_error(errors, 7, 9, "tls-key " + missing + ": cannot read: No such file or directory"), "%s",
	    all_errors(errors).c_str());
	std::string encrypted = dir / "encrypted.pem";
	std::string cmd =
	    "openssl pkey -in '" + key + "' -aes128 -passout pass:secret -out '" + encrypted + "' 2>/dev/null";
	cr_assert(std::system(cmd.c_str()) == 0);
	chmod(encrypted.c_str(), 0600);
	errors = check(encrypted);
	cr_expect(has_error(errors, 7, 9, "encrypted keys are not supported"), "%s", all_errors(errors).c_str());

	write_text(dir / "garbage.pem", "not a certificate\n");
	std::string garbage = dir / "garbage.pem";
	ConfigResult r = parse(dirs_config(dir) + "listen imap\ntls-certificate " + garbage + "\ntls-key " + key + "\n");
	cr_assert(r.ok(), "%s", all_errors(r.errors).c_str());
	errors = maild::check_config_environment(r.config, false);
	cr_expect(errors.size() == 1 && has_error(errors, 6, 17, "tls-certificate " + garbage + ": no PEM certificate"),
	    "%s", all_errors(errors).c_str());

	// A chain whose second certificate is damaged.
	std::string chain = read_text(cert) + read_text(cert2);
	std::size_t second = chain.find("-----BEGIN", 1);
	chain.replace(chain.find('\n', second) + 1, 8, "!!!!!!!!");
	write_text(dir / "chain.pem", chain);
	r = parse(dirs_config(dir) + "listen imap\ntls-certificate " + dir / "chain.pem" + "\ntls-key " + key + "\n");
	errors = maild::check_config_environment(r.config, false);
	cr_expect(has_error(errors, 6, 17, "certificate 2 of the chain"), "%s", all_errors(errors).c_str());
	// And an intact chain.
	write_text(dir / "chain.pem", read_text(cert) + read_text(cert2));
	errors = maild::check_config_environment(r.config, false);
	cr_expect(errors.empty(), "%s", all_errors(errors).c_str());
}

// The checks only root needs: users, the empty directory, the file itself.
Test(config, privileged_checks)
{
	if (geteuid() != 0)
		cr_skip_test("needs root");
	TempDir dir;
	fs::create_directories(dir / "empty");
	chmod((dir / "empty").c_str(), 0755);
	std::string users;
	for (const auto &info : maild::kRoles)
		if (info.role != Role::Parent)
			users += "user " + std::string(info.name) + " nobody\n";
	std::string text = dirs_config(dir) + "empty-dir " + dir / "empty" + "\n" + users;
	ConfigResult r = parse(text);
	cr_assert(r.ok(), "%s", all_errors(r.errors).c_str());
	std::vector<ConfigError> errors = maild::check_config_environment(r.config, true);
	cr_expect(errors.empty(), "%s", all_errors(errors).c_str());

	// A user that does not exist, configured (line 6) and by default (line 0).
	r = parse(dirs_config(dir) + "empty-dir " + dir / "empty" + "\nuser smtpd no-such-user-x\n");
	errors = maild::check_config_environment(r.config, true);
	cr_expect(has_error(errors, 6, 12, "user no-such-user-x for smtpd does not exist"), "%s",
	    all_errors(errors).c_str());
	if (getpwnam("_maildq") == nullptr)
		cr_expect(has_error(errors, 0, 0, "user _maildq for queue does not exist"), "%s",
		    all_errors(errors).c_str());

	// The empty directory: mode, emptiness, type.
	chmod((dir / "empty").c_str(), 0775);
	write_text(dir / "empty/file", "x");
	r = parse(text);
	errors = maild::check_config_environment(r.config, true);
	cr_expect(errors.size() == 2 && has_error(errors, 5, 11, "is writable by group or others (mode 0775)") &&
		has_error(errors, 5, 11, "empty-dir " + dir / "empty" + ": is not empty"),
	    "%s", all_errors(errors).c_str());
	fs::remove(dir / "empty/file");
	chmod((dir / "empty").c_str(), 0755);
	cr_assert(chown((dir / "empty").c_str(), 65534, 65534) == 0);
	errors = maild::check_config_environment(r.config, true);
	cr_expect(errors.size() == 1 && has_error(errors, 5, 11, "is owned by uid 65534, not root"), "%s",
	    all_errors(errors).c_str());
	// Unprivileged, none of this is looked at.
	cr_expect(maild::check_config_environment(r.config, false).empty());

	// The configuration file must be root's alone.
	std::string path = dir / "maild.conf";
	write_text(path, text, 0664);
	cr_assert(chown((dir / "empty").c_str(), 0, 0) == 0);
	ConfigResult loaded = maild::load_config(path, true);
	cr_expect(loaded.errors.size() == 1 &&
		has_error(loaded.errors, 0, 0, "is writable by group or others (mode 0664)"),
	    "%s", all_errors(loaded.errors).c_str());
	chmod(path.c_str(), 0644);
	loaded = maild::load_config(path, true);
	cr_expect(loaded.ok(), "%s", all_errors(loaded.errors).c_str());
}

// --- Accounts and authentication ------------------------------------------------

Test(config, accounts_settings)
{
	ConfigResult r = parse("listen smtp\n");
	cr_assert(r.ok(), "%s", all_errors(r.errors).c_str());
	cr_expect(!r.config.local_part_case_sensitive);
	cr_expect_eq(r.config.subaddress_separator, '+');
	cr_expect_eq(r.config.argon2_memory, 64u * 1024 * 1024);
	cr_expect_eq(r.config.auth_address_failures, 10u);
	cr_expect_eq(r.config.auth_address_window, 900u);

	r = parse("listen smtp\nlocal-part-case sensitive\nsubaddress-separator -\nmax-alias-depth 3\n"
		  "argon2-memory 16M\nargon2-iterations 2\nargon2-parallelism 4\nauth-workers 8\n"
		  "auth-address-failures 3\nauth-address-window 1m\nauth-account-failures 2\n"
		  "auth-account-window 30s\nauth-cache-ttl 0\n");
	cr_assert(r.ok(), "%s", all_errors(r.errors).c_str());
	cr_expect(r.config.local_part_case_sensitive);
	cr_expect_eq(r.config.subaddress_separator, '-');
	cr_expect_eq(r.config.max_alias_depth, 3u);
	cr_expect_eq(r.config.argon2_memory, 16u * 1024 * 1024);
	cr_expect_eq(r.config.argon2_iterations, 2u);
	cr_expect_eq(r.config.argon2_parallelism, 4u);
	cr_expect_eq(r.config.auth_workers, 8u);
	cr_expect_eq(r.config.auth_address_window, 60u);
	cr_expect_eq(r.config.auth_account_window, 30u);
	cr_expect_eq(r.config.auth_cache_ttl, 0u);

	cr_expect_eq(parse("listen smtp\nsubaddress-separator none\n").config.subaddress_separator, '\0');

	expect_error("listen smtp\nlocal-part-case upper\n", 2, 17, "is neither sensitive nor insensitive");
	expect_error("listen smtp\nsubaddress-separator @\n", 2, 22, "is not one of + - = _ or none");
	expect_error("listen smtp\nsubaddress-separator ++\n", 2, 22, "is not one of");
	expect_error("listen smtp\nargon2-memory 1M\n", 2, 15, "out of range (8M to 4G)");
	expect_error("listen smtp\nargon2-parallelism 17\n", 2, 20, "out of range (1 to 16)");
	expect_error("listen smtp\nauth-workers 0\n", 2, 14, "out of range (1 to 64)");
	expect_error("listen smtp\nauth-cache-ttl 2h\n", 2, 16, "out of range");
	expect_error("listen smtp\nmax-alias-depth 101\n", 2, 17, "out of range (1 to 100)");
}
