// Fuzzes xtext (smtpd/xtext.h). The input is decoded as xtext and encoded
// as raw bytes.
// Invariants: a decoded value is no longer than its text and re-encodes to
// text that decodes back to it; encoding any bytes gives only xchars and
// "+XX" and decodes back to those bytes; text with nothing to encode is
// its own encoding.
#include "smtpd/xtext.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace {

void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

bool is_xtext_char(unsigned char c)
{
	return c >= '!' && c <= '~' && c != '=';
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	std::string_view input(reinterpret_cast<const char *>(data), size);

	std::optional<std::string> decoded = maild::xtext_decode(input);
	if (decoded) {
		check(decoded->size() <= input.size());
		std::string again = maild::xtext_encode(*decoded);
		check(again.size() <= input.size());
		check(maild::xtext_decode(again) == decoded);
		if (input.find('+') == std::string_view::npos)
			check(again == input && *decoded == input);
	}

	std::string encoded = maild::xtext_encode(input);
	for (unsigned char c : encoded)
		check(is_xtext_char(c));
	check(maild::xtext_decode(encoded) == std::optional<std::string>(input));
	return 0;
}
