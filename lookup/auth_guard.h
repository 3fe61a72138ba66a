// What lookup remembers about recent logins, to slow down password guessing
// and to spare argon2id for clients that log in again and again (IMAP
// clients open several connections, and often reconnect).
//
// Failures count per client address and per account, each in a fixed window
// that starts at the first failure and ends `window` seconds later (so at
// most 2N-1 failures fit in any span of one window):
// - an address over its limit is refused outright: lookup answers TempFail
//   without running argon2id. IPv6 addresses count by /64, as one attacker
//   easily has a whole /64.
// - an account over its limit is only slowed: lookup answers after
//   account_delay. Guesses from elsewhere must not lock the real user out.
// A success clears the account's count, not the address's: otherwise an
// attacker with one valid account could reset its address between guesses
// at others.
//
// The success cache remembers that a password matched a stored hash, keyed
// by an HMAC-SHA256 of the account, the password and the stored hash under a
// random per-process key: only the same password for the same stored hash
// can hit, so a changed password never hits an old entry. Entries live
// cache_ttl seconds from the success that stored them, however often they
// are hit.
//
// Memory is bounded: expired entries are dropped as time passes, and when a
// table is still full the oldest entries go, so a flood of new keys can
// push out what is known but never blocks everyone or grows the process.
//
// Pure logic: the time is a parameter (a steady clock, never going back),
// and nothing here does I/O. Not thread-safe: lookup's event loop owns it.
// Construct it before the sandbox: OpenSSL loads its provider then.
#pragma once

#include <openssl/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace maild {

struct AuthGuardLimits {
	uint32_t address_failures = 10; // 0: never refuse an address
	uint32_t address_window = 900;  // seconds
	uint32_t account_failures = 5;  // 0: never slow an account
	uint32_t account_window = 300;  // seconds
	uint32_t cache_ttl = 300;       // seconds; 0: no cache
	std::size_t max_tracked = 100000; // in each of the address and account tables
	std::size_t max_cached = 10000;
};

// The delay for an account over its limit: kAccountDelayFirst at the limit,
// doubling with each further failure up to kAccountDelayMax.
inline constexpr std::chrono::milliseconds kAccountDelayFirst{1000};
inline constexpr std::chrono::milliseconds kAccountDelayMax{30000};

// The key an address's failures count under: an IPv4 address as itself, an
// IPv6 address as its /64 ("2001:db8:1:2::/64"), an IPv4-mapped IPv6 address
// as the IPv4 address. Anything else inet_pton refuses (a zone, brackets,
// "local") maps to itself.
std::string address_key(std::string_view client_address);

class AuthGuard {
public:
	using TimePoint = std::chrono::steady_clock::time_point;

	// Fatal if the kernel gives no randomness or OpenSSL has no HMAC.
	explicit AuthGuard(const AuthGuardLimits &limits);
	~AuthGuard();
	AuthGuard(const AuthGuard &) = delete;
	AuthGuard &operator=(const AuthGuard &) = delete;

	// Addresses are given as the client's, and grouped by address_key here.
	bool address_blocked(std::string_view client_address, TimePoint now) const;
	std::chrono::milliseconds account_delay(std::string_view account, TimePoint now) const;
	void record_failure(std::string_view client_address, std::string_view account, TimePoint now);
	void record_success(std::string_view account);

	bool cache_hit(std::string_view account, std::string_view password,
	    std::string_view stored_hash, TimePoint now) const;
	void cache_store(std::string_view account, std::string_view password,
	    std::string_view stored_hash, TimePoint now);
	// When any stored hash may have changed (the database's data_version).
	void cache_clear();

	// For tests: how many keys each table holds.
	std::size_t tracked_addresses() const { return addresses_.size(); }
	std::size_t tracked_accounts() const { return accounts_.size(); }
	std::size_t cached() const { return cache_.size(); }

private:
	// Keyed entries oldest first: each key sits where it last (re)started,
	// and as time only goes forward, the expired ones and the ones to evict
	// are all at the front.
	class AgedTable {
	public:
		struct Entry {
			std::string key;
			TimePoint since;
			uint32_t count = 0;
		};

		// The entry for `key` if it is younger than `age`.
		const Entry *find_live(std::string_view key, TimePoint now,
		    std::chrono::seconds age) const;
		// The entry for `key`, restarted (moved to the back, `since` =
		// now, count 0) if it is missing or not younger than `age`.
		Entry &live(std::string_view key, TimePoint now, std::chrono::seconds age);
		void erase(std::string_view key);
		void clear();
		// Drops entries older than `age`, then the oldest while over `max`.
		void trim(TimePoint now, std::chrono::seconds age, std::size_t max);
		std::size_t size() const { return index_.size(); }

	private:
		std::list<Entry> order_;
		// Views into order_'s keys, which list nodes keep in place. A
		// tree, not a hash: the keys are the attacker's choice.
		std::map<std::string_view, std::list<Entry>::iterator> index_;
	};

	struct MacCtxFree {
		void operator()(EVP_MAC_CTX *ctx) const;
	};

	// Empty if OpenSSL fails (memory): then the cache misses.
	std::string cache_key(std::string_view account, std::string_view password,
	    std::string_view stored_hash) const;

	AuthGuardLimits limits_;
	AgedTable addresses_;
	AgedTable accounts_;
	AgedTable cache_;
	// Keyed with the random secret; each MAC starts from a copy.
	std::unique_ptr<EVP_MAC_CTX, MacCtxFree> mac_;
};

} // namespace maild
