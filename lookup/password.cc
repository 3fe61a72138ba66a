#include "lookup/password.h"

#include "common/log.h"

#include <argon2.h>
#include <openssl/crypto.h>
#include <sys/random.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <span>

namespace maild {

namespace {

// Long enough that nobody guesses it, short enough to hash cheaply.
constexpr std::size_t kDummyPasswordBytes = 32;

bool password_length_ok(std::string_view password)
{
	return !password.empty() && password.size() <= kMaxPasswordBytes;
}

bool salt_length_ok(std::size_t bytes)
{
	return bytes >= kArgon2MinSaltBytes && bytes <= kArgon2MaxSaltBytes;
}

// Fills `out` from the kernel's CSPRNG. getrandom may return fewer bytes than
// asked, or be interrupted by a signal, so keep asking.
bool fill_random(std::span<char> out, std::string &error_r)
{
	std::size_t done = 0;
	while (done < out.size()) {
		ssize_t n = getrandom(out.data() + done, out.size() - done, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			error_r = std::string("getrandom: ") + std::strerror(errno);
			return false;
		}
		done += static_cast<std::size_t>(n);
	}
	return true;
}

constexpr std::string_view kB64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::optional<unsigned> b64_value(char c)
{
	std::size_t at = kB64Alphabet.find(c);
	if (at == std::string_view::npos)
		return std::nullopt;
	return static_cast<unsigned>(at);
}

// Decodes unpadded standard base64 if `s` is canonical: only the alphabet,
// no lone trailing character, and zeros in the bits the last character holds
// past the data (one text per byte string).
std::optional<std::string> b64_decode(std::string_view s)
{
	if (s.size() % 4 == 1)
		return std::nullopt;
	std::string out;
	out.reserve(s.size() * 3 / 4);
	uint32_t acc = 0;
	unsigned bits = 0;
	for (char c : s) {
		std::optional<unsigned> v = b64_value(c);
		if (!v)
			return std::nullopt;
		acc = (acc << 6 | *v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out.push_back(static_cast<char>(acc >> bits));
		}
	}
	if ((acc & ((1u << bits) - 1)) != 0)
		return std::nullopt;
	return out;
}

// Unpadded standard base64, as libargon2 writes it.
std::string b64_encode(std::string_view data)
{
	std::string out;
	out.reserve((data.size() * 4 + 2) / 3);
	uint32_t acc = 0;
	unsigned bits = 0;
	for (char byte : data) {
		acc = (acc << 8 | static_cast<uint8_t>(byte)) & 0xffff;
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out.push_back(kB64Alphabet[(acc >> bits) & 63]);
		}
	}
	if (bits > 0)
		out.push_back(kB64Alphabet[(acc << (6 - bits)) & 63]);
	return out;
}

// A cursor over a PHC string: each step consumes its field or fails.
class PhcReader {
public:
	explicit PhcReader(std::string_view s) : rest_(s) {}

	bool literal(std::string_view text)
	{
		if (!rest_.starts_with(text))
			return false;
		rest_.remove_prefix(text.size());
		return true;
	}

	// A decimal without sign or leading zero, as the PHC format writes it.
	std::optional<uint32_t> decimal()
	{
		std::size_t n = 0;
		while (n < rest_.size() && rest_[n] >= '0' && rest_[n] <= '9')
			n++;
		if (n == 0 || (n > 1 && rest_[0] == '0'))
			return std::nullopt;
		uint32_t value = 0;
		if (std::from_chars(rest_.data(), rest_.data() + n, value).ec != std::errc{})
			return std::nullopt; // out of range
		rest_.remove_prefix(n);
		return value;
	}

	// A base64 field, up to the next '$' or the end, decoded.
	std::optional<std::string> base64()
	{
		std::string_view field = rest_.substr(0, rest_.find('$'));
		std::optional<std::string> bytes = b64_decode(field);
		if (bytes)
			rest_.remove_prefix(field.size());
		return bytes;
	}

	bool at_end() const { return rest_.empty(); }

private:
	std::string_view rest_;
};

struct PhcFields {
	Argon2Params params;
	std::string salt;
	std::string tag;
};

// Accepts exactly what hash_password and other argon2id v=19 writers produce,
// within maild's bounds; libargon2 would accept more (other versions, any
// cost), and a stored hash must not choose how much memory lookup uses.
std::optional<PhcFields> parse_phc(std::string_view phc)
{
	PhcReader r{phc};
	std::optional<uint32_t> m, t, p;
	std::optional<std::string> salt, tag;
	bool ok = r.literal("$argon2id$v=19$m=") && (m = r.decimal()) &&
	    r.literal(",t=") && (t = r.decimal()) &&
	    r.literal(",p=") && (p = r.decimal()) &&
	    r.literal("$") && (salt = r.base64()) &&
	    r.literal("$") && (tag = r.base64()) && r.at_end();
	if (!ok)
		return std::nullopt;
	PhcFields f{{*m, *t, *p}, std::move(*salt), std::move(*tag)};
	if (!argon2_params_error(f.params).empty() || !salt_length_ok(f.salt.size()) ||
	    f.tag.size() < kArgon2MinTagBytes || f.tag.size() > kArgon2MaxTagBytes)
		return std::nullopt;
	return f;
}

// Fills `tag` with the argon2id v1.3 hash of `password`, computing every
// lane in the calling thread: with threads > 1 libargon2 starts a thread per
// lane, and lookup's sandbox has no clone. The lanes are an input to the
// hash, the threads are not, so the result is the one every writer gets.
int argon2id_tag(std::string_view password, std::string_view salt, const Argon2Params &params,
    std::span<char> tag)
{
	argon2_context ctx{
		.out = reinterpret_cast<uint8_t *>(tag.data()),
		.outlen = static_cast<uint32_t>(tag.size()),
		// Without ARGON2_FLAG_CLEAR_PASSWORD libargon2 only reads these.
		.pwd = reinterpret_cast<uint8_t *>(const_cast<char *>(password.data())),
		.pwdlen = static_cast<uint32_t>(password.size()),
		.salt = reinterpret_cast<uint8_t *>(const_cast<char *>(salt.data())),
		.saltlen = static_cast<uint32_t>(salt.size()),
		.secret = nullptr,
		.secretlen = 0,
		.ad = nullptr,
		.adlen = 0,
		.t_cost = params.iterations,
		.m_cost = params.memory_kib,
		.lanes = params.parallelism,
		.threads = 1,
		.version = ARGON2_VERSION_13,
		.allocate_cbk = nullptr,
		.free_cbk = nullptr,
		.flags = ARGON2_DEFAULT_FLAGS,
	};
	return argon2_ctx(&ctx, Argon2_id);
}

std::string out_of_range(const char *what, uint32_t value, uint32_t min, uint32_t max)
{
	return std::string("argon2 ") + what + " " + std::to_string(value) + " is outside " +
	    std::to_string(min) + ".." + std::to_string(max);
}

} // namespace

std::string argon2_params_error(const Argon2Params &params)
{
	if (params.memory_kib < kArgon2MinMemoryKib || params.memory_kib > kArgon2MaxMemoryKib)
		return out_of_range("memory (KiB)", params.memory_kib, kArgon2MinMemoryKib, kArgon2MaxMemoryKib);
	if (params.iterations < kArgon2MinIterations || params.iterations > kArgon2MaxIterations)
		return out_of_range("iterations", params.iterations, kArgon2MinIterations, kArgon2MaxIterations);
	if (params.parallelism < kArgon2MinParallelism || params.parallelism > kArgon2MaxParallelism)
		return out_of_range("parallelism", params.parallelism, kArgon2MinParallelism, kArgon2MaxParallelism);
	return {};
}

std::optional<std::string> hash_password_with_salt(std::string_view password,
    std::string_view salt, const Argon2Params &params, std::string &error_r)
{
	if (std::string error = argon2_params_error(params); !error.empty()) {
		error_r = error;
		return std::nullopt;
	}
	if (!password_length_ok(password)) {
		error_r = "password length must be 1.." + std::to_string(kMaxPasswordBytes) + " bytes";
		return std::nullopt;
	}
	if (!salt_length_ok(salt.size())) {
		error_r = "salt length must be " + std::to_string(kArgon2MinSaltBytes) + ".." +
		    std::to_string(kArgon2MaxSaltBytes) + " bytes";
		return std::nullopt;
	}
	std::array<char, kArgon2TagBytes> tag;
	if (int rc = argon2id_tag(password, salt, params, tag); rc != ARGON2_OK) {
		error_r = std::string("argon2id: ") + argon2_error_message(rc);
		return std::nullopt;
	}
	// Field for field what libargon2's encoder writes.
	return "$argon2id$v=19$m=" + std::to_string(params.memory_kib) +
	    ",t=" + std::to_string(params.iterations) +
	    ",p=" + std::to_string(params.parallelism) +
	    "$" + b64_encode(salt) + "$" + b64_encode({tag.data(), tag.size()});
}

std::optional<std::string> hash_password(std::string_view password, const Argon2Params &params,
    std::string &error_r)
{
	std::array<char, kArgon2SaltBytes> salt;
	if (!fill_random(salt, error_r))
		return std::nullopt;
	return hash_password_with_salt(password, {salt.data(), salt.size()}, params, error_r);
}

VerifyResult verify_password(std::string_view phc, std::string_view password)
{
	std::optional<PhcFields> f = parse_phc(phc);
	if (!f)
		return VerifyResult::BadHash;
	if (!password_length_ok(password))
		return VerifyResult::Mismatch;
	// Derived from the password, so wiped like it.
	std::string tag(f->tag.size(), '\0');
	if (argon2id_tag(password, f->salt, f->params, tag) != ARGON2_OK)
		return VerifyResult::BadHash;
	bool match = CRYPTO_memcmp(tag.data(), f->tag.data(), tag.size()) == 0;
	wipe_secret(tag);
	return match ? VerifyResult::Match : VerifyResult::Mismatch;
}

bool needs_rehash(std::string_view phc, const Argon2Params &params)
{
	std::optional<PhcFields> f = parse_phc(phc);
	return !f || f->params.memory_kib != params.memory_kib ||
	    f->params.iterations != params.iterations ||
	    f->params.parallelism != params.parallelism ||
	    f->salt.size() != kArgon2SaltBytes || f->tag.size() != kArgon2TagBytes;
}

std::string make_dummy_hash(const Argon2Params &params)
{
	// The configuration checks the parameters before any role starts.
	if (std::string error = argon2_params_error(params); !error.empty())
		panic("dummy password hash: %s", error.c_str());
	std::string password(kDummyPasswordBytes, '\0');
	std::string error;
	std::optional<std::string> hash;
	if (fill_random(password, error))
		hash = hash_password(password, params, error);
	wipe_secret(password);
	if (!hash)
		fatalx("cannot make the dummy password hash: %s", error.c_str());
	return *hash;
}

void wipe_secret(std::string &secret)
{
	// Earlier, longer contents may linger past size().
	secret.resize(secret.capacity());
	explicit_bzero(secret.data(), secret.size());
	secret.clear();
}

} // namespace maild
