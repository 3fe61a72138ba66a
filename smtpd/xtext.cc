// xtext (RFC 3461 section 4): see xtext.h.
#include "smtpd/xtext.h"

namespace maild {

namespace {

bool is_xchar(unsigned char c)
{
	return c >= '!' && c <= '~' && c != '+' && c != '=';
}

// RFC 3461 section 4 spells the digits in upper case only; "+2b" is refused
// so that each byte has exactly one encoding.
int upper_hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

} // namespace

std::optional<std::string> xtext_decode(std::string_view text)
{
	std::string out;
	out.reserve(text.size());
	for (std::size_t i = 0; i < text.size(); i++) {
		auto c = static_cast<unsigned char>(text[i]);
		if (is_xchar(c)) {
			out += static_cast<char>(c);
			continue;
		}
		if (c != '+' || text.size() - i < 3)
			return std::nullopt;
		int high = upper_hex_value(static_cast<unsigned char>(text[i + 1]));
		int low = upper_hex_value(static_cast<unsigned char>(text[i + 2]));
		if (high < 0 || low < 0)
			return std::nullopt;
		out += static_cast<char>(high * 16 + low);
		i += 2;
	}
	return out;
}

std::string xtext_encode(std::string_view raw)
{
	static constexpr char kHex[] = "0123456789ABCDEF";
	std::string out;
	out.reserve(raw.size());
	for (unsigned char c : raw) {
		if (is_xchar(c)) {
			out += static_cast<char>(c);
		} else {
			out += '+';
			out += kHex[c >> 4];
			out += kHex[c & 15];
		}
	}
	return out;
}

} // namespace maild
