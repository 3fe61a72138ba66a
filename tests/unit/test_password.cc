// Password hashing: the PHC strings hash_password writes, verification of
// those and of other writers' argon2id hashes (fixed known answers), and the
// strict parser that refuses every other string before libargon2 sees it.
//
// Most tests hash with kCheap (8 MiB, one pass) to keep the suite fast; one
// uses the defaults. maild computes the hash itself, one lane after another
// (libargon2's own calls start a thread per lane), so its output is checked
// byte for byte against libargon2's, and in a process that cannot clone.
#include "lookup/password.h"

#include <criterion/criterion.h>

#include <argon2.h>
#include <seccomp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace std::literals;
using maild::Argon2Params;
using maild::VerifyResult;

namespace {

constexpr Argon2Params kCheap{8192, 1, 1};

const char *show(VerifyResult r)
{
	switch (r) {
	case VerifyResult::Match:
		return "Match";
	case VerifyResult::Mismatch:
		return "Mismatch";
	case VerifyResult::BadHash:
		return "BadHash";
	}
	return "?";
}

void expect_verify(std::string_view phc, std::string_view password, VerifyResult want)
{
	VerifyResult got = maild::verify_password(phc, password);
	cr_expect(got == want, "verify(%s, %zu-byte password): got %s, want %s",
	    std::string(phc).c_str(), password.size(), show(got), show(want));
}

std::string hash_or_fail(std::string_view password, const Argon2Params &params)
{
	std::string error;
	std::optional<std::string> phc = maild::hash_password(password, params, error);
	cr_assert(phc.has_value(), "hash_password failed: %s", error.c_str());
	return *phc;
}

std::vector<std::string> split(std::string_view s, char sep)
{
	std::vector<std::string> parts;
	for (;;) {
		std::size_t at = s.find(sep);
		parts.emplace_back(s.substr(0, at));
		if (at == std::string_view::npos)
			return parts;
		s.remove_prefix(at + 1);
	}
}

bool is_b64(std::string_view s)
{
	return s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") ==
	    std::string_view::npos;
}

// A hash made by libargon2 directly, with any parameters and lengths.
std::string reference_hash(std::string_view password, uint32_t m, uint32_t t, uint32_t p,
    std::string_view salt, std::size_t tag_bytes)
{
	std::string out(argon2_encodedlen(t, m, p, static_cast<uint32_t>(salt.size()),
	    static_cast<uint32_t>(tag_bytes), Argon2_id), '\0');
	int rc = argon2id_hash_encoded(t, m, p, password.data(), password.size(), salt.data(),
	    salt.size(), tag_bytes, out.data(), out.size());
	cr_assert_eq(rc, ARGON2_OK, "argon2id_hash_encoded: %s", argon2_error_message(rc));
	out.resize(std::char_traits<char>::length(out.c_str()));
	return out;
}

// Known answers from the argon2 command line tool (Debian package argon2,
// the reference implementation), one per line with the command that made it.
// echo -n password | argon2 somesalt -id -t 2 -m 16 -p 1 -e
// (also the argon2id vector in the reference repository's src/test.c)
constexpr std::string_view kKatDefaultish =
    "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
// echo -n password | argon2 somesalt -id -t 2 -m 13 -p 1 -e
constexpr std::string_view kKatCheap =
    "$argon2id$v=19$m=8192,t=2,p=1$c29tZXNhbHQ$pQ7IRfkMsUxGGo+RCyIPDLbbnN3T5YvcSjt8q11YDUI";
// echo -n password | argon2 somesaltsomesalt -id -t 1 -m 13 -p 1 -e
// (16-byte salt, 32-byte tag: the shape hash_password gives with kCheap)
constexpr std::string_view kKatShaped =
    "$argon2id$v=19$m=8192,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$hPsAa7w81piVcitktb9zUlGp6Onz7Lk/9ZW5iut6zLc";
// printf 'pass\0word\377' | argon2 somesalt -id -t 1 -m 13 -p 1 -e
constexpr std::string_view kKatBinary =
    "$argon2id$v=19$m=8192,t=1,p=1$c29tZXNhbHQ$EEzy4VhVgnyFetVUhM0GmR91fqYdGyo3XbMxF9dSO3c";
// echo -n password | argon2 somesalt -id -t 1 -m 13 -p 4 -e
// (four lanes, which the CLI computes in four threads)
constexpr std::string_view kKatFourLanes =
    "$argon2id$v=19$m=8192,t=1,p=4$c29tZXNhbHQ$Jj3E76XCzPuHA8DZe0H6MQkrQbmvUWct2uuPbr9LHtk";
// echo -n password | argon2 somesalt -i -t 2 -m 13 -p 1 -e
constexpr std::string_view kKatArgon2i =
    "$argon2i$v=19$m=8192,t=2,p=1$c29tZXNhbHQ$W8Pn5WzLnhmIu9zPh9zy/yztIUHuBziGtzQViTwFvzc";
// echo -n password | argon2 somesalt -d -t 2 -m 13 -p 1 -e
constexpr std::string_view kKatArgon2d =
    "$argon2d$v=19$m=8192,t=2,p=1$c29tZXNhbHQ$aWF9pRn67E9lYGrf0zQjsoVyBVe36ICP2lE1QBwZvWk";
// echo -n password | argon2 somesalt -id -t 2 -m 13 -p 1 -v 10 -e
constexpr std::string_view kKatVersion10 =
    "$argon2id$v=16$m=8192,t=2,p=1$c29tZXNhbHQ$+jKshYy47NypQ2lK7RSZ7Bv4OTkBeX0PWUG59x+I3bk";

// Runs `body` in a child process in which clone and clone3 fail with EPERM,
// as in lookup's sandbox (which kills instead, and would end the test
// runner's child with it), and returns the child's exit status: 0 when
// `body` returned true, 1 when false, 2 when the filter could not be set.
template <typename Body>
int run_unable_to_clone(Body body)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork failed");
	if (pid == 0) {
		scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
		if (ctx == nullptr ||
		    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 0) < 0 ||
		    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone3), 0) < 0 ||
		    seccomp_load(ctx) < 0)
			_exit(2);
		// The loaded filter lives in the kernel; the context is ours.
		seccomp_release(ctx);
		// _exit: no atexit handlers, which may want threads (LeakSanitizer).
		_exit(body() ? 0 : 1);
	}
	int status = 0;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child died, status %#x", status);
	return WEXITSTATUS(status);
}

} // namespace

Test(password, phc_format_and_fields)
{
	std::string phc = hash_or_fail("correct horse", kCheap);
	std::vector<std::string> f = split(phc, '$');
	cr_assert_eq(f.size(), 6u, "%s", phc.c_str());
	cr_expect(f[0].empty());
	cr_expect_eq(f[1], "argon2id"s);
	cr_expect_eq(f[2], "v=19"s);
	cr_expect_eq(f[3], "m=8192,t=1,p=1"s);
	// 16 bytes and 32 bytes in unpadded base64.
	cr_expect_eq(f[4].size(), 22u, "salt %s", f[4].c_str());
	cr_expect_eq(f[5].size(), 43u, "tag %s", f[5].c_str());
	cr_expect(is_b64(f[4]) && is_b64(f[5]), "%s", phc.c_str());
	cr_expect(!maild::needs_rehash(phc, kCheap));
}

Test(password, params_appear_in_phc)
{
	const Argon2Params params{12345, 2, 3};
	std::string phc = hash_or_fail("pw", params);
	cr_expect_eq(split(phc, '$').at(3), "m=12345,t=2,p=3"s, "%s", phc.c_str());
	expect_verify(phc, "pw", VerifyResult::Match);
}

Test(password, round_trip_and_wrong_password)
{
	std::string phc = hash_or_fail("hunter2", kCheap);
	expect_verify(phc, "hunter2", VerifyResult::Match);
	expect_verify(phc, "hunter3", VerifyResult::Mismatch);
	expect_verify(phc, "hunter", VerifyResult::Mismatch);
	expect_verify(phc, "hunter22", VerifyResult::Mismatch);
	expect_verify(phc, "Hunter2", VerifyResult::Mismatch);
	expect_verify(phc, "", VerifyResult::Mismatch);
}

Test(password, defaults)
{
	const Argon2Params defaults;
	cr_expect_eq(defaults.memory_kib, 65536u);
	cr_expect_eq(defaults.iterations, 3u);
	cr_expect_eq(defaults.parallelism, 1u);
	std::string phc = hash_or_fail("default cost", defaults);
	cr_expect_eq(split(phc, '$').at(3), "m=65536,t=3,p=1"s, "%s", phc.c_str());
	expect_verify(phc, "default cost", VerifyResult::Match);
	expect_verify(phc, "default cosT", VerifyResult::Mismatch);
}

Test(password, binary_password_with_nul)
{
	const std::string password = "pass\0word\xff\xfe"s;
	const std::string truncated = "pass";
	std::string phc = hash_or_fail(password, kCheap);
	expect_verify(phc, password, VerifyResult::Match);
	expect_verify(phc, truncated, VerifyResult::Mismatch);
	expect_verify(phc, "pass\0word\xff\xff"s, VerifyResult::Mismatch);
	std::string phc_truncated = hash_or_fail(truncated, kCheap);
	expect_verify(phc_truncated, truncated, VerifyResult::Match);
	expect_verify(phc_truncated, password, VerifyResult::Mismatch);
}

Test(password, salts_differ)
{
	std::string a = hash_or_fail("same", kCheap);
	std::string b = hash_or_fail("same", kCheap);
	cr_expect_neq(a, b);
	cr_expect_neq(split(a, '$').at(4), split(b, '$').at(4), "same salt twice: %s", a.c_str());
	expect_verify(a, "same", VerifyResult::Match);
	expect_verify(b, "same", VerifyResult::Match);
}

Test(password, password_length_bounds)
{
	std::string error;
	cr_expect(!maild::hash_password("", kCheap, error).has_value());
	cr_expect(!error.empty());
	error.clear();
	const std::string longest(maild::kMaxPasswordBytes, 'x');
	const std::string too_long(maild::kMaxPasswordBytes + 1, 'x');
	cr_expect(!maild::hash_password(too_long, kCheap, error).has_value());
	cr_expect(!error.empty());
	std::string phc = hash_or_fail(longest, kCheap);
	expect_verify(phc, longest, VerifyResult::Match);
	// A longer password never matches, whatever its first 4096 bytes.
	expect_verify(phc, too_long, VerifyResult::Mismatch);
}

Test(password, params_bounds)
{
	struct Case {
		Argon2Params params;
		bool ok;
	};
	const Case cases[] = {
		{{8192, 1, 1}, true},
		{{4u * 1024 * 1024, 100, 16}, true},
		{{8191, 1, 1}, false},
		{{4u * 1024 * 1024 + 1, 1, 1}, false},
		{{8192, 0, 1}, false},
		{{8192, 101, 1}, false},
		{{8192, 1, 0}, false},
		{{8192, 1, 17}, false},
	};
	for (const Case &c : cases) {
		std::string error = maild::argon2_params_error(c.params);
		cr_expect_eq(error.empty(), c.ok, "m=%u t=%u p=%u: got \"%s\"", c.params.memory_kib,
		    c.params.iterations, c.params.parallelism, error.c_str());
		if (!c.ok) {
			std::string hash_error;
			cr_expect(!maild::hash_password("pw", c.params, hash_error).has_value());
			cr_expect_eq(hash_error, error);
		}
	}
}

Test(password, other_params_verify)
{
	// Dovecot's and OWASP's usual cost, and an odd one: 4 lanes, an 8-byte
	// salt and a 24-byte tag, all within bounds.
	std::string owasp = reference_hash("secret", 19456, 2, 1, "0123456789abcdef", 32);
	cr_expect_eq(split(owasp, '$').at(3), "m=19456,t=2,p=1"s);
	expect_verify(owasp, "secret", VerifyResult::Match);
	expect_verify(owasp, "Secret", VerifyResult::Mismatch);
	std::string odd = reference_hash("secret", 8200, 1, 4, "8bytes!!", 24);
	expect_verify(odd, "secret", VerifyResult::Match);
	expect_verify(odd, "secreT", VerifyResult::Mismatch);
	cr_expect(maild::needs_rehash(owasp, kCheap));
	cr_expect(maild::needs_rehash(odd, {8200, 1, 4}), "salt and tag lengths differ from ours");
}

Test(password, known_answers)
{
	expect_verify(kKatCheap, "password", VerifyResult::Match);
	expect_verify(kKatCheap, "passwore", VerifyResult::Mismatch);
	expect_verify(kKatBinary, "pass\0word\xff"s, VerifyResult::Match);
	expect_verify(kKatBinary, "pass\0word\xfe"s, VerifyResult::Mismatch);
	expect_verify(kKatBinary, "pass", VerifyResult::Mismatch);
	expect_verify(kKatDefaultish, "password", VerifyResult::Match);
	expect_verify(kKatDefaultish, "Password", VerifyResult::Mismatch);
}

Test(password, four_lanes_known_answer)
{
	expect_verify(kKatFourLanes, "password", VerifyResult::Match);
	expect_verify(kKatFourLanes, "passwore", VerifyResult::Mismatch);
	// The lanes are part of the hash: the same tag under p=1 is not it.
	std::string one_lane(kKatFourLanes);
	one_lane.replace(one_lane.find("p=4"), 3, "p=1");
	expect_verify(one_lane, "password", VerifyResult::Mismatch);
}

Test(password, same_string_as_libargon2)
{
	struct Case {
		std::string_view password;
		Argon2Params params;
		std::string_view salt;
	};
	// Salt lengths 8, 16 and 18 cover every base64 tail; 64 is the most.
	const Case cases[] = {
		{"password", {8192, 1, 1}, "somesalt"},
		{"password", {8192, 2, 4}, "somesaltsomesalt"},
		{"pass\0word\xff"sv, {8200, 1, 3}, "eighteen bytes...!"},
		{"x", {9000, 1, 16}, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{"\0\0\0"sv, {8192, 3, 2}, "\0\xff\0\xff\0\xff\0\xff"sv},
	};
	for (const Case &c : cases) {
		std::string error;
		std::optional<std::string> ours =
		    maild::hash_password_with_salt(c.password, c.salt, c.params, error);
		cr_assert(ours.has_value(), "hash_password_with_salt: %s", error.c_str());
		std::string theirs = reference_hash(c.password, c.params.memory_kib,
		    c.params.iterations, c.params.parallelism, c.salt, maild::kArgon2TagBytes);
		cr_expect_eq(*ours, theirs, "m=%u t=%u p=%u salt %zu bytes", c.params.memory_kib,
		    c.params.iterations, c.params.parallelism, c.salt.size());
		expect_verify(*ours, c.password, VerifyResult::Match);
	}
	// The CLI's vector, from the same inputs.
	std::string error;
	cr_expect_eq(maild::hash_password_with_salt("password", "somesaltsomesalt", kCheap, error),
	    std::optional<std::string>(kKatShaped));
	cr_expect_eq(maild::hash_password_with_salt("password", "somesalt", {8192, 1, 4}, error),
	    std::optional<std::string>(kKatFourLanes));
}

Test(password, salt_length_bounds)
{
	std::string error;
	cr_expect(!maild::hash_password_with_salt("pw", "7 bytes", kCheap, error).has_value());
	cr_expect(!error.empty());
	error.clear();
	cr_expect(!maild::hash_password_with_salt("pw", std::string(65, 's'), kCheap, error).has_value());
	cr_expect(!error.empty());
	cr_expect(maild::hash_password_with_salt("pw", std::string(64, 's'), kCheap, error).has_value(),
	    "%s", error.c_str());
}

Test(password, no_thread_started)
{
	// The control: libargon2's own verification of four lanes wants threads,
	// and fails where they cannot be had.
	const std::string four_lanes(kKatFourLanes);
	cr_expect_eq(run_unable_to_clone([&] {
		return argon2id_verify(four_lanes.c_str(), "password", 8) == ARGON2_THREAD_FAIL;
	}), 0, "libargon2 verified four lanes without a thread, or the filter failed");

	cr_expect_eq(run_unable_to_clone([&] {
		return maild::verify_password(four_lanes, "password") == VerifyResult::Match &&
		    maild::verify_password(four_lanes, "passwore") == VerifyResult::Mismatch;
	}), 0, "verify_password needed a thread");
	cr_expect_eq(run_unable_to_clone([] {
		std::string error;
		std::optional<std::string> phc = maild::hash_password("pw", {8192, 1, 16}, error);
		return phc && maild::verify_password(*phc, "pw") == VerifyResult::Match;
	}), 0, "hash_password needed a thread");
}

Test(password, other_variants_and_versions_refused)
{
	// Valid for libargon2, but not argon2id version 1.3.
	expect_verify(kKatArgon2i, "password", VerifyResult::BadHash);
	expect_verify(kKatArgon2d, "password", VerifyResult::BadHash);
	expect_verify(kKatVersion10, "password", VerifyResult::BadHash);
	const std::string no_version =
	    "$argon2id$m=8192,t=2,p=1$c29tZXNhbHQ$+jKshYy47NypQ2lK7RSZ7Bv4OTkBeX0PWUG59x+I3bk";
	expect_verify(no_version, "password", VerifyResult::BadHash);
	cr_expect(argon2id_verify(no_version.c_str(), "password", 8) == ARGON2_OK,
	    "libargon2 itself takes a missing v= as version 1.0");
}

Test(password, bad_hashes)
{
	// Each differs in one way from kKatShaped, which is in exactly the shape
	// hash_password writes with kCheap: so needs_rehash, which consults only
	// the parser, shows the parser refusing it, and verify_password shows
	// that libargon2 never gets to accept it.
	const std::string_view salt = "c29tZXNhbHRzb21lc2FsdA";
	const std::string_view tag = "hPsAa7w81piVcitktb9zUlGp6Onz7Lk/9ZW5iut6zLc";
	const std::string base = "$argon2id$v=19$";
	const std::string tail = "$"s + std::string(salt) + "$" + std::string(tag);
	const auto with_salt = [&](std::string_view s) {
		return base + "m=8192,t=1,p=1$" + std::string(s) + "$" + std::string(tag);
	};
	const auto with_tag = [&](std::string_view t) {
		return base + "m=8192,t=1,p=1$" + std::string(salt) + "$" + std::string(t);
	};
	cr_assert_eq(base + "m=8192,t=1,p=1" + tail, kKatShaped);
	expect_verify(kKatShaped, "password", VerifyResult::Match);
	cr_assert(!maild::needs_rehash(kKatShaped, kCheap));

	const std::vector<std::string> bad = {
		"",
		"password",
		"$",
		"$argon2id$",
		"$argon2id$v=19$",
		"$ARGON2ID$v=19$m=8192,t=1,p=1" + tail,
		"$argon2$v=19$m=8192,t=1,p=1" + tail,
		"argon2id$v=19$m=8192,t=1,p=1" + tail,
		"$argon2id$v=019$m=8192,t=1,p=1" + tail,
		// missing, reordered or extra fields
		base + "t=1,p=1" + tail,
		base + "m=8192,p=1" + tail,
		base + "m=8192,t=1" + tail,
		base + "t=1,m=8192,p=1" + tail,
		base + "m=8192,t=1,p=1$" + std::string(tag),
		base + "m=8192,t=1,p=1$" + std::string(salt),
		base + "m=8192,t=1,p=1$" + std::string(salt) + "$",
		base + "m=8192,t=1,p=1$$" + std::string(tag),
		base + "m=8192,t=1,p=1,data=YWJj" + tail,
		base + "m=8192,t=1,p=1,keyid=YWJj" + tail,
		base + "m=8192,t=1,p=1" + tail + "$",
		base + "m=8192,t=1,p=1" + tail + "$YWJj",
		// numbers: bounds, syntax
		base + "m=4194304000,t=1,p=1" + tail,
		base + "m=4194305,t=1,p=1" + tail,
		base + "m=99999999999999999999,t=1,p=1" + tail,
		base + "m=8191,t=1,p=1" + tail,
		base + "m=08192,t=1,p=1" + tail,
		base + "m=8192,t=01,p=1" + tail,
		base + "m=+8192,t=1,p=1" + tail,
		base + "m= 8192,t=1,p=1" + tail,
		base + "m=,t=1,p=1" + tail,
		base + "m=8192,t=0,p=1" + tail,
		base + "m=8192,t=101,p=1" + tail,
		base + "m=8192,t=1,p=0" + tail,
		base + "m=8192,t=1,p=17" + tail,
		base + "m=8192,t=1,p=1 " + tail,
		// base64: padding, alphabet, bits past the data, a lone character
		with_salt("c29tZXNhbHRzb21lc2FsdA=="),
		with_tag("hPsAa7w81piVcitktb9zUlGp6Onz7Lk/9ZW5iut6zLc="),
		with_salt("c29tZXNhbHRzb21lc2Fsd*"),
		with_tag("hPsAa7w81piVcitktb9zUlGp6Onz7Lk_9ZW5iut6zLc"),
		with_salt("c29tZXNhbHRzb21lc2FsdB"),
		with_tag("hPsAa7w81piVcitktb9zUlGp6Onz7Lk/9ZW5iut6zLd"),
		with_salt("c29tZXNhbHRzb21lc2FsdAAAA"),
		// salt and tag lengths: 6 and 65 salt bytes, 12 and 65 tag bytes
		with_salt("c29tZXNh"),
		with_salt(std::string(87, 'A')),
		with_tag("hPsAa7w81piVcitk"),
		with_tag(std::string(87, 'A')),
		// NUL inside: libargon2 would stop reading there
		std::string(kKatShaped) + "\0"s,
		std::string(kKatShaped) + "\0AAAA"s,
		base + "m=8192\0,t=1,p=1"s + tail,
	};
	for (const std::string &phc : bad) {
		cr_expect(maild::needs_rehash(phc, kCheap), "parser accepted %s", phc.c_str());
		expect_verify(phc, "password", VerifyResult::BadHash);
	}
}

Test(password, truncated)
{
	std::string phc = hash_or_fail("truncate me", kCheap);
	const std::size_t tag_start = phc.rfind('$') + 1;
	for (std::size_t len = 0; len < phc.size(); len++) {
		std::string_view cut = std::string_view(phc).substr(0, len);
		VerifyResult got = maild::verify_password(cut, "truncate me");
		// A shortened tag may still parse (a shorter tag is a different
		// hash), but then it must not match.
		if (len < tag_start + 22)
			cr_expect(got == VerifyResult::BadHash, "len %zu: got %s", len, show(got));
		else
			cr_expect(got != VerifyResult::Match, "len %zu: got %s", len, show(got));
	}
}

Test(password, needs_rehash)
{
	std::string phc = hash_or_fail("rehash", kCheap);
	cr_expect(!maild::needs_rehash(phc, kCheap));
	cr_expect(maild::needs_rehash(phc, {8193, 1, 1}));
	cr_expect(maild::needs_rehash(phc, {8192, 2, 1}));
	cr_expect(maild::needs_rehash(phc, {8192, 1, 2}));
	cr_expect(maild::needs_rehash(phc, Argon2Params{}));
	// Same cost, but an 8-byte salt.
	cr_expect(maild::needs_rehash(kKatCheap, {8192, 2, 1}));
	cr_expect(maild::needs_rehash("garbage", kCheap));
}

Test(password, dummy_hash)
{
	std::string dummy = maild::make_dummy_hash(kCheap);
	cr_expect(!maild::needs_rehash(dummy, kCheap), "%s", dummy.c_str());
	cr_expect_neq(dummy, maild::make_dummy_hash(kCheap));
	const std::vector<std::string> guesses = {
		"x", "password", "", std::string(32, '\0'), std::string(maild::kMaxPasswordBytes, 'a'),
	};
	for (const std::string &guess : guesses)
		expect_verify(dummy, guess, VerifyResult::Mismatch);
}

Test(password, wipe_secret)
{
	std::string secret(100, 's');
	secret.resize(10);
	const char *data = secret.data();
	maild::wipe_secret(secret);
	cr_expect(secret.empty());
	cr_expect_eq(secret.data(), data, "wiped in place");
	for (std::size_t i = 0; i < 100; i++)
		cr_expect_eq(data[i], '\0', "byte %zu left", i);
}
