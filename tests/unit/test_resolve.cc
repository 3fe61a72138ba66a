// Recipient resolution (lookup/resolve.h) over a real account database in a
// temporary directory: the order account, alias, subaddress, catch-all;
// alias chains, loops, depth and dangling targets; deduplication; disabled
// accounts; case rules; and database failures, which must never turn into
// a permanent answer.
#include "lookup/resolve.h"

#include <criterion/criterion.h>

#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

using namespace std::literals;
using maild::AccountDb;
using maild::AccountsPolicy;
using maild::DbStatus;
using maild::Resolution;
using maild::ResolveKind;

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kHash = "$argon2id$v=19$m=65536,t=3,p=1$c29tZXNhbHQ$aGFzaA";

// A database in a directory of its own, removed at the end, with two local
// domains: example.org and example.net.
struct Fixture {
	fs::path dir;
	std::string path;
	std::unique_ptr<AccountDb> db;
	AccountsPolicy policy;

	Fixture()
	{
		char tmpl[] = "/tmp/maild-test-resolve.XXXXXX";
		cr_assert(mkdtemp(tmpl) != nullptr, "mkdtemp failed");
		dir = tmpl;
		path = (dir / "accounts.db").string();
		std::string error;
		db = AccountDb::open(path, true, error);
		cr_assert(db != nullptr, "open: %s", error.c_str());
		domain("example.org");
		domain("example.net");
	}
	~Fixture()
	{
		db.reset();
		std::error_code ec;
		fs::remove_all(dir, ec);
	}
	Fixture(const Fixture &) = delete;
	Fixture &operator=(const Fixture &) = delete;

	void domain(std::string_view name)
	{
		cr_assert(db->add_domain(name) == DbStatus::Ok, "add_domain %s: %s", std::string(name).c_str(),
		    db->last_error().c_str());
	}
	void account(std::string_view address, bool enabled = true)
	{
		cr_assert(db->add_account(address, kHash) == DbStatus::Ok, "add_account %s: %s",
		    std::string(address).c_str(), db->last_error().c_str());
		if (!enabled)
			cr_assert(db->set_enabled(address, false) == DbStatus::Ok);
	}
	void alias(std::string_view source, std::initializer_list<std::string_view> targets)
	{
		for (std::string_view target : targets)
			cr_assert(db->add_alias(source, target) == DbStatus::Ok, "add_alias %s %s: %s",
			    std::string(source).c_str(), std::string(target).c_str(), db->last_error().c_str());
	}
	Resolution resolve(std::string_view address) { return maild::resolve_recipient(*db, policy, address); }
};

std::string join(const std::vector<std::string> &v)
{
	std::string r = "[";
	for (const std::string &s : v)
		r += (r.size() > 1 ? ", " : "") + s;
	return r + "]";
}

std::string describe(const Resolution &r)
{
	return std::string(maild::to_string(r.kind)) + " local " + join(r.local_accounts) + " external " +
	    join(r.external) + (r.error.empty() ? "" : " error \"" + r.error + "\"");
}

void expect_deliver(Fixture &f, std::string_view address, const std::vector<std::string> &local,
    const std::vector<std::string> &external = {})
{
	Resolution r = f.resolve(address);
	cr_expect(r.kind == ResolveKind::Deliver && r.local_accounts == local && r.external == external && r.error.empty(),
	    "%s: got %s, want deliver local %s external %s", std::string(address).c_str(), describe(r).c_str(),
	    join(local).c_str(), join(external).c_str());
}

void expect_kind(Fixture &f, std::string_view address, ResolveKind kind)
{
	Resolution r = f.resolve(address);
	cr_expect(r.kind == kind && r.local_accounts.empty() && r.external.empty(), "%s: got %s, want %s",
	    std::string(address).c_str(), describe(r).c_str(), std::string(maild::to_string(kind)).c_str());
}

// A temporary failure with exactly this error, and nothing to deliver to.
void expect_tempfail(Fixture &f, std::string_view address, std::string_view error)
{
	Resolution r = f.resolve(address);
	cr_expect(r.kind == ResolveKind::TempFail && r.error == error && r.local_accounts.empty() && r.external.empty(),
	    "%s: got %s, want tempfail \"%s\"", std::string(address).c_str(), describe(r).c_str(),
	    std::string(error).c_str());
}

} // namespace

// ---- the basic answers

Test(resolve, account)
{
	Fixture f;
	f.account("alice@example.org");
	expect_deliver(f, "alice@example.org", {"alice@example.org"});
	expect_deliver(f, "\"alice\"@example.org", {"alice@example.org"});
}

Test(resolve, unknown_user_and_foreign_domains)
{
	Fixture f;
	f.account("alice@example.org");
	expect_kind(f, "bob@example.org", ResolveKind::UnknownUser);
	cr_expect(f.resolve("bob@example.org").error.empty());
	expect_kind(f, "alice@example.com", ResolveKind::NotLocalDomain);
	expect_kind(f, "alice@sub.example.org", ResolveKind::NotLocalDomain);
	expect_kind(f, "alice@[192.0.2.1]", ResolveKind::NotLocalDomain);
	expect_kind(f, "alice@[IPv6:2001:db8::1]", ResolveKind::NotLocalDomain);
}

Test(resolve, invalid_address)
{
	Fixture f;
	for (std::string_view bad : {""sv, "alice"sv, "alice@"sv, "al ice@example.org"sv, "alice@example.org\r\n"sv,
	         "al\0ice@example.org"sv}) {
		Resolution r = f.resolve(bad);
		cr_expect(r.kind == ResolveKind::UnknownUser && r.error.find("invalid address: ") == 0,
		    "%zu-byte address: got %s", bad.size(), describe(r).c_str());
	}
}

// ---- aliases

Test(resolve, alias_to_account_and_chain)
{
	Fixture f;
	f.account("alice@example.org");
	f.alias("sales@example.org", {"alice@example.org"});
	f.alias("a@example.org", {"b@example.org"});
	f.alias("b@example.org", {"c@example.net"});
	f.alias("c@example.net", {"alice@example.org"});
	expect_deliver(f, "sales@example.org", {"alice@example.org"});
	expect_deliver(f, "a@example.org", {"alice@example.org"});
}

Test(resolve, external_and_mixed_targets)
{
	Fixture f;
	f.account("alice@example.org");
	f.account("bob@example.net");
	f.alias("fwd@example.org", {"someone@gmail.example", "other@elsewhere.example"});
	f.alias("team@example.org", {"alice@example.org", "ext@out.example", "bob@example.net", "x@[192.0.2.1]"});
	expect_deliver(f, "fwd@example.org", {}, {"someone@gmail.example", "other@elsewhere.example"});
	expect_deliver(f, "team@example.org", {"alice@example.org", "bob@example.net"},
	    {"ext@out.example", "x@[192.0.2.1]"});
}

Test(resolve, an_account_wins_over_an_alias_of_the_same_address)
{
	Fixture f;
	f.account("alice@example.org");
	f.alias("alice@example.org", {"thief@elsewhere.example"});
	expect_deliver(f, "alice@example.org", {"alice@example.org"});
}

Test(resolve, loops)
{
	Fixture f;
	f.alias("a@example.org", {"b@example.org"});
	f.alias("b@example.org", {"a@example.org"});
	expect_tempfail(f, "a@example.org", "alias loop: a@example.org -> b@example.org -> a@example.org");
	expect_tempfail(f, "B@example.org", "alias loop: B@example.org -> a@example.org -> b@example.org");

	f.alias("x@example.org", {"y@example.net"});
	f.alias("y@example.net", {"z@example.org"});
	f.alias("z@example.org", {"X@EXAMPLE.ORG"});
	expect_tempfail(f, "x@example.org", "alias loop: x@example.org -> y@example.net -> z@example.org -> X@example.org");

	f.alias("self@example.org", {"self@example.org"});
	expect_tempfail(f, "self@example.org", "alias loop: self@example.org -> self@example.org");

	// A loop behind a good target still fails the whole address: no
	// partial delivery.
	f.account("alice@example.org");
	f.alias("mixed@example.org", {"alice@example.org", "a@example.org"});
	expect_tempfail(f, "mixed@example.org",
	    "alias loop: mixed@example.org -> a@example.org -> b@example.org -> a@example.org");
}

Test(resolve, a_loop_through_a_subaddress)
{
	Fixture f;
	f.alias("alice@example.org", {"alice+archive@example.org"});
	expect_tempfail(f, "alice@example.org",
	    "alias loop: alice@example.org -> alice+archive@example.org -> alice@example.org");
}

Test(resolve, depth)
{
	Fixture f;
	f.account("end@example.org");
	// hop1 -> hop2 -> hop3 -> end: three hops.
	f.alias("hop1@example.org", {"hop2@example.org"});
	f.alias("hop2@example.org", {"hop3@example.org"});
	f.alias("hop3@example.org", {"end@example.org"});
	f.alias("far@example.org", {"hop1@example.org"});
	f.policy.max_alias_depth = 3;
	expect_deliver(f, "hop1@example.org", {"end@example.org"});
	expect_tempfail(f, "far@example.org", "alias chain longer than 3");
	f.policy.max_alias_depth = 4;
	expect_deliver(f, "far@example.org", {"end@example.org"});
	f.policy.max_alias_depth = 0;
	expect_deliver(f, "end@example.org", {"end@example.org"});
	expect_tempfail(f, "hop3@example.org", "alias chain longer than 0");
	// An external target is a hop too.
	f.policy.max_alias_depth = 1;
	f.alias("out@example.org", {"out@elsewhere.example"});
	expect_deliver(f, "out@example.org", {}, {"out@elsewhere.example"});
	f.alias("out2@example.org", {"out@example.org"});
	expect_tempfail(f, "out2@example.org", "alias chain longer than 1");
}

// An address reached again by a longer path is not expanded twice, but
// the longer chain still counts.
Test(resolve, depth_through_a_shared_address)
{
	Fixture f;
	f.account("end@example.org");
	f.alias("top@example.org", {"short@example.org", "long@example.org"});
	f.alias("short@example.org", {"shared@example.org"});
	f.alias("long@example.org", {"longer@example.org"});
	f.alias("longer@example.org", {"shared@example.org"});
	f.alias("shared@example.org", {"end@example.org"});
	f.policy.max_alias_depth = 4;
	expect_deliver(f, "top@example.org", {"end@example.org"});
	f.policy.max_alias_depth = 3;
	expect_tempfail(f, "top@example.org", "alias chain longer than 3");
}

Test(resolve, dangling)
{
	Fixture f;
	f.account("alice@example.org");
	f.alias("old@example.org", {"alice@example.org", "gone@example.org"});
	expect_tempfail(f, "old@example.org", "alias old@example.org points to unknown local address gone@example.org");
	f.alias("chain@example.net", {"old@example.org"});
	expect_tempfail(f, "chain@example.net", "alias old@example.org points to unknown local address gone@example.org");
	// Unknown in another local domain too.
	f.alias("cross@example.org", {"nobody@example.net"});
	expect_tempfail(f, "cross@example.org",
	    "alias cross@example.org points to unknown local address nobody@example.net");
}

Test(resolve, wide_fan_out_is_expanded_once_per_address)
{
	Fixture f;
	f.account("end@example.org");
	// Ten levels of two targets that both lead to the next level: 2^10
	// paths, eleven addresses.
	for (int level = 0; level < 10; level++) {
		std::string next = "l" + std::to_string(level + 1) + "@example.org";
		if (level == 9)
			next = "end@example.org";
		std::string here = "l" + std::to_string(level) + "@example.org";
		f.alias(here, {next, "t" + std::to_string(level + 1) + "@example.org"});
		if (level > 0)
			f.alias("t" + std::to_string(level) + "@example.org", {next});
	}
	f.alias("t10@example.org", {"end@example.org"});
	f.policy.max_alias_depth = 11;
	expect_deliver(f, "l0@example.org", {"end@example.org"});
}

// ---- catch-all

Test(resolve, catchall_precedence)
{
	Fixture f;
	f.account("alice@example.org");
	f.account("catcher@example.org");
	f.alias("sales@example.org", {"alice@example.org"});
	f.alias("@example.org", {"catcher@example.org"});
	expect_deliver(f, "alice@example.org", {"alice@example.org"});
	expect_deliver(f, "sales@example.org", {"alice@example.org"});
	expect_deliver(f, "whoever@example.org", {"catcher@example.org"});
	expect_deliver(f, "WHOEVER@EXAMPLE.ORG", {"catcher@example.org"});
	// Only its own domain.
	expect_kind(f, "whoever@example.net", ResolveKind::UnknownUser);
}

Test(resolve, catchall_targets)
{
	Fixture f;
	f.account("alice@example.org");
	f.alias("@example.org", {"all@elsewhere.example", "alice@example.org"});
	f.alias("@example.net", {"sales@example.net"});
	f.alias("sales@example.net", {"alice@example.org"});
	expect_deliver(f, "x@example.org", {"alice@example.org"}, {"all@elsewhere.example"});
	expect_deliver(f, "y@example.net", {"alice@example.org"});
}

Test(resolve, catchall_to_an_unknown_address_of_its_own_domain_loops)
{
	Fixture f;
	f.alias("@example.org", {"ghost@example.org"});
	expect_tempfail(f, "x@example.org",
	    "alias loop: x@example.org -> @example.org -> ghost@example.org -> @example.org");
	// A catch-all to a domain that is not ours is a plain forward.
	f.alias("@example.net", {"ghost@example.com"});
	expect_deliver(f, "x@example.net", {}, {"ghost@example.com"});
}

// ---- subaddressing

Test(resolve, subaddress)
{
	Fixture f;
	f.account("alice@example.org");
	f.account("bob@example.org");
	f.account("bob+tag@example.org");
	f.alias("alice+lists@example.org", {"lists@elsewhere.example"});
	f.alias("sales@example.org", {"alice@example.org"});
	expect_deliver(f, "alice+news@example.org", {"alice@example.org"});
	expect_deliver(f, "Alice+News@example.org", {"alice@example.org"});
	expect_deliver(f, "alice+@example.org", {"alice@example.org"});
	expect_deliver(f, "alice+a+b@example.org", {"alice@example.org"});
	expect_deliver(f, "bob+tag@example.org", {"bob+tag@example.org"});
	expect_deliver(f, "bob+other@example.org", {"bob@example.org"});
	expect_deliver(f, "alice+lists@example.org", {}, {"lists@elsewhere.example"});
	expect_deliver(f, "sales+q3@example.org", {"alice@example.org"});
	expect_kind(f, "+alice@example.org", ResolveKind::UnknownUser);
	expect_kind(f, "carol+x@example.org", ResolveKind::UnknownUser);

	f.policy.subaddress_separator = '\0';
	expect_kind(f, "alice+news@example.org", ResolveKind::UnknownUser);
	expect_deliver(f, "bob+tag@example.org", {"bob+tag@example.org"});

	f.policy.subaddress_separator = '-';
	expect_deliver(f, "alice-news@example.org", {"alice@example.org"});
	expect_kind(f, "alice+news@example.org", ResolveKind::UnknownUser);
}

Test(resolve, subaddress_comes_before_the_catchall)
{
	Fixture f;
	f.account("alice@example.org");
	f.account("catcher@example.org");
	f.alias("@example.org", {"catcher@example.org"});
	expect_deliver(f, "alice+news@example.org", {"alice@example.org"});
	expect_deliver(f, "carol+news@example.org", {"catcher@example.org"});
	f.policy.subaddress_separator = '\0';
	expect_deliver(f, "alice+news@example.org", {"catcher@example.org"});
}

Test(resolve, subaddressed_alias_targets)
{
	Fixture f;
	f.account("alice@example.org");
	f.alias("archive@example.org", {"alice+archive@example.org"});
	expect_deliver(f, "archive@example.org", {"alice@example.org"});
}

// ---- deduplication

Test(resolve, dedupe)
{
	Fixture f;
	f.account("alice@example.org");
	f.account("bob@example.org");
	f.alias("group@example.org", {"alice@example.org", "bob@example.org"});
	f.alias("team@example.org", {"alice@example.org", "group@example.org", "alice+x@example.org"});
	f.alias("Alice-Fans@example.org", {"ALICE@example.org"});
	f.alias("team@example.org", {"alice-fans@example.org"});
	expect_deliver(f, "team@example.org", {"alice@example.org", "bob@example.org"});

	// One alias cannot hold two targets that differ only in case, but
	// two aliases can.
	f.alias("ext@example.org", {"Ext@Out.example", "other@out.example", "fwd@example.org"});
	f.alias("fwd@example.org", {"ext@out.EXAMPLE", "other@OUT.example"});
	expect_deliver(f, "ext@example.org", {}, {"Ext@out.example", "other@out.example"});
	// With case-sensitive local parts, only the domain folds.
	f.policy.local_part_case_sensitive = true;
	expect_deliver(f, "ext@example.org", {}, {"Ext@out.example", "other@out.example", "ext@out.example"});
}

// ---- disabled accounts

Test(resolve, disabled)
{
	Fixture f;
	f.account("alice@example.org", false);
	f.account("bob@example.org");
	expect_kind(f, "alice@example.org", ResolveKind::Disabled);
	expect_kind(f, "alice+news@example.org", ResolveKind::Disabled);

	f.alias("team@example.org", {"alice@example.org", "bob@example.org"});
	expect_deliver(f, "team@example.org", {"bob@example.org"});
	f.alias("solo@example.org", {"alice@example.org"});
	expect_kind(f, "solo@example.org", ResolveKind::Disabled);
	f.alias("ext@example.org", {"alice@example.org", "x@elsewhere.example"});
	expect_deliver(f, "ext@example.org", {}, {"x@elsewhere.example"});
}

Test(resolve, a_disabled_account_keeps_the_catchall_out_but_not_its_alias)
{
	Fixture f;
	f.account("alice@example.org", false);
	f.account("catcher@example.org");
	f.account("successor@example.org");
	f.alias("@example.org", {"catcher@example.org"});
	expect_kind(f, "alice@example.org", ResolveKind::Disabled);
	f.alias("alice@example.org", {"successor@example.org"});
	expect_deliver(f, "alice@example.org", {"successor@example.org"});
	cr_assert(f.db->set_enabled("alice@example.org", true) == DbStatus::Ok);
	expect_deliver(f, "alice@example.org", {"alice@example.org"});
}

// ---- case rules

Test(resolve, case_insensitive_by_default)
{
	Fixture f;
	f.account("Alice@example.org");
	f.alias("Sales@example.org", {"ALICE@EXAMPLE.ORG"});
	expect_deliver(f, "alice@EXAMPLE.org", {"Alice@example.org"});
	expect_deliver(f, "SALES@example.org", {"Alice@example.org"});
	// ASCII folding only: non-ASCII letters are compared exactly.
	f.account("j\xc3\xb6rg@example.org");
	expect_deliver(f, "J\xc3\xb6rg@Example.Org", {"j\xc3\xb6rg@example.org"});
	expect_kind(f, "j\xc3\x96rg@example.org", ResolveKind::UnknownUser);
}

Test(resolve, case_sensitive_local_parts)
{
	Fixture f;
	f.policy.local_part_case_sensitive = true;
	f.account("Alice@example.org");
	f.alias("Sales@example.org", {"Alice@EXAMPLE.ORG"});
	f.alias("wrong@example.org", {"alice@example.org"});
	expect_deliver(f, "Alice@EXAMPLE.ORG", {"Alice@example.org"});
	expect_kind(f, "alice@example.org", ResolveKind::UnknownUser);
	expect_deliver(f, "Sales@Example.org", {"Alice@example.org"});
	expect_kind(f, "sales@example.org", ResolveKind::UnknownUser);
	expect_deliver(f, "Alice+x@example.org", {"Alice@example.org"});
	expect_tempfail(f, "wrong@example.org", "alias wrong@example.org points to unknown local address alice@example.org");
}

// ---- database failures

Test(resolve, database_errors_are_temporary)
{
	Fixture f;
	f.account("alice@example.org");
	f.alias("sales@example.org", {"alice@example.org"});
	auto break_schema = [&](const char *sql) {
		sqlite3 *raw = nullptr;
		cr_assert(sqlite3_open(f.path.c_str(), &raw) == SQLITE_OK);
		cr_assert(sqlite3_exec(raw, sql, nullptr, nullptr, nullptr) == SQLITE_OK, "%s", sqlite3_errmsg(raw));
		sqlite3_close(raw);
	};
	break_schema("DROP TABLE catchalls");
	expect_deliver(f, "alice@example.org", {"alice@example.org"});
	expect_tempfail(f, "nobody@example.org", "database error: no such table: catchalls");
	break_schema("DROP TABLE aliases");
	expect_tempfail(f, "sales@example.org", "database error: no such table: aliases");
	break_schema("DROP TABLE accounts");
	expect_tempfail(f, "alice@example.org", "database error: no such table: accounts");
	break_schema("DROP TABLE domains");
	expect_tempfail(f, "alice@example.org", "database error: no such table: domains");
	expect_tempfail(f, "alice@example.com", "database error: no such table: domains");
}

Test(resolve, kind_names)
{
	cr_expect_eq(maild::to_string(ResolveKind::Deliver), "deliver"sv);
	cr_expect_eq(maild::to_string(ResolveKind::TempFail), "temporary failure"sv);
}
