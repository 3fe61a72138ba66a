// Fuzzes the SASL helpers (common/sasl.h). The input is given as it is to
// base64_decode_strict, decode_sasl_plain and decode_sasl_login_field, and
// as raw bytes to base64_encode.
// Invariants: strict base64 has one spelling per value, so whatever decodes
// re-encodes to exactly the input; encoding then decoding gives the bytes
// back; PLAIN results rebuild the decoded message and respect the limits;
// LOGIN results have no NUL, CR or LF and respect the limit; errors are
// printable ASCII.
#include "common/sasl.h"

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

void check_error(const std::string &error)
{
	check(!error.empty());
	for (unsigned char c : error)
		check(c >= 0x20 && c < 0x7f);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	std::string_view input(reinterpret_cast<const char *>(data), size);

	std::optional<std::string> decoded = maild::base64_decode_strict(input);
	if (decoded)
		check(maild::base64_encode(*decoded) == input);
	std::string encoded = maild::base64_encode(input);
	check(encoded.size() == (input.size() + 2) / 3 * 4);
	check(maild::base64_decode_strict(encoded) == std::optional<std::string>(input));

	std::string error;
	std::optional<maild::PlainCredentials> plain = maild::decode_sasl_plain(input, error);
	if (plain) {
		check(decoded.has_value());
		check(plain->authzid + '\0' + plain->authcid + '\0' + plain->password == *decoded);
		check(!plain->authcid.empty() && !plain->password.empty());
		check(plain->authzid.size() <= maild::kMaxSaslIdentity);
		check(plain->authcid.size() <= maild::kMaxSaslIdentity);
		check(plain->password.size() <= maild::kMaxSaslPassword);
		check(plain->authzid.find('\0') == std::string::npos);
		check(plain->authcid.find('\0') == std::string::npos);
		check(plain->password.find('\0') == std::string::npos);
	} else {
		check_error(error);
	}

	error.clear();
	std::optional<std::string> field = maild::decode_sasl_login_field(input, error);
	if (field) {
		check(decoded == field);
		check(!field->empty() && field->size() <= maild::kMaxSaslPassword);
		check(field->find_first_of(std::string_view("\0\r\n", 3)) == std::string::npos);
	} else {
		check_error(error);
	}

	// Whatever the input, it is a valid LOGIN field once encoded, unless
	// it breaks one of the field's own rules.
	error.clear();
	bool field_ok = !input.empty() && input.size() <= maild::kMaxSaslPassword &&
	    input.find_first_of(std::string_view("\0\r\n", 3)) == std::string_view::npos;
	check(maild::decode_sasl_login_field(encoded, error).has_value() == field_ok);
	return 0;
}
