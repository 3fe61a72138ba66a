// The account database (lookup/db.h) on real files in a temporary
// directory: creation, migration and refusal of files it must not touch,
// then every status of every method, case rules, values that look like
// SQL, and change detection across connections. A second, raw SQLite
// connection looks behind the API where the API cannot show something
// (modes, tables, cascades) and breaks the schema to provoke errors.
#include "tests/unit/temp_dir.h"
#include "lookup/db.h"

#include <criterion/criterion.h>

#include <sqlite3.h>
#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace std::literals;
using maild::AccountDb;
using maild::AccountsPolicy;
using maild::DbStatus;

namespace fs = std::filesystem;

namespace {

using maild::test::TempDir;

const AccountsPolicy kInsensitive{};
const AccountsPolicy kSensitive{.local_part_case_sensitive = true};

constexpr std::string_view kHash = "$argon2id$v=19$m=65536,t=3,p=1$c29tZXNhbHQ$aGFzaA";

std::unique_ptr<AccountDb> open_or_fail(const std::string &path, bool create = true)
{
	std::string error;
	std::unique_ptr<AccountDb> db = AccountDb::open(path, create, error);
	cr_assert(db != nullptr, "open %s: %s", path.c_str(), error.c_str());
	return db;
}

// Opening must fail, with `want` in the message.
void expect_open_fails(const std::string &path, bool create, std::string_view want)
{
	std::string error;
	std::unique_ptr<AccountDb> db = AccountDb::open(path, create, error);
	cr_expect(db == nullptr, "open %s succeeded", path.c_str());
	cr_expect(error.find(want) != std::string::npos, "open %s: error \"%s\" lacks \"%s\"", path.c_str(),
	    error.c_str(), std::string(want).c_str());
}

void expect_status(DbStatus got, DbStatus want, const char *what, const AccountDb &db)
{
	cr_expect(got == want, "%s: got %s, want %s (last_error \"%s\")", what, std::string(maild::to_string(got)).c_str(),
	    std::string(maild::to_string(want)).c_str(), db.last_error().c_str());
}

#define EXPECT_STATUS(db, call, want) expect_status((db).call, (want), #call, (db))

// A raw connection to the same file, for what the API does not show.
class Raw {
public:
	explicit Raw(const std::string &path)
	{
		cr_assert(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) ==
		    SQLITE_OK, "raw open %s", path.c_str());
		sqlite3_busy_timeout(db_, 5000);
	}
	~Raw() { sqlite3_close(db_); }
	Raw(const Raw &) = delete;
	Raw &operator=(const Raw &) = delete;

	void exec(const char *sql)
	{
		char *message = nullptr;
		int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &message);
		cr_assert(rc == SQLITE_OK, "%s: %s", sql, message != nullptr ? message : "?");
	}
	// The first column of the first row as text ("" for no row).
	std::string text(const char *sql)
	{
		sqlite3_stmt *stmt = nullptr;
		cr_assert(sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db_));
		std::string r;
		if (sqlite3_step(stmt) == SQLITE_ROW) {
			auto p = reinterpret_cast<const char *>(sqlite3_column_text(stmt, 0));
			r.assign(p != nullptr ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt, 0)));
		}
		sqlite3_finalize(stmt);
		return r;
	}
	long number(const char *sql) { return std::stol(text(sql)); }

private:
	sqlite3 *db_ = nullptr;
};

maild::AccountRecord record_or_fail(AccountDb &db, std::string_view address, const AccountsPolicy &policy)
{
	std::optional<maild::AccountRecord> r = db.find_account(address, policy);
	cr_assert(r.has_value(), "no account %s (%s)", std::string(address).c_str(), db.last_error().c_str());
	return *r;
}

std::string join(const std::vector<std::string> &v)
{
	std::string r = "[";
	for (const std::string &s : v)
		r += (r.size() > 1 ? ", " : "") + s;
	return r + "]";
}

void expect_strings(const std::vector<std::string> &got, const std::vector<std::string> &want, const char *what)
{
	cr_expect(got == want, "%s: got %s, want %s", what, join(got).c_str(), join(want).c_str());
}

std::string describe(const std::vector<maild::AliasRecord> &aliases)
{
	std::string r;
	for (const auto &a : aliases)
		r += a.source + " -> " + join(a.targets) + "; ";
	return r;
}

// A database with example.org and one account, alice@example.org.
struct Fixture {
	TempDir dir;
	std::string path = dir / "accounts.db";
	std::unique_ptr<AccountDb> db = open_or_fail(path);
	Fixture()
	{
		cr_assert(db->add_domain("example.org") == DbStatus::Ok);
		cr_assert(db->add_account("alice@example.org", kHash) == DbStatus::Ok);
	}
};

} // namespace

// ---- opening and migrating

Test(open, creates_v1_with_mode_0600_in_wal_mode)
{
	TempDir dir;
	std::string path = dir / "accounts.db";
	// A umask that would leave the file world-readable must not matter.
	mode_t old_umask = umask(0);
	std::unique_ptr<AccountDb> db = open_or_fail(path);
	cr_assert(db->add_domain("example.org") == DbStatus::Ok);
	umask(old_umask);

	struct stat st;
	cr_assert(stat(path.c_str(), &st) == 0);
	cr_expect((st.st_mode & 07777) == 0600, "mode %o, want 600", st.st_mode & 07777);
	cr_assert(stat((path + "-wal").c_str(), &st) == 0, "no -wal file: not in WAL mode?");
	cr_expect((st.st_mode & 07777) == 0600, "-wal mode %o, want 600", st.st_mode & 07777);
	cr_expect_eq(db->schema_version(), maild::kSchemaVersion);
	cr_expect_eq(maild::kSchemaVersion, 1);

	Raw raw(path);
	cr_expect_eq(raw.text("PRAGMA journal_mode"), "wal");
	cr_expect_eq(raw.number("PRAGMA user_version"), 1);
	for (const char *table : {"domains", "accounts", "aliases", "catchalls", "settings"}) {
		std::string sql = "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = '"s + table + "'";
		cr_expect_eq(raw.number(sql.c_str()), 1, "table %s missing", table);
	}
}

Test(open, missing_file_without_create_fails)
{
	TempDir dir;
	std::string path = dir / "none.db";
	expect_open_fails(path, false, path);
	cr_expect(!fs::exists(path), "open without create made the file");
}

Test(open, reopening_keeps_data_and_version)
{
	TempDir dir;
	std::string path = dir / "accounts.db";
	{
		std::unique_ptr<AccountDb> db = open_or_fail(path);
		cr_assert(db->add_domain("example.org") == DbStatus::Ok);
		cr_assert(db->add_account("alice@example.org", kHash) == DbStatus::Ok);
		cr_assert(db->set_setting("motd", "hello") == DbStatus::Ok);
	}
	for (bool create : {false, true}) {
		std::unique_ptr<AccountDb> db = open_or_fail(path, create);
		cr_expect_eq(db->schema_version(), 1);
		std::optional<maild::AccountRecord> alice = db->find_account("alice@example.org", kInsensitive);
		cr_expect(alice.has_value() && alice->password_hash == kHash, "account lost on reopen (create %d)", create);
		cr_expect(db->setting("motd") == "hello"s);
	}
}

Test(open, migrates_an_empty_version_0_file)
{
	TempDir dir;
	std::string path = dir / "accounts.db";
	{
		std::ofstream touch(path);
	}
	std::unique_ptr<AccountDb> db = open_or_fail(path, false);
	cr_expect_eq(db->schema_version(), 1);
	cr_expect_eq(db->add_domain("example.org"), DbStatus::Ok);
}

Test(open, refuses_a_newer_schema_and_leaves_it_alone)
{
	TempDir dir;
	std::string path = dir / "accounts.db";
	{
		Raw raw(path);
		raw.exec("CREATE TABLE future (x); PRAGMA user_version = 99");
	}
	for (bool create : {false, true})
		expect_open_fails(path, create, "database schema version 99 is newer than this maild (1)");
	Raw raw(path);
	cr_expect_eq(raw.number("PRAGMA user_version"), 99);
	cr_expect_eq(raw.number("SELECT count(*) FROM sqlite_schema WHERE name = 'domains'"), 0);
}

Test(open, refuses_a_file_that_is_not_sqlite)
{
	TempDir dir;
	std::string path = dir / "accounts.db";
	{
		std::ofstream out(path);
		for (int i = 0; i < 100; i++)
			out << "alice@example.org:$argon2id$not-a-database\n";
	}
	for (bool create : {false, true})
		expect_open_fails(path, create, "file is not a database");
	std::ifstream in(path);
	std::string first;
	std::getline(in, first);
	cr_expect_eq(first, "alice@example.org:$argon2id$not-a-database", "the file was changed");
}

Test(open, a_directory_cannot_be_created_over)
{
	TempDir dir;
	expect_open_fails(dir / "", true, dir.path.string());
}

// ---- domains

Test(domains, add_list_and_case)
{
	TempDir dir;
	std::unique_ptr<AccountDb> db = open_or_fail(dir / "a.db");
	EXPECT_STATUS(*db, add_domain("Example.ORG"), DbStatus::Ok);
	EXPECT_STATUS(*db, add_domain("example.org"), DbStatus::Exists);
	EXPECT_STATUS(*db, add_domain("EXAMPLE.org"), DbStatus::Exists);
	EXPECT_STATUS(*db, add_domain("b\xc3\xbc" "cher.example"), DbStatus::Ok);
	EXPECT_STATUS(*db, add_domain("a.example"), DbStatus::Ok);
	expect_strings(db->list_domains(), {"a.example", "b\xc3\xbc" "cher.example", "example.org"}, "list_domains");
	cr_expect(db->last_error().empty());

	cr_expect(db->is_local_domain("example.org"));
	cr_expect(db->is_local_domain("EXAMPLE.ORG"));
	cr_expect(!db->is_local_domain("example.net"));
	cr_expect(!db->is_local_domain("example.org."));
	cr_expect(!db->is_local_domain(""));
	cr_expect(db->last_error().empty(), "a plain no is not an error: %s", db->last_error().c_str());
}

Test(domains, invalid_names)
{
	TempDir dir;
	std::unique_ptr<AccountDb> db = open_or_fail(dir / "a.db");
	for (std::string_view bad : {""sv, "bad..example"sv, "-a.example"sv, "[192.0.2.1]"sv, "a b.example"sv,
	         "ex\0ample.org"sv, "example.org\r\n"sv, "ex\xff.org"sv, "example.org'--"sv, "%.example"sv}) {
		DbStatus got = db->add_domain(bad);
		cr_expect(got == DbStatus::Invalid, "add_domain(%zu bytes) gave %s", bad.size(),
		    std::string(maild::to_string(got)).c_str());
		cr_expect(!db->last_error().empty(), "Invalid without a reason");
		cr_expect(db->delete_domain(bad, true) == DbStatus::Invalid);
	}
	cr_expect(db->list_domains().empty());
}

Test(domains, delete_statuses)
{
	Fixture f;
	AccountDb &db = *f.db;
	EXPECT_STATUS(db, delete_domain("example.net", false), DbStatus::NotFound);
	EXPECT_STATUS(db, delete_domain("example.net", true), DbStatus::NotFound);
	EXPECT_STATUS(db, delete_domain("example.org", false), DbStatus::DomainNotEmpty);
	cr_expect(db.is_local_domain("example.org"));

	// Any one kind of content keeps a domain.
	cr_assert(db.add_domain("aliases.example") == DbStatus::Ok);
	cr_assert(db.add_alias("a@aliases.example", "x@elsewhere.example") == DbStatus::Ok);
	EXPECT_STATUS(db, delete_domain("aliases.example", false), DbStatus::DomainNotEmpty);
	cr_assert(db.add_domain("catchall.example") == DbStatus::Ok);
	cr_assert(db.add_alias("@catchall.example", "x@elsewhere.example") == DbStatus::Ok);
	EXPECT_STATUS(db, delete_domain("catchall.example", false), DbStatus::DomainNotEmpty);

	cr_assert(db.add_domain("empty.example") == DbStatus::Ok);
	EXPECT_STATUS(db, delete_domain("EMPTY.example", false), DbStatus::Ok);
	cr_expect(!db.is_local_domain("empty.example"));
}

Test(domains, force_deletes_contents)
{
	Fixture f;
	AccountDb &db = *f.db;
	cr_assert(db.add_domain("example.net") == DbStatus::Ok);
	cr_assert(db.add_account("bob@example.net", kHash) == DbStatus::Ok);
	cr_assert(db.add_alias("sales@example.org", "alice@example.org") == DbStatus::Ok);
	cr_assert(db.add_alias("@example.org", "alice@example.org") == DbStatus::Ok);
	cr_assert(db.add_alias("bob2@example.net", "sales@example.org") == DbStatus::Ok);

	EXPECT_STATUS(db, delete_domain("Example.Org", true), DbStatus::Ok);
	cr_expect(!db.is_local_domain("example.org"));
	Raw raw(f.path);
	cr_expect_eq(raw.number("SELECT count(*) FROM accounts"), 1, "cascade should leave example.net's account");
	cr_expect_eq(raw.number("SELECT count(*) FROM aliases"), 1, "cascade should leave example.net's alias");
	cr_expect_eq(raw.number("SELECT count(*) FROM catchalls"), 0);
	cr_expect(db.find_account("alice@example.org", kInsensitive) == std::nullopt);
	cr_expect(db.find_account("bob@example.net", kInsensitive).has_value());

	// A domain added again starts empty.
	cr_assert(db.add_domain("example.org") == DbStatus::Ok);
	cr_expect(db.list_accounts("example.org").empty());
	cr_expect(db.alias_targets("@example.org", kInsensitive).empty());
}

// ---- accounts

Test(accounts, add_and_find)
{
	TempDir dir;
	std::unique_ptr<AccountDb> db = open_or_fail(dir / "a.db");
	cr_assert(db->add_domain("example.org") == DbStatus::Ok);
	int64_t before = static_cast<int64_t>(std::time(nullptr));
	EXPECT_STATUS(*db, add_account("Alice@EXAMPLE.org", kHash), DbStatus::Ok);
	int64_t after = static_cast<int64_t>(std::time(nullptr));

	std::optional<maild::AccountRecord> r = db->find_account("alice@example.org", kInsensitive);
	cr_assert(r.has_value(), "not found: %s", db->last_error().c_str());
	cr_expect_eq(r->address, "Alice@example.org", "local part as added, domain lowercased");
	cr_expect_eq(r->password_hash, kHash);
	cr_expect(r->enabled);
	cr_expect_eq(r->quota_bytes, 0u);
	cr_expect(r->created >= before && r->created <= after, "created %lld", static_cast<long long>(r->created));
	cr_expect_eq(r->changed, r->created);
}

Test(accounts, add_statuses)
{
	Fixture f;
	AccountDb &db = *f.db;
	EXPECT_STATUS(db, add_account("alice@example.org", kHash), DbStatus::Exists);
	EXPECT_STATUS(db, add_account("ALICE@Example.Org", kHash), DbStatus::Exists);
	EXPECT_STATUS(db, add_account("\"alice\"@example.org", kHash), DbStatus::Exists);
	EXPECT_STATUS(db, add_account("bob@example.net", kHash), DbStatus::NoSuchDomain);
	for (std::string_view bad : {""sv, "alice"sv, "alice@"sv, "@example.org"sv, "a..b@example.org"sv,
	         "alice@[192.0.2.1]"sv, "al\0ice@example.org"sv, "alice\r\n@example.org"sv,
	         "al\xffice@example.org"sv, "' OR 1=1 --@example.org"sv,
	         "a@example.org\0@evil.example"sv}) {
		DbStatus got = db.add_account(bad, kHash);
		cr_expect(got == DbStatus::Invalid, "add_account(%zu bytes) gave %s", bad.size(),
		    std::string(maild::to_string(got)).c_str());
		cr_expect(db.last_error().find("invalid address") == 0, "reason: %s", db.last_error().c_str());
	}
	for (std::string_view bad : {""sv, "has space"sv, "nul\0inside"sv, "line\nbreak"sv, "\xff"sv})
		EXPECT_STATUS(db, add_account("bob@example.org", bad), DbStatus::Invalid);
	EXPECT_STATUS(db, add_account("bob@example.org", std::string(1025, 'x')), DbStatus::Invalid);
	EXPECT_STATUS(db, add_account("bob@example.org", std::string(1024, 'x')), DbStatus::Ok);
	cr_expect_eq(db.list_accounts().size(), 2u);
}

Test(accounts, an_account_may_share_an_alias_address)
{
	Fixture f;
	cr_assert(f.db->add_alias("bob@example.org", "x@elsewhere.example") == DbStatus::Ok);
	EXPECT_STATUS(*f.db, add_account("bob@example.org", kHash), DbStatus::Ok);
	EXPECT_STATUS(*f.db, add_alias("alice@example.org", "x@elsewhere.example"), DbStatus::Ok);
}

Test(accounts, delete_statuses)
{
	Fixture f;
	AccountDb &db = *f.db;
	EXPECT_STATUS(db, delete_account("bob@example.org"), DbStatus::NotFound);
	EXPECT_STATUS(db, delete_account("alice@example.net"), DbStatus::NoSuchDomain);
	EXPECT_STATUS(db, delete_account("alice"), DbStatus::Invalid);
	EXPECT_STATUS(db, delete_account("ALICE@EXAMPLE.ORG"), DbStatus::Ok);
	cr_expect(db.find_account("alice@example.org", kInsensitive) == std::nullopt);
	EXPECT_STATUS(db, delete_account("alice@example.org"), DbStatus::NotFound);
}

Test(accounts, set_password_and_enabled)
{
	Fixture f;
	AccountDb &db = *f.db;
	Raw raw(f.path);
	raw.exec("UPDATE accounts SET created = 1000, changed = 1000");
	int64_t before = static_cast<int64_t>(std::time(nullptr));

	EXPECT_STATUS(db, set_password("Alice@Example.org", "$new$'hash\""), DbStatus::Ok);
	std::optional<maild::AccountRecord> r = db.find_account("alice@example.org", kInsensitive);
	cr_assert(r.has_value());
	cr_expect_eq(r->password_hash, "$new$'hash\"");
	cr_expect(r->changed >= before, "changed not updated: %lld", static_cast<long long>(r->changed));
	cr_expect_eq(r->created, 1000);

	raw.exec("UPDATE accounts SET changed = 1000");
	EXPECT_STATUS(db, set_enabled("alice@example.org", false), DbStatus::Ok);
	r = db.find_account("alice@example.org", kInsensitive);
	cr_assert(r.has_value(), "find_account must return disabled accounts too");
	cr_expect(!r->enabled);
	cr_expect(r->changed >= before);
	EXPECT_STATUS(db, set_enabled("alice@example.org", false), DbStatus::Ok);
	EXPECT_STATUS(db, set_enabled("alice@example.org", true), DbStatus::Ok);
	cr_expect(record_or_fail(db, "alice@example.org", kInsensitive).enabled);

	EXPECT_STATUS(db, set_password("bob@example.org", kHash), DbStatus::NotFound);
	EXPECT_STATUS(db, set_password("alice@example.net", kHash), DbStatus::NoSuchDomain);
	EXPECT_STATUS(db, set_password("alice@", kHash), DbStatus::Invalid);
	EXPECT_STATUS(db, set_password("alice@example.org", ""), DbStatus::Invalid);
	EXPECT_STATUS(db, set_password("alice@example.org", "a\0b"sv), DbStatus::Invalid);
	cr_expect_eq(record_or_fail(db, "alice@example.org", kInsensitive).password_hash, "$new$'hash\"");
	EXPECT_STATUS(db, set_enabled("bob@example.org", true), DbStatus::NotFound);
	EXPECT_STATUS(db, set_enabled("alice@example.net", true), DbStatus::NoSuchDomain);
	EXPECT_STATUS(db, set_enabled("alice@[192.0.2.1]", true), DbStatus::Invalid);
}

Test(accounts, lookup_case_rules)
{
	Fixture f;
	AccountDb &db = *f.db;
	cr_assert(db.add_account("Bob@example.org", kHash) == DbStatus::Ok);
	cr_assert(db.add_account("j\xc3\xb6rg@example.org", kHash) == DbStatus::Ok);
	// Non-ASCII letters are not folded: jÖrg is another local part.
	EXPECT_STATUS(db, add_account("j\xc3\x96rg@example.org", kHash), DbStatus::Ok);

	for (std::string_view a : {"bob@example.org"sv, "BOB@EXAMPLE.ORG"sv, "Bob@example.org"sv, "\"bob\"@example.org"sv}) {
		std::optional<maild::AccountRecord> r = db.find_account(a, kInsensitive);
		cr_expect(r.has_value() && r->address == "Bob@example.org", "insensitive %s", std::string(a).c_str());
	}
	cr_expect(db.find_account("Bob@EXAMPLE.ORG", kSensitive).has_value(), "domains never depend on case");
	cr_expect(db.find_account("bob@example.org", kSensitive) == std::nullopt);
	cr_expect(db.find_account("BOB@example.org", kSensitive) == std::nullopt);
	cr_expect(db.find_account("alice@example.org", kSensitive).has_value());
	cr_expect(db.find_account("Alice@example.org", kSensitive) == std::nullopt);
	cr_expect_eq(record_or_fail(db, "J\xc3\xb6rg@example.org", kInsensitive).address, "j\xc3\xb6rg@example.org");
	cr_expect_eq(record_or_fail(db, "j\xc3\x96rg@example.org", kInsensitive).address, "j\xc3\x96rg@example.org");

	cr_expect(db.find_account("nobody@example.org", kInsensitive) == std::nullopt);
	cr_expect(db.find_account("alice@example.net", kInsensitive) == std::nullopt);
	cr_expect(db.find_account("not an address", kInsensitive) == std::nullopt);
	cr_expect(db.last_error().empty(), "no match is not an error: %s", db.last_error().c_str());
}

Test(accounts, list_sorted_and_filtered)
{
	Fixture f;
	AccountDb &db = *f.db;
	cr_assert(db.add_domain("a.example") == DbStatus::Ok);
	cr_assert(db.add_account("Zed@example.org", kHash) == DbStatus::Ok);
	cr_assert(db.add_account("bob@example.org", kHash) == DbStatus::Ok);
	cr_assert(db.add_account("zz@a.example", kHash) == DbStatus::Ok);
	std::vector<std::string> got;
	for (const auto &r : db.list_accounts())
		got.push_back(r.address);
	expect_strings(got, {"zz@a.example", "alice@example.org", "bob@example.org", "Zed@example.org"}, "all");
	got.clear();
	for (const auto &r : db.list_accounts("EXAMPLE.org"))
		got.push_back(r.address);
	expect_strings(got, {"alice@example.org", "bob@example.org", "Zed@example.org"}, "example.org");
	cr_expect(db.list_accounts("example.net").empty());
	cr_expect(db.list_accounts("bad..domain").empty());
}

// Values that would change the meaning of a query built by pasting text
// are either refused by address validation or stored and found exactly.
Test(accounts, sql_looking_values_are_data)
{
	Fixture f;
	AccountDb &db = *f.db;
	const std::string quoted = "\"' OR 1=1 --\"@example.org";
	EXPECT_STATUS(db, add_account(quoted, kHash), DbStatus::Ok);
	EXPECT_STATUS(db, add_account("100%*@example.org", "$h$';DROP/**/TABLE/**/accounts;--"), DbStatus::Ok);
	EXPECT_STATUS(db, add_account("o'brien@example.org", "\"%*_"), DbStatus::Ok);
	EXPECT_STATUS(db, add_account("\"a\\\"b\"@example.org", kHash), DbStatus::Ok);

	std::optional<maild::AccountRecord> r = db.find_account(quoted, kInsensitive);
	cr_assert(r.has_value());
	cr_expect_eq(r->address, quoted);
	r = db.find_account("100%*@example.org", kInsensitive);
	cr_assert(r.has_value());
	cr_expect_eq(r->password_hash, "$h$';DROP/**/TABLE/**/accounts;--");
	cr_expect_eq(record_or_fail(db, "o'brien@example.org", kInsensitive).password_hash, "\"%*_");
	cr_expect_eq(record_or_fail(db, "\"a\\\"b\"@example.org", kInsensitive).address, "\"a\\\"b\"@example.org");
	// No pattern matching: % and * and _ are plain characters.
	cr_expect(db.find_account("100%@example.org", kInsensitive) == std::nullopt);
	cr_expect(db.find_account("100%%@example.org", kInsensitive) == std::nullopt);
	cr_expect(db.find_account("%@example.org", kInsensitive) == std::nullopt);
	cr_expect(db.find_account("*@example.org", kInsensitive) == std::nullopt);
	cr_expect(db.find_account("_@example.org", kInsensitive) == std::nullopt);
	cr_expect(db.find_account("\"' OR 1=1 --\"@example.org", kSensitive).has_value());
	cr_expect_eq(db.list_accounts().size(), 5u);
	EXPECT_STATUS(db, delete_account("%@example.org"), DbStatus::NotFound);
	cr_expect_eq(db.list_accounts().size(), 5u);
	// A NUL cannot cut an address short into another one.
	EXPECT_STATUS(db, delete_account("alice@example.org\0garbage"sv), DbStatus::Invalid);
	cr_expect(db.find_account("alice@example.org\0"sv, kInsensitive) == std::nullopt);
	cr_expect(db.find_account("alice@example.org", kInsensitive).has_value());
}

// ---- aliases

Test(aliases, add_and_targets)
{
	Fixture f;
	AccountDb &db = *f.db;
	EXPECT_STATUS(db, add_alias("sales@example.org", "alice@example.org"), DbStatus::Ok);
	EXPECT_STATUS(db, add_alias("sales@example.org", "Bob@Elsewhere.EXAMPLE"), DbStatus::Ok);
	EXPECT_STATUS(db, add_alias("sales@example.org", "carol@[192.0.2.1]"), DbStatus::Ok);
	EXPECT_STATUS(db, add_alias("sales@example.org", "\"x y\"@elsewhere.example"), DbStatus::Ok);
	expect_strings(db.alias_targets("sales@example.org", kInsensitive),
	    {"alice@example.org", "Bob@elsewhere.example", "carol@[192.0.2.1]", "\"x y\"@elsewhere.example"},
	    "targets in the order added, domain lowercased");
	expect_strings(db.alias_targets("SALES@EXAMPLE.ORG", kInsensitive),
	    db.alias_targets("sales@example.org", kInsensitive), "insensitive source");
	cr_expect(db.alias_targets("SALES@example.org", kSensitive).empty());
	cr_expect_eq(db.alias_targets("sales@EXAMPLE.org", kSensitive).size(), 4u);
	cr_expect(db.alias_targets("nobody@example.org", kInsensitive).empty());
	cr_expect(db.alias_targets("garbage", kInsensitive).empty());
	cr_expect(db.last_error().empty());
}

Test(aliases, add_statuses)
{
	Fixture f;
	AccountDb &db = *f.db;
	cr_assert(db.add_alias("sales@example.org", "alice@example.org") == DbStatus::Ok);
	EXPECT_STATUS(db, add_alias("sales@example.org", "alice@example.org"), DbStatus::Exists);
	EXPECT_STATUS(db, add_alias("SALES@example.org", "ALICE@EXAMPLE.ORG"), DbStatus::Exists);
	EXPECT_STATUS(db, add_alias("sales@example.net", "alice@example.org"), DbStatus::NoSuchDomain);
	EXPECT_STATUS(db, add_alias("@example.net", "alice@example.org"), DbStatus::NoSuchDomain);
	for (std::string_view bad : {""sv, "sales"sv, "@"sv, "@bad..example"sv, "sales@[192.0.2.1]"sv, "@[192.0.2.1]"sv,
	         "sa\0les@example.org"sv, "sales@example.org\n"sv})
		EXPECT_STATUS(db, add_alias(bad, "alice@example.org"), DbStatus::Invalid);
	for (std::string_view bad : {""sv, "alice"sv, "@example.org"sv, "al\0ice@example.org"sv, "al\xff@example.org"sv,
	         "' OR 1=1 --@x.example"sv})
		EXPECT_STATUS(db, add_alias("sales@example.org", bad), DbStatus::Invalid);
	// Self-reference is stored (resolution reports the loop).
	EXPECT_STATUS(db, add_alias("sales@example.org", "sales@example.org"), DbStatus::Ok);
}

Test(aliases, a_source_keeps_its_first_spelling)
{
	Fixture f;
	AccountDb &db = *f.db;
	cr_assert(db.add_alias("Sales@example.org", "a@elsewhere.example") == DbStatus::Ok);
	cr_assert(db.add_alias("sales@example.org", "b@elsewhere.example") == DbStatus::Ok);
	auto aliases = db.list_aliases();
	cr_assert_eq(aliases.size(), 1u, "%s", describe(aliases).c_str());
	cr_expect_eq(aliases[0].source, "Sales@example.org");
	expect_strings(aliases[0].targets, {"a@elsewhere.example", "b@elsewhere.example"}, "targets");
	cr_expect_eq(db.alias_targets("Sales@example.org", kSensitive).size(), 2u);
}

Test(aliases, catchall)
{
	Fixture f;
	AccountDb &db = *f.db;
	EXPECT_STATUS(db, add_alias("@Example.ORG", "alice@example.org"), DbStatus::Ok);
	EXPECT_STATUS(db, add_alias("@example.org", "ext@elsewhere.example"), DbStatus::Ok);
	EXPECT_STATUS(db, add_alias("@example.org", "Ext@ELSEWHERE.example"), DbStatus::Exists);
	expect_strings(db.alias_targets("@example.org", kInsensitive), {"alice@example.org", "ext@elsewhere.example"},
	    "catch-all targets");
	Raw raw(f.path);
	cr_expect_eq(raw.number("SELECT count(*) FROM catchalls"), 2);
	cr_expect_eq(raw.number("SELECT count(*) FROM aliases"), 0);

	EXPECT_STATUS(db, delete_alias("@example.org", "alice@example.org"), DbStatus::Ok);
	EXPECT_STATUS(db, delete_alias("@example.org", "alice@example.org"), DbStatus::NotFound);
	EXPECT_STATUS(db, delete_alias("@example.org", ""), DbStatus::Ok);
	EXPECT_STATUS(db, delete_alias("@example.org", ""), DbStatus::NotFound);
	EXPECT_STATUS(db, delete_alias("@example.net", ""), DbStatus::NoSuchDomain);
	cr_expect(db.alias_targets("@example.org", kInsensitive).empty());
}

Test(aliases, delete_statuses)
{
	Fixture f;
	AccountDb &db = *f.db;
	cr_assert(db.add_alias("sales@example.org", "alice@example.org") == DbStatus::Ok);
	cr_assert(db.add_alias("sales@example.org", "bob@elsewhere.example") == DbStatus::Ok);
	cr_assert(db.add_alias("info@example.org", "alice@example.org") == DbStatus::Ok);

	EXPECT_STATUS(db, delete_alias("sales@example.org", "carol@elsewhere.example"), DbStatus::NotFound);
	EXPECT_STATUS(db, delete_alias("nobody@example.org", ""), DbStatus::NotFound);
	EXPECT_STATUS(db, delete_alias("sales@example.net", ""), DbStatus::NoSuchDomain);
	EXPECT_STATUS(db, delete_alias("sales", ""), DbStatus::Invalid);
	EXPECT_STATUS(db, delete_alias("sales@example.org", "bob"), DbStatus::Invalid);
	EXPECT_STATUS(db, delete_alias("SALES@example.org", "BOB@elsewhere.EXAMPLE"), DbStatus::Ok);
	expect_strings(db.alias_targets("sales@example.org", kInsensitive), {"alice@example.org"}, "after one");
	cr_assert(db.add_alias("sales@example.org", "carol@elsewhere.example") == DbStatus::Ok);
	EXPECT_STATUS(db, delete_alias("sales@example.org", ""), DbStatus::Ok);
	cr_expect(db.alias_targets("sales@example.org", kInsensitive).empty());
	expect_strings(db.alias_targets("info@example.org", kInsensitive), {"alice@example.org"}, "other source kept");
}

Test(aliases, list_grouped_and_sorted)
{
	Fixture f;
	AccountDb &db = *f.db;
	cr_assert(db.add_domain("a.example") == DbStatus::Ok);
	cr_assert(db.add_alias("zeta@example.org", "b@x.example") == DbStatus::Ok);
	cr_assert(db.add_alias("Beta@example.org", "z@x.example") == DbStatus::Ok);
	cr_assert(db.add_alias("beta@example.org", "A@x.example") == DbStatus::Ok);
	cr_assert(db.add_alias("@example.org", "alice@example.org") == DbStatus::Ok);
	cr_assert(db.add_alias("q@a.example", "q@x.example") == DbStatus::Ok);
	cr_assert(db.add_alias("\"\"@example.org", "empty@x.example") == DbStatus::Ok);

	auto all = db.list_aliases();
	std::string got = describe(all);
	cr_expect_eq(got,
	    "q@a.example -> [q@x.example]; @example.org -> [alice@example.org]; \"\"@example.org -> [empty@x.example]; "
	    "Beta@example.org -> [A@x.example, z@x.example]; zeta@example.org -> [b@x.example]; ");
	cr_expect_eq(describe(db.list_aliases("A.EXAMPLE")), "q@a.example -> [q@x.example]; ");
	cr_expect(db.list_aliases("example.net").empty());
}

// ---- settings

Test(settings, get_set_and_values)
{
	TempDir dir;
	std::unique_ptr<AccountDb> db = open_or_fail(dir / "a.db");
	cr_expect(db->setting("motd") == std::nullopt);
	EXPECT_STATUS(*db, set_setting("motd", "hello"), DbStatus::Ok);
	EXPECT_STATUS(*db, set_setting("motd", "' OR 1=1 --; %*\"\r\n"), DbStatus::Ok);
	cr_expect(db->setting("motd") == "' OR 1=1 --; %*\"\r\n"s);
	EXPECT_STATUS(*db, set_setting("raw", "\xff\xfe bytes"), DbStatus::Ok);
	cr_expect(db->setting("raw") == "\xff\xfe bytes"s, "non-UTF-8 stored exactly");
	// A default string_view has a null data(), which SQLite would bind as
	// NULL.
	EXPECT_STATUS(*db, set_setting("empty", std::string_view{}), DbStatus::Ok);
	std::optional<std::string> empty = db->setting("empty");
	cr_expect(empty.has_value() && empty->empty(), "an empty value is a value, not NULL");
	EXPECT_STATUS(*db, set_setting("nul", "a\0b"sv), DbStatus::Invalid);
	cr_expect(db->setting("nul") == std::nullopt);
	for (std::string_view bad : {""sv, "has space"sv, "k\0"sv, "k\n"sv})
		EXPECT_STATUS(*db, set_setting(bad, "v"), DbStatus::Invalid);
	cr_expect(db->setting("MOTD") == std::nullopt, "keys are exact");
}

// ---- change detection

Test(connections, data_version_changes_on_another_connections_commit)
{
	TempDir dir;
	std::string path = dir / "a.db";
	std::unique_ptr<AccountDb> lookup = open_or_fail(path);
	std::unique_ptr<AccountDb> mailctl = open_or_fail(path, false);
	uint64_t v1 = lookup->data_version();
	cr_expect(lookup->last_error().empty());
	cr_expect_eq(lookup->data_version(), v1, "stable without commits");
	cr_assert(mailctl->add_domain("example.org") == DbStatus::Ok);
	uint64_t v2 = lookup->data_version();
	cr_expect_neq(v2, v1, "data_version did not change after another connection committed");
	cr_expect(lookup->is_local_domain("example.org"), "the commit is visible");
	cr_assert(mailctl->add_account("alice@example.org", kHash) == DbStatus::Ok);
	cr_expect_neq(lookup->data_version(), v2);
	// A failed change commits nothing.
	uint64_t v3 = lookup->data_version();
	cr_assert(mailctl->add_domain("EXAMPLE.org") == DbStatus::Exists);
	cr_expect_eq(lookup->data_version(), v3);
}

// ---- SQLite failures

// With the schema broken behind its back, every method reports Error with
// a reason, and every lookup comes back empty with last_error() set.
Test(errors, every_method_reports_sqlite_failures)
{
	Fixture f;
	AccountDb &db = *f.db;
	cr_assert(db.add_alias("sales@example.org", "alice@example.org") == DbStatus::Ok);
	{
		Raw raw(f.path);
		raw.exec("DROP TABLE accounts; DROP TABLE aliases; DROP TABLE catchalls; DROP TABLE settings");
	}
	auto expect_error = [&](DbStatus got, const char *what) {
		cr_expect(got == DbStatus::Error, "%s: got %s", what, std::string(maild::to_string(got)).c_str());
		cr_expect(db.last_error().find("no such table") != std::string::npos, "%s: last_error \"%s\"", what,
		    db.last_error().c_str());
	};
	expect_error(db.add_account("bob@example.org", kHash), "add_account");
	expect_error(db.delete_account("alice@example.org"), "delete_account");
	expect_error(db.set_password("alice@example.org", kHash), "set_password");
	expect_error(db.set_enabled("alice@example.org", false), "set_enabled");
	expect_error(db.add_alias("sales@example.org", "x@y.example"), "add_alias");
	expect_error(db.add_alias("@example.org", "x@y.example"), "add_alias catch-all");
	expect_error(db.delete_alias("sales@example.org", ""), "delete_alias");
	expect_error(db.delete_alias("@example.org", ""), "delete_alias catch-all");
	expect_error(db.delete_domain("example.org", false), "delete_domain");
	expect_error(db.set_setting("k", "v"), "set_setting");

	auto expect_failed_lookup = [&](bool empty, const char *what) {
		cr_expect(empty, "%s returned something", what);
		cr_expect(!db.last_error().empty(), "%s: no last_error", what);
	};
	expect_failed_lookup(!db.find_account("alice@example.org", kInsensitive), "find_account");
	expect_failed_lookup(db.list_accounts().empty(), "list_accounts");
	expect_failed_lookup(db.alias_targets("sales@example.org", kInsensitive).empty(), "alias_targets");
	expect_failed_lookup(db.alias_targets("@example.org", kInsensitive).empty(), "alias_targets catch-all");
	expect_failed_lookup(db.list_aliases().empty(), "list_aliases");
	expect_failed_lookup(!db.setting("k"), "setting");

	// What still exists still works, and a success clears the error.
	cr_expect(db.is_local_domain("example.org"));
	cr_expect(db.last_error().empty());
	{
		Raw raw(f.path);
		raw.exec("DROP TABLE domains");
	}
	expect_error(db.add_domain("example.net"), "add_domain");
	expect_failed_lookup(!db.is_local_domain("example.org"), "is_local_domain");
	expect_failed_lookup(db.list_domains().empty(), "list_domains");
}

Test(errors, invalid_input_is_not_an_error)
{
	Fixture f;
	EXPECT_STATUS(*f.db, add_account("x", kHash), DbStatus::Invalid);
	cr_expect(!f.db->last_error().empty(), "Invalid says why");
	cr_expect(f.db->find_account("x", kInsensitive) == std::nullopt);
	cr_expect(f.db->last_error().empty(), "a lookup of garbage is a plain no");
}
