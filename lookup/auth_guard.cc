#include "lookup/auth_guard.h"

#include "common/log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sys/random.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace maild {

namespace {

constexpr std::size_t kMacBytes = 32; // SHA-256
constexpr std::size_t kMacKeyBytes = 32;

std::chrono::seconds seconds(uint32_t n)
{
	return std::chrono::seconds(n);
}

std::string ntop(int family, const void *addr)
{
	std::array<char, INET6_ADDRSTRLEN> text;
	if (inet_ntop(family, addr, text.data(), text.size()) == nullptr)
		panic("inet_ntop failed on an address inet_pton read");
	return text.data();
}

} // namespace

std::string address_key(std::string_view client_address)
{
	// inet_pton reads a C string: a NUL would end it early.
	if (client_address.find('\0') != std::string_view::npos)
		return std::string(client_address);
	const std::string text(client_address);
	in_addr v4;
	if (inet_pton(AF_INET, text.c_str(), &v4) == 1)
		return ntop(AF_INET, &v4);
	in6_addr v6;
	if (inet_pton(AF_INET6, text.c_str(), &v6) != 1)
		return text;
	// A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d, which all
	// share one /64.
	if (IN6_IS_ADDR_V4MAPPED(&v6)) {
		std::memcpy(&v4, &v6.s6_addr[12], sizeof v4);
		return ntop(AF_INET, &v4);
	}
	std::memset(&v6.s6_addr[8], 0, 8);
	return ntop(AF_INET6, &v6) + "/64";
}

const AuthGuard::AgedTable::Entry *AuthGuard::AgedTable::find_live(std::string_view key,
    TimePoint now, std::chrono::seconds age) const
{
	auto it = index_.find(key);
	if (it == index_.end() || now >= it->second->since + age)
		return nullptr;
	return &*it->second;
}

AuthGuard::AgedTable::Entry &AuthGuard::AgedTable::live(std::string_view key, TimePoint now,
    std::chrono::seconds age)
{
	auto it = index_.find(key);
	if (it != index_.end()) {
		if (now < it->second->since + age)
			return *it->second;
		// Expired: start over at the back, where the newest belong.
		order_.splice(order_.end(), order_, it->second);
	} else {
		order_.push_back(Entry{std::string(key), now, 0});
		index_.emplace(order_.back().key, std::prev(order_.end()));
	}
	Entry &entry = order_.back();
	entry.since = now;
	entry.count = 0;
	return entry;
}

void AuthGuard::AgedTable::erase(std::string_view key)
{
	auto it = index_.find(key);
	if (it == index_.end())
		return;
	auto node = it->second;
	index_.erase(it); // before the key it views goes
	order_.erase(node);
}

void AuthGuard::AgedTable::clear()
{
	index_.clear();
	order_.clear();
}

void AuthGuard::AgedTable::trim(TimePoint now, std::chrono::seconds age, std::size_t max)
{
	while (!order_.empty() && (now >= order_.front().since + age || order_.size() > max)) {
		index_.erase(order_.front().key);
		order_.pop_front();
	}
}

void AuthGuard::MacCtxFree::operator()(EVP_MAC_CTX *ctx) const
{
	EVP_MAC_CTX_free(ctx);
}

AuthGuard::AuthGuard(const AuthGuardLimits &limits) : limits_(limits)
{
	std::array<unsigned char, kMacKeyBytes> secret;
	for (std::size_t done = 0; done < secret.size();) {
		ssize_t n = getrandom(secret.data() + done, secret.size() - done, 0);
		if (n < 0 && errno != EINTR)
			fatal("getrandom");
		if (n > 0)
			done += static_cast<std::size_t>(n);
	}
	EVP_MAC *hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
	if (hmac != nullptr)
		mac_.reset(EVP_MAC_CTX_new(hmac)); // holds its own reference
	EVP_MAC_free(hmac);
	char digest[] = "SHA256";
	const OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	bool ok = mac_ && EVP_MAC_init(mac_.get(), secret.data(), secret.size(), params) == 1;
	// The keyed context is all that is needed from here on.
	explicit_bzero(secret.data(), secret.size());
	if (!ok || EVP_MAC_CTX_get_mac_size(mac_.get()) != kMacBytes)
		fatalx("auth guard: OpenSSL has no HMAC-SHA256");
}

AuthGuard::~AuthGuard() = default;

bool AuthGuard::address_blocked(std::string_view client_address, TimePoint now) const
{
	if (limits_.address_failures == 0)
		return false;
	const AgedTable::Entry *entry =
	    addresses_.find_live(address_key(client_address), now, seconds(limits_.address_window));
	return entry != nullptr && entry->count >= limits_.address_failures;
}

std::chrono::milliseconds AuthGuard::account_delay(std::string_view account, TimePoint now) const
{
	if (limits_.account_failures == 0)
		return {};
	const AgedTable::Entry *entry =
	    accounts_.find_live(account, now, seconds(limits_.account_window));
	if (entry == nullptr || entry->count < limits_.account_failures)
		return {};
	std::chrono::milliseconds delay = kAccountDelayFirst;
	for (uint32_t excess = entry->count - limits_.account_failures;
	    excess > 0 && delay < kAccountDelayMax; excess--)
		delay *= 2;
	return std::min(delay, kAccountDelayMax);
}

void AuthGuard::record_failure(std::string_view client_address, std::string_view account,
    TimePoint now)
{
	auto count = [&](AgedTable &table, std::string_view key, uint32_t window) {
		AgedTable::Entry &entry = table.live(key, now, seconds(window));
		if (entry.count < UINT32_MAX)
			entry.count++;
		table.trim(now, seconds(window), limits_.max_tracked);
	};
	if (limits_.address_failures != 0)
		count(addresses_, address_key(client_address), limits_.address_window);
	if (limits_.account_failures != 0)
		count(accounts_, account, limits_.account_window);
}

void AuthGuard::record_success(std::string_view account)
{
	accounts_.erase(account);
}

std::string AuthGuard::cache_key(std::string_view account, std::string_view password,
    std::string_view stored_hash) const
{
	std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx{EVP_MAC_CTX_dup(mac_.get())};
	if (!ctx)
		return {};
	// Each field after its length, so that no two triples give one input
	// (passwords may hold any byte, NUL included).
	auto field = [&](std::string_view s) {
		std::array<unsigned char, 8> length;
		for (std::size_t i = 0; i < length.size(); i++)
			length[i] = static_cast<unsigned char>(uint64_t{s.size()} >> (56 - 8 * i));
		return EVP_MAC_update(ctx.get(), length.data(), length.size()) == 1 &&
		    EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char *>(s.data()),
			s.size()) == 1;
	};
	std::string key(kMacBytes, '\0');
	std::size_t key_bytes = 0;
	if (!field(account) || !field(password) || !field(stored_hash) ||
	    EVP_MAC_final(ctx.get(), reinterpret_cast<unsigned char *>(key.data()), &key_bytes,
		key.size()) != 1 || key_bytes != kMacBytes)
		return {};
	return key;
}

bool AuthGuard::cache_hit(std::string_view account, std::string_view password,
    std::string_view stored_hash, TimePoint now) const
{
	if (limits_.cache_ttl == 0)
		return false;
	std::string key = cache_key(account, password, stored_hash);
	return !key.empty() && cache_.find_live(key, now, seconds(limits_.cache_ttl)) != nullptr;
}

void AuthGuard::cache_store(std::string_view account, std::string_view password,
    std::string_view stored_hash, TimePoint now)
{
	if (limits_.cache_ttl == 0)
		return;
	std::string key = cache_key(account, password, stored_hash);
	if (key.empty())
		return;
	cache_.live(key, now, seconds(limits_.cache_ttl));
	cache_.trim(now, seconds(limits_.cache_ttl), limits_.max_cached);
}

void AuthGuard::cache_clear()
{
	cache_.clear();
}

} // namespace maild
