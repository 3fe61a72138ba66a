// The account database: SQLite in WAL mode, owned by the lookup role's user.
//
// Only lookup (inside its jail) and mailctl (dropped to lookup's user) open
// it. Every statement binds its parameters: addresses and passwords are data,
// never SQL. The schema is versioned with PRAGMA user_version; open()
// applies the forward migrations it knows and refuses a database that a
// newer maild has migrated further.
//
// Names: domains are compared case-insensitively (ASCII, RFC 5321 2.4);
// two accounts, aliases or domains that differ only in case cannot both
// exist. Whether a *lookup* of a local part ignores case is the caller's
// policy (AccountsPolicy::local_part_case_sensitive): when sensitive, the
// stored spelling must match exactly.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;

namespace maild {

// The schema version this code writes and understands.
inline constexpr int kSchemaVersion = 1;

struct AccountsPolicy {
	bool local_part_case_sensitive = false;
	char subaddress_separator = '+'; // '\0': no subaddressing
	uint32_t max_alias_depth = 10;
};

struct AccountRecord {
	std::string address; // local@domain as added
	std::string password_hash;
	bool enabled = true;
	uint64_t quota_bytes = 0; // 0: no quota (not enforced yet)
	int64_t created = 0;      // seconds since the epoch
	int64_t changed = 0;
};

// One alias source and its targets. A source "@domain" is the domain's
// catch-all.
struct AliasRecord {
	std::string source;
	std::vector<std::string> targets;
};

enum class DbStatus {
	Ok,
	NotFound,          // no such domain, account or alias
	Exists,            // already there (compared case-insensitively)
	NoSuchDomain,      // the address's domain is not a local domain
	DomainNotEmpty,    // delete_domain without force on a domain with accounts or aliases
	Invalid,           // malformed address or domain
	Error,             // SQLite failed: last_error() says why
};
std::string_view to_string(DbStatus status);

class AccountDb {
public:
	// Opens the database at `path`, creating it (mode 0600) if `create`,
	// and migrates it to kSchemaVersion. nullptr with error_r on failure,
	// including a database newer than this code.
	static std::unique_ptr<AccountDb> open(const std::string &path, bool create, std::string &error_r);
	~AccountDb();
	AccountDb(const AccountDb &) = delete;
	AccountDb &operator=(const AccountDb &) = delete;

	// Changes whenever another connection commits (PRAGMA data_version):
	// lookup compares it before answering to drop what it cached.
	uint64_t data_version();
	int schema_version();
	// Empty after a call that went well. After a DbStatus of Invalid or
	// Error, why; after a call that returns no status (a lookup or a
	// list), non-empty only if SQLite failed, and the answer is then
	// incomplete: the caller must fail temporarily, not say "no".
	const std::string &last_error() const { return last_error_; }

	// Stored with ASCII letters lowercased, like canonical_domain.
	DbStatus add_domain(std::string_view domain);
	// force: also deletes the domain's accounts, aliases and catch-all.
	DbStatus delete_domain(std::string_view domain, bool force);
	std::vector<std::string> list_domains();
	bool is_local_domain(std::string_view domain);

	// The hash is stored as given (printable ASCII, no spaces: anything
	// else is Invalid). Changing or deleting an account finds it ignoring
	// case; NoSuchDomain and NotFound tell a missing domain from a
	// missing account.
	DbStatus add_account(std::string_view address, std::string_view password_hash);
	DbStatus delete_account(std::string_view address);
	DbStatus set_password(std::string_view address, std::string_view password_hash);
	DbStatus set_enabled(std::string_view address, bool enabled);
	std::optional<AccountRecord> find_account(std::string_view address, const AccountsPolicy &policy);
	// Every account, or those of one domain; sorted by domain, then by
	// local part ignoring case.
	std::vector<AccountRecord> list_accounts(std::string_view domain = {});

	// source: local@domain or @domain (catch-all), in a local domain.
	// target: any valid address, local or not, stored with its domain
	// lowercased. A source keeps the spelling it was first added with.
	// An alias may share its address with an account; the account wins.
	DbStatus add_alias(std::string_view source, std::string_view target);
	// An empty target deletes the source with all its targets.
	DbStatus delete_alias(std::string_view source, std::string_view target);
	// In the order they were added.
	std::vector<std::string> alias_targets(std::string_view source, const AccountsPolicy &policy);
	// Sorted by domain, then source (the catch-all first), targets sorted.
	std::vector<AliasRecord> list_aliases(std::string_view domain = {});

	// Free-form settings (key/value) for later features. Keys are
	// printable ASCII without spaces; values any text without NUL.
	std::optional<std::string> setting(std::string_view key);
	DbStatus set_setting(std::string_view key, std::string_view value);

private:
	explicit AccountDb(sqlite3 *db) : db_(db) {}
	sqlite3 *db_;
	std::string last_error_;
};

} // namespace maild
