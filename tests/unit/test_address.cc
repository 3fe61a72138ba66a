// Mailbox and path parsing (common/address.h): table-driven got/want cases
// for every rule of RFC 5321 section 4.1.2, the limits of section 4.5.3.1
// at the boundary and one over, SMTPUTF8 (RFC 6531) and UTF-8
// well-formedness (RFC 3629); then rendering, domains and lookup keys.
#include "common/address.h"

#include <criterion/criterion.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace std::literals;
using maild::Mailbox;
using maild::ParseOptions;

namespace {

const ParseOptions kAscii{};
const ParseOptions kUtf8{.allow_utf8 = true};
const ParseOptions kNoLiteral{.allow_address_literal = false};

// Renders bytes readably in failure messages.
std::string show(std::string_view s)
{
	std::string r = "\"";
	for (unsigned char c : s) {
		if (c == '"' || c == '\\') {
			r += '\\';
			r += static_cast<char>(c);
		} else if (c < 0x20 || c >= 0x7f) {
			char hex[8];
			std::snprintf(hex, sizeof hex, "\\x%02x", c);
			r += hex;
		} else {
			r += static_cast<char>(c);
		}
	}
	return r + "\"";
}

std::string describe(const Mailbox &m)
{
	return "{local " + show(m.local) + ", domain " + show(m.domain) + (m.domain_is_literal ? ", literal" : "") +
	    (m.local_quoted ? ", quoted" : "") + "}";
}

std::string repeat(std::string_view s, std::size_t n)
{
	std::string r;
	for (std::size_t i = 0; i < n; i++)
		r += s;
	return r;
}

// A domain of exactly `length` octets (length >= 1), in labels of at most 63.
std::string domain_of(std::size_t length)
{
	std::string d;
	while (d.size() < length) {
		if (!d.empty())
			d += '.';
		std::size_t label = std::min<std::size_t>(63, length - d.size());
		if (label > 1 && length - d.size() - label == 1)
			label--; // never leave room for only a dot
		d += repeat("d", label);
	}
	return d;
}

struct MailboxCase {
	std::string name;
	std::string input;
	ParseOptions options;
	std::optional<Mailbox> want; // nullopt: refused with want_error
	std::string want_error;
};

Mailbox plain(std::string local, std::string domain)
{
	return Mailbox{std::move(local), std::move(domain), false, false};
}

Mailbox quoted(std::string local, std::string domain)
{
	return Mailbox{std::move(local), std::move(domain), false, true};
}

Mailbox literal(std::string local, std::string domain)
{
	return Mailbox{std::move(local), std::move(domain), true, false};
}

MailboxCase ok(std::string name, std::string input, ParseOptions options, Mailbox want)
{
	return {std::move(name), std::move(input), options, std::move(want), ""};
}

MailboxCase bad(std::string name, std::string input, ParseOptions options, std::string error)
{
	return {std::move(name), std::move(input), options, std::nullopt, std::move(error)};
}

const std::vector<MailboxCase> &mailbox_cases()
{
	static const std::vector<MailboxCase> cases = {
	    // Dot-string.
	    ok("simple", "user@example.com", kAscii, plain("user", "example.com")),
	    ok("case is kept", "John.Doe@Example.COM", kAscii, plain("John.Doe", "Example.COM")),
	    ok("every atext", "!#$%&'*+-/=?^_`{|}~09azAZ@x", kAscii, plain("!#$%&'*+-/=?^_`{|}~09azAZ", "x")),
	    ok("dots between atoms", "a.b.c@x", kAscii, plain("a.b.c", "x")),
	    ok("one-letter everything", "a@b", kAscii, plain("a", "b")),
	    bad("empty text", "", kAscii, "empty address"),
	    bad("empty local part", "@example.com", kAscii, "empty local part"),
	    bad("no at sign", "user", kAscii, "missing @domain"),
	    bad("leading dot", ".user@x", kAscii, "local part starts with a dot"),
	    bad("trailing dot", "user.@x", kAscii, "local part ends with a dot"),
	    bad("double dot", "us..er@x", kAscii, "two dots in a row in local part"),
	    bad("only a dot", ".@x", kAscii, "local part starts with a dot"),
	    bad("space", "us er@x", kAscii, "bad character 0x20 in local part"),
	    bad("comma", "a,b@x", kAscii, "bad character 0x2c in local part"),
	    bad("angle bracket", "a<b@x", kAscii, "bad character 0x3c in local part"),
	    bad("CR", "a\rb@x", kAscii, "bad character 0x0d in local part"),
	    bad("LF", "a\nb@x", kAscii, "bad character 0x0a in local part"),
	    bad("NUL", "a\0b@x"s, kAscii, "bad character 0x00 in local part"),
	    bad("tab", "a\tb@x", kAscii, "bad character 0x09 in local part"),
	    bad("DEL", "a\x7f@x", kAscii, "bad character 0x7f in local part"),
	    bad("RFC 5322 quoted word after atom", "a.\"b\"@x", kAscii, "bad character 0x22 in local part"),
	    // Quoted-string.
	    ok("quoted dot-string is unquoted", "\"john.doe\"@x", kAscii, plain("john.doe", "x")),
	    ok("needless quoted-pair resolved", "\"jo\\hn\"@x", kAscii, plain("john", "x")),
	    ok("quoted with a space", "\"john doe\"@x", kAscii, quoted("john doe", "x")),
	    ok("quoted-pair space", "\"john\\ doe\"@x", kAscii, quoted("john doe", "x")),
	    ok("escaped quote and backslash", "\"a\\\"b\\\\c\"@x", kAscii, quoted("a\"b\\c", "x")),
	    ok("empty quoted string", "\"\"@x", kAscii, quoted("", "x")),
	    ok("quoted leading dot", "\".a\"@x", kAscii, quoted(".a", "x")),
	    ok("quoted trailing dot", "\"a.\"@x", kAscii, quoted("a.", "x")),
	    ok("quoted double dot", "\"a..b\"@x", kAscii, quoted("a..b", "x")),
	    ok("quoted at sign", "\"a@b\"@x", kAscii, quoted("a@b", "x")),
	    ok("quoted angle brackets", "\"<a>\"@x", kAscii, quoted("<a>", "x")),
	    bad("unterminated quote", "\"abc@x", kAscii, "unterminated quoted string"),
	    bad("escaped closing quote", "\"abc\\\"@x", kAscii, "unterminated quoted string"),
	    bad("backslash at end", "\"abc\\", kAscii, "unterminated quoted string"),
	    bad("CR in quotes", "\"a\rb\"@x", kAscii, "bad character 0x0d in local part"),
	    bad("LF in quotes", "\"a\nb\"@x", kAscii, "bad character 0x0a in local part"),
	    bad("NUL in quotes", "\"a\0b\"@x"s, kAscii, "bad character 0x00 in local part"),
	    bad("tab in quotes", "\"a\tb\"@x", kAscii, "bad character 0x09 in local part"),
	    bad("quoted-pair of CR", "\"a\\\rb\"@x", kAscii, "bad character 0x0d in local part"),
	    bad("quoted-pair of NUL", "\"a\\\0b\"@x"s, kAscii, "bad character 0x00 in local part"),
	    bad("quoted-pair of DEL", "\"a\\\x7f\"@x", kAscii, "bad character 0x7f in local part"),
	    bad("text after closing quote", "\"a\"b@x", kAscii, "bad character 0x62 after quoted local part"),
	    bad("dot after closing quote", "\"a\".b@x", kAscii, "bad character 0x2e after quoted local part"),
	    bad("quoted, no domain", "\"a b\"", kAscii, "missing @domain"),
	    // Domain.
	    ok("numeric labels are a domain", "a@192.0.2.1", kAscii, plain("a", "192.0.2.1")),
	    ok("inner hyphens", "a@a-b.c--d.e", kAscii, plain("a", "a-b.c--d.e")),
	    ok("A-label", "a@xn--bcher-kva.example", kAscii, plain("a", "xn--bcher-kva.example")),
	    bad("no domain", "user@", kAscii, "empty domain"),
	    bad("leading dot in domain", "a@.x", kAscii, "domain starts with a dot"),
	    bad("trailing dot in domain", "a@x.", kAscii, "domain ends with a dot"),
	    bad("double dot in domain", "a@x..y", kAscii, "two dots in a row in domain"),
	    bad("label starts with hyphen", "a@x.-y", kAscii, "domain label starts with a hyphen"),
	    bad("label ends with hyphen", "a@x-.y", kAscii, "domain label ends with a hyphen"),
	    bad("hyphen only", "a@-", kAscii, "domain label starts with a hyphen"),
	    bad("underscore", "a@x_y.z", kAscii, "bad character 0x5f in domain"),
	    bad("second at sign", "a@b@c", kAscii, "bad character 0x40 in domain"),
	    bad("space in domain", "a@x y", kAscii, "bad character 0x20 in domain"),
	    bad("CR after domain", "a@x\r", kAscii, "bad character 0x0d in domain"),
	    bad("CRLF after domain", "a@x\r\n", kAscii, "bad character 0x0d in domain"),
	    bad("NUL in domain", "a@x\0y"s, kAscii, "bad character 0x00 in domain"),
	    bad("angle bracket after domain", "a@x>", kAscii, "bad character 0x3e in domain"),
	    // Address literals.
	    ok("IPv4 literal", "a@[192.0.2.1]", kAscii, literal("a", "[192.0.2.1]")),
	    ok("IPv4 zeros", "a@[0.0.0.0]", kAscii, literal("a", "[0.0.0.0]")),
	    ok("IPv6 literal", "a@[IPv6:2001:db8::1]", kAscii, literal("a", "[IPv6:2001:db8::1]")),
	    ok("IPv6 tag in any case", "a@[ipv6:::1]", kAscii, literal("a", "[ipv6:::1]")),
	    ok("IPv6 full", "a@[IPv6:1:2:3:4:5:6:7:8]", kAscii, literal("a", "[IPv6:1:2:3:4:5:6:7:8]")),
	    ok("IPv6 with IPv4", "a@[IPv6:::ffff:192.0.2.1]", kAscii, literal("a", "[IPv6:::ffff:192.0.2.1]")),
	    ok("quoted local with literal", "\"a b\"@[192.0.2.1]", kAscii,
	       Mailbox{"a b", "[192.0.2.1]", true, true}),
	    bad("literals disabled", "a@[192.0.2.1]", kNoLiteral, "address literal not allowed"),
	    bad("IPv4 three parts", "a@[1.2.3]", kAscii, "bad IPv4 address literal"),
	    bad("IPv4 five parts", "a@[1.2.3.4.5]", kAscii, "bad IPv4 address literal"),
	    bad("IPv4 octet 256", "a@[256.0.0.1]", kAscii, "bad IPv4 address literal"),
	    bad("IPv4 leading zero", "a@[01.2.3.4]", kAscii, "bad IPv4 address literal"),
	    bad("IPv4 name", "a@[example.com]", kAscii, "bad IPv4 address literal"),
	    bad("empty literal", "a@[]", kAscii, "bad IPv4 address literal"),
	    bad("IPv6 two double colons", "a@[IPv6:1::2::3]", kAscii, "bad IPv6 address literal"),
	    bad("IPv6 group too long", "a@[IPv6:12345::1]", kAscii, "bad IPv6 address literal"),
	    bad("IPv6 nine groups", "a@[IPv6:1:2:3:4:5:6:7:8:9]", kAscii, "bad IPv6 address literal"),
	    bad("IPv6 tag on IPv4", "a@[IPv6:192.0.2.1]", kAscii, "bad IPv6 address literal"),
	    bad("IPv6 without tag", "a@[2001:db8::1]", kAscii, "unsupported address literal tag"),
	    bad("IPv6 zone", "a@[IPv6:fe80::1%eth0]", kAscii, "bad IPv6 address literal"),
	    bad("general address literal", "a@[x-tag:content]", kAscii, "unsupported address literal tag"),
	    bad("tag without content", "a@[x-tag:]", kAscii, "bad address literal"),
	    bad("empty tag", "a@[:1]", kAscii, "bad address literal"),
	    bad("tag not an Ldh-str", "a@[a_b:1]", kAscii, "bad address literal"),
	    bad("tag ends with hyphen", "a@[x-:1]", kAscii, "bad address literal"),
	    bad("unterminated literal", "a@[IPv6:::1", kAscii, "unterminated address literal"),
	    bad("space in literal", "a@[1.2.3.4 ]", kAscii, "bad character 0x20 in address literal"),
	    bad("CR in literal", "a@[1.2.3.4\r]", kAscii, "bad character 0x0d in address literal"),
	    bad("nested bracket", "a@[[1.2.3.4]]", kAscii, "bad character 0x5b in address literal"),
	    bad("text after literal", "a@[1.2.3.4]x", kAscii, "bad character 0x78 after address literal"),
	    bad("label after literal", "a@[1.2.3.4].x", kAscii, "bad character 0x2e after address literal"),
	    bad("UTF-8 in literal", "a@[\xc3\xa9]", kUtf8, "bad character 0xc3 in address literal"),
	    // Length limits (section 4.5.3.1), at the boundary and one over.
	    ok("local part of 64", repeat("l", 64) + "@x", kAscii, plain(repeat("l", 64), "x")),
	    bad("local part of 65", repeat("l", 65) + "@x", kAscii, "local part longer than 64 octets"),
	    ok("quoted local part of 64 as written", "\"" + repeat("q", 61) + " \"@x", kAscii,
	       quoted(repeat("q", 61) + " ", "x")),
	    bad("quoted local part of 65 as written", "\"" + repeat("q", 62) + " \"@x", kAscii,
	        "local part longer than 64 octets"),
	    bad("quoted dot-string of 65 as written", "\"" + repeat("q", 63) + "\"@x", kAscii,
	        "local part longer than 64 octets"),
	    ok("label of 63", "a@" + repeat("l", 63) + ".x", kAscii, plain("a", repeat("l", 63) + ".x")),
	    bad("label of 64", "a@" + repeat("l", 64) + ".x", kAscii, "domain label longer than 63 octets"),
	    ok("last label of 63", "a@x." + repeat("l", 63), kAscii, plain("a", "x." + repeat("l", 63))),
	    bad("last label of 64", "a@x." + repeat("l", 64), kAscii, "domain label longer than 63 octets"),
	    ok("domain of 255", "a@" + domain_of(255), kAscii, plain("a", domain_of(255))),
	    bad("domain of 256", "a@" + domain_of(256), kAscii, "domain longer than 255 octets"),
	    // SMTPUTF8 (RFC 6531 section 3.3).
	    ok("UTF-8 local part", "pel\xc3\xa9@example.com", kUtf8, plain("pel\xc3\xa9", "example.com")),
	    bad("UTF-8 local part without SMTPUTF8", "pel\xc3\xa9@example.com", kAscii,
	        "non-ASCII character (needs SMTPUTF8)"),
	    ok("UTF-8 domain", "a@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", kUtf8,
	       plain("a", "\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a")),
	    bad("UTF-8 domain without SMTPUTF8", "a@\xe4\xbe\x8b.x", kAscii, "non-ASCII character (needs SMTPUTF8)"),
	    ok("UTF-8 quoted", "\"pel\xc3\xa9 x\"@x", kUtf8, quoted("pel\xc3\xa9 x", "x")),
	    ok("UTF-8 quoted dot-string unquoted", "\"pel\xc3\xa9\"@x", kUtf8, plain("pel\xc3\xa9", "x")),
	    bad("UTF-8 quoted without SMTPUTF8", "\"pel\xc3\xa9\"@x", kAscii, "non-ASCII character (needs SMTPUTF8)"),
	    bad("UTF-8 quoted-pair", "\"a\\\xc3\xa9\"@x", kUtf8, "non-ASCII character in quoted-pair"),
	    bad("UTF-8 quoted-pair without SMTPUTF8", "\"a\\\xc3\xa9\"@x", kAscii,
	        "non-ASCII character (needs SMTPUTF8)"),
	    ok("UTF-8 mixed label", "a@b\xc3\xbc\x63her-x.de", kUtf8, plain("a", "b\xc3\xbc\x63her-x.de")),
	    bad("UTF-8 label ends with hyphen", "a@\xc3\xbc-.de", kUtf8, "domain label ends with a hyphen"),
	    ok("U+00A0, first after C1", "\xc2\xa0@x", kUtf8, plain("\xc2\xa0", "x")),
	    ok("U+07FF", "\xdf\xbf@x", kUtf8, plain("\xdf\xbf", "x")),
	    ok("U+0800", "\xe0\xa0\x80@x", kUtf8, plain("\xe0\xa0\x80", "x")),
	    ok("U+D7FF, before surrogates", "\xed\x9f\xbf@x", kUtf8, plain("\xed\x9f\xbf", "x")),
	    ok("U+E000, after surrogates", "\xee\x80\x80@x", kUtf8, plain("\xee\x80\x80", "x")),
	    ok("U+FFFF", "\xef\xbf\xbf@x", kUtf8, plain("\xef\xbf\xbf", "x")),
	    ok("U+10000", "\xf0\x90\x80\x80@x", kUtf8, plain("\xf0\x90\x80\x80", "x")),
	    ok("U+1F600", "\xf0\x9f\x98\x80@x", kUtf8, plain("\xf0\x9f\x98\x80", "x")),
	    ok("U+10FFFF", "\xf4\x8f\xbf\xbf@x", kUtf8, plain("\xf4\x8f\xbf\xbf", "x")),
	    ok("local part of 64 UTF-8 octets", repeat("\xc3\xa9", 32) + "@x", kUtf8, plain(repeat("\xc3\xa9", 32), "x")),
	    bad("local part of 66 UTF-8 octets", repeat("\xc3\xa9", 33) + "@x", kUtf8, "local part longer than 64 octets"),
	    ok("label of 63 UTF-8 octets", "a@" + repeat("\xe4\xbe\x8b", 21), kUtf8, plain("a", repeat("\xe4\xbe\x8b", 21))),
	    bad("label of 66 UTF-8 octets", "a@" + repeat("\xe4\xbe\x8b", 22), kUtf8, "domain label longer than 63 octets"),
	    // UTF-8 well-formedness (RFC 3629 section 4).
	    bad("overlong NUL", "a\xc0\x80@x", kUtf8, "invalid UTF-8"),
	    bad("overlong 2-byte", "a\xc1\xbf@x", kUtf8, "invalid UTF-8"),
	    bad("overlong 3-byte slash", "a\xe0\x80\xaf@x", kUtf8, "invalid UTF-8"),
	    bad("overlong 3-byte U+07FF", "a\xe0\x9f\xbf@x", kUtf8, "invalid UTF-8"),
	    bad("overlong 4-byte", "a\xf0\x80\x80\xaf@x", kUtf8, "invalid UTF-8"),
	    bad("overlong 4-byte U+FFFF", "a\xf0\x8f\xbf\xbf@x", kUtf8, "invalid UTF-8"),
	    bad("surrogate U+D800", "a\xed\xa0\x80@x", kUtf8, "invalid UTF-8"),
	    bad("surrogate U+DFFF", "a\xed\xbf\xbf@x", kUtf8, "invalid UTF-8"),
	    bad("surrogate in quotes", "\"a\xed\xa0\x80\"@x", kUtf8, "invalid UTF-8"),
	    bad("surrogate in domain", "a@\xed\xa0\x80", kUtf8, "invalid UTF-8"),
	    bad("above U+10FFFF", "a\xf4\x90\x80\x80@x", kUtf8, "invalid UTF-8"),
	    bad("lead byte F5", "a\xf5\x80\x80\x80@x", kUtf8, "invalid UTF-8"),
	    bad("byte FF", "a\xff@x", kUtf8, "invalid UTF-8"),
	    bad("lone continuation byte", "a\x80@x", kUtf8, "invalid UTF-8"),
	    bad("truncated before ASCII", "a\xc3@x", kUtf8, "invalid UTF-8"),
	    bad("truncated 3-byte", "a\xe4\xbe@x", kUtf8, "invalid UTF-8"),
	    bad("truncated at end of text", "a@x\xe4\xbe", kUtf8, "invalid UTF-8"),
	    bad("truncated 4-byte at end of text", "a@x\xf0\x9f\x98", kUtf8, "invalid UTF-8"),
	    bad("C1 control in local part", "a\xc2\x85@x", kUtf8, "control character U+0085 in local part"),
	    bad("C1 U+0080", "\"\xc2\x80\"@x", kUtf8, "control character U+0080 in local part"),
	    bad("C1 control in domain", "a@x\xc2\x9f", kUtf8, "control character U+009F in domain"),
	};
	return cases;
}

} // namespace

Test(parse_mailbox, table)
{
	for (const auto &c : mailbox_cases()) {
		std::string error;
		std::optional<Mailbox> got = maild::parse_mailbox(c.input, c.options, error);
		if (c.want) {
			cr_expect(got.has_value(), "%s: %s refused: %s", c.name.c_str(), show(c.input).c_str(),
			    error.c_str());
			if (got)
				cr_expect(*got == *c.want, "%s: %s\n  got  %s\n  want %s", c.name.c_str(),
				    show(c.input).c_str(), describe(*got).c_str(), describe(*c.want).c_str());
		} else {
			cr_expect(!got.has_value(), "%s: %s accepted as %s, want error \"%s\"", c.name.c_str(),
			    show(c.input).c_str(), describe(got.value_or(Mailbox{})).c_str(), c.want_error.c_str());
			cr_expect(error == c.want_error, "%s: %s\n  got error  \"%s\"\n  want error \"%s\"", c.name.c_str(),
			    show(c.input).c_str(), error.c_str(), c.want_error.c_str());
		}
	}
}

// Errors go to logs as they are: no byte of the input may leak into them.
Test(parse_mailbox, errors_are_printable_ascii)
{
	for (const auto &c : mailbox_cases()) {
		std::string error;
		if (maild::parse_mailbox(c.input, c.options, error))
			continue;
		for (unsigned char ch : error)
			cr_expect(ch >= 0x20 && ch < 0x7f, "%s: error %s", c.name.c_str(), show(error).c_str());
	}
}

// SMTPUTF8 only widens the grammar: what parses without it parses the same
// with it.
Test(parse_mailbox, utf8_accepts_every_ascii_mailbox)
{
	for (const auto &c : mailbox_cases()) {
		std::string error;
		std::optional<Mailbox> ascii = maild::parse_mailbox(c.input, kAscii, error);
		if (!ascii)
			continue;
		std::optional<Mailbox> utf8 = maild::parse_mailbox(c.input, kUtf8, error);
		cr_expect(utf8 == ascii, "%s: %s differs with SMTPUTF8", c.name.c_str(), show(c.input).c_str());
	}
}

Test(to_string, renders)
{
	struct {
		Mailbox mailbox;
		std::string want;
	} const cases[] = {
	    {plain("john.doe", "example.com"), "john.doe@example.com"},
	    {quoted("john doe", "x"), "\"john doe\"@x"},
	    {quoted("a\"b\\c", "x"), "\"a\\\"b\\\\c\"@x"},
	    {quoted("", "x"), "\"\"@x"},
	    {quoted(".a", "x"), "\".a\"@x"},
	    {quoted("a..b", "x"), "\"a..b\"@x"},
	    {quoted("a@b", "x"), "\"a@b\"@x"},
	    {literal("a", "[192.0.2.1]"), "a@[192.0.2.1]"},
	    {Mailbox{"a b", "[IPv6:::1]", true, true}, "\"a b\"@[IPv6:::1]"},
	    {plain("pel\xc3\xa9", "x"), "pel\xc3\xa9@x"},
	    {quoted("pel\xc3\xa9 x", "x"), "\"pel\xc3\xa9 x\"@x"},
	};
	for (const auto &c : cases) {
		std::string got = maild::to_string(c.mailbox);
		cr_expect(got == c.want, "%s: got %s, want %s", describe(c.mailbox).c_str(), show(got).c_str(),
		    show(c.want).c_str());
	}
}

// Every mailbox the parser accepts renders to text that parses back to the
// same value, never longer than what was written.
Test(to_string, round_trip)
{
	for (const auto &c : mailbox_cases()) {
		std::string error;
		std::optional<Mailbox> first = maild::parse_mailbox(c.input, c.options, error);
		if (!first)
			continue;
		std::string text = maild::to_string(*first);
		cr_expect(text.size() <= c.input.size(), "%s: rendered %s is longer than %s", c.name.c_str(),
		    show(text).c_str(), show(c.input).c_str());
		std::optional<Mailbox> again = maild::parse_mailbox(text, c.options, error);
		cr_expect(again.has_value(), "%s: rendered %s refused: %s", c.name.c_str(), show(text).c_str(),
		    error.c_str());
		if (again)
			cr_expect(*again == *first, "%s: %s parses to %s, want %s", c.name.c_str(), show(text).c_str(),
			    describe(*again).c_str(), describe(*first).c_str());
	}
}

namespace {

struct PathCase {
	std::string name;
	std::string input;
	bool allow_null;
	ParseOptions options;
	std::optional<maild::Path> want; // nullopt: refused with want_error
	std::string want_error;
};

maild::Path path_to(Mailbox mailbox, std::size_t consumed)
{
	return maild::Path{false, std::move(mailbox), consumed};
}

PathCase path_ok(std::string name, std::string input, bool allow_null, maild::Path want)
{
	return {std::move(name), std::move(input), allow_null, kAscii, std::move(want), ""};
}

PathCase path_bad(std::string name, std::string input, bool allow_null, std::string error)
{
	return {std::move(name), std::move(input), allow_null, kAscii, std::nullopt, std::move(error)};
}

// <local@domain> of exactly `length` octets, brackets included.
std::string path_of(std::size_t length)
{
	return "<" + repeat("l", 64) + "@" + domain_of(length - 67) + ">";
}

const std::vector<PathCase> &path_cases()
{
	static const std::vector<PathCase> cases = {
	    path_ok("simple", "<a@b.c>", false, path_to(plain("a", "b.c"), 7)),
	    path_ok("parameters follow", "<a@b.c> SIZE=100 BODY=8BITMIME", false, path_to(plain("a", "b.c"), 7)),
	    path_ok("CRLF follows", "<a@b.c>\r\n", false, path_to(plain("a", "b.c"), 7)),
	    path_ok("a second > is the caller's", "<a@b.c>>", false, path_to(plain("a", "b.c"), 7)),
	    path_ok("null path", "<>", true, maild::Path{true, {}, 2}),
	    path_ok("null path with parameters", "<> BODY=8BITMIME", true, maild::Path{true, {}, 2}),
	    path_bad("null path refused", "<>", false, "null path not allowed"),
	    path_ok("source route", "<@r1.example,@r2.example:a@b>", false, path_to(plain("a", "b"), 29)),
	    path_ok("one-hop source route", "<@r:a@b>", false, path_to(plain("a", "b"), 8)),
	    path_ok("quoted > inside", "<\"a>b\"@x> X", false, path_to(quoted("a>b", "x"), 9)),
	    path_ok("quoted empty", "<\"\"@x>", false, path_to(quoted("", "x"), 6)),
	    path_ok("literal", "<a@[192.0.2.1]>", false, path_to(literal("a", "[192.0.2.1]"), 15)),
	    path_ok("path of 256", path_of(256), false, path_to(plain(repeat("l", 64), domain_of(189)), 256)),
	    path_bad("path of 257", path_of(257), false, "path longer than 256 octets"),
	    path_bad("no bracket", "a@b", false, "path does not start with <"),
	    path_bad("leading space", " <a@b>", false, "path does not start with <"),
	    path_bad("empty", "", true, "path does not start with <"),
	    path_bad("unterminated", "<a@b", false, "missing > at end of path"),
	    path_bad("only <", "<", false, "empty local part"),
	    path_bad("space before >", "<a@b >", false, "bad character 0x20 in domain"),
	    path_bad("space after <", "< a@b>", false, "bad character 0x20 in local part"),
	    path_bad("no domain", "<postmaster>", false, "missing @domain"),
	    path_bad("empty domain", "<a@>", false, "empty domain"),
	    path_bad("text after literal", "<a@[192.0.2.1]x>", false, "bad character 0x78 after address literal"),
	    path_bad("route without domain", "<@:a@b>", false, "empty domain"),
	    path_bad("route hop without @", "<@r1,r2:a@b>", false, "bad source route"),
	    path_bad("route without colon", "<@r1>", false, "bad character 0x3e in domain"),
	    path_bad("route at end of text", "<@r1", false, "unterminated source route"),
	    path_bad("route with bad domain", "<@r1..x:a@b>", false, "two dots in a row in domain"),
	    path_bad("route with literal", "<@[192.0.2.1]:a@b>", false, "bad character 0x5b in domain"),
	    path_bad("route without mailbox", "<@r:>", false, "empty local part"),
	    path_bad("local part of 65", "<" + repeat("l", 65) + "@x>", false, "local part longer than 64 octets"),
	    path_bad("CR inside", "<a\r@b>", false, "bad character 0x0d in local part"),
	    path_bad("NUL inside", "<a@b\0>"s, false, "bad character 0x00 in domain"),
	    path_bad("UTF-8 without SMTPUTF8", "<pel\xc3\xa9@x>", false, "non-ASCII character (needs SMTPUTF8)"),
	    {"UTF-8 with SMTPUTF8", "<pel\xc3\xa9@x> SMTPUTF8", false, kUtf8, path_to(plain("pel\xc3\xa9", "x"), 9), ""},
	    {"literal refused", "<a@[192.0.2.1]>", false, kNoLiteral, std::nullopt, "address literal not allowed"},
	};
	return cases;
}

std::string describe(const maild::Path &p)
{
	return (p.null ? "null" : describe(p.mailbox)) + " consumed " + std::to_string(p.consumed);
}

bool same(const maild::Path &a, const maild::Path &b)
{
	return a.null == b.null && a.mailbox == b.mailbox && a.consumed == b.consumed;
}

} // namespace

Test(parse_path, table)
{
	for (const auto &c : path_cases()) {
		std::string error;
		std::optional<maild::Path> got = maild::parse_path(c.input, c.allow_null, c.options, error);
		if (c.want) {
			cr_expect(got.has_value(), "%s: %s refused: %s", c.name.c_str(), show(c.input).c_str(),
			    error.c_str());
			if (got)
				cr_expect(same(*got, *c.want), "%s: %s\n  got  %s\n  want %s", c.name.c_str(),
				    show(c.input).c_str(), describe(*got).c_str(), describe(*c.want).c_str());
		} else {
			cr_expect(!got.has_value(), "%s: %s accepted, want error \"%s\"", c.name.c_str(),
			    show(c.input).c_str(), c.want_error.c_str());
			cr_expect(error == c.want_error, "%s: %s\n  got error  \"%s\"\n  want error \"%s\"", c.name.c_str(),
			    show(c.input).c_str(), error.c_str(), c.want_error.c_str());
		}
	}
}

// A path cut short anywhere (as by a line limit) is never taken for a
// shorter one.
Test(parse_path, every_prefix_is_refused)
{
	for (const auto &c : path_cases()) {
		if (!c.want)
			continue;
		for (std::size_t k = 0; k < c.want->consumed; k++) {
			std::string error;
			std::string prefix = c.input.substr(0, k);
			cr_expect(!maild::parse_path(prefix, c.allow_null, c.options, error).has_value(),
			    "%s: prefix %s accepted", c.name.c_str(), show(prefix).c_str());
		}
	}
}

// The mailbox inside a path is the one parse_mailbox sees in the same text.
Test(parse_path, agrees_with_parse_mailbox)
{
	for (const auto &c : mailbox_cases()) {
		std::string error;
		std::optional<Mailbox> want = maild::parse_mailbox(c.input, c.options, error);
		if (!want || c.input.size() + 2 > 256)
			continue;
		std::optional<maild::Path> got = maild::parse_path("<" + c.input + ">", false, c.options, error);
		cr_expect(got.has_value(), "%s: <%s> refused: %s", c.name.c_str(), show(c.input).c_str(), error.c_str());
		if (got)
			cr_expect(got->mailbox == *want && got->consumed == c.input.size() + 2, "%s: <%s> gives %s",
			    c.name.c_str(), show(c.input).c_str(), describe(*got).c_str());
	}
}

Test(is_valid_domain, table)
{
	struct {
		std::string domain;
		bool allow_utf8;
		bool want;
	} const cases[] = {
	    {"example.com", false, true},
	    {"EXAMPLE.com", false, true},
	    {"a", false, true},
	    {"xn--bcher-kva.example", false, true},
	    {"192.0.2.1", false, true},
	    {"", false, false},
	    {"a..b", false, false},
	    {"a.", false, false},
	    {".a", false, false},
	    {"-a.b", false, false},
	    {"a-.b", false, false},
	    {"a_b.c", false, false},
	    {"a b", false, false},
	    {"a\r", false, false},
	    {"a\0b"s, false, false},
	    {"[192.0.2.1]", false, false},
	    {"user@example.com", false, false},
	    {"\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", false, false},
	    {"\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", true, true},
	    {"\xed\xa0\x80.x", true, false},
	    {"x\xc2\x85.y", true, false},
	    {repeat("l", 63) + ".x", false, true},
	    {repeat("l", 64) + ".x", false, false},
	    {domain_of(255), false, true},
	    {domain_of(256), false, false},
	};
	for (const auto &c : cases)
		cr_expect(maild::is_valid_domain(c.domain, c.allow_utf8) == c.want, "%s (utf8 %d): want %d",
		    show(c.domain).c_str(), c.allow_utf8, c.want);
}

Test(canonical, domain_and_local)
{
	struct {
		std::string in;
		std::string domain;
		std::string local;
	} const cases[] = {
	    {"Example.COM", "example.com", "example.com"},
	    {"John.Doe+Tag", "john.doe+tag", "john.doe+tag"},
	    {"already.lower", "already.lower", "already.lower"},
	    // Only ASCII letters fold: U+00C9 and U+00E9 stay as they are.
	    {"\xc3\x89Xample", "\xc3\x89xample", "\xc3\x89xample"},
	    {"Pel\xc3\xa9", "pel\xc3\xa9", "pel\xc3\xa9"},
	    {"[IPv6:ABCD::1]", "[ipv6:abcd::1]", "[ipv6:abcd::1]"},
	    // No trailing dot is stripped (nor is any added).
	    {"Example.COM.", "example.com.", "example.com."},
	    {"", "", ""},
	};
	for (const auto &c : cases) {
		std::string domain = maild::canonical_domain(c.in);
		std::string local = maild::fold_local(c.in);
		cr_expect(domain == c.domain, "canonical_domain(%s) = %s, want %s", show(c.in).c_str(),
		    show(domain).c_str(), show(c.domain).c_str());
		cr_expect(local == c.local, "fold_local(%s) = %s, want %s", show(c.in).c_str(), show(local).c_str(),
		    show(c.local).c_str());
	}
}

Test(split_subaddress, table)
{
	struct {
		std::string local;
		char separator;
		std::string user;
		std::string detail;
		bool has_detail;
	} const cases[] = {
	    {"user+tag", '+', "user", "tag", true},
	    {"user+tag+more", '+', "user", "tag+more", true},
	    {"user+", '+', "user", "", true},
	    {"user", '+', "user", "", false},
	    {"+user", '+', "+user", "", false},
	    {"+", '+', "+", "", false},
	    {"", '+', "", "", false},
	    {"user-tag", '-', "user", "tag", true},
	    {"user+tag", '-', "user+tag", "", false},
	    {"first.last+list", '+', "first.last", "list", true},
	};
	for (const auto &c : cases) {
		maild::SubaddressSplit got = maild::split_subaddress(c.local, c.separator);
		cr_expect(got.user == c.user && got.detail == c.detail && got.has_detail == c.has_detail,
		    "split_subaddress(%s, '%c') = {%s, %s, %d}, want {%s, %s, %d}", show(c.local).c_str(), c.separator,
		    show(got.user).c_str(), show(got.detail).c_str(), got.has_detail, show(c.user).c_str(),
		    show(c.detail).c_str(), c.has_detail);
	}
}

// The parts are views into the argument, not copies.
Test(split_subaddress, views_into_input)
{
	std::string local = "user+tag";
	maild::SubaddressSplit got = maild::split_subaddress(local, '+');
	cr_expect(got.user.data() == local.data());
	cr_expect(got.detail.data() == local.data() + 5);
}
