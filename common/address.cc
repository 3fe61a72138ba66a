// RFC 5321 / RFC 6531 addresses: see address.h. One cursor-based parser
// serves parse_mailbox, parse_path and is_valid_domain, so a mailbox means
// the same thing to the SMTP server, the lookup role and mailctl.
#include "common/address.h"

#include <arpa/inet.h>

#include <cstdio>
#include <utility>

namespace maild {

namespace {

// RFC 5321 section 4.5.3.1.
constexpr std::size_t kMaxLocalPart = 64;
constexpr std::size_t kMaxDomain = 255;
constexpr std::size_t kMaxLabel = 63;
constexpr std::size_t kMaxPath = 256;

bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

bool is_let_dig(unsigned char c)
{
	return is_alpha(c) || is_digit(c);
}

// RFC 5322 atext, ASCII part.
bool is_atext(unsigned char c)
{
	return is_let_dig(c) || std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) != std::string_view::npos;
}

// RFC 5321 qtextSMTP, ASCII part: printable except '"' and '\'.
bool is_qtext(unsigned char c)
{
	return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? static_cast<unsigned char>(c - 'A' + 'a') : c;
}

std::string ascii_lower(std::string_view s)
{
	std::string r(s);
	for (char &c : r)
		c = static_cast<char>(lower(static_cast<unsigned char>(c)));
	return r;
}

bool iequals(std::string_view a, std::string_view b)
{
	if (a.size() != b.size())
		return false;
	for (std::size_t i = 0; i < a.size(); i++)
		if (lower(static_cast<unsigned char>(a[i])) != lower(static_cast<unsigned char>(b[i])))
			return false;
	return true;
}

// The well-formed multi-byte sequences of RFC 3629 section 4: each lead
// byte range with the range its second byte must fall in; later bytes are
// 0x80-0xBF. The narrowed second-byte ranges exclude overlong forms,
// surrogates (U+D800-U+DFFF) and code points above U+10FFFF.
struct Utf8Lead {
	unsigned char lead_lo, lead_hi;
	std::size_t length;
	unsigned char second_lo, second_hi;
};
constexpr Utf8Lead kUtf8Leads[] = {
    {0xC2, 0xDF, 2, 0x80, 0xBF},
    {0xE0, 0xE0, 3, 0xA0, 0xBF},
    {0xE1, 0xEC, 3, 0x80, 0xBF},
    {0xED, 0xED, 3, 0x80, 0x9F},
    {0xEE, 0xEF, 3, 0x80, 0xBF},
    {0xF0, 0xF0, 4, 0x90, 0xBF},
    {0xF1, 0xF3, 4, 0x80, 0xBF},
    {0xF4, 0xF4, 4, 0x80, 0x8F},
};

// Length of the well-formed UTF-8 non-ASCII character at the start of s
// (which is not empty), or 0 if there is none (also when s ends inside it).
std::size_t utf8_char_length(std::string_view s)
{
	auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
	for (const auto &lead : kUtf8Leads) {
		if (byte(0) < lead.lead_lo || byte(0) > lead.lead_hi)
			continue;
		if (s.size() < lead.length || byte(1) < lead.second_lo || byte(1) > lead.second_hi)
			return 0;
		for (std::size_t i = 2; i < lead.length; i++)
			if (byte(i) < 0x80 || byte(i) > 0xBF)
				return 0;
		return lead.length;
	}
	return 0;
}

// A Dot-string: atoms of atext separated by single dots. Non-ASCII bytes
// count as atext: the parser has already checked them, and to_string must
// not quote a UTF-8 local part that did not need quotes.
bool is_dot_string(std::string_view s)
{
	if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != std::string_view::npos)
		return false;
	for (unsigned char c : s)
		if (c != '.' && !is_atext(c) && c < 0x80)
			return false;
	return true;
}

// Standardized-tag = Ldh-str (RFC 5321 section 4.1.3).
bool is_ldh_str(std::string_view s)
{
	if (s.empty() || !is_let_dig(static_cast<unsigned char>(s.back())))
		return false;
	for (unsigned char c : s)
		if (!is_let_dig(c) && c != '-')
			return false;
	return true;
}

class AddressParser {
public:
	AddressParser(std::string_view text, const ParseOptions &options) : text_(text), options_(options) {}

	bool at_end() const { return pos_ == text_.size(); }
	const std::string &error() const { return error_; }

	// Each parses from the cursor and leaves it after what it took. `stops`
	// lists the characters that may follow the construct (besides the end
	// of the text); any other character there is an error.
	bool mailbox(Mailbox &out, std::string_view stops);
	bool domain_name(std::string_view stops);
	bool path(Path &out, bool allow_null);

private:
	unsigned char peek() const { return static_cast<unsigned char>(text_[pos_]); }
	bool stops_here(std::string_view stops) const
	{
		return at_end() || stops.find(text_[pos_]) != std::string_view::npos;
	}
	bool fail(std::string message)
	{
		error_ = std::move(message);
		return false;
	}
	bool bad_char(unsigned char c, const char *where);
	bool utf8_char(const char *where);
	bool local_part(Mailbox &out, std::string_view stops);
	bool dot_string(Mailbox &out, std::string_view stops);
	bool quoted_string(Mailbox &out, std::string_view stops);
	bool address_literal(std::string_view stops);
	bool source_route();

	std::string_view text_;
	const ParseOptions &options_;
	std::size_t pos_ = 0;
	std::string error_;
};

// The byte goes into the message in hex only, so that the message is safe
// to log whatever the peer sent.
bool AddressParser::bad_char(unsigned char c, const char *where)
{
	char message[80];
	std::snprintf(message, sizeof message, "bad character 0x%02x %s", c, where);
	return fail(message);
}

// Takes one UTF-8 non-ASCII character, allowed only with SMTPUTF8 (RFC 6531
// section 3.3). C1 controls are refused like C0 ones.
bool AddressParser::utf8_char(const char *where)
{
	if (!options_.allow_utf8)
		return fail("non-ASCII character (needs SMTPUTF8)");
	std::size_t n = utf8_char_length(text_.substr(pos_));
	if (n == 0)
		return fail("invalid UTF-8");
	auto second = static_cast<unsigned char>(text_[pos_ + 1]);
	if (peek() == 0xC2 && second < 0xA0) {
		char message[80];
		std::snprintf(message, sizeof message, "control character U+%04X %s", second, where);
		return fail(message);
	}
	pos_ += n;
	return true;
}

bool AddressParser::mailbox(Mailbox &out, std::string_view stops)
{
	std::size_t start = pos_;
	if (!local_part(out, stops))
		return false;
	if (pos_ - start > kMaxLocalPart)
		return fail("local part longer than 64 octets");
	if (at_end() || peek() != '@')
		return fail("missing @domain");
	pos_++;
	start = pos_;
	bool literal = !at_end() && peek() == '[';
	if (!(literal ? address_literal(stops) : domain_name(stops)))
		return false;
	out.domain = text_.substr(start, pos_ - start);
	out.domain_is_literal = literal;
	return true;
}

bool AddressParser::local_part(Mailbox &out, std::string_view stops)
{
	if (!at_end() && peek() == '"')
		return quoted_string(out, stops);
	return dot_string(out, stops);
}

bool AddressParser::dot_string(Mailbox &out, std::string_view stops)
{
	std::size_t start = pos_;
	while (!at_end()) {
		unsigned char c = peek();
		if (c == '.') {
			if (pos_ == start)
				return fail("local part starts with a dot");
			if (text_[pos_ - 1] == '.')
				return fail("two dots in a row in local part");
			pos_++;
		} else if (is_atext(c)) {
			pos_++;
		} else if (c >= 0x80) {
			if (!utf8_char("in local part"))
				return false;
		} else {
			break;
		}
	}
	if (!at_end() && peek() != '@' && !stops_here(stops))
		return bad_char(peek(), "in local part");
	if (pos_ == start)
		return fail("empty local part");
	if (text_[pos_ - 1] == '.')
		return fail("local part ends with a dot");
	out.local = text_.substr(start, pos_ - start);
	out.local_quoted = false;
	return true;
}

// The content is kept with its quoted-pairs resolved; the quotes are dropped
// when they were not needed (see Mailbox::local).
bool AddressParser::quoted_string(Mailbox &out, std::string_view stops)
{
	std::string content;
	pos_++;
	for (;;) {
		if (at_end())
			return fail("unterminated quoted string");
		unsigned char c = peek();
		if (c == '"') {
			pos_++;
			break;
		}
		if (c == '\\') {
			// quoted-pairSMTP = %d92 %d32-126: RFC 6531 does not extend it.
			if (pos_ + 1 == text_.size())
				return fail("unterminated quoted string");
			auto quoted = static_cast<unsigned char>(text_[pos_ + 1]);
			if (quoted >= 0x80)
				return fail(options_.allow_utf8 ? "non-ASCII character in quoted-pair"
				                                : "non-ASCII character (needs SMTPUTF8)");
			if (quoted < 32 || quoted > 126)
				return bad_char(quoted, "in local part");
			content += static_cast<char>(quoted);
			pos_ += 2;
		} else if (c >= 0x80) {
			std::size_t from = pos_;
			if (!utf8_char("in local part"))
				return false;
			content += text_.substr(from, pos_ - from);
		} else if (is_qtext(c)) {
			content += static_cast<char>(c);
			pos_++;
		} else {
			return bad_char(c, "in local part");
		}
	}
	if (!at_end() && peek() != '@' && !stops_here(stops))
		return bad_char(peek(), "after quoted local part");
	out.local_quoted = !is_dot_string(content);
	out.local = std::move(content);
	return true;
}

// Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str], or
// with SMTPUTF8 a label holding UTF-8 (RFC 6531 section 3.3: U-label).
bool AddressParser::domain_name(std::string_view stops)
{
	std::size_t start = pos_;
	for (;;) {
		std::size_t label_start = pos_;
		while (!at_end()) {
			unsigned char c = peek();
			if (is_let_dig(c) || c == '-')
				pos_++;
			else if (c >= 0x80) {
				if (!utf8_char("in domain"))
					return false;
			} else
				break;
		}
		std::string_view label = text_.substr(label_start, pos_ - label_start);
		bool more = !at_end() && peek() == '.';
		if (!more && !stops_here(stops))
			return bad_char(peek(), "in domain");
		if (label.empty()) {
			if (more)
				return fail(pos_ == start ? "domain starts with a dot" : "two dots in a row in domain");
			return fail(pos_ == start ? "empty domain" : "domain ends with a dot");
		}
		if (label.front() == '-')
			return fail("domain label starts with a hyphen");
		if (label.back() == '-')
			return fail("domain label ends with a hyphen");
		if (label.size() > kMaxLabel)
			return fail("domain label longer than 63 octets");
		if (!more)
			break;
		pos_++;
	}
	if (pos_ - start > kMaxDomain)
		return fail("domain longer than 255 octets");
	return true;
}

// address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
// General-address-literal ) "]" (RFC 5321 section 4.1.3). The addresses
// themselves are left to inet_pton.
bool AddressParser::address_literal(std::string_view stops)
{
	if (!options_.allow_address_literal)
		return fail("address literal not allowed");
	std::size_t start = ++pos_;
	for (; !at_end() && peek() != ']'; pos_++) {
		// dcontent = %d33-90 / %d94-126, not extended by RFC 6531.
		unsigned char c = peek();
		if (c < 33 || c > 126 || c == '[' || c == '\\')
			return bad_char(c, "in address literal");
	}
	if (at_end())
		return fail("unterminated address literal");
	std::string content(text_.substr(start, pos_ - start));
	pos_++;
	if (!stops_here(stops))
		return bad_char(peek(), "after address literal");
	std::size_t colon = content.find(':');
	unsigned char address[16];
	if (colon == std::string::npos) {
		if (inet_pton(AF_INET, content.c_str(), address) != 1)
			return fail("bad IPv4 address literal");
		return true;
	}
	std::string_view tag = std::string_view(content).substr(0, colon);
	if (iequals(tag, "IPv6")) {
		if (inet_pton(AF_INET6, content.c_str() + colon + 1, address) != 1)
			return fail("bad IPv6 address literal");
		return true;
	}
	if (is_ldh_str(tag) && colon + 1 < content.size())
		return fail("unsupported address literal tag");
	return fail("bad address literal");
}

// A-d-l = At-domain *( "," At-domain ) ":", At-domain = "@" Domain. Checked,
// then dropped: RFC 5321 appendix C lets a server ignore source routes.
bool AddressParser::source_route()
{
	for (;;) {
		pos_++; // the '@'
		if (!domain_name(",:"))
			return false;
		if (at_end())
			return fail("unterminated source route");
		if (peek() == ':') {
			pos_++;
			return true;
		}
		pos_++; // the ','
		if (at_end() || peek() != '@')
			return fail("bad source route");
	}
}

bool AddressParser::path(Path &out, bool allow_null)
{
	if (at_end() || peek() != '<')
		return fail("path does not start with <");
	pos_++;
	if (!at_end() && peek() == '>') {
		if (!allow_null)
			return fail("null path not allowed");
		pos_++;
		out.null = true;
		out.consumed = pos_;
		return true;
	}
	if (!at_end() && peek() == '@' && !source_route())
		return false;
	if (!mailbox(out.mailbox, ">"))
		return false;
	if (at_end())
		return fail("missing > at end of path");
	pos_++;
	if (pos_ > kMaxPath)
		return fail("path longer than 256 octets");
	out.null = false;
	out.consumed = pos_;
	return true;
}

} // namespace

std::optional<Mailbox> parse_mailbox(std::string_view text, const ParseOptions &options, std::string &error_r)
{
	if (text.empty()) {
		error_r = "empty address";
		return std::nullopt;
	}
	AddressParser parser(text, options);
	Mailbox mailbox;
	// No stop characters: the mailbox must end with the text.
	if (!parser.mailbox(mailbox, "")) {
		error_r = parser.error();
		return std::nullopt;
	}
	return mailbox;
}

std::optional<Path> parse_path(std::string_view text, bool allow_null, const ParseOptions &options,
    std::string &error_r)
{
	AddressParser parser(text, options);
	Path path;
	if (!parser.path(path, allow_null)) {
		error_r = parser.error();
		return std::nullopt;
	}
	return path;
}

std::string to_string(const Mailbox &mailbox)
{
	std::string r;
	if (is_dot_string(mailbox.local)) {
		r = mailbox.local;
	} else {
		r = '"';
		for (char c : mailbox.local) {
			if (c == '"' || c == '\\')
				r += '\\';
			r += c;
		}
		r += '"';
	}
	r += '@';
	r += mailbox.domain;
	return r;
}

bool is_valid_domain(std::string_view domain, bool allow_utf8)
{
	ParseOptions options;
	options.allow_utf8 = allow_utf8;
	AddressParser parser(domain, options);
	return parser.domain_name("");
}

std::string canonical_domain(std::string_view domain)
{
	return ascii_lower(domain);
}

std::string fold_local(std::string_view local)
{
	return ascii_lower(local);
}

SubaddressSplit split_subaddress(std::string_view local, char separator)
{
	std::size_t at = local.find(separator);
	if (at == std::string_view::npos || at == 0)
		return {local, {}, false};
	return {local.substr(0, at), local.substr(at + 1), true};
}

} // namespace maild
