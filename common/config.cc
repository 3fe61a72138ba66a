// maild.conf: the tokenizer, the keyword table and its value checks
// (parse_config_text), and the checks against the running system
// (check_config_environment). maild.conf(5) documents every keyword, bound
// and message class; tests/unit/test_config.cc holds the two to each other.
#include "common/config.h"

#include "common/imsg_types.h"
#include "common/unique_fd.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace maild {

// SetupConfig carries a u32 version, the path (at most 4096 bytes), the
// text and a flag byte, each string behind a u32 length.
static_assert(4 + 4 + 4096 + 4 + kMaxConfigSize + 1 <= kMaxMsgPayload, "a config file must fit in SetupConfig");

std::string_view to_string(ListenerKind k)
{
	switch (k) {
	case ListenerKind::Smtp:
		return "smtp";
	case ListenerKind::Submission:
		return "submission";
	case ListenerKind::Submissions:
		return "submissions";
	case ListenerKind::Imap:
		return "imap";
	case ListenerKind::Imaps:
		return "imaps";
	case ListenerKind::Pop3:
		return "pop3";
	case ListenerKind::Pop3s:
		return "pop3s";
	}
	return "unknown";
}

uint16_t default_port(ListenerKind k)
{
	switch (k) {
	case ListenerKind::Smtp:
		return 25;
	case ListenerKind::Submission:
		return 587;
	case ListenerKind::Submissions:
		return 465;
	case ListenerKind::Imap:
		return 143;
	case ListenerKind::Imaps:
		return 993;
	case ListenerKind::Pop3:
		return 110;
	case ListenerKind::Pop3s:
		return 995;
	}
	return 0;
}

bool implicit_tls(ListenerKind k)
{
	switch (k) {
	case ListenerKind::Submissions:
	case ListenerKind::Imaps:
	case ListenerKind::Pop3s:
		return true;
	case ListenerKind::Smtp:
	case ListenerKind::Submission:
	case ListenerKind::Imap:
	case ListenerKind::Pop3:
		return false;
	}
	return false;
}

namespace {

constexpr std::array kListenerKinds{ListenerKind::Smtp, ListenerKind::Submission, ListenerKind::Submissions,
    ListenerKind::Imap, ListenerKind::Imaps, ListenerKind::Pop3, ListenerKind::Pop3s};

// "/var/lib/maild/maild.db" -> "/var/lib/maild"; "/maild.db" -> "/".
std::string parent_dir(const std::string &path)
{
	std::size_t slash = path.rfind('/');
	if (slash == std::string::npos)
		return ".";
	return slash == 0 ? "/" : path.substr(0, slash);
}

} // namespace

SourcePos Config::position_of(std::string_view key) const
{
	auto it = positions.find(key);
	return it == positions.end() ? SourcePos{} : it->second;
}

std::string Config::root_dir(Role r) const
{
	switch (role_info(r).root) {
	case RootDir::None:
		return {};
	case RootDir::Empty:
		return empty_dir;
	case RootDir::Spool:
		return spool;
	case RootDir::Database:
		return parent_dir(database);
	case RootDir::MailStore:
		return mail_store;
	}
	return {};
}

std::string format_error(const ConfigError &e)
{
	if (e.line == 0)
		return e.file + ": " + e.message;
	std::string where = e.file + ":" + std::to_string(e.line);
	if (e.col > 0)
		where += ":" + std::to_string(e.col);
	return where + ": " + e.message;
}

namespace {

// --- Errors ---------------------------------------------------------------

// File order: by line, errors not tied to a line last; stable, so errors on
// one line keep the order they were found in.
void sort_errors(std::vector<ConfigError> &errors)
{
	std::ranges::stable_sort(errors, [](const ConfigError &a, const ConfigError &b) {
		if ((a.line == 0) != (b.line == 0))
			return b.line == 0;
		return a.line < b.line;
	});
}

std::string in_quotes(std::string_view s)
{
	return "\"" + std::string(s) + "\"";
}

std::string mode_string(mode_t mode)
{
	char buf[16];
	std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
	return buf;
}

// --- Words ----------------------------------------------------------------

struct Word {
	std::string text;
	int col = 0; // 1-based byte column of its first byte (the quote, if quoted)
};

struct Statement {
	int line = 0;
	std::vector<Word> words; // words[0] is the keyword
	const Word &keyword() const { return words.front(); }
	std::size_t nargs() const { return words.size() - 1; }
	const Word &arg(std::size_t i) const { return words[i + 1]; }
};

bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

// --- Values ---------------------------------------------------------------

enum class Unit : uint8_t { Count, Bytes, Seconds };

struct Suffix {
	char letter;
	uint64_t factor;
};

constexpr uint64_t kKiB = 1024, kMiB = 1024 * kKiB, kGiB = 1024 * kMiB;

// Largest first: format_quantity picks the first that divides.
constexpr std::array<Suffix, 6> kByteSuffixes{{
    {'G', kGiB}, {'g', kGiB}, {'M', kMiB}, {'m', kMiB}, {'K', kKiB}, {'k', kKiB}}};
constexpr std::array<Suffix, 3> kSecondSuffixes{{{'s', 1}, {'m', 60}, {'h', 3600}}};

std::span<const Suffix> suffixes(Unit unit)
{
	switch (unit) {
	case Unit::Count:
		return {};
	case Unit::Bytes:
		return kByteSuffixes;
	case Unit::Seconds:
		return kSecondSuffixes;
	}
	return {};
}

// Digits and, for sizes and durations, one suffix letter. nullopt if
// malformed; a value too large for uint64_t saturates, which every range
// then rejects.
std::optional<uint64_t> parse_quantity(std::string_view s, Unit unit)
{
	uint64_t factor = 1;
	if (!s.empty()) {
		for (const Suffix &suffix : suffixes(unit))
			if (s.back() == suffix.letter) {
				factor = suffix.factor;
				s.remove_suffix(1);
				break;
			}
	}
	if (s.empty() || !std::ranges::all_of(s, [](char c) { return c >= '0' && c <= '9'; }))
		return std::nullopt;
	uint64_t n = 0;
	auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
	if (ec == std::errc::result_out_of_range || n > UINT64_MAX / factor)
		return UINT64_MAX;
	if (ec != std::errc() || end != s.data() + s.size())
		return std::nullopt;
	return n * factor;
}

// A bound as a reader would write it: 1G rather than 1073741824.
std::string format_quantity(uint64_t n, Unit unit)
{
	switch (unit) {
	case Unit::Count:
		return std::to_string(n);
	case Unit::Bytes:
		for (const Suffix &suffix : kByteSuffixes)
			if (suffix.letter >= 'A' && suffix.letter <= 'Z' && n != 0 && n % suffix.factor == 0)
				return std::to_string(n / suffix.factor) + suffix.letter;
		return std::to_string(n);
	case Unit::Seconds:
		if (n != 0 && n % 3600 == 0)
			return std::to_string(n / 3600) + "h";
		if (n != 0 && n % 60 == 0)
			return std::to_string(n / 60) + "m";
		return std::to_string(n) + "s";
	}
	return std::to_string(n);
}

std::string_view what_is_expected(Unit unit)
{
	switch (unit) {
	case Unit::Count:
		return "a number";
	case Unit::Bytes:
		return "a size (a number of bytes, or with a K, M or G suffix)";
	case Unit::Seconds:
		return "a duration (a number of seconds, or with an s, m or h suffix)";
	}
	return "a number";
}

// A DNS name (RFC 1123 host name syntax); empty if it is one.
std::string host_name_problem(std::string_view name)
{
	if (name.empty())
		return "is empty";
	if (name.size() > 253)
		return "is longer than 253 bytes";
	std::size_t start = 0;
	while (start <= name.size()) {
		std::size_t dot = name.find('.', start);
		std::string_view label = name.substr(start, dot == name.npos ? name.npos : dot - start);
		if (label.empty())
			return "has an empty label";
		if (label.size() > 63)
			return "has a label longer than 63 bytes";
		for (char c : label)
			if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') && c != '-')
				return "has a character other than letters, digits, hyphens and dots";
		if (label.front() == '-' || label.back() == '-')
			return "has a label that starts or ends with a hyphen";
		if (dot == name.npos)
			break;
		start = dot + 1;
	}
	return {};
}

bool valid_user_name(std::string_view name)
{
	if (name.empty() || name.size() > 32)
		return false;
	if (!(name[0] >= 'a' && name[0] <= 'z') && name[0] != '_')
		return false;
	return std::ranges::all_of(name, [](char c) {
		return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
	});
}

// An absolute path without "..": roles resolve these inside and outside
// their jails, and ".." would make a checked directory mean another one.
std::string path_problem(std::string_view path)
{
	if (path.empty() || path.front() != '/')
		return "is not an absolute path";
	if (path.size() >= PATH_MAX)
		return "is longer than " + std::to_string(PATH_MAX - 1) + " bytes";
	std::size_t start = 0;
	while (start < path.size()) {
		std::size_t slash = path.find('/', start);
		if (path.substr(start, slash == path.npos ? path.npos : slash - start) == "..")
			return "has a \"..\" component";
		if (slash == path.npos)
			break;
		start = slash + 1;
	}
	return {};
}

// --- The parser -----------------------------------------------------------

class Parser;
using Handler = void (*)(Parser &, const Statement &);

struct Keyword {
	std::string_view name;
	std::string_view usage; // the arguments, for "expected" messages
	std::size_t min_args;
	std::size_t max_args;
	// listen may appear many times, user once per role (its handler
	// checks); every other keyword once.
	bool repeatable;
	Handler handle;
};

class Parser {
public:
	explicit Parser(std::string_view filename) : file_(filename) { config_.path = file_; }

	void parse(std::string_view text);
	ConfigResult finish();

	Config &config() { return config_; }
	void error(int line, int col, std::string message)
	{
		errors_.push_back({file_, line, col, std::move(message)});
	}
	void error(int line, const Word &at, std::string message) { error(line, at.col, std::move(message)); }
	// Records that `key` is set at `value`; if it already was, reports a
	// duplicate at `blame` and returns false.
	bool claim(std::string_view key, const Statement &s, const Word &value, const Word &blame);
	void add_listener(Listener listener, int family, const Word &at);

private:
	std::optional<std::vector<Word>> split(std::string_view line, int lineno);
	void statement(Statement &&s);

	std::string file_;
	Config config_;
	std::vector<ConfigError> errors_;
	// Listeners by (family, port): the first with a specific address and
	// the wildcard one, if any. Linux refuses to bind a specific address
	// on a port where the wildcard of its family listens, and vice versa.
	struct PortUse {
		std::optional<std::size_t> wildcard;
		std::optional<std::size_t> specific;
	};
	std::map<std::pair<int, uint16_t>, PortUse> ports_;
	std::map<std::pair<std::string, uint16_t>, std::size_t> endpoints_;
	std::vector<int> listener_cols_;
	// A listen line was written, valid or not: an invalid one is reported
	// as itself, not also as "no listeners".
	bool listen_written_ = false;
};

bool Parser::claim(std::string_view key, const Statement &s, const Word &value, const Word &blame)
{
	auto [it, inserted] = config_.positions.try_emplace(std::string(key), SourcePos{s.line, value.col});
	if (!inserted) {
		error(s.line, blame,
		    "duplicate " + std::string(key) + " (first at line " + std::to_string(it->second.line) + ")");
		return false;
	}
	return true;
}

// "127.0.0.1:25", "[::1]:25".
std::string endpoint(const Listener &listener)
{
	bool v6 = listener.address.find(':') != std::string::npos;
	return (v6 ? "[" + listener.address + "]" : listener.address) + ":" + std::to_string(listener.port);
}

void Parser::add_listener(Listener listener, int family, const Word &at)
{
	std::string where = endpoint(listener);
	auto first = endpoints_.find({listener.address, listener.port});
	if (first != endpoints_.end()) {
		error(listener.line, at,
		    "duplicate listener " + where + " (first at line " +
			std::to_string(config_.listeners[first->second].line) + ")");
		return;
	}
	bool wildcard = listener.address == "0.0.0.0" || listener.address == "::";
	PortUse &use = ports_[{family, listener.port}];
	std::optional<std::size_t> clash = wildcard ? use.specific : use.wildcard;
	if (clash) {
		const Listener &other = config_.listeners[*clash];
		error(listener.line, at,
		    "duplicate listener " + where + ": overlaps " + endpoint(other) + " (line " +
			std::to_string(other.line) + ")");
		return;
	}
	std::size_t index = config_.listeners.size();
	if (wildcard)
		use.wildcard = index;
	else if (!use.specific)
		use.specific = index;
	endpoints_.emplace(std::pair{listener.address, listener.port}, index);
	config_.listeners.push_back(std::move(listener));
	listener_cols_.push_back(at.col);
}

// --- Keyword handlers -----------------------------------------------------

void set_hostname(Parser &p, const Statement &s)
{
	const Word &name = s.arg(0);
	std::string problem = host_name_problem(name.text);
	if (!problem.empty()) {
		p.error(s.line, name, "hostname: " + in_quotes(name.text) + " is not a valid host name: it " + problem);
		return;
	}
	p.config().hostname = name.text;
}

std::optional<ListenerKind> listener_kind(std::string_view name)
{
	for (ListenerKind k : kListenerKinds)
		if (to_string(k) == name)
			return k;
	return std::nullopt;
}

void add_listen(Parser &p, const Statement &s)
{
	const Word &kind_word = s.arg(0);
	std::optional<ListenerKind> kind = listener_kind(kind_word.text);
	if (!kind) {
		p.error(s.line, kind_word,
		    "listen: unknown listener kind " + in_quotes(kind_word.text) +
			" (expected smtp, submission, submissions, imap, imaps, pop3 or pop3s)");
		return;
	}
	Listener listener{*kind, "127.0.0.1", default_port(*kind), s.line};
	int family = AF_INET;
	bool ok = true, seen_address = false, seen_port = false;
	for (std::size_t i = 1; i < s.nargs(); i += 2) {
		const Word &option = s.arg(i);
		bool is_address = option.text == "address";
		if (!is_address && option.text != "port") {
			p.error(s.line, option,
			    "listen: unknown option " + in_quotes(option.text) + " (expected address or port)");
			return;
		}
		bool &seen = is_address ? seen_address : seen_port;
		if (seen) {
			p.error(s.line, option, "listen: duplicate option " + option.text);
			return;
		}
		seen = true;
		if (i + 1 == s.nargs()) {
			p.error(s.line, option, "listen: " + option.text + " needs a value");
			return;
		}
		const Word &value = s.arg(i + 1);
		if (is_address) {
			unsigned char bytes[sizeof(in6_addr)];
			char canonical[INET6_ADDRSTRLEN];
			family = inet_pton(AF_INET, value.text.c_str(), bytes) == 1 ? AF_INET
			    : inet_pton(AF_INET6, value.text.c_str(), bytes) == 1   ? AF_INET6
										    : AF_UNSPEC;
			if (family == AF_UNSPEC ||
			    inet_ntop(family, bytes, canonical, sizeof canonical) == nullptr) {
				p.error(s.line, value,
				    "listen: " + in_quotes(value.text) + " is not a numeric IPv4 or IPv6 address");
				ok = false;
				continue;
			}
			// One spelling per address, so that duplicates compare equal.
			listener.address = canonical;
		} else {
			std::optional<uint64_t> port = parse_quantity(value.text, Unit::Count);
			if (!port) {
				p.error(s.line, value, "listen: port " + in_quotes(value.text) + " is not a number");
				ok = false;
			} else if (*port < 1 || *port > 65535) {
				p.error(s.line, value, "listen: port " + value.text + " is out of range (1 to 65535)");
				ok = false;
			} else {
				listener.port = static_cast<uint16_t>(*port);
			}
		}
	}
	if (ok)
		p.add_listener(std::move(listener), family, kind_word);
}

void set_user(Parser &p, const Statement &s)
{
	const Word &role_word = s.arg(0);
	const Word &name = s.arg(1);
	std::optional<Role> role = role_from_name(role_word.text);
	if (!role || *role == Role::Parent) {
		std::string roles;
		for (const auto &info : kRoles)
			if (info.role != Role::Parent)
				roles += std::string(roles.empty() ? "" : ", ") + std::string(info.name);
		std::string_view parent = role ? "maild is the parent and always runs as root; " : "";
		p.error(s.line, role_word,
		    "user: unknown role " + in_quotes(role_word.text) + " (" + std::string(parent) + "expected one of " +
			roles + ")");
		return;
	}
	if (!p.claim("user " + role_word.text, s, name, role_word))
		return;
	if (!valid_user_name(name.text)) {
		p.error(s.line, name,
		    "user: " + in_quotes(name.text) +
			" is not a valid user name ([a-z_][a-z0-9_-]*, at most 32 characters)");
		return;
	}
	if (name.text == "root") {
		p.error(s.line, name, "user: " + role_word.text + " must not run as root");
		return;
	}
	p.config().role_user[static_cast<std::size_t>(*role)] = name.text;
}

template <std::string Config::*Field>
void set_path(Parser &p, const Statement &s)
{
	const Word &path = s.arg(0);
	std::string problem = path_problem(path.text);
	if (!problem.empty()) {
		p.error(s.line, path, s.keyword().text + ": " + in_quotes(path.text) + " " + problem);
		return;
	}
	p.config().*Field = path.text;
}

void set_control_socket(Parser &p, const Statement &s)
{
	const Word &path = s.arg(0);
	constexpr std::size_t max = sizeof(sockaddr_un::sun_path) - 1;
	if (path.text.size() > max) {
		p.error(s.line, path,
		    "control-socket: " + in_quotes(path.text) + " is longer than " + std::to_string(max) +
			" bytes (the limit of a socket address)");
		return;
	}
	set_path<&Config::control_socket>(p, s);
}

void set_local_part_case(Parser &p, const Statement &s)
{
	const Word &word = s.arg(0);
	if (word.text != "sensitive" && word.text != "insensitive") {
		p.error(s.line, word,
		    "local-part-case: " + in_quotes(word.text) + " is neither sensitive nor insensitive");
		return;
	}
	p.config().local_part_case_sensitive = word.text == "sensitive";
}

template <bool Config::*field>
void set_yes_no(Parser &p, const Statement &s)
{
	const Word &word = s.arg(0);
	if (word.text != "yes" && word.text != "no") {
		p.error(s.line, word, s.keyword().text + ": " + in_quotes(word.text) + " is neither yes nor no");
		return;
	}
	p.config().*field = word.text == "yes";
}

void set_subaddress_separator(Parser &p, const Statement &s)
{
	const Word &word = s.arg(0);
	// Characters of RFC 5321 atext that are not already special in an
	// address; "+" is what most software uses, "-" what qmail uses.
	constexpr std::string_view allowed = "+-=_";
	if (word.text == "none") {
		p.config().subaddress_separator = '\0';
		return;
	}
	if (word.text.size() != 1 || allowed.find(word.text[0]) == std::string_view::npos) {
		p.error(s.line, word,
		    "subaddress-separator: " + in_quotes(word.text) + " is not one of + - = _ or none");
		return;
	}
	p.config().subaddress_separator = word.text[0];
}

template <auto Field, Unit U, uint64_t Min, uint64_t Max>
void set_quantity(Parser &p, const Statement &s)
{
	using Value = std::remove_reference_t<decltype(std::declval<Config &>().*Field)>;
	static_assert(Min <= Max && Max <= std::numeric_limits<Value>::max());
	const Word &word = s.arg(0);
	std::optional<uint64_t> n = parse_quantity(word.text, U);
	if (!n) {
		p.error(s.line, word,
		    s.keyword().text + ": " + in_quotes(word.text) + " is not " + std::string(what_is_expected(U)));
		return;
	}
	if (*n < Min || *n > Max) {
		p.error(s.line, word,
		    s.keyword().text + ": " + word.text + " is out of range (" + format_quantity(Min, U) + " to " +
			format_quantity(Max, U) + ")");
		return;
	}
	p.config().*Field = static_cast<Value>(*n);
}

// The one table of keywords, sorted by name (checked below); the bounds of
// every value are here, and maild.conf(5) repeats them.
constexpr std::array kKeywords{
    Keyword{"argon2-iterations", "NUMBER", 1, 1, false,
	set_quantity<&Config::argon2_iterations, Unit::Count, 1, 100>},
    Keyword{"argon2-memory", "SIZE", 1, 1, false,
	set_quantity<&Config::argon2_memory, Unit::Bytes, 8 * kMiB, 4 * kGiB>},
    Keyword{"argon2-parallelism", "NUMBER", 1, 1, false,
	set_quantity<&Config::argon2_parallelism, Unit::Count, 1, 16>},
    Keyword{"auth-account-failures", "NUMBER", 1, 1, false,
	set_quantity<&Config::auth_account_failures, Unit::Count, 1, 1000000>},
    Keyword{"auth-account-window", "DURATION", 1, 1, false,
	set_quantity<&Config::auth_account_window, Unit::Seconds, 10, 86400>},
    Keyword{"auth-address-failures", "NUMBER", 1, 1, false,
	set_quantity<&Config::auth_address_failures, Unit::Count, 1, 1000000>},
    Keyword{"auth-address-window", "DURATION", 1, 1, false,
	set_quantity<&Config::auth_address_window, Unit::Seconds, 10, 86400>},
    Keyword{"auth-cache-ttl", "DURATION", 1, 1, false,
	set_quantity<&Config::auth_cache_ttl, Unit::Seconds, 0, 3600>},
    Keyword{"auth-workers", "NUMBER", 1, 1, false, set_quantity<&Config::auth_workers, Unit::Count, 1, 64>},
    Keyword{"command-timeout", "DURATION", 1, 1, false,
	set_quantity<&Config::command_timeout, Unit::Seconds, 10, 3600>},
    Keyword{"control-socket", "PATH", 1, 1, false, set_control_socket},
    Keyword{"data-timeout", "DURATION", 1, 1, false, set_quantity<&Config::data_timeout, Unit::Seconds, 10, 3600>},
    Keyword{"database", "PATH", 1, 1, false, set_path<&Config::database>},
    Keyword{"empty-dir", "PATH", 1, 1, false, set_path<&Config::empty_dir>},
    Keyword{"hostname", "NAME", 1, 1, false, set_hostname},
    Keyword{"idle-timeout", "DURATION", 1, 1, false, set_quantity<&Config::idle_timeout, Unit::Seconds, 60, 86400>},
    Keyword{"listen", "KIND [address ADDRESS] [port PORT]", 1, 5, true, add_listen},
    Keyword{"local-part-case", "sensitive | insensitive", 1, 1, false, set_local_part_case},
    Keyword{"mail-store", "PATH", 1, 1, false, set_path<&Config::mail_store>},
    Keyword{"max-alias-depth", "NUMBER", 1, 1, false,
	set_quantity<&Config::max_alias_depth, Unit::Count, 1, 100>},
    Keyword{"max-command-length", "NUMBER", 1, 1, false,
	set_quantity<&Config::max_command_length, Unit::Count, 512, 65536>},
    Keyword{"max-connections", "NUMBER", 1, 1, false,
	set_quantity<&Config::max_connections, Unit::Count, 1, 1000000>},
    Keyword{"max-connections-per-address", "NUMBER", 1, 1, false,
	set_quantity<&Config::max_connections_per_address, Unit::Count, 1, 1000000>},
    Keyword{"max-errors", "NUMBER", 1, 1, false, set_quantity<&Config::max_errors, Unit::Count, 1, 1000>},
    Keyword{"max-line-length", "NUMBER", 1, 1, false,
	set_quantity<&Config::max_line_length, Unit::Count, 998, 1048576>},
    Keyword{"max-message-size", "SIZE", 1, 1, false,
	set_quantity<&Config::max_message_size, Unit::Bytes, kKiB, kGiB>},
    Keyword{"max-recipients", "NUMBER", 1, 1, false,
	set_quantity<&Config::max_recipients, Unit::Count, 1, 1000000>},
    Keyword{"max-sessions-per-user", "NUMBER", 1, 1, false,
	set_quantity<&Config::max_sessions_per_user, Unit::Count, 1, 1000000>},
    Keyword{"pidfile", "PATH", 1, 1, false, set_path<&Config::pidfile>},
    Keyword{"pipelining-guard", "yes | no", 1, 1, false, set_yes_no<&Config::pipelining_guard>},
    Keyword{"queue-retry-max", "DURATION", 1, 1, false,
	set_quantity<&Config::queue_retry_max, Unit::Seconds, 1, 86400>},
    Keyword{"queue-retry-min", "DURATION", 1, 1, false,
	set_quantity<&Config::queue_retry_min, Unit::Seconds, 1, 86400>},
    Keyword{"received-auth-user", "yes | no", 1, 1, false, set_yes_no<&Config::received_auth_user>},
    Keyword{"spool", "PATH", 1, 1, false, set_path<&Config::spool>},
    Keyword{"subaddress-separator", "CHARACTER | none", 1, 1, false, set_subaddress_separator},
    Keyword{"tls-certificate", "PATH", 1, 1, false, set_path<&Config::tls_certificate>},
    Keyword{"tls-key", "PATH", 1, 1, false, set_path<&Config::tls_key>},
    Keyword{"user", "ROLE NAME", 2, 2, true, set_user},
};

static_assert(std::ranges::adjacent_find(kKeywords, std::ranges::greater_equal{}, &Keyword::name) ==
	kKeywords.end(),
    "kKeywords must be sorted by name, without duplicates");

constexpr auto kKeywordNames = [] {
	std::array<std::string_view, kKeywords.size()> names;
	std::ranges::transform(kKeywords, names.begin(), &Keyword::name);
	return names;
}();

const Keyword *find_keyword(std::string_view name)
{
	auto it = std::ranges::lower_bound(kKeywords, name, {}, &Keyword::name);
	return it != kKeywords.end() && it->name == name ? &*it : nullptr;
}

// Levenshtein distance, for "did you mean" (both strings are short).
std::size_t edit_distance(std::string_view a, std::string_view b)
{
	std::vector<std::size_t> row(b.size() + 1);
	for (std::size_t j = 0; j <= b.size(); j++)
		row[j] = j;
	for (std::size_t i = 1; i <= a.size(); i++) {
		std::size_t diagonal = row[0];
		row[0] = i;
		for (std::size_t j = 1; j <= b.size(); j++) {
			std::size_t above = row[j];
			row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
			diagonal = above;
		}
	}
	return row[b.size()];
}

std::string_view closest_keyword(std::string_view word)
{
	constexpr std::size_t kMaxDistance = 2;
	std::string_view best;
	std::size_t best_distance = kMaxDistance + 1;
	for (std::string_view name : kKeywordNames) {
		// The distance is at least the difference in length.
		std::size_t shorter = std::min(word.size(), name.size());
		if (std::max(word.size(), name.size()) - shorter > kMaxDistance)
			continue;
		std::size_t d = edit_distance(word, name);
		if (d < best_distance) {
			best = name;
			best_distance = d;
		}
	}
	return best;
}

// --- Lines ----------------------------------------------------------------

// Splits one line into words: blanks separate them, `#` outside quotes
// starts a comment, "..." is one word with \" and \\ as its only escapes.
// Reports the first problem and gives up on the line.
std::optional<std::vector<Word>> Parser::split(std::string_view line, int lineno)
{
	for (std::size_t i = 0; i < line.size(); i++) {
		unsigned char c = static_cast<unsigned char>(line[i]);
		if (c == '\r') {
			error(lineno, static_cast<int>(i + 1), "carriage return not allowed (lines end in LF alone)");
			return std::nullopt;
		}
		if (c == '\0') {
			error(lineno, static_cast<int>(i + 1), "NUL byte not allowed");
			return std::nullopt;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			char hex[8];
			std::snprintf(hex, sizeof hex, "0x%02x", c);
			error(lineno, static_cast<int>(i + 1),
			    std::string("control character ") + hex + " not allowed");
			return std::nullopt;
		}
	}

	std::vector<Word> words;
	std::size_t i = 0;
	while (i < line.size()) {
		if (is_blank(line[i])) {
			i++;
			continue;
		}
		if (line[i] == '#')
			break;
		Word word{{}, static_cast<int>(i + 1)};
		if (line[i] == '"') {
			bool closed = false;
			for (i++; i < line.size(); i++) {
				if (line[i] == '"') {
					closed = true;
					i++;
					break;
				}
				if (line[i] == '\\') {
					if (i + 1 == line.size() || (line[i + 1] != '"' && line[i + 1] != '\\')) {
						error(lineno, static_cast<int>(i + 1),
						    "invalid escape in quotes (only \\\" and \\\\ are allowed)");
						return std::nullopt;
					}
					i++;
				}
				word.text += line[i];
			}
			if (!closed) {
				error(lineno, word.col, "unterminated quote");
				return std::nullopt;
			}
			if (i < line.size() && !is_blank(line[i]) && line[i] != '#') {
				error(lineno, static_cast<int>(i + 1), "expected a blank after the closing quote");
				return std::nullopt;
			}
		} else {
			for (; i < line.size() && !is_blank(line[i]) && line[i] != '#'; i++) {
				if (line[i] == '"') {
					error(lineno, static_cast<int>(i + 1),
					    "quote inside a word (quote the whole word)");
					return std::nullopt;
				}
				word.text += line[i];
			}
		}
		words.push_back(std::move(word));
	}
	return words;
}

void Parser::statement(Statement &&s)
{
	const Word &name = s.keyword();
	const Keyword *keyword = find_keyword(name.text);
	if (keyword == nullptr) {
		std::string message = "unknown keyword " + in_quotes(name.text);
		if (std::string_view guess = closest_keyword(name.text); !guess.empty())
			message += " (did you mean " + in_quotes(guess) + "?)";
		error(s.line, name, std::move(message));
		return;
	}
	listen_written_ = listen_written_ || keyword->name == "listen";
	if (s.nargs() < keyword->min_args || s.nargs() > keyword->max_args) {
		const Word &at = s.nargs() > keyword->max_args ? s.arg(keyword->max_args) : name;
		error(s.line, at,
		    name.text + ": " + (s.nargs() > keyword->max_args ? "too many arguments" : "missing argument") +
			", expected " + name.text + " " + std::string(keyword->usage));
		return;
	}
	if (!keyword->repeatable && !claim(keyword->name, s, s.arg(0), name))
		return;
	keyword->handle(*this, s);
}

void Parser::parse(std::string_view text)
{
	int lineno = 0;
	std::size_t start = 0;
	while (start < text.size()) {
		std::size_t newline = text.find('\n', start);
		std::string_view line = text.substr(start, newline == text.npos ? text.npos : newline - start);
		start = newline == text.npos ? text.size() : newline + 1;
		lineno++;
		std::optional<std::vector<Word>> words = split(line, lineno);
		if (words && !words->empty())
			statement(Statement{lineno, std::move(*words)});
	}
}

ConfigResult Parser::finish()
{
	// Pairing and TLS needs go by what was written, valid or not, so that a
	// bad tls-key path is reported once, as itself.
	SourcePos cert = config_.position_of("tls-certificate");
	SourcePos key = config_.position_of("tls-key");
	if (cert.line != 0 && key.line == 0)
		error(cert.line, cert.col, "tls-certificate without tls-key");
	if (key.line != 0 && cert.line == 0)
		error(key.line, key.col, "tls-key without tls-certificate");
	for (std::size_t i = 0; i < config_.listeners.size(); i++) {
		const Listener &listener = config_.listeners[i];
		if (implicit_tls(listener.kind) && (cert.line == 0 || key.line == 0))
			error(listener.line, listener_cols_[i],
			    "listen " + std::string(to_string(listener.kind)) +
				": implicit TLS needs tls-certificate and tls-key");
	}
	if (!listen_written_)
		error(0, 0, "no listeners configured");
	if (config_.queue_retry_min > config_.queue_retry_max) {
		SourcePos at = config_.position_of("queue-retry-min");
		if (at.line == 0)
			at = config_.position_of("queue-retry-max");
		error(at.line, at.col, "queue-retry-min is longer than queue-retry-max");
	}
	sort_errors(errors_);
	return ConfigResult{std::move(config_), std::move(errors_)};
}

} // namespace

std::span<const std::string_view> config_keywords()
{
	return kKeywordNames;
}

ConfigResult parse_config_text(std::string_view text, std::string_view filename)
{
	Parser parser(filename);
	parser.parse(text);
	return parser.finish();
}

// --- The environment --------------------------------------------------------

namespace {

// Holds a file's bytes; wiped on destruction (it may be a private key).
struct FileBytes {
	std::string bytes;
	struct stat st {};
	FileBytes() = default;
	FileBytes(const FileBytes &) = delete;
	FileBytes &operator=(const FileBytes &) = delete;
	~FileBytes() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

// Reads a regular file of at most `limit` bytes; an error text if it fails.
std::optional<std::string> read_file(const std::string &path, std::size_t limit, FileBytes &out)
{
	UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
	if (!fd)
		return std::string("cannot read: ") + std::strerror(errno);
	if (fstat(fd.get(), &out.st) < 0)
		return std::string("cannot read: ") + std::strerror(errno);
	if (!S_ISREG(out.st.st_mode))
		return std::string("is not a regular file");
	char buf[8192];
	for (;;) {
		ssize_t n = read(fd.get(), buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			OPENSSL_cleanse(buf, sizeof buf);
			return std::string("cannot read: ") + std::strerror(errno);
		}
		if (n == 0)
			break;
		if (out.bytes.size() + static_cast<std::size_t>(n) > limit) {
			OPENSSL_cleanse(buf, sizeof buf);
			return "is larger than " + std::to_string(limit) + " bytes";
		}
		out.bytes.append(buf, static_cast<std::size_t>(n));
	}
	OPENSSL_cleanse(buf, sizeof buf);
	return std::nullopt;
}

struct BioFree {
	void operator()(BIO *b) const { BIO_free(b); }
};
struct X509Free {
	void operator()(X509 *x) const { X509_free(x); }
};
struct PkeyFree {
	void operator()(EVP_PKEY *k) const { EVP_PKEY_free(k); }
};
using UniqueBio = std::unique_ptr<BIO, BioFree>;
using UniqueX509 = std::unique_ptr<X509, X509Free>;
using UniquePkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

// An encrypted key would make OpenSSL prompt on the terminal: refuse instead.
int no_passphrase(char *, int, int, void *)
{
	return -1;
}

// OpenSSL's reason for the last failure, and a clean error queue.
std::string openssl_reason()
{
	const char *reason = ERR_reason_error_string(ERR_peek_last_error());
	ERR_clear_error();
	return reason != nullptr ? reason : "unknown error";
}

constexpr std::size_t kMaxPemSize = 1024 * 1024;

class EnvironmentCheck {
public:
	explicit EnvironmentCheck(const Config &config) : config_(config) {}

	void users();
	void empty_dir();
	void data_dir(std::string_view keyword, const std::string &dir);
	void tls();
	std::vector<ConfigError> take()
	{
		sort_errors(errors_);
		return std::move(errors_);
	}

private:
	void error(std::string_view key, std::string message)
	{
		SourcePos at = config_.position_of(key);
		errors_.push_back({config_.path, at.line, at.col, std::move(message)});
	}
	UniqueX509 certificate();
	UniquePkey private_key();

	const Config &config_;
	std::vector<ConfigError> errors_;
};

void EnvironmentCheck::users()
{
	for (const auto &info : kRoles) {
		if (info.role == Role::Parent)
			continue;
		const std::string &name = config_.user(info.role);
		std::string key = "user " + std::string(info.name);
		errno = 0;
		const struct passwd *pw = getpwnam(name.c_str());
		if (pw == nullptr && errno != 0 && errno != ENOENT && errno != ESRCH)
			error(key, "user " + name + " for " + std::string(info.name) + ": cannot look up: " +
				std::strerror(errno));
		else if (pw == nullptr)
			error(key, "user " + name + " for " + std::string(info.name) + " does not exist");
		else if (pw->pw_uid == 0)
			error(key,
			    "user " + name + " for " + std::string(info.name) + " has uid 0; roles must not run as root");
	}
}

void EnvironmentCheck::empty_dir()
{
	const std::string &dir = config_.empty_dir;
	struct stat st;
	if (stat(dir.c_str(), &st) < 0) {
		// A missing directory is no error: maild creates it at start.
		if (errno != ENOENT)
			error("empty-dir", "empty-dir " + dir + ": " + std::strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		error("empty-dir", "empty-dir " + dir + ": is not a directory");
		return;
	}
	if (st.st_uid != 0)
		error("empty-dir", "empty-dir " + dir + ": is owned by uid " + std::to_string(st.st_uid) + ", not root");
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		error("empty-dir",
		    "empty-dir " + dir + ": is writable by group or others (mode " + mode_string(st.st_mode) + ")");
	std::error_code ec;
	if (!std::filesystem::is_empty(dir, ec))
		error("empty-dir", "empty-dir " + dir + ": " + (ec ? "cannot list: " + ec.message() : "is not empty"));
}

void EnvironmentCheck::data_dir(std::string_view keyword, const std::string &dir)
{
	std::string what = std::string(keyword) + " " + dir;
	if (keyword == "database")
		what = "database " + config_.database + ": directory " + dir;
	struct stat st;
	if (stat(dir.c_str(), &st) < 0) {
		// A missing directory is no error: maild creates it at start,
		// owned by the role that uses it.
		if (errno != ENOENT)
			error(keyword, what + ": " + std::strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		error(keyword, what + ": is not a directory");
		return;
	}
	if ((st.st_mode & S_IWOTH) != 0)
		error(keyword, what + ": is writable by everyone (mode " + mode_string(st.st_mode) + ")");
}

UniqueX509 EnvironmentCheck::certificate()
{
	const std::string &path = config_.tls_certificate;
	std::string what = "tls-certificate " + path + ": ";
	FileBytes file;
	if (std::optional<std::string> problem = read_file(path, kMaxPemSize, file)) {
		error("tls-certificate", what + *problem);
		return nullptr;
	}
	UniqueBio bio(BIO_new_mem_buf(file.bytes.data(), static_cast<int>(file.bytes.size())));
	if (!bio) {
		error("tls-certificate", what + openssl_reason());
		return nullptr;
	}
	UniqueX509 leaf(PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr));
	if (!leaf) {
		error("tls-certificate", what + "no PEM certificate: " + openssl_reason());
		return nullptr;
	}
	// The rest of the chain must parse too; the end of the input shows as
	// "no start line".
	for (int n = 2;; n++) {
		UniqueX509 next(PEM_read_bio_X509(bio.get(), nullptr, no_passphrase, nullptr));
		if (next)
			continue;
		unsigned long e = ERR_peek_last_error();
		if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
			ERR_clear_error();
			break;
		}
		error("tls-certificate",
		    what + "certificate " + std::to_string(n) + " of the chain: " + openssl_reason());
		return nullptr;
	}
	return leaf;
}

UniquePkey EnvironmentCheck::private_key()
{
	const std::string &path = config_.tls_key;
	std::string what = "tls-key " + path + ": ";
	FileBytes file;
	if (std::optional<std::string> problem = read_file(path, kMaxPemSize, file)) {
		error("tls-key", what + *problem);
		return nullptr;
	}
	// The key's own mode, through symbolic links: a group may read it (a
	// ssl-cert group, say), nobody else may, and only its owner may write.
	mode_t mode = file.st.st_mode;
	bool safe = true;
	auto complain = [&](const std::string &problem) {
		error("tls-key", what + problem);
		safe = false;
	};
	if ((mode & S_IROTH) != 0)
		complain("is readable by others (mode " + mode_string(mode) + ")");
	else if ((mode & (S_IWOTH | S_IXOTH)) != 0)
		complain("is accessible by others (mode " + mode_string(mode) + ")");
	if ((mode & S_IWGRP) != 0)
		complain("is writable by its group (mode " + mode_string(mode) + ")");
	if (file.st.st_uid != 0 && file.st.st_uid != geteuid())
		complain("is owned by uid " + std::to_string(file.st.st_uid) + ", not root or the current user");
	if (!safe)
		return nullptr;
	UniqueBio bio(BIO_new_mem_buf(file.bytes.data(), static_cast<int>(file.bytes.size())));
	if (!bio) {
		error("tls-key", what + openssl_reason());
		return nullptr;
	}
	UniquePkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
	if (!key) {
		error("tls-key",
		    what + "no usable PEM private key (encrypted keys are not supported): " + openssl_reason());
		return nullptr;
	}
	return key;
}

void EnvironmentCheck::tls()
{
	UniqueX509 cert = certificate();
	UniquePkey key = private_key();
	if (!cert || !key)
		return;
	if (X509_check_private_key(cert.get(), key.get()) != 1) {
		ERR_clear_error();
		error("tls-key", "tls-key " + config_.tls_key + ": does not match the certificate in " +
			config_.tls_certificate);
	}
}

} // namespace

std::vector<ConfigError> check_config_environment(const Config &config, bool privileged)
{
	EnvironmentCheck check(config);
	if (privileged) {
		check.users();
		check.empty_dir();
	}
	check.data_dir("database", parent_dir(config.database));
	check.data_dir("spool", config.spool);
	check.data_dir("mail-store", config.mail_store);
	if (!config.tls_certificate.empty() && !config.tls_key.empty())
		check.tls();
	return check.take();
}

ConfigResult load_config(const std::string &path, bool privileged)
{
	FileBytes file;
	if (std::optional<std::string> problem = read_file(path, kMaxConfigSize, file)) {
		ConfigResult failed;
		failed.config.path = path;
		failed.errors.push_back({path, 0, 0, *problem});
		return failed;
	}
	ConfigResult result = parse_config_text(file.bytes, path);
	result.text = file.bytes;
	// The parent runs as root with what this file says: only root may
	// change it.
	if (privileged && file.st.st_uid != 0)
		result.errors.push_back(
		    {path, 0, 0, "is owned by uid " + std::to_string(file.st.st_uid) + ", not root"});
	if (privileged && (file.st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		result.errors.push_back(
		    {path, 0, 0, "is writable by group or others (mode " + mode_string(file.st.st_mode) + ")"});
	if (result.config.hostname.empty()) {
		char name[HOST_NAME_MAX + 1] = {};
		if (gethostname(name, sizeof name - 1) < 0)
			result.errors.push_back({path, 0, 0,
			    std::string("cannot get the system's host name: ") + std::strerror(errno) +
				"; set hostname"});
		else if (std::string problem = host_name_problem(name); !problem.empty())
			result.errors.push_back({path, 0, 0,
			    "the system's host name " + in_quotes(name) + " is not a valid host name: it " + problem +
				"; set hostname"});
		else
			result.config.hostname = name;
	}
	if (result.ok())
		result.errors = check_config_environment(result.config, privileged);
	return result;
}

} // namespace maild
