// Fuzzes the address parser (common/address.h): every public function runs
// on the input, and the results are checked against each other.
//
// Input layout:
//   byte 0   bit 0: allow_utf8; bit 1: allow_address_literal; bit 2: allow
//            the null path
//   byte 1   the subaddress separator
//   rest     the text, given as it is to parse_mailbox, parse_path,
//            is_valid_domain and the lookup helpers
// Invariants: a parsed mailbox is within the limits and free of controls;
// rendered with to_string it parses again to the same value, also inside
// a path; SMTPUTF8 and address literals only widen what is accepted; a
// path's result does not depend on what follows its '>', and no proper
// prefix of it parses; errors are printable ASCII.
#include "common/address.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

using maild::Mailbox;
using maild::ParseOptions;

namespace {

void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

void check_error(const std::string &error)
{
	check(!error.empty());
	for (unsigned char c : error)
		check(c >= 0x20 && c < 0x7f);
}

bool has_control(std::string_view s)
{
	for (unsigned char c : s)
		if (c < 0x20 || c == 0x7f)
			return true;
	return false;
}

bool has_non_ascii(std::string_view s)
{
	for (unsigned char c : s)
		if (c >= 0x80)
			return true;
	return false;
}

bool has_upper_ascii(std::string_view s)
{
	for (unsigned char c : s)
		if (c >= 'A' && c <= 'Z')
			return true;
	return false;
}

std::optional<Mailbox> parse(std::string_view text, const ParseOptions &options)
{
	std::string error;
	std::optional<Mailbox> m = maild::parse_mailbox(text, options, error);
	if (!m)
		check_error(error);
	return m;
}

// What any mailbox the parser returned must satisfy.
void check_parsed_mailbox(const Mailbox &m, std::size_t written, const ParseOptions &options, char separator)
{
	check(m.local.size() <= 64 && m.domain.size() <= 255);
	check(!has_control(m.local) && !has_control(m.domain));
	if (!options.allow_utf8)
		check(!has_non_ascii(m.local) && !has_non_ascii(m.domain));
	check(m.domain_is_literal == m.domain.starts_with('['));
	if (m.domain_is_literal)
		check(options.allow_address_literal && m.domain.ends_with(']'));
	else
		check(maild::is_valid_domain(m.domain, options.allow_utf8));

	std::string text = maild::to_string(m);
	check(text.size() <= written);
	check(text.starts_with('"') == m.local_quoted);
	std::optional<Mailbox> again = parse(text, options);
	check(again && *again == m);

	std::string error;
	std::string path = "<" + text + ">";
	std::optional<maild::Path> p = maild::parse_path(path, false, options, error);
	if (path.size() <= 256)
		check(p && !p->null && p->mailbox == m && p->consumed == path.size());
	else
		check(!p && error == "path longer than 256 octets");

	// The lookup keys of a valid mailbox still make a valid mailbox.
	Mailbox folded = m;
	folded.local = maild::fold_local(m.local);
	folded.domain = maild::canonical_domain(m.domain);
	std::optional<Mailbox> folded_again = parse(maild::to_string(folded), options);
	check(folded_again && *folded_again == folded);

	maild::SubaddressSplit split = maild::split_subaddress(m.local, separator);
	if (split.has_detail) {
		check(!split.user.empty() && split.user.find(separator) == std::string_view::npos);
		check(std::string(split.user) + separator + std::string(split.detail) == m.local);
	} else {
		check(split.user == m.local && split.detail.empty());
		check(m.local.find(separator) == std::string::npos || m.local.front() == separator);
	}
}

void check_mailbox(std::string_view text, const ParseOptions &options, char separator)
{
	std::optional<Mailbox> m = parse(text, options);
	ParseOptions wider = options;
	wider.allow_utf8 = true;
	wider.allow_address_literal = true;
	std::optional<Mailbox> wide = parse(text, wider);
	if (m)
		check(wide == m);
	if (!m)
		return;
	check_parsed_mailbox(*m, text.size(), options, separator);
}

void check_path(std::string_view text, bool allow_null, const ParseOptions &options, char separator)
{
	std::string error;
	std::optional<maild::Path> p = maild::parse_path(text, allow_null, options, error);
	if (!p) {
		check_error(error);
		return;
	}
	check(p->consumed >= 2 && p->consumed <= text.size() && p->consumed <= 256);
	check(text.front() == '<' && text[p->consumed - 1] == '>');
	std::string_view taken = text.substr(0, p->consumed);
	if (p->null) {
		check(allow_null && taken == "<>" && p->mailbox == Mailbox{});
	} else {
		// The mailbox went through the same checks as a bare one; its
		// text sits just before the '>', after any source route.
		check_parsed_mailbox(p->mailbox, p->consumed - 2, options, separator);
	}
	std::optional<maild::Path> alone = maild::parse_path(taken, allow_null, options, error);
	check(alone && alone->null == p->null && alone->mailbox == p->mailbox && alone->consumed == p->consumed);
	for (std::size_t k = 0; k < p->consumed; k++)
		check(!maild::parse_path(taken.substr(0, k), allow_null, options, error));
}

void check_domain(std::string_view text, const ParseOptions &options)
{
	if (!maild::is_valid_domain(text, options.allow_utf8))
		return;
	std::optional<Mailbox> m = parse("a@" + std::string(text), options);
	check(m && m->domain == text && !m->domain_is_literal);
}

void check_keys(std::string_view text)
{
	std::string domain = maild::canonical_domain(text);
	std::string local = maild::fold_local(text);
	check(domain.size() == text.size() && local.size() == text.size());
	check(!has_upper_ascii(domain) && !has_upper_ascii(local));
	check(maild::canonical_domain(domain) == domain && maild::fold_local(local) == local);
}

// to_string never renders an arbitrary local part ambiguously: if the
// rendering parses, it gives back that local part.
void check_render(std::string_view text)
{
	Mailbox m{std::string(text), "example.com", false, false};
	std::optional<Mailbox> back = parse(maild::to_string(m), ParseOptions{.allow_utf8 = true});
	if (back)
		check(back->local == m.local && back->domain == m.domain);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	ParseOptions options;
	options.allow_utf8 = data[0] & 1;
	options.allow_address_literal = data[0] & 2;
	bool allow_null = data[0] & 4;
	char separator = static_cast<char>(data[1]);
	std::string_view text(reinterpret_cast<const char *>(data) + 2, size - 2);

	check_mailbox(text, options, separator);
	check_path(text, allow_null, options, separator);
	check_domain(text, options);
	check_keys(text);
	check_render(text);
	return 0;
}
