// The account commands: domains, users and aliases in the database, which
// mailctl opens itself (lookup sees each commit through data_version).
//
// Run as root, mailctl first becomes lookup's user, as the role itself
// does (without the chroot), so that the database and its -wal and -shm
// files are that user's with mode 0600: a file left to root would lock
// lookup out, and one readable by others would show every password hash.
// Run as anyone else (a development setup), it opens the database as the
// invoking user.
//
// Names are checked here, with the parser's reason, before the database
// sees them; the database binds them as data (db.h), so quotes are just
// characters.
#include "mailctl/mailctl.h"

#include "common/address.h"
#include "common/config.h"
#include "lookup/db.h"
#include "lookup/lookup_config.h"
#include "lookup/password.h"
#include "lookup/resolve.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace maild {

namespace {

constexpr std::size_t kMinPasswordBytes = 8;

struct Session {
	Config config;
	AccountsPolicy policy; // lookup's, for resolving
	std::unique_ptr<AccountDb> db;
};

// How mailctl finds the account an operator names: case-insensitively, as
// the database keeps names unique, and without subaddressing.
AccountsPolicy naming_policy(const Session &s)
{
	AccountsPolicy policy = s.policy;
	policy.local_part_case_sensitive = false;
	policy.subaddress_separator = '\0';
	return policy;
}

std::string parent_dir(const std::string &path)
{
	std::size_t slash = path.rfind('/');
	if (slash == std::string::npos)
		return ".";
	return slash == 0 ? "/" : path.substr(0, slash);
}

// Creates the database's directory if it is missing, as maild would at
// start: its parents 0755, the directory itself 0700 and, when root is
// asking, owned by lookup's user.
bool ensure_directory(const std::string &dir, std::optional<std::pair<uid_t, gid_t>> owner)
{
	struct stat st;
	if (stat(dir.c_str(), &st) == 0)
		return true;
	if (errno != ENOENT) {
		print_error("%s: %s", dir.c_str(), std::strerror(errno));
		return false;
	}
	for (std::size_t slash = dir.find('/', 1); slash != std::string::npos; slash = dir.find('/', slash + 1)) {
		std::string parent = dir.substr(0, slash);
		if (mkdir(parent.c_str(), 0755) < 0 && errno != EEXIST) {
			print_error("cannot create %s: %s", parent.c_str(), std::strerror(errno));
			return false;
		}
	}
	if (mkdir(dir.c_str(), 0700) < 0 ||
	    (owner && chown(dir.c_str(), owner->first, owner->second) < 0) || chmod(dir.c_str(), 0700) < 0) {
		print_error("cannot create %s: %s", dir.c_str(), std::strerror(errno));
		return false;
	}
	return true;
}

// Root becomes `user` for good, and checks that it cannot come back.
bool become_user(const std::string &user, uid_t uid, gid_t gid)
{
	if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
		print_error("cannot become user %s: %s", user.c_str(), std::strerror(errno));
		return false;
	}
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;
	if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0 || ruid != uid ||
	    euid != uid || suid != uid || rgid != gid || egid != gid || sgid != gid || setuid(0) == 0) {
		print_error("cannot become user %s: privileges were not dropped", user.c_str());
		return false;
	}
	return true;
}

// Reads the configuration, becomes lookup's user when root, and opens (and
// if need be creates and migrates) the database.
int open_session(const Options &options, Session &s)
{
	std::string path = options.config_file();
	ConfigResult result = load_config(path, false);
	if (!result.ok()) {
		for (const auto &error : result.errors)
			std::fprintf(stderr, "%s\n", format_error(error).c_str());
		print_error("%s: cannot use this configuration", path.c_str());
		return kExitSystem;
	}
	s.config = std::move(result.config);
	s.policy = accounts_policy(s.config);
	const std::string &database = s.config.database;

	std::string dropped_to; // for messages: whose permissions count
	if (geteuid() == 0) {
		const std::string &user = s.config.user(Role::Lookup);
		const passwd *pw = getpwnam(user.c_str());
		if (pw == nullptr) {
			print_error("unknown user %s (the lookup role's user, who owns the database)", user.c_str());
			return kExitSystem;
		}
		uid_t uid = pw->pw_uid;
		gid_t gid = pw->pw_gid;
		if (uid == 0) {
			print_error("the lookup role's user %s is root: the database must not be root's", user.c_str());
			return kExitSystem;
		}
		if (!ensure_directory(parent_dir(database), std::pair(uid, gid)) || !become_user(user, uid, gid))
			return kExitSystem;
		dropped_to = " (as user " + user + ")";
	} else if (!ensure_directory(parent_dir(database), std::nullopt)) {
		return kExitSystem;
	}

	umask(077); // the database, -wal and -shm: 0600
	std::string error;
	s.db = AccountDb::open(database, true, error);
	if (!s.db) {
		// The error names the file.
		print_error("cannot open database: %s%s", error.c_str(), dropped_to.c_str());
		return kExitSystem;
	}
	return kExitOk;
}

// The words for a status the caller did not handle itself. `what` names the
// thing: "user alice@example.org", "domain example.org".
int report(const Session &s, DbStatus status, const std::string &what, std::string_view domain = {})
{
	switch (status) {
	case DbStatus::Ok:
		return kExitOk;
	case DbStatus::NotFound:
		print_error("%s not found", what.c_str());
		return kExitFailed;
	case DbStatus::Exists:
		print_error("%s already exists", what.c_str());
		return kExitFailed;
	case DbStatus::NoSuchDomain:
		print_error("unknown domain %s", printable(domain).c_str());
		return kExitFailed;
	case DbStatus::DomainNotEmpty:
		print_error("%s is not empty; use --force", what.c_str());
		return kExitFailed;
	case DbStatus::Invalid:
		print_error("invalid %s: %s", what.c_str(), s.db->last_error().c_str());
		return kExitFailed;
	case DbStatus::Error:
		print_error("database error: %s", s.db->last_error().c_str());
		return kExitSystem;
	}
	return kExitSystem;
}

bool is_ascii(std::string_view text)
{
	return std::ranges::all_of(text, [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// A domain to store: an ASCII host name. An internationalized name goes in
// its A-label (xn--) form, the one mail arrives with from clients that do
// not use SMTPUTF8.
bool check_domain(std::string_view domain)
{
	if (is_valid_domain(domain, false))
		return true;
	if (!is_ascii(domain) && is_valid_domain(domain, true))
		print_error("invalid domain %s: not ASCII (give an internationalized domain in its xn-- form)",
		    printable(domain).c_str());
	else
		print_error("invalid domain %s: not a valid domain name", printable(domain).c_str());
	return false;
}

// An address to store, in the form the parser reads back to the same value
// (quotes that are not needed are dropped: "\"john\"@d" is john@d). The
// local part may be UTF-8; the domain is ASCII, as in check_domain.
std::optional<std::string> check_address(const std::string &text)
{
	ParseOptions parse_options;
	parse_options.allow_utf8 = true;
	parse_options.allow_address_literal = false;
	std::string error;
	std::optional<Mailbox> mailbox = parse_mailbox(text, parse_options, error);
	if (!mailbox) {
		print_error("invalid address %s: %s", printable(text).c_str(), error.c_str());
		return std::nullopt;
	}
	if (!is_ascii(mailbox->domain)) {
		print_error("invalid address %s: domain not ASCII (give an internationalized domain in its xn-- form)",
		    printable(text).c_str());
		return std::nullopt;
	}
	return to_string(*mailbox);
}

// An alias source: an address, or "@domain" for the domain's catch-all.
std::optional<std::string> check_alias_source(const std::string &text)
{
	if (!text.starts_with('@'))
		return check_address(text);
	std::string_view domain = std::string_view(text).substr(1);
	if (!check_domain(domain))
		return std::nullopt;
	return text;
}

// The domain of an address (or of a catch-all "@domain"): after the last
// '@', since a quoted local part may hold one.
std::string_view domain_of(std::string_view address)
{
	return address.substr(address.rfind('@') + 1);
}

bool check_local_domain(Session &s, std::string_view domain)
{
	if (s.db->is_local_domain(domain))
		return true;
	print_error("unknown domain %s", printable(domain).c_str());
	return false;
}

// Lists sort by domain, then local part, case-insensitively, then by the
// bytes, so that their order does not depend on the database's.
std::tuple<std::string, std::string, std::string> sort_key(const std::string &name)
{
	std::size_t at = name.rfind('@');
	if (at == std::string::npos)
		return {canonical_domain(name), {}, name};
	return {canonical_domain(name.substr(at + 1)), fold_local(name.substr(0, at)), name};
}

std::string count_of(std::size_t n, std::string_view one, std::string_view many)
{
	return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

// Reads a new password, checks it and hashes it with the configured cost.
std::optional<std::string> new_password_hash(const Options &options, const Session &s, int &exit_r)
{
	exit_r = kExitFailed;
	std::string password, error;
	if (!read_password(options.password_stdin(), true, password, error)) {
		wipe_secret(password);
		print_error("%s", error.c_str());
		return std::nullopt;
	}
	std::optional<std::string> hash;
	if (password.empty()) {
		print_error("empty password");
	} else if (password.size() < kMinPasswordBytes) {
		print_error("password too short (at least %zu characters)", kMinPasswordBytes);
	} else if (password.size() > kMaxPasswordBytes) {
		print_error("password too long (at most %zu bytes)", kMaxPasswordBytes);
	} else {
		hash = hash_password(password, argon2_params(s.config), error);
		if (!hash) {
			print_error("cannot hash the password: %s", error.c_str());
			exit_r = kExitSystem;
		}
	}
	wipe_secret(password);
	return hash;
}

std::optional<std::string> resolution_problem(const Resolution &resolution)
{
	switch (resolution.kind) {
	case ResolveKind::Deliver:
	case ResolveKind::Disabled: // the operator's choice, not a mistake
		return std::nullopt;
	case ResolveKind::UnknownUser:
		return "unknown user";
	case ResolveKind::NotLocalDomain:
		return "not a local domain";
	case ResolveKind::TempFail:
		return resolution.error;
	}
	return "unexpected resolution";
}

// What is wrong with an alias, resolved as lookup would resolve it.
std::vector<std::string> alias_problems(Session &s, const AliasRecord &alias)
{
	std::vector<std::string> problems;
	if (!alias.source.starts_with('@')) {
		if (auto problem = resolution_problem(resolve_recipient(*s.db, s.policy, alias.source)))
			problems.push_back(*problem);
		return problems;
	}
	// A catch-all takes only what nothing else takes, so there is no
	// address to resolve it by: each of its targets is resolved instead.
	// One outside the local domains is forwarded, which is fine.
	for (const auto &target : alias.targets) {
		Resolution resolution = resolve_recipient(*s.db, s.policy, target);
		if (resolution.kind == ResolveKind::NotLocalDomain)
			continue;
		if (auto problem = resolution_problem(resolution))
			problems.push_back("target " + target + ": " + *problem);
	}
	return problems;
}

// Opens the database for a list command, optionally limited to one local
// domain (empty: all).
int open_list_session(const Options &options, const std::string &domain, Session &s)
{
	if (!domain.empty() && !check_domain(domain))
		return kExitFailed;
	if (int status = open_session(options, s); status != kExitOk)
		return status;
	if (!domain.empty() && !check_local_domain(s, domain))
		return kExitFailed;
	return kExitOk;
}

// The commands shared by user del, disable and enable: one address, one
// change.
template <typename Change>
int change_account(const Options &options, Operands operands, Change change)
{
	std::optional<std::string> address = check_address(operands[0]);
	if (!address)
		return kExitFailed;
	Session s;
	if (int status = open_session(options, s); status != kExitOk)
		return status;
	return report(s, change(*s.db, *address), "user " + *address, domain_of(*address));
}

} // namespace

int domain_add(const Options &options, Operands operands)
{
	const std::string &domain = operands[0];
	if (!check_domain(domain))
		return kExitFailed;
	Session s;
	if (int status = open_session(options, s); status != kExitOk)
		return status;
	return report(s, s.db->add_domain(domain), "domain " + domain, domain);
}

int domain_del(const Options &options, Operands operands)
{
	const std::string &domain = operands[0];
	if (!check_domain(domain))
		return kExitFailed;
	Session s;
	if (int status = open_session(options, s); status != kExitOk)
		return status;
	DbStatus status = s.db->delete_domain(domain, options.force());
	if (status == DbStatus::NotFound) {
		print_error("unknown domain %s", domain.c_str());
		return kExitFailed;
	}
	if (status == DbStatus::DomainNotEmpty) {
		std::size_t accounts = s.db->list_accounts(domain).size();
		std::size_t aliases = s.db->list_aliases(domain).size();
		std::string contents;
		if (accounts > 0)
			contents = count_of(accounts, "account", "accounts");
		if (aliases > 0)
			contents += (contents.empty() ? "" : " and ") + count_of(aliases, "alias", "aliases");
		if (!contents.empty()) {
			print_error("domain %s has %s; use --force", domain.c_str(), contents.c_str());
			return kExitFailed;
		}
	}
	return report(s, status, "domain " + domain, domain);
}

int domain_list(const Options &options, Operands)
{
	Session s;
	if (int status = open_session(options, s); status != kExitOk)
		return status;
	std::vector<std::string> domains = s.db->list_domains();
	std::ranges::sort(domains, {}, sort_key);
	for (const auto &domain : domains)
		std::printf("%s\n", domain.c_str());
	return kExitOk;
}

int user_add(const Options &options, Operands operands)
{
	std::optional<std::string> address = check_address(operands[0]);
	if (!address)
		return kExitFailed;
	Session s;
	if (int status = open_session(options, s); status != kExitOk)
		return status;
	// Before the password is asked for: a mistake shows at once.
	std::string_view domain = domain_of(*address);
	if (!check_local_domain(s, domain))
		return kExitFailed;
	if (auto existing = s.db->find_account(*address, naming_policy(s))) {
		print_error("user %s already exists", existing->address.c_str());
		return kExitFailed;
	}
	int exit_status = kExitOk;
	std::optional<std::string> hash = new_password_hash(options, s, exit_status);
	if (!hash)
		return exit_status;
	return report(s, s.db->add_account(*address, *hash), "user " + *address, domain);
}

int user_del(const Options &options, Operands operands)
{
	return change_account(options, operands,
	    [](AccountDb &db, const std::string &address) { return db.delete_account(address); });
}

int user_passwd(const Options &options, Operands operands)
{
	std::optional<std::string> address = check_address(operands[0]);
	if (!address)
		return kExitFailed;
	Session s;
	if (int status = open_session(options, s); status != kExitOk)
		return status;
	std::optional<AccountRecord> account = s.db->find_account(*address, naming_policy(s));
	if (!account) {
		print_error("user %s not found", address->c_str());
		return kExitFailed;
	}
	int exit_status = kExitOk;
	std::optional<std::string> hash = new_password_hash(options, s, exit_status);
	if (!hash)
		return exit_status;
	return report(s, s.db->set_password(account->address, *hash), "user " + account->address,
	    domain_of(account->address));
}

int user_list(const Options &options, Operands operands)
{
	std::string domain = operands.empty() ? std::string() : operands[0];
	Session s;
	if (int status = open_list_session(options, domain, s); status != kExitOk)
		return status;
	std::vector<AccountRecord> accounts = s.db->list_accounts(domain);
	std::ranges::sort(accounts, {}, [](const AccountRecord &a) { return sort_key(a.address); });
	for (const auto &account : accounts)
		std::printf("%s %s\n", account.address.c_str(), account.enabled ? "enabled" : "disabled");
	return kExitOk;
}

int user_disable(const Options &options, Operands operands)
{
	return change_account(options, operands,
	    [](AccountDb &db, const std::string &address) { return db.set_enabled(address, false); });
}

int user_enable(const Options &options, Operands operands)
{
	return change_account(options, operands,
	    [](AccountDb &db, const std::string &address) { return db.set_enabled(address, true); });
}

int alias_add(const Options &options, Operands operands)
{
	std::optional<std::string> source = check_alias_source(operands[0]);
	std::optional<std::string> target = source ? check_address(operands[1]) : std::nullopt;
	if (!source || !target)
		return kExitFailed;
	Session s;
	if (int status = open_session(options, s); status != kExitOk)
		return status;
	std::string_view domain = domain_of(*source);
	if (!check_local_domain(s, domain))
		return kExitFailed;
	DbStatus status = s.db->add_alias(*source, *target);
	if (status != DbStatus::Ok)
		return report(s, status, "alias " + *source + " -> " + *target, domain);
	// Added; but a loop or a dangling target is worth saying at once.
	for (const auto &problem : alias_problems(s, AliasRecord{*source, {*target}}))
		std::fprintf(stderr, "mailctl: warning: %s: %s\n", source->c_str(), printable(problem).c_str());
	return kExitOk;
}

int alias_del(const Options &options, Operands operands)
{
	std::optional<std::string> source = check_alias_source(operands[0]);
	if (!source)
		return kExitFailed;
	std::string target;
	if (operands.size() > 1) {
		std::optional<std::string> checked = check_address(operands[1]);
		if (!checked)
			return kExitFailed;
		target = *checked;
	}
	Session s;
	if (int status = open_session(options, s); status != kExitOk)
		return status;
	std::string what = "alias " + *source + (target.empty() ? "" : " -> " + target);
	return report(s, s.db->delete_alias(*source, target), what, domain_of(*source));
}

int alias_list(const Options &options, Operands operands)
{
	std::string domain = operands.empty() ? std::string() : operands[0];
	Session s;
	if (int status = open_list_session(options, domain, s); status != kExitOk)
		return status;
	std::vector<std::pair<std::string, std::string>> lines;
	for (auto &alias : s.db->list_aliases(domain))
		for (auto &target : alias.targets)
			lines.emplace_back(alias.source, std::move(target));
	std::ranges::sort(lines, {}, [](const auto &line) {
		return std::pair(sort_key(line.first), sort_key(line.second));
	});
	for (const auto &[source, target] : lines)
		std::printf("%s %s\n", source.c_str(), target.c_str());
	return kExitOk;
}

int alias_check(const Options &options, Operands)
{
	Session s;
	if (int status = open_session(options, s); status != kExitOk)
		return status;
	std::vector<AliasRecord> aliases = s.db->list_aliases();
	std::ranges::sort(aliases, {}, [](const AliasRecord &a) { return sort_key(a.source); });
	bool any = false;
	for (const auto &alias : aliases) {
		for (const auto &problem : alias_problems(s, alias)) {
			std::printf("%s: %s\n", alias.source.c_str(), printable(problem).c_str());
			any = true;
		}
	}
	if (any)
		return kExitFailed;
	std::printf("aliases OK\n");
	return kExitOk;
}

} // namespace maild
