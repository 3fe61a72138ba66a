#include "lookup/password.h"

#include "common/log.h"

#include <argon2.h>
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

std::optional<unsigned> b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return std::nullopt;
}

// The decoded length of unpadded standard base64, if `s` is canonical: only
// the alphabet, no lone trailing character, and zeros in the bits the last
// character holds past the data (one text per byte string).
std::optional<std::size_t> b64_decoded_length(std::string_view s)
{
	if (s.size() % 4 == 1)
		return std::nullopt;
	unsigned last = 0;
	for (char c : s) {
		std::optional<unsigned> v = b64_value(c);
		if (!v)
			return std::nullopt;
		last = *v;
	}
	unsigned spare_bits = s.size() % 4 == 2 ? 4 : s.size() % 4 == 3 ? 2 : 0;
	if ((last & ((1u << spare_bits) - 1)) != 0)
		return std::nullopt;
	return s.size() * 3 / 4;
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

	// A base64 field, up to the next '$' or the end; yields its byte count.
	std::optional<std::size_t> base64()
	{
		std::string_view field = rest_.substr(0, rest_.find('$'));
		std::optional<std::size_t> len = b64_decoded_length(field);
		if (len)
			rest_.remove_prefix(field.size());
		return len;
	}

	bool at_end() const { return rest_.empty(); }

private:
	std::string_view rest_;
};

struct PhcFields {
	Argon2Params params;
	std::size_t salt_bytes = 0;
	std::size_t tag_bytes = 0;
};

// Accepts exactly what hash_password and other argon2id v=19 writers produce,
// within maild's bounds; libargon2 would accept more (other versions, any
// cost), and a stored hash must not choose how much memory lookup uses.
std::optional<PhcFields> parse_phc(std::string_view phc)
{
	PhcReader r{phc};
	std::optional<uint32_t> m, t, p;
	std::optional<std::size_t> salt, tag;
	bool ok = r.literal("$argon2id$v=19$m=") && (m = r.decimal()) &&
	    r.literal(",t=") && (t = r.decimal()) &&
	    r.literal(",p=") && (p = r.decimal()) &&
	    r.literal("$") && (salt = r.base64()) &&
	    r.literal("$") && (tag = r.base64()) && r.at_end();
	if (!ok)
		return std::nullopt;
	PhcFields f{{*m, *t, *p}, *salt, *tag};
	if (!argon2_params_error(f.params).empty() ||
	    f.salt_bytes < kArgon2MinSaltBytes || f.salt_bytes > kArgon2MaxSaltBytes ||
	    f.tag_bytes < kArgon2MinTagBytes || f.tag_bytes > kArgon2MaxTagBytes)
		return std::nullopt;
	return f;
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

std::optional<std::string> hash_password(std::string_view password, const Argon2Params &params,
    std::string &error_r)
{
	if (std::string error = argon2_params_error(params); !error.empty()) {
		error_r = error;
		return std::nullopt;
	}
	if (!password_length_ok(password)) {
		error_r = "password length must be 1.." + std::to_string(kMaxPasswordBytes) + " bytes";
		return std::nullopt;
	}
	std::array<char, kArgon2SaltBytes> salt;
	if (!fill_random(salt, error_r))
		return std::nullopt;
	// argon2_encodedlen counts the terminating NUL.
	std::string encoded(argon2_encodedlen(params.iterations, params.memory_kib, params.parallelism,
	    kArgon2SaltBytes, kArgon2TagBytes, Argon2_id), '\0');
	int rc = argon2id_hash_encoded(params.iterations, params.memory_kib, params.parallelism,
	    password.data(), password.size(), salt.data(), salt.size(), kArgon2TagBytes,
	    encoded.data(), encoded.size());
	if (rc != ARGON2_OK) {
		error_r = std::string("argon2id: ") + argon2_error_message(rc);
		return std::nullopt;
	}
	encoded.resize(std::strlen(encoded.c_str()));
	return encoded;
}

VerifyResult verify_password(std::string_view phc, std::string_view password)
{
	if (!parse_phc(phc))
		return VerifyResult::BadHash;
	if (!password_length_ok(password))
		return VerifyResult::Mismatch;
	const std::string encoded{phc}; // libargon2 reads a C string
	switch (argon2id_verify(encoded.c_str(), password.data(), password.size())) {
	case ARGON2_OK:
		return VerifyResult::Match;
	case ARGON2_VERIFY_MISMATCH:
		return VerifyResult::Mismatch;
	default:
		return VerifyResult::BadHash;
	}
}

bool needs_rehash(std::string_view phc, const Argon2Params &params)
{
	std::optional<PhcFields> f = parse_phc(phc);
	return !f || f->params.memory_kib != params.memory_kib ||
	    f->params.iterations != params.iterations ||
	    f->params.parallelism != params.parallelism ||
	    f->salt_bytes != kArgon2SaltBytes || f->tag_bytes != kArgon2TagBytes;
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
