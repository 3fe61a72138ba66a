// xtext (smtpd/xtext.h, RFC 3461 section 4): table-driven decoding, every
// byte encoded and decoded back, and what makes the decoder refuse.
#include "smtpd/xtext.h"

#include <criterion/criterion.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace std::literals;

namespace {

struct Case {
	std::string input;
	std::optional<std::string> want;
};

const std::vector<Case> kDecodeCases = {
    {"", ""s},
    {"abc", "abc"s},
    {"!~", "!~"s},
    {"a+2Bb", "a+b"s},
    {"+3D", "="s},
    {"+20", " "s},
    {"+00", "\0"s},
    {"+FF", "\xff"s},
    {"+2B+2B", "++"s},
    {"user+40example.com", "user@example.com"s},
    // Refused.
    {"+", std::nullopt},
    {"+2", std::nullopt},
    {"a+2", std::nullopt},
    {"+2b", std::nullopt},  // lower-case hex
    {"+G0", std::nullopt},
    {"+-1", std::nullopt},
    {"+ 1", std::nullopt},
    {"a=b", std::nullopt},  // '=' must be encoded
    {"a b", std::nullopt},  // SP
    {"a\tb", std::nullopt},
    {"a\x7f", std::nullopt}, // DEL
    {"a\x80", std::nullopt}, // non-ASCII
    {"\0"s, std::nullopt},
    {"++2B", std::nullopt},
};

} // namespace

Test(xtext_decode, table)
{
	for (const Case &c : kDecodeCases) {
		std::optional<std::string> got = maild::xtext_decode(c.input);
		if (c.want) {
			cr_expect(got.has_value(), "\"%s\" refused", c.input.c_str());
			if (got)
				cr_expect(*got == *c.want, "\"%s\" decoded wrong", c.input.c_str());
		} else {
			cr_expect(!got.has_value(), "\"%s\" accepted", c.input.c_str());
		}
	}
}

Test(xtext_encode, plain_text_unchanged)
{
	cr_expect_eq(maild::xtext_encode("user@example.com"), "user@example.com"s);
	cr_expect_eq(maild::xtext_encode(""), ""s);
}

Test(xtext_encode, specials_upper_hex)
{
	cr_expect_eq(maild::xtext_encode("a+b=c d"), "a+2Bb+3Dc+20d"s);
	cr_expect_eq(maild::xtext_encode("\0\n\x7f\xff"s), "+00+0A+7F+FF"s);
}

Test(xtext, every_byte_round_trips)
{
	std::string all;
	for (int c = 0; c < 256; c++)
		all += static_cast<char>(c);
	std::string encoded = maild::xtext_encode(all);
	for (unsigned char c : encoded)
		cr_expect(c >= '!' && c <= '~' && c != '=', "encoded byte 0x%02x", c);
	std::optional<std::string> back = maild::xtext_decode(encoded);
	cr_assert(back.has_value());
	cr_expect(*back == all);
	// Each byte alone: an xchar stays itself, anything else becomes +XX.
	for (int c = 0; c < 256; c++) {
		std::string one(1, static_cast<char>(c));
		std::string e = maild::xtext_encode(one);
		bool xchar = c >= '!' && c <= '~' && c != '+' && c != '=';
		cr_expect_eq(e.size(), xchar ? 1u : 3u, "byte 0x%02x", c);
		cr_expect(maild::xtext_decode(e) == one, "byte 0x%02x", c);
	}
}
