// maild.conf: the one configuration file, documented in maild.conf(5).
//
// The grammar is line-oriented: `keyword arguments...`, one statement per
// line, `#` starts a comment, arguments are separated by blanks and may be
// double-quoted. The parser is pure (parse_config_text); the checks that
// touch the system (files, users, owners, modes) are separate
// (check_config_environment) because only the parent runs them: roles get
// the already-checked text over imsg and parse it again.
#pragma once

#include "common/roles.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace maild {

inline constexpr std::string_view kDefaultConfigPath = "/etc/maild/maild.conf";
// load_config refuses larger files: the parent hands the text to every role
// in one SetupConfig message.
inline constexpr std::size_t kMaxConfigSize = 128 * 1024;

// The keywords of maild.conf, sorted: exactly what maild.conf(5) documents.
std::span<const std::string_view> config_keywords();

enum class ListenerKind : uint8_t { Smtp, Submission, Submissions, Imap, Imaps, Pop3, Pop3s };
std::string_view to_string(ListenerKind k);
uint16_t default_port(ListenerKind k);
// Implicit TLS from the first byte (submissions, imaps, pop3s).
bool implicit_tls(ListenerKind k);

struct Listener {
	ListenerKind kind{};
	std::string address; // numeric IPv4 or IPv6; default "127.0.0.1"
	uint16_t port = 0;
	int line = 0; // where it was declared, for later messages
};

inline std::array<std::string, kRoleCount> default_role_users()
{
	std::array<std::string, kRoleCount> users;
	for (const auto &info : kRoles)
		users[static_cast<std::size_t>(info.role)] = info.default_user;
	return users;
}

// Where a configured value was written (line 0: a default).
struct SourcePos {
	int line = 0;
	int col = 0;
};

struct Config {
	std::string path;     // the file it came from (for messages)
	std::string hostname; // default: the system's host name

	std::vector<Listener> listeners;

	std::string tls_certificate; // PEM chain; empty if not configured
	std::string tls_key;         // PEM private key

	std::string database = "/var/lib/maild/maild.db";
	std::string spool = "/var/spool/maild";
	std::string mail_store = "/var/vmail";
	std::string empty_dir = "/var/empty/maild"; // the network roles' root
	std::string control_socket = "/run/maild/control.sock";
	std::string pidfile = "/run/maild/maild.pid";

	// The user each role runs as, indexed by Role (Parent's entry unused).
	std::array<std::string, kRoleCount> role_user = default_role_users();

	// Limits (enforced by the protocol roles that exist; see maild.conf(5)).
	uint32_t max_connections = 1000;
	uint32_t max_connections_per_address = 20;
	uint64_t max_message_size = 35ull * 1024 * 1024;
	uint32_t max_recipients = 100;
	uint32_t max_line_length = 998;     // message text line, without CRLF (RFC 5321 4.5.3.1.6)
	uint32_t max_command_length = 512;  // SMTP command line, with CRLF (RFC 5321 4.5.3.1.4)
	uint32_t max_errors = 10;           // per SMTP session, then 421
	uint32_t max_sessions_per_user = 20;
	// Timeouts, in seconds.
	uint32_t command_timeout = 300;
	uint32_t data_timeout = 600;
	uint32_t idle_timeout = 1800;

	// SMTP in (see maild.conf(5)).
	bool pipelining_guard = true;    // refuse early bytes after end of data and STARTTLS
	bool received_auth_user = false; // name the authenticated user in Received:

	// The queue: temporary failures are retried after queue_retry_min,
	// doubling up to queue_retry_max (seconds).
	uint32_t queue_retry_min = 60;
	uint32_t queue_retry_max = 3600;

	// Accounts and authentication (the lookup role; see maild.conf(5)).
	bool local_part_case_sensitive = false;
	char subaddress_separator = '+'; // '\0': none
	uint32_t max_alias_depth = 10;
	uint64_t argon2_memory = 64ull * 1024 * 1024; // bytes
	uint32_t argon2_iterations = 3;
	uint32_t argon2_parallelism = 1;
	uint32_t auth_workers = 2;               // verifications at once
	uint32_t auth_address_failures = 10;     // per client address per window: then refused
	uint32_t auth_address_window = 900;      // seconds
	uint32_t auth_account_failures = 5;      // per account per window: then slowed down
	uint32_t auth_account_window = 300;      // seconds
	uint32_t auth_cache_ttl = 300;           // seconds; 0: no cache

	// Where each value given in the file was written, by keyword ("user
	// ROLE" for user lines), so that check_config_environment can point at
	// the line; values left at their defaults have no entry.
	std::map<std::string, SourcePos, std::less<>> positions;
	SourcePos position_of(std::string_view key) const;

	// The directory a role chroots into (empty for the parent).
	std::string root_dir(Role r) const;
	const std::string &user(Role r) const { return role_user[static_cast<std::size_t>(r)]; }
};

struct ConfigError {
	std::string file;
	int line = 0; // 0: not tied to a line (e.g. a default path)
	int col = 0;  // 1-based column of the offending word; 0 if none
	std::string message;
};
// "file:line:col: message" (or "file: message" when line is 0).
std::string format_error(const ConfigError &e);

struct ConfigResult {
	Config config;
	std::vector<ConfigError> errors; // every error found, in file order
	std::string text;                // what load_config read (for the roles)
	bool ok() const { return errors.empty(); }
};

// Parses text; reports syntax and value errors. Touches nothing outside.
ConfigResult parse_config_text(std::string_view text, std::string_view filename);

// Checks what the configuration refers to: users exist; the TLS certificate
// and key are readable, match each other, and the key is not readable or
// writable by others; directories exist with safe owners and modes (only when
// privileged: an unprivileged run cannot chroot or change user).
std::vector<ConfigError> check_config_environment(const Config &config, bool privileged);

// Reads the file, parses it and checks the environment: what `maild -n`
// and `mailctl config check` run.
ConfigResult load_config(const std::string &path, bool privileged);

} // namespace maild
