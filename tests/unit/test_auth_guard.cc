// The auth guard: address blocks and account delays over fixed windows, the
// success cache and its keys, and the bounds on memory, all on a fake clock
// (the guard takes the time as a parameter).
#include "lookup/auth_guard.h"

#include <criterion/criterion.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

using namespace std::literals;
using maild::AuthGuard;
using maild::AuthGuardLimits;

namespace {

// Seconds on the fake clock, from an arbitrary start.
AuthGuard::TimePoint at(int64_t s)
{
	return AuthGuard::TimePoint{} + 1000000s + std::chrono::seconds(s);
}

long long ms(std::chrono::milliseconds d)
{
	return static_cast<long long>(d.count());
}

std::string numbered(std::string_view prefix, unsigned n)
{
	return std::string(prefix) + std::to_string(n);
}

// Failures for `account` from `count` addresses of 198.51.100.0/24 (or
// from `address` if given), so that only the account limit comes into play.
void fail_account(AuthGuard &guard, std::string_view account, unsigned count, int64_t t)
{
	for (unsigned i = 0; i < count; i++)
		guard.record_failure(numbered("198.51.100.", i % 250), account, at(t));
}

} // namespace

Test(auth_guard, address_key)
{
	struct Case {
		std::string_view in;
		std::string_view want;
	};
	const Case cases[] = {
		{"192.0.2.1", "192.0.2.1"},
		{"255.255.255.255", "255.255.255.255"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:DB8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"::1", "::/64"},
		{"fe80::1", "fe80::/64"},
		// IPv4 clients of a dual-stack listener: not all one /64.
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"::ffff:198.51.100.7", "198.51.100.7"},
		// Not addresses inet_pton reads: as they are.
		{"fe80::1%eth0", "fe80::1%eth0"},
		{"[2001:db8::1]", "[2001:db8::1]"},
		{"192.0.2.1/24", "192.0.2.1/24"},
		{"192.0.2", "192.0.2"},
		{"local", "local"},
		{"", ""},
		{"192.0.2.1\0garbage"sv, "192.0.2.1\0garbage"sv},
	};
	for (const Case &c : cases) {
		std::string got = maild::address_key(c.in);
		cr_expect_eq(got, std::string(c.want), "address_key(%s): got %s, want %s",
		    std::string(c.in).c_str(), got.c_str(), std::string(c.want).c_str());
	}
}

Test(auth_guard, address_blocked_at_exactly_n_failures)
{
	AuthGuard guard{AuthGuardLimits{}};
	// Ten failures, for ten different accounts, over the window.
	for (unsigned i = 0; i < 9; i++) {
		guard.record_failure("192.0.2.1", numbered("user", i), at(i * 10));
		cr_expect(!guard.address_blocked("192.0.2.1", at(i * 10)), "blocked after %u", i + 1);
	}
	guard.record_failure("192.0.2.1", "user9", at(100));
	cr_expect(guard.address_blocked("192.0.2.1", at(100)));
	// Until the window from the first failure ends.
	cr_expect(guard.address_blocked("192.0.2.1", at(899)));
	cr_expect(!guard.address_blocked("192.0.2.1", at(900)));
	// Other addresses, and other IPv4 addresses of the same /24, are free.
	cr_expect(!guard.address_blocked("192.0.2.2", at(100)));
	cr_expect(!guard.address_blocked("2001:db8::1", at(100)));
	cr_expect_eq(guard.tracked_addresses(), 1u);
}

Test(auth_guard, address_window_starts_over)
{
	AuthGuard guard{AuthGuardLimits{}};
	for (unsigned i = 0; i < 9; i++)
		guard.record_failure("192.0.2.1", "user", at(0));
	// The tenth comes after the window: a new window with one failure.
	guard.record_failure("192.0.2.1", "user", at(900));
	cr_expect(!guard.address_blocked("192.0.2.1", at(900)));
	for (unsigned i = 0; i < 8; i++)
		guard.record_failure("192.0.2.1", "user", at(1000));
	cr_expect(!guard.address_blocked("192.0.2.1", at(1000)));
	guard.record_failure("192.0.2.1", "user", at(1799));
	cr_expect(guard.address_blocked("192.0.2.1", at(1799)));
	cr_expect(!guard.address_blocked("192.0.2.1", at(1800)));
}

Test(auth_guard, ipv6_counts_by_64)
{
	AuthGuard guard{AuthGuardLimits{}};
	for (unsigned i = 0; i < 10; i++)
		guard.record_failure(numbered("2001:db8:aa:bb::", i + 1), "user", at(0));
	cr_expect(guard.address_blocked("2001:db8:aa:bb:1234:5678:9abc:def0", at(1)));
	cr_expect(!guard.address_blocked("2001:db8:aa:bc::1", at(1)));
	cr_expect(!guard.address_blocked("2001:db8:aa::1", at(1)));
	cr_expect_eq(guard.tracked_addresses(), 1u);

	// Mapped and plain IPv4 are one client.
	for (unsigned i = 0; i < 5; i++) {
		guard.record_failure("::ffff:192.0.2.9", "user", at(2));
		guard.record_failure("192.0.2.9", "user", at(2));
	}
	cr_expect(guard.address_blocked("192.0.2.9", at(3)));
	cr_expect(guard.address_blocked("::ffff:192.0.2.9", at(3)));
	cr_expect(!guard.address_blocked("::ffff:192.0.2.10", at(3)));
}

Test(auth_guard, account_delay_grows_and_caps)
{
	AuthGuard guard{AuthGuardLimits{}};
	const long long want[] = {
		0, 0, 0, 0, 0, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
	};
	for (unsigned failures = 0; failures < std::size(want); failures++) {
		long long got = ms(guard.account_delay("alice", at(0)));
		cr_expect_eq(got, want[failures], "after %u failures: got %lld ms, want %lld ms",
		    failures, got, want[failures]);
		guard.record_failure(numbered("198.51.100.", failures), "alice", at(0));
	}
	// Far past the cap, no overflow.
	fail_account(guard, "alice", 1000, 1);
	cr_expect_eq(ms(guard.account_delay("alice", at(1))), 30000);
	// Others are not slowed, and the account is not refused: a login from a
	// clean address is still checked, after the delay.
	cr_expect_eq(ms(guard.account_delay("bob", at(1))), 0);
	cr_expect(!guard.address_blocked("203.0.113.5", at(1)));
	// The window ends 300 s after the first failure.
	cr_expect_eq(ms(guard.account_delay("alice", at(299))), 30000);
	cr_expect_eq(ms(guard.account_delay("alice", at(300))), 0);
}

Test(auth_guard, account_delay_first_step_with_other_limit)
{
	AuthGuardLimits limits;
	limits.account_failures = 1;
	AuthGuard guard{limits};
	cr_expect_eq(ms(guard.account_delay("carol", at(0))), 0);
	guard.record_failure("192.0.2.1", "carol", at(0));
	cr_expect_eq(ms(guard.account_delay("carol", at(0))), 1000);
	guard.record_failure("192.0.2.1", "carol", at(0));
	cr_expect_eq(ms(guard.account_delay("carol", at(0))), 2000);
}

Test(auth_guard, success_clears_account_not_address)
{
	AuthGuard guard{AuthGuardLimits{}};
	for (unsigned i = 0; i < 10; i++)
		guard.record_failure("192.0.2.1", "alice", at(0));
	fail_account(guard, "bob", 5, 0);
	cr_assert(guard.address_blocked("192.0.2.1", at(1)));
	cr_assert_gt(ms(guard.account_delay("alice", at(1))), 0);
	guard.record_success("alice");
	cr_expect_eq(ms(guard.account_delay("alice", at(1))), 0);
	cr_expect_eq(guard.tracked_accounts(), 1u, "bob's count stays");
	cr_expect_eq(ms(guard.account_delay("bob", at(1))), 1000);
	// An attacker with one valid account must not wipe its address's record.
	cr_expect(guard.address_blocked("192.0.2.1", at(1)));
	// After a success the count starts from zero.
	for (unsigned i = 0; i < 4; i++)
		guard.record_failure("203.0.113.1", "alice", at(2));
	cr_expect_eq(ms(guard.account_delay("alice", at(2))), 0);
	guard.record_success("nobody"); // unknown: nothing happens
	cr_expect_eq(guard.tracked_accounts(), 2u);
}

Test(auth_guard, zero_limits_never_count)
{
	AuthGuardLimits limits;
	limits.address_failures = 0;
	limits.account_failures = 0;
	AuthGuard guard{limits};
	for (unsigned i = 0; i < 100; i++)
		guard.record_failure("192.0.2.1", "alice", at(0));
	cr_expect(!guard.address_blocked("192.0.2.1", at(0)));
	cr_expect_eq(ms(guard.account_delay("alice", at(0))), 0);
	cr_expect_eq(guard.tracked_addresses(), 0u);
	cr_expect_eq(guard.tracked_accounts(), 0u);
}

Test(auth_guard, cache_hits_only_the_same_triple)
{
	AuthGuard guard{AuthGuardLimits{}};
	const std::string hash = "$argon2id$v=19$m=8192,t=1,p=1$c29tZXNhbHQ$AAAA";
	const std::string other_hash = "$argon2id$v=19$m=8192,t=1,p=1$c29tZXNhbHQ$AAAB";
	cr_expect(!guard.cache_hit("alice", "secret", hash, at(0)), "hit before any store");
	guard.cache_store("alice", "secret", hash, at(0));
	cr_expect(guard.cache_hit("alice", "secret", hash, at(1)));
	cr_expect(!guard.cache_hit("alice", "secreT", hash, at(1)), "wrong password");
	cr_expect(!guard.cache_hit("alice", "secre", hash, at(1)), "prefix of the password");
	cr_expect(!guard.cache_hit("alice", "", hash, at(1)), "empty password");
	cr_expect(!guard.cache_hit("bob", "secret", hash, at(1)), "other account");
	cr_expect(!guard.cache_hit("alice", "secret", other_hash, at(1)), "changed stored hash");
	// Field boundaries: passwords may hold NUL, so separators alone would
	// make these one input.
	guard.cache_store("a", "b\0c"s, "h", at(0));
	cr_expect(guard.cache_hit("a", "b\0c"s, "h", at(1)));
	cr_expect(!guard.cache_hit("a", "b", "c\0h"s, at(1)));
	cr_expect(!guard.cache_hit("a\0b"s, "c", "h", at(1)));
	cr_expect(!guard.cache_hit("ab", "\0c"s, "h", at(1)));
	cr_expect_eq(guard.cached(), 2u);
}

Test(auth_guard, cache_entries_expire)
{
	AuthGuard guard{AuthGuardLimits{}};
	guard.cache_store("alice", "secret", "hash", at(0));
	// Hits do not extend the entry's life.
	cr_expect(guard.cache_hit("alice", "secret", "hash", at(100)));
	cr_expect(guard.cache_hit("alice", "secret", "hash", at(299)));
	cr_expect(!guard.cache_hit("alice", "secret", "hash", at(300)));
	// Storing it again (after a full check) starts a new life.
	guard.cache_store("alice", "secret", "hash", at(300));
	cr_expect(guard.cache_hit("alice", "secret", "hash", at(599)));
	cr_expect(!guard.cache_hit("alice", "secret", "hash", at(600)));
	cr_expect_eq(guard.cached(), 1u);
}

Test(auth_guard, cache_ttl_zero_disables)
{
	AuthGuardLimits limits;
	limits.cache_ttl = 0;
	AuthGuard guard{limits};
	guard.cache_store("alice", "secret", "hash", at(0));
	cr_expect(!guard.cache_hit("alice", "secret", "hash", at(0)));
	cr_expect_eq(guard.cached(), 0u);
}

Test(auth_guard, cache_clear)
{
	AuthGuard guard{AuthGuardLimits{}};
	guard.cache_store("alice", "secret", "hash", at(0));
	guard.cache_store("bob", "hunter2", "hash2", at(0));
	cr_assert(guard.cache_hit("bob", "hunter2", "hash2", at(0)));
	guard.cache_clear();
	cr_expect_eq(guard.cached(), 0u);
	cr_expect(!guard.cache_hit("alice", "secret", "hash", at(0)));
	cr_expect(!guard.cache_hit("bob", "hunter2", "hash2", at(0)));
	guard.cache_store("bob", "hunter2", "hash2", at(1));
	cr_expect(guard.cache_hit("bob", "hunter2", "hash2", at(1)));
}

Test(auth_guard, expired_entries_are_swept)
{
	AuthGuard guard{AuthGuardLimits{}};
	for (unsigned i = 0; i < 50; i++) {
		guard.record_failure(numbered("192.0.2.", i), numbered("user", i), at(0));
		guard.cache_store(numbered("user", i), "pw", "hash", at(0));
	}
	cr_assert_eq(guard.tracked_addresses(), 50u);
	cr_assert_eq(guard.tracked_accounts(), 50u);
	cr_assert_eq(guard.cached(), 50u);
	// Accounts' windows end first (300 s), then the cache's (300 s), then
	// the addresses' (900 s): whatever is recorded next sweeps them.
	guard.record_failure("203.0.113.1", "late", at(300));
	guard.cache_store("late", "pw", "hash", at(300));
	cr_expect_eq(guard.tracked_accounts(), 1u);
	cr_expect_eq(guard.cached(), 1u);
	cr_expect_eq(guard.tracked_addresses(), 51u);
	guard.record_failure("203.0.113.1", "late", at(900));
	cr_expect_eq(guard.tracked_addresses(), 1u);
}

Test(auth_guard, bounded_under_a_flood)
{
	AuthGuardLimits limits;
	limits.max_tracked = 100;
	limits.max_cached = 50;
	AuthGuard guard{limits};
	// A flood of new keys within one window: nothing expires, so the
	// oldest go.
	for (unsigned i = 0; i < 5000; i++) {
		guard.record_failure(numbered("10.0.", i / 250) + "." + std::to_string(i % 250),
		    numbered("nobody", i), at(i / 100));
		guard.cache_store(numbered("user", i), "pw", "hash", at(i / 100));
		cr_assert_leq(guard.tracked_addresses(), 100u, "after %u", i);
		cr_assert_leq(guard.tracked_accounts(), 100u, "after %u", i);
		cr_assert_leq(guard.cached(), 50u, "after %u", i);
	}
	cr_expect_eq(guard.tracked_addresses(), 100u);
	cr_expect_eq(guard.cached(), 50u);
	// The newest are kept, and a full table blocks nobody new.
	cr_expect(guard.cache_hit("user4999", "pw", "hash", at(50)));
	cr_expect(!guard.cache_hit("user0", "pw", "hash", at(50)));
	cr_expect(!guard.address_blocked("192.0.2.1", at(50)));
	for (unsigned i = 0; i < 10; i++)
		guard.record_failure("192.0.2.1", "alice", at(50));
	cr_expect(guard.address_blocked("192.0.2.1", at(50)));
	cr_expect_eq(ms(guard.account_delay("alice", at(50))), 30000);
	cr_expect_eq(guard.tracked_addresses(), 100u);
}
