// Password hashing for the lookup role: argon2id only, stored as PHC strings
// ($argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<tag>, base64 without
// padding), the format libargon2, Dovecot's ARGON2ID scheme and most other
// software write, so accounts can move between them.
//
// Stored hashes are not trusted blindly: the database is data, and its cost
// parameters decide how much memory and time one login attempt takes. So
// verify_password parses the string itself, strictly, and refuses any
// parameter outside the bounds below before libargon2 allocates anything.
//
// Hashing and verifying never start a thread, whatever the parallelism:
// every lane is computed in the calling thread, one after another (lookup's
// sandbox allows no clone, and its workers exist before it). The lanes
// change the hash, the threads that compute them do not, so hashes stay
// identical to other writers'.
//
// Passwords are byte strings (they may hold NUL or non-UTF-8 bytes) of
// 1..kMaxPasswordBytes bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace maild {

// Bounds on the cost parameters, for the configuration and for stored hashes.
inline constexpr uint32_t kArgon2MinMemoryKib = 8 * 1024;          // 8 MiB
inline constexpr uint32_t kArgon2MaxMemoryKib = 4 * 1024 * 1024;   // 4 GiB
inline constexpr uint32_t kArgon2MinIterations = 1;
inline constexpr uint32_t kArgon2MaxIterations = 100;
inline constexpr uint32_t kArgon2MinParallelism = 1;
inline constexpr uint32_t kArgon2MaxParallelism = 16;

// What hash_password writes; stored hashes may use other lengths within
// bounds (8 bytes is libargon2's least salt, and what its test vectors use).
inline constexpr std::size_t kArgon2SaltBytes = 16;
inline constexpr std::size_t kArgon2TagBytes = 32;
inline constexpr std::size_t kArgon2MinSaltBytes = 8;
inline constexpr std::size_t kArgon2MaxSaltBytes = 64;
inline constexpr std::size_t kArgon2MinTagBytes = 16;
inline constexpr std::size_t kArgon2MaxTagBytes = 64;

inline constexpr std::size_t kMaxPasswordBytes = 4096;

// The defaults are RFC 9106's second recommended option (64 MiB, t=3, p=4)
// with one lane: computed one after another in one thread, more lanes take
// as long and buy nothing. Stored hashes with more lanes (up to
// kArgon2MaxParallelism) verify all the same.
struct Argon2Params {
	uint32_t memory_kib = 65536;
	uint32_t iterations = 3;
	uint32_t parallelism = 1;
};

// Empty if every parameter is within bounds, else what is wrong.
std::string argon2_params_error(const Argon2Params &params);

// A new PHC string for `password` with a fresh random salt. Fails (with
// the reason in error_r) on parameters or a password length out of bounds,
// or if the kernel gives no randomness or libargon2 fails (memory).
std::optional<std::string> hash_password(std::string_view password, const Argon2Params &params,
    std::string &error_r);

enum class VerifyResult {
	Match,
	Mismatch,
	// The stored string is not an argon2id v=19 PHC string within bounds,
	// or libargon2 failed on it (out of memory). It says nothing about
	// the password: the caller logs it and fails temporarily.
	BadHash,
};

// Checks `password` against a stored PHC string, comparing the tags in
// constant time. A password of a length hash_password refuses never
// matches.
VerifyResult verify_password(std::string_view phc, std::string_view password);

// hash_password with the caller's salt (kArgon2MinSaltBytes..
// kArgon2MaxSaltBytes bytes) instead of a random one, for the tests that
// compare its output with libargon2's byte for byte. Everything else wants
// hash_password: a salt must be fresh and random.
std::optional<std::string> hash_password_with_salt(std::string_view password,
    std::string_view salt, const Argon2Params &params, std::string &error_r);

// True if `phc` was not made by hash_password with `params` (other cost,
// salt or tag length, or not parseable): after a Match, the caller may store
// a new hash of the password it just verified.
bool needs_rehash(std::string_view phc, const Argon2Params &params);

// A hash of a random password nobody knows, made once at start with the
// configured parameters: lookup verifies logins for unknown users against
// it, so that they cost the same as a wrong password and do not reveal
// which users exist. Exits (fatalx) if no hash can be made.
std::string make_dummy_hash(const Argon2Params &params);

// Overwrites a secret in a way the compiler cannot drop (explicit_bzero),
// including the spare capacity, and leaves it empty.
void wipe_secret(std::string &secret);

} // namespace maild
