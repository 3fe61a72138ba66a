// SASL helpers (common/sasl.h): strict base64 (RFC 4648) with its RFC test
// vectors and every way of being malformed, then PLAIN (RFC 4616) and LOGIN
// decoding with their limits at the boundary and one over.
#include "common/sasl.h"

#include <criterion/criterion.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace std::literals;

namespace {

struct Vector {
	std::string raw, encoded;
};

// RFC 4648 section 10, plus bytes that use every bit.
const std::vector<Vector> kVectors = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
    {"\xff\xff\xff", "////"},
    {"\xfb\xef\xbe", "++++"},
    {"\0\0\0"s, "AAAA"},
};

const std::vector<std::string> kMalformed = {
    "Zg",        // no padding
    "Zg=",       // short padding
    "Zg===",     // too much padding
    "Z===",      // one digit in a group
    "====",
    "=Zg=",      // padding first
    "Zg==Zm8=",  // padding in the middle
    "Zm 9v",     // space
    " Zm9v",
    "Zm9v ",
    "Zm9v\n",
    "Zm9v\r\n",
    "Zm\t9v",
    "Zm9v\0"s,
    "Zm9-",      // base64url alphabet
    "Zm9_",
    "Zm9*",
    "Zm9\xc3\xa9",
    "Zh==",      // non-canonical: pad bits set
    "Zm9=",      // non-canonical: pad bits set
    "Zm8=Zm8=",
    "A",
    "AAAAA",
};

std::string plain(std::string_view message)
{
	return maild::base64_encode(message);
}

} // namespace

Test(base64, vectors)
{
	for (const Vector &v : kVectors) {
		cr_expect_eq(maild::base64_encode(v.raw), v.encoded, "encode %s", v.encoded.c_str());
		std::optional<std::string> got = maild::base64_decode_strict(v.encoded);
		cr_expect(got.has_value(), "%s refused", v.encoded.c_str());
		if (got)
			cr_expect(*got == v.raw, "%s decoded wrong", v.encoded.c_str());
	}
}

Test(base64, malformed_refused)
{
	for (const std::string &s : kMalformed)
		cr_expect(!maild::base64_decode_strict(s).has_value(), "accepted \"%s\"", s.c_str());
}

Test(base64, canonical_only)
{
	// The last digit before the padding may only be one whose leftover
	// bits are zero: 4 of the 64 after one byte, 16 after two.
	int accepted = 0;
	for (char c : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"sv)
		accepted += maild::base64_decode_strict("Z"s + c + "==").has_value();
	cr_expect_eq(accepted, 4); // A, Q, g, w
	accepted = 0;
	for (char c : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"sv)
		accepted += maild::base64_decode_strict("Zm"s + c + "=").has_value();
	cr_expect_eq(accepted, 16);
}

Test(base64, round_trip_all_lengths)
{
	std::string raw;
	for (int n = 0; n < 300; n++) {
		std::string encoded = maild::base64_encode(raw);
		cr_expect_eq(encoded.size() % 4, 0u);
		std::optional<std::string> back = maild::base64_decode_strict(encoded);
		cr_assert(back.has_value(), "length %d", n);
		cr_expect(*back == raw, "length %d", n);
		raw += static_cast<char>(n * 37 + 11);
	}
}

Test(sasl_plain, decodes)
{
	std::string error;
	auto c = maild::decode_sasl_plain(plain("\0tim\0tanstaaftanstaaf"s), error);
	cr_assert(c.has_value(), "%s", error.c_str());
	cr_expect_eq(c->authzid, ""s);
	cr_expect_eq(c->authcid, "tim"s);
	cr_expect_eq(c->password, "tanstaaftanstaaf"s);
	c = maild::decode_sasl_plain(plain("Ursel\0Kurt\0xipj3plmq"s), error);
	cr_assert(c.has_value(), "%s", error.c_str());
	cr_expect_eq(c->authzid, "Ursel"s);
	cr_expect_eq(c->authcid, "Kurt"s);
	cr_expect_eq(c->password, "xipj3plmq"s);
}

Test(sasl_plain, limits)
{
	std::string error;
	std::string id(maild::kMaxSaslIdentity, 'i');
	std::string pw(maild::kMaxSaslPassword, 'p');
	auto c = maild::decode_sasl_plain(plain(id + '\0' + id + '\0' + pw), error);
	cr_expect(c.has_value(), "%s", error.c_str());
	cr_expect(!maild::decode_sasl_plain(plain(id + "i" + '\0' + "u" + '\0' + "p"), error));
	cr_expect_eq(error, "authorization identity too long"s);
	cr_expect(!maild::decode_sasl_plain(plain("\0"s + id + "i" + '\0' + "p"), error));
	cr_expect_eq(error, "authentication identity too long"s);
	cr_expect(!maild::decode_sasl_plain(plain("\0u\0"s + pw + "p"), error));
	cr_expect_eq(error, "password too long"s);
}

Test(sasl_plain, errors)
{
	struct Bad {
		std::string base64, error;
	};
	const std::vector<Bad> cases = {
	    {"", "empty response"},
	    {"=", "invalid base64"},
	    {"AHUAcA", "invalid base64"},
	    {"AHUAcA= =", "invalid base64"},
	    {plain("user password"), "PLAIN message needs two NULs"},
	    {plain("\0user password"s), "PLAIN message needs two NULs"},
	    {plain("\0u\0p\0"s), "PLAIN message has more than two NULs"},
	    {plain("a\0u\0p\0x"s), "PLAIN message has more than two NULs"},
	    {plain("\0\0p"s), "empty authentication identity"},
	    {plain("\0u\0"s), "empty password"},
	    {plain("\0\0"s), "empty authentication identity"},
	};
	for (const Bad &b : cases) {
		std::string error;
		cr_expect(!maild::decode_sasl_plain(b.base64, error).has_value(), "accepted %s", b.base64.c_str());
		cr_expect_eq(error, b.error, "%s: got \"%s\"", b.base64.c_str(), error.c_str());
	}
}

Test(sasl_login, decodes)
{
	std::string error;
	auto f = maild::decode_sasl_login_field("dXNlcm5hbWU=", error);
	cr_assert(f.has_value(), "%s", error.c_str());
	cr_expect_eq(*f, "username"s);
	std::string longest(maild::kMaxSaslPassword, 'x');
	f = maild::decode_sasl_login_field(maild::base64_encode(longest), error);
	cr_expect(f == longest);
}

Test(sasl_login, errors)
{
	struct Bad {
		std::string base64, error;
	};
	const std::vector<Bad> cases = {
	    {"", "empty response"},
	    {"=", "invalid base64"},
	    {"*", "invalid base64"},
	    {"dXNlcm5hbWU", "invalid base64"},
	    {"dXNlcm5hbWU= ", "invalid base64"},
	    {maild::base64_encode(std::string(maild::kMaxSaslPassword + 1, 'x')), "field too long"},
	    {maild::base64_encode("a\0b"s), "NUL, CR or LF in field"},
	    {maild::base64_encode("a\rb"), "NUL, CR or LF in field"},
	    {maild::base64_encode("ab\n"), "NUL, CR or LF in field"},
	};
	for (const Bad &b : cases) {
		std::string error;
		cr_expect(!maild::decode_sasl_login_field(b.base64, error).has_value(), "accepted %s",
		    b.base64.c_str());
		cr_expect_eq(error, b.error, "%s: got \"%s\"", b.base64.c_str(), error.c_str());
	}
}
