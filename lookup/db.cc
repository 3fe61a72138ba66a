// The account database (see db.h).
//
// Schema version 1 (kMigrations[0]):
//
//   domains    id, name, created
//              name: lowercased (ASCII) as added; unique ignoring case.
//   accounts   id, domain_id, local, password_hash, enabled, quota_bytes,
//              created, changed
//              local: the parser's canonical local part (quotes removed),
//              case as added; unique per domain ignoring ASCII case.
//   aliases    id, domain_id, local, target, created
//              one row per (source, target); a source's rows all share
//              one spelling of local (add_alias keeps the first one).
//   catchalls  id, domain_id, target, created
//              one row per target of the domain's catch-all (@domain).
//   settings   key, value
//
// Deleting a domain deletes its rows in the other tables (ON DELETE
// CASCADE; foreign_keys is on for every connection). An account and an
// alias may share an address: resolution prefers the account.
//
// Case: NOCASE folds ASCII letters only, like canonical_domain and
// fold_local, which is what RFC 5321 section 2.4 allows; non-ASCII
// characters compare exactly. Uniqueness is always NOCASE; a lookup with a
// case-sensitive policy compares BINARY instead.
#include "lookup/db.h"

#include "common/address.h"
#include "common/unique_fd.h"

#include <fcntl.h>
#include <sqlite3.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>

namespace maild {

namespace {

// mailctl and lookup share the file; a writer holds the lock briefly.
constexpr int kBusyTimeoutMs = 5000;
constexpr std::size_t kMaxPasswordHash = 1024;
constexpr std::size_t kMaxSettingKey = 255;

// kMigrations[i] takes a database from user_version i to i + 1.
constexpr std::array<const char *, kSchemaVersion> kMigrations = {
    R"sql(
CREATE TABLE domains (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE COLLATE NOCASE,
	created INTEGER NOT NULL
);
CREATE TABLE accounts (
	id INTEGER PRIMARY KEY,
	domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
	local TEXT NOT NULL,
	password_hash TEXT NOT NULL,
	enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
	quota_bytes INTEGER NOT NULL DEFAULT 0 CHECK (quota_bytes >= 0),
	created INTEGER NOT NULL,
	changed INTEGER NOT NULL,
	UNIQUE (domain_id, local COLLATE NOCASE)
);
CREATE TABLE aliases (
	id INTEGER PRIMARY KEY,
	domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
	local TEXT NOT NULL,
	target TEXT NOT NULL,
	created INTEGER NOT NULL,
	UNIQUE (domain_id, local COLLATE NOCASE, target COLLATE NOCASE)
);
CREATE TABLE catchalls (
	id INTEGER PRIMARY KEY,
	domain_id INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
	target TEXT NOT NULL,
	created INTEGER NOT NULL,
	UNIQUE (domain_id, target COLLATE NOCASE)
);
CREATE TABLE settings (
	key TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
)sql",
};

enum class Step { Row, Done, Duplicate, Error };

// A prepared statement. Parameters are bound in order, each call to the
// next index, so the SQL numbers them ?1, ?2, ... in that order. Any
// failure is written to the connection's error string; step() then
// answers Error.
class Statement {
public:
	Statement(sqlite3 *db, std::string_view sql, std::string &error_r) : db_(db), error_(error_r)
	{
		if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) != SQLITE_OK)
			fail();
	}
	~Statement() { sqlite3_finalize(stmt_); }
	Statement(const Statement &) = delete;
	Statement &operator=(const Statement &) = delete;

	// With an explicit length, so that bytes after a NUL are not lost, and
	// never a null pointer: SQLite would bind NULL for an empty view.
	Statement &text(std::string_view value)
	{
		const char *data = value.empty() ? "" : value.data();
		if (ok_ && sqlite3_bind_text64(stmt_, ++index_, data, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8) !=
		    SQLITE_OK)
			fail();
		return *this;
	}
	Statement &integer(int64_t value)
	{
		if (ok_ && sqlite3_bind_int64(stmt_, ++index_, value) != SQLITE_OK)
			fail();
		return *this;
	}
	Statement &null()
	{
		if (ok_ && sqlite3_bind_null(stmt_, ++index_) != SQLITE_OK)
			fail();
		return *this;
	}
	// Binds NULL for an empty value: for "?N IS NULL OR ..." filters.
	Statement &text_or_null(std::string_view value) { return value.empty() ? null() : text(value); }

	Step step()
	{
		if (!ok_)
			return Step::Error;
		int rc = sqlite3_step(stmt_);
		if (rc == SQLITE_ROW)
			return Step::Row;
		if (rc == SQLITE_DONE)
			return Step::Done;
		if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			return Step::Duplicate;
		fail();
		return Step::Error;
	}

	std::string column_text(int column)
	{
		const unsigned char *p = sqlite3_column_text(stmt_, column);
		if (p == nullptr) {
			// NULL, or out of memory converting the value.
			if (sqlite3_errcode(db_) == SQLITE_NOMEM)
				fail();
			return {};
		}
		return std::string(reinterpret_cast<const char *>(p),
		    static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
	}
	int64_t column_int(int column) { return sqlite3_column_int64(stmt_, column); }
	bool column_null(int column) { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
	// False once anything failed, a column read included.
	bool ok() const { return ok_; }

private:
	void fail()
	{
		ok_ = false;
		error_ = sqlite3_errmsg(db_);
	}

	sqlite3 *db_;
	std::string &error_;
	sqlite3_stmt *stmt_ = nullptr;
	int index_ = 0;
	bool ok_ = true;
};

// For fixed SQL only: nothing here is ever built from data.
bool exec(sqlite3 *db, const char *sql, std::string &error_r)
{
	char *message = nullptr;
	if (sqlite3_exec(db, sql, nullptr, nullptr, &message) == SQLITE_OK)
		return true;
	error_r = message != nullptr ? message : sqlite3_errmsg(db);
	sqlite3_free(message);
	return false;
}

// BEGIN IMMEDIATE takes the write lock at once, so that another connection
// cannot change what a read-then-write sequence has read. Rolls back
// unless committed; Statements declared after it are finalized first.
class Transaction {
public:
	Transaction(sqlite3 *db, std::string &error_r) : db_(db), error_(error_r)
	{
		open_ = exec(db, "BEGIN IMMEDIATE", error_r);
	}
	~Transaction()
	{
		// Nothing to report a failed rollback to; SQLite rolls back
		// itself when the connection closes.
		if (open_ && !sqlite3_get_autocommit(db_))
			sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
	}
	Transaction(const Transaction &) = delete;
	Transaction &operator=(const Transaction &) = delete;

	bool active() const { return open_; }
	bool commit()
	{
		if (!exec(db_, "COMMIT", error_))
			return false;
		open_ = false;
		return true;
	}

private:
	sqlite3 *db_;
	std::string &error_;
	bool open_ = false;
};

std::optional<int64_t> pragma_int(sqlite3 *db, const char *sql, std::string &error_r)
{
	Statement q(db, sql, error_r);
	if (q.step() != Step::Row) {
		if (q.ok())
			error_r = std::string(sql) + " returned nothing";
		return std::nullopt;
	}
	return q.column_int(0);
}

bool configure(sqlite3 *db, std::string &error_r)
{
	// The file is data: defensive mode forbids writable_schema tricks, and
	// an untrusted schema may not call SQL functions with side effects
	// from views or triggers.
	int defensive = 0, trusted = 1;
	if (sqlite3_extended_result_codes(db, 1) != SQLITE_OK || sqlite3_busy_timeout(db, kBusyTimeoutMs) != SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, &defensive) != SQLITE_OK ||
	    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, &trusted) != SQLITE_OK) {
		error_r = sqlite3_errmsg(db);
		return false;
	}
	if (defensive != 1 || trusted != 0) {
		error_r = "SQLite refused defensive mode";
		return false;
	}
	// The first read of the file: a file that is not a database fails here.
	{
		Statement q(db, "PRAGMA journal_mode = WAL", error_r);
		if (q.step() != Step::Row)
			return false;
		std::string mode = q.column_text(0);
		if (!q.ok())
			return false;
		if (mode != "wal") {
			error_r = "journal_mode is " + mode + ", not wal";
			return false;
		}
	}
	// FULL: a commit mailctl reported must survive a power loss.
	if (!exec(db, "PRAGMA synchronous = FULL", error_r) || !exec(db, "PRAGMA foreign_keys = ON", error_r))
		return false;
	std::optional<int64_t> foreign_keys = pragma_int(db, "PRAGMA foreign_keys", error_r);
	if (!foreign_keys)
		return false;
	if (*foreign_keys != 1) {
		error_r = "SQLite does not enforce foreign keys";
		return false;
	}
	return true;
}

// Each step runs in its own transaction, which first reads the version
// again: another process may have migrated the file meanwhile.
bool migrate(sqlite3 *db, std::string &error_r)
{
	for (;;) {
		Transaction tx(db, error_r);
		if (!tx.active())
			return false;
		std::optional<int64_t> version = pragma_int(db, "PRAGMA user_version", error_r);
		if (!version)
			return false;
		if (*version > kSchemaVersion) {
			error_r = "database schema version " + std::to_string(*version) + " is newer than this maild (" +
			    std::to_string(kSchemaVersion) + ")";
			return false;
		}
		if (*version < 0) {
			error_r = "database schema version " + std::to_string(*version) + " is invalid";
			return false;
		}
		if (*version == kSchemaVersion)
			return tx.commit();
		// PRAGMA takes no parameters; the number is ours, not data.
		std::string set_version = "PRAGMA user_version = " + std::to_string(*version + 1);
		if (!exec(db, kMigrations[static_cast<std::size_t>(*version)], error_r) ||
		    !exec(db, set_version.c_str(), error_r) || !tx.commit())
			return false;
	}
}

int64_t now()
{
	return static_cast<int64_t>(std::time(nullptr));
}

DbStatus invalid(std::string &error_r, std::string why)
{
	error_r = std::move(why);
	return DbStatus::Invalid;
}

// local@domain in the form parse_mailbox reads back (quoting as needed).
std::string render(std::string_view local, std::string_view domain)
{
	Mailbox mailbox;
	mailbox.local = local;
	mailbox.domain = domain;
	return to_string(mailbox);
}

// An address in a local domain as the database keys it: the canonical
// local part, the domain lowercased. Local domains are names, never
// address literals.
struct LocalAddress {
	std::string local;
	std::string domain;
};

std::optional<LocalAddress> parse_local(std::string_view address, std::string &error_r)
{
	ParseOptions options;
	options.allow_utf8 = true;
	options.allow_address_literal = false;
	std::optional<Mailbox> mailbox = parse_mailbox(address, options, error_r);
	if (!mailbox)
		return std::nullopt;
	return LocalAddress{std::move(mailbox->local), canonical_domain(mailbox->domain)};
}

// An account's address for a statement; for a bad one, error_r says why.
std::optional<LocalAddress> account_key(std::string_view address, std::string &error_r)
{
	std::string error;
	std::optional<LocalAddress> key = parse_local(address, error);
	if (!key)
		error_r = "invalid address: " + error;
	return key;
}

// An alias source: local@domain, or @domain for the catch-all (local empty).
struct AliasSource {
	LocalAddress address;
	bool catchall = false;
};

std::optional<AliasSource> parse_source(std::string_view source, std::string &error_r)
{
	if (!source.empty() && source.front() == '@') {
		std::string_view domain = source.substr(1);
		if (!is_valid_domain(domain, true)) {
			error_r = "invalid domain";
			return std::nullopt;
		}
		return AliasSource{{{}, canonical_domain(domain)}, true};
	}
	std::optional<LocalAddress> address = parse_local(source, error_r);
	if (!address)
		return std::nullopt;
	return AliasSource{std::move(*address), false};
}

// A forward target, in any domain, rendered canonically (domain lowercased).
std::optional<std::string> parse_target(std::string_view target, std::string &error_r)
{
	ParseOptions options;
	options.allow_utf8 = true;
	std::optional<Mailbox> mailbox = parse_mailbox(target, options, error_r);
	if (!mailbox)
		return std::nullopt;
	mailbox->domain = canonical_domain(mailbox->domain);
	return to_string(*mailbox);
}

// Hash formats (PHC, crypt) are printable ASCII without spaces; anything
// else is a caller's mistake, not a hash.
bool valid_password_hash(std::string_view hash)
{
	if (hash.empty() || hash.size() > kMaxPasswordHash)
		return false;
	for (unsigned char c : hash)
		if (c <= ' ' || c >= 0x7f)
			return false;
	return true;
}

bool valid_setting_key(std::string_view key)
{
	if (key.empty() || key.size() > kMaxSettingKey)
		return false;
	for (unsigned char c : key)
		if (c <= ' ' || c >= 0x7f)
			return false;
	return true;
}

// The id of a local domain: Row (id_r set), Done (none) or Error.
Step find_domain(sqlite3 *db, std::string_view domain, int64_t &id_r, std::string &error_r)
{
	Statement q(db, "SELECT id FROM domains WHERE name = ?1", error_r);
	q.text(domain);
	Step step = q.step();
	if (step == Step::Row)
		id_r = q.column_int(0);
	return step;
}

// After an UPDATE or DELETE of one address that changed no row: which of
// the two reasons it was.
DbStatus missing(sqlite3 *db, std::string_view domain, std::string &error_r)
{
	int64_t id = 0;
	switch (find_domain(db, domain, id, error_r)) {
	case Step::Row:
		return DbStatus::NotFound;
	case Step::Done:
		return DbStatus::NoSuchDomain;
	case Step::Duplicate:
	case Step::Error:
		break;
	}
	return DbStatus::Error;
}

// The status of one UPDATE or DELETE of the address in `domain`.
DbStatus changed_one(sqlite3 *db, Statement &q, std::string_view domain, std::string &error_r)
{
	if (q.step() != Step::Done)
		return DbStatus::Error;
	if (sqlite3_changes(db) == 0)
		return missing(db, domain, error_r);
	return DbStatus::Ok;
}

// The status of an INSERT that selects the domain's id: no row inserted
// means no such domain.
DbStatus inserted(sqlite3 *db, Step step)
{
	switch (step) {
	case Step::Done:
		return sqlite3_changes(db) == 0 ? DbStatus::NoSuchDomain : DbStatus::Ok;
	case Step::Duplicate:
		return DbStatus::Exists;
	case Step::Row:
	case Step::Error:
		break;
	}
	return DbStatus::Error;
}

AccountRecord account_from_row(Statement &q)
{
	AccountRecord r;
	r.address = render(q.column_text(1), q.column_text(0));
	r.password_hash = q.column_text(2);
	r.enabled = q.column_int(3) != 0;
	r.quota_bytes = static_cast<uint64_t>(q.column_int(4));
	r.created = q.column_int(5);
	r.changed = q.column_int(6);
	return r;
}

// The columns account_from_row reads, in its order.
constexpr const char *kSelectAccount =
    "SELECT d.name, a.local, a.password_hash, a.enabled, a.quota_bytes, a.created, a.changed "
    "FROM accounts a JOIN domains d ON d.id = a.domain_id ";

} // namespace

std::string_view to_string(DbStatus status)
{
	switch (status) {
	case DbStatus::Ok:
		return "ok";
	case DbStatus::NotFound:
		return "not found";
	case DbStatus::Exists:
		return "already exists";
	case DbStatus::NoSuchDomain:
		return "no such local domain";
	case DbStatus::DomainNotEmpty:
		return "domain not empty";
	case DbStatus::Invalid:
		return "invalid";
	case DbStatus::Error:
		return "database error";
	}
	return "?";
}

std::unique_ptr<AccountDb> AccountDb::open(const std::string &path, bool create, std::string &error_r)
{
	if (create) {
		// Made here rather than by SQLite so that it is 0600 whatever the
		// umask; SQLite gives its -wal and -shm files the database's mode.
		UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
		if (!fd) {
			error_r = path + ": " + std::strerror(errno);
			return nullptr;
		}
	}
	sqlite3 *raw = nullptr;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
	int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
	// Owns the handle from here, even a failed one (sqlite3_open_v2 may
	// allocate it anyway).
	std::unique_ptr<AccountDb> db(new AccountDb(raw));
	if (rc != SQLITE_OK) {
		error_r = path + ": " + (raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc));
		return nullptr;
	}
	std::string error;
	if (!configure(raw, error) || !migrate(raw, error)) {
		error_r = path + ": " + error;
		return nullptr;
	}
	return db;
}

AccountDb::~AccountDb()
{
	// Every Statement is scoped to one call, so nothing is left to finalize.
	sqlite3_close(db_);
}

uint64_t AccountDb::data_version()
{
	last_error_.clear();
	return static_cast<uint64_t>(pragma_int(db_, "PRAGMA data_version", last_error_).value_or(0));
}

int AccountDb::schema_version()
{
	last_error_.clear();
	return static_cast<int>(pragma_int(db_, "PRAGMA user_version", last_error_).value_or(-1));
}

DbStatus AccountDb::add_domain(std::string_view domain)
{
	last_error_.clear();
	if (!is_valid_domain(domain, true))
		return invalid(last_error_, "invalid domain");
	Statement q(db_, "INSERT INTO domains (name, created) VALUES (?1, ?2)", last_error_);
	q.text(canonical_domain(domain)).integer(now());
	switch (q.step()) {
	case Step::Done:
		return DbStatus::Ok;
	case Step::Duplicate:
		return DbStatus::Exists;
	case Step::Row:
	case Step::Error:
		break;
	}
	return DbStatus::Error;
}

DbStatus AccountDb::delete_domain(std::string_view domain, bool force)
{
	last_error_.clear();
	if (!is_valid_domain(domain, true))
		return invalid(last_error_, "invalid domain");
	Transaction tx(db_, last_error_);
	if (!tx.active())
		return DbStatus::Error;
	int64_t id = 0;
	switch (find_domain(db_, canonical_domain(domain), id, last_error_)) {
	case Step::Row:
		break;
	case Step::Done:
		return DbStatus::NotFound;
	case Step::Duplicate:
	case Step::Error:
		return DbStatus::Error;
	}
	if (!force) {
		Statement q(db_,
		    "SELECT EXISTS (SELECT 1 FROM accounts WHERE domain_id = ?1) OR "
		    "EXISTS (SELECT 1 FROM aliases WHERE domain_id = ?1) OR "
		    "EXISTS (SELECT 1 FROM catchalls WHERE domain_id = ?1)",
		    last_error_);
		q.integer(id);
		if (q.step() != Step::Row)
			return DbStatus::Error;
		if (q.column_int(0) != 0)
			return DbStatus::DomainNotEmpty;
	}
	{
		Statement q(db_, "DELETE FROM domains WHERE id = ?1", last_error_);
		q.integer(id);
		if (q.step() != Step::Done)
			return DbStatus::Error;
	}
	return tx.commit() ? DbStatus::Ok : DbStatus::Error;
}

std::vector<std::string> AccountDb::list_domains()
{
	last_error_.clear();
	std::vector<std::string> domains;
	Statement q(db_, "SELECT name FROM domains ORDER BY name", last_error_);
	while (q.step() == Step::Row)
		domains.push_back(q.column_text(0));
	return domains;
}

bool AccountDb::is_local_domain(std::string_view domain)
{
	last_error_.clear();
	if (!is_valid_domain(domain, true))
		return false;
	int64_t id = 0;
	return find_domain(db_, canonical_domain(domain), id, last_error_) == Step::Row;
}

DbStatus AccountDb::add_account(std::string_view address, std::string_view password_hash)
{
	last_error_.clear();
	std::optional<LocalAddress> key = account_key(address, last_error_);
	if (!key)
		return DbStatus::Invalid;
	if (!valid_password_hash(password_hash))
		return invalid(last_error_, "invalid password hash");
	Statement q(db_,
	    "INSERT INTO accounts (domain_id, local, password_hash, created, changed) "
	    "SELECT id, ?2, ?3, ?4, ?4 FROM domains WHERE name = ?1",
	    last_error_);
	q.text(key->domain).text(key->local).text(password_hash).integer(now());
	return inserted(db_, q.step());
}

DbStatus AccountDb::delete_account(std::string_view address)
{
	last_error_.clear();
	std::optional<LocalAddress> key = account_key(address, last_error_);
	if (!key)
		return DbStatus::Invalid;
	Statement q(db_,
	    "DELETE FROM accounts WHERE domain_id = (SELECT id FROM domains WHERE name = ?1) "
	    "AND local = ?2 COLLATE NOCASE",
	    last_error_);
	q.text(key->domain).text(key->local);
	return changed_one(db_, q, key->domain, last_error_);
}

DbStatus AccountDb::set_password(std::string_view address, std::string_view password_hash)
{
	last_error_.clear();
	std::optional<LocalAddress> key = account_key(address, last_error_);
	if (!key)
		return DbStatus::Invalid;
	if (!valid_password_hash(password_hash))
		return invalid(last_error_, "invalid password hash");
	Statement q(db_,
	    "UPDATE accounts SET password_hash = ?3, changed = ?4 "
	    "WHERE domain_id = (SELECT id FROM domains WHERE name = ?1) AND local = ?2 COLLATE NOCASE",
	    last_error_);
	q.text(key->domain).text(key->local).text(password_hash).integer(now());
	return changed_one(db_, q, key->domain, last_error_);
}

DbStatus AccountDb::set_enabled(std::string_view address, bool enabled)
{
	last_error_.clear();
	std::optional<LocalAddress> key = account_key(address, last_error_);
	if (!key)
		return DbStatus::Invalid;
	Statement q(db_,
	    "UPDATE accounts SET enabled = ?3, changed = ?4 "
	    "WHERE domain_id = (SELECT id FROM domains WHERE name = ?1) AND local = ?2 COLLATE NOCASE",
	    last_error_);
	q.text(key->domain).text(key->local).integer(enabled ? 1 : 0).integer(now());
	return changed_one(db_, q, key->domain, last_error_);
}

std::optional<AccountRecord> AccountDb::find_account(std::string_view address, const AccountsPolicy &policy)
{
	last_error_.clear();
	std::string error;
	std::optional<LocalAddress> key = parse_local(address, error);
	if (!key)
		return std::nullopt;
	// The domain column compares NOCASE by declaration; the local part
	// NOCASE or, for a case-sensitive policy, BINARY (its declared default).
	std::string sql = std::string(kSelectAccount) + "WHERE d.name = ?1 AND a.local = ?2" +
	    (policy.local_part_case_sensitive ? "" : " COLLATE NOCASE");
	Statement q(db_, sql, last_error_);
	q.text(key->domain).text(key->local);
	if (q.step() != Step::Row)
		return std::nullopt;
	AccountRecord record = account_from_row(q);
	if (!q.ok())
		return std::nullopt;
	return record;
}

std::vector<AccountRecord> AccountDb::list_accounts(std::string_view domain)
{
	last_error_.clear();
	std::vector<AccountRecord> accounts;
	if (!domain.empty() && !is_valid_domain(domain, true))
		return accounts;
	std::string sql = std::string(kSelectAccount) +
	    "WHERE ?1 IS NULL OR d.name = ?1 ORDER BY d.name, a.local COLLATE NOCASE, a.local";
	Statement q(db_, sql, last_error_);
	q.text_or_null(canonical_domain(domain));
	while (q.step() == Step::Row)
		accounts.push_back(account_from_row(q));
	return accounts;
}

DbStatus AccountDb::add_alias(std::string_view source, std::string_view target)
{
	last_error_.clear();
	std::string error;
	std::optional<AliasSource> from = parse_source(source, error);
	if (!from)
		return invalid(last_error_, "invalid alias source: " + error);
	std::optional<std::string> to = parse_target(target, error);
	if (!to)
		return invalid(last_error_, "invalid alias target: " + error);
	Transaction tx(db_, last_error_);
	if (!tx.active())
		return DbStatus::Error;
	int64_t domain_id = 0;
	switch (find_domain(db_, from->address.domain, domain_id, last_error_)) {
	case Step::Row:
		break;
	case Step::Done:
		return DbStatus::NoSuchDomain;
	case Step::Duplicate:
	case Step::Error:
		return DbStatus::Error;
	}
	DbStatus status;
	if (from->catchall) {
		Statement q(db_, "INSERT INTO catchalls (domain_id, target, created) VALUES (?1, ?2, ?3)", last_error_);
		q.integer(domain_id).text(*to).integer(now());
		status = inserted(db_, q.step());
	} else {
		// A new target joins the source as already spelled, so that a
		// source has one spelling (sources differing only in case are
		// the same source).
		std::string local = from->address.local;
		{
			Statement q(db_, "SELECT local FROM aliases WHERE domain_id = ?1 AND local = ?2 COLLATE NOCASE LIMIT 1",
			    last_error_);
			q.integer(domain_id).text(local);
			Step step = q.step();
			if (step == Step::Row)
				local = q.column_text(0);
			if (step != Step::Row && step != Step::Done)
				return DbStatus::Error;
			if (!q.ok())
				return DbStatus::Error;
		}
		Statement q(db_, "INSERT INTO aliases (domain_id, local, target, created) VALUES (?1, ?2, ?3, ?4)",
		    last_error_);
		q.integer(domain_id).text(local).text(*to).integer(now());
		status = inserted(db_, q.step());
	}
	if (status != DbStatus::Ok)
		return status;
	return tx.commit() ? DbStatus::Ok : DbStatus::Error;
}

DbStatus AccountDb::delete_alias(std::string_view source, std::string_view target)
{
	last_error_.clear();
	std::string error;
	std::optional<AliasSource> from = parse_source(source, error);
	if (!from)
		return invalid(last_error_, "invalid alias source: " + error);
	std::string to;
	if (!target.empty()) {
		std::optional<std::string> parsed = parse_target(target, error);
		if (!parsed)
			return invalid(last_error_, "invalid alias target: " + error);
		to = std::move(*parsed);
	}
	if (from->catchall) {
		Statement q(db_,
		    "DELETE FROM catchalls WHERE domain_id = (SELECT id FROM domains WHERE name = ?1) "
		    "AND (?2 IS NULL OR target = ?2 COLLATE NOCASE)",
		    last_error_);
		q.text(from->address.domain).text_or_null(to);
		return changed_one(db_, q, from->address.domain, last_error_);
	}
	Statement q(db_,
	    "DELETE FROM aliases WHERE domain_id = (SELECT id FROM domains WHERE name = ?1) "
	    "AND local = ?2 COLLATE NOCASE AND (?3 IS NULL OR target = ?3 COLLATE NOCASE)",
	    last_error_);
	q.text(from->address.domain).text(from->address.local).text_or_null(to);
	return changed_one(db_, q, from->address.domain, last_error_);
}

std::vector<std::string> AccountDb::alias_targets(std::string_view source, const AccountsPolicy &policy)
{
	last_error_.clear();
	std::vector<std::string> targets;
	std::string error;
	std::optional<AliasSource> from = parse_source(source, error);
	if (!from)
		return targets;
	std::string sql;
	if (from->catchall)
		sql = "SELECT c.target FROM catchalls c JOIN domains d ON d.id = c.domain_id WHERE d.name = ?1 "
		      "ORDER BY c.id";
	else
		sql = std::string("SELECT a.target FROM aliases a JOIN domains d ON d.id = a.domain_id "
		    "WHERE d.name = ?1 AND a.local = ?2") +
		    (policy.local_part_case_sensitive ? "" : " COLLATE NOCASE") + " ORDER BY a.id";
	Statement q(db_, sql, last_error_);
	q.text(from->address.domain);
	if (!from->catchall)
		q.text(from->address.local);
	while (q.step() == Step::Row)
		targets.push_back(q.column_text(0));
	return targets;
}

std::vector<AliasRecord> AccountDb::list_aliases(std::string_view domain)
{
	last_error_.clear();
	std::vector<AliasRecord> aliases;
	if (!domain.empty() && !is_valid_domain(domain, true))
		return aliases;
	// Catch-alls come as rows with a NULL local part, which sorts first.
	Statement q(db_,
	    "SELECT d.name, a.local, a.target FROM aliases a JOIN domains d ON d.id = a.domain_id "
	    "WHERE ?1 IS NULL OR d.name = ?1 "
	    "UNION ALL "
	    "SELECT d.name, NULL, c.target FROM catchalls c JOIN domains d ON d.id = c.domain_id "
	    "WHERE ?1 IS NULL OR d.name = ?1 "
	    "ORDER BY 1, 2 COLLATE NOCASE, 2, 3 COLLATE NOCASE, 3",
	    last_error_);
	q.text_or_null(canonical_domain(domain));
	while (q.step() == Step::Row) {
		std::string domain_name = q.column_text(0);
		std::string source = q.column_null(1) ? "@" + domain_name : render(q.column_text(1), domain_name);
		if (aliases.empty() || aliases.back().source != source)
			aliases.push_back({std::move(source), {}});
		aliases.back().targets.push_back(q.column_text(2));
	}
	return aliases;
}

std::optional<std::string> AccountDb::setting(std::string_view key)
{
	last_error_.clear();
	Statement q(db_, "SELECT value FROM settings WHERE key = ?1", last_error_);
	q.text(key);
	if (q.step() != Step::Row)
		return std::nullopt;
	std::string value = q.column_text(0);
	if (!q.ok())
		return std::nullopt;
	return value;
}

DbStatus AccountDb::set_setting(std::string_view key, std::string_view value)
{
	last_error_.clear();
	if (!valid_setting_key(key))
		return invalid(last_error_, "invalid setting name");
	if (value.find('\0') != std::string_view::npos)
		return invalid(last_error_, "NUL in setting value");
	Statement q(db_,
	    "INSERT INTO settings (key, value) VALUES (?1, ?2) "
	    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
	    last_error_);
	q.text(key).text(value);
	return q.step() == Step::Done ? DbStatus::Ok : DbStatus::Error;
}

} // namespace maild
