// Strict base64 and SASL PLAIN/LOGIN decoding: see sasl.h. The decoder is
// written here rather than taken from OpenSSL because EVP_DecodeBlock skips
// whitespace and does not check the pad bits.
#include "common/sasl.h"

#include <openssl/crypto.h>

#include <array>
#include <cstdint>

namespace maild {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Maps each byte to its 6-bit value, or to -1 when it is not in the alphabet
// ('=' included: padding is handled apart).
constexpr std::array<int8_t, 256> make_decode_table()
{
	std::array<int8_t, 256> table{};
	table.fill(-1);
	for (int i = 0; i < 64; i++)
		table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
	return table;
}
constexpr std::array<int8_t, 256> kDecodeTable = make_decode_table();

// Wipes a buffer that held credentials before it is freed.
void wipe(std::string &s)
{
	if (!s.empty())
		OPENSSL_cleanse(s.data(), s.size());
}

std::optional<std::string> decode_or_error(std::string_view base64, std::string &error_r)
{
	if (base64.empty()) {
		error_r = "empty response";
		return std::nullopt;
	}
	std::optional<std::string> raw = base64_decode_strict(base64);
	if (!raw)
		error_r = "invalid base64";
	return raw;
}

} // namespace

std::optional<std::string> base64_decode_strict(std::string_view text)
{
	if (text.size() % 4 != 0)
		return std::nullopt;
	std::size_t padding = 0;
	if (text.ends_with("=="))
		padding = 2;
	else if (text.ends_with('='))
		padding = 1;
	std::string out;
	out.reserve(text.size() / 4 * 3);
	for (std::size_t i = 0; i < text.size(); i += 4) {
		bool last = i + 4 == text.size();
		std::size_t digits = last ? 4 - padding : 4;
		uint32_t group = 0;
		for (std::size_t k = 0; k < 4; k++) {
			int8_t v = 0;
			if (k < digits) {
				v = kDecodeTable[static_cast<unsigned char>(text[i + k])];
				if (v < 0)
					return std::nullopt;
			}
			group = group << 6 | static_cast<uint32_t>(v);
		}
		// Canonical form: the bits the padding leaves over are zero.
		if ((digits == 2 && (group & 0xFFFF) != 0) || (digits == 3 && (group & 0xFF) != 0))
			return std::nullopt;
		out += static_cast<char>(group >> 16);
		if (digits >= 3)
			out += static_cast<char>(group >> 8 & 0xFF);
		if (digits == 4)
			out += static_cast<char>(group & 0xFF);
	}
	return out;
}

std::string base64_encode(std::string_view raw)
{
	std::string out;
	out.reserve((raw.size() + 2) / 3 * 4);
	for (std::size_t i = 0; i < raw.size(); i += 3) {
		std::size_t n = raw.size() - i < 3 ? raw.size() - i : 3;
		uint32_t group = 0;
		for (std::size_t k = 0; k < 3; k++)
			group = group << 8 | (k < n ? static_cast<unsigned char>(raw[i + k]) : 0u);
		out += kAlphabet[group >> 18];
		out += kAlphabet[group >> 12 & 63];
		out += n > 1 ? kAlphabet[group >> 6 & 63] : '=';
		out += n > 2 ? kAlphabet[group & 63] : '=';
	}
	return out;
}

std::optional<PlainCredentials> decode_sasl_plain(std::string_view base64, std::string &error_r)
{
	std::optional<std::string> raw = decode_or_error(base64, error_r);
	if (!raw)
		return std::nullopt;
	std::string_view message = *raw;
	std::size_t first = message.find('\0');
	std::size_t second = first == std::string_view::npos ? first : message.find('\0', first + 1);
	std::optional<PlainCredentials> result;
	if (second == std::string_view::npos) {
		error_r = "PLAIN message needs two NULs";
	} else if (message.find('\0', second + 1) != std::string_view::npos) {
		error_r = "PLAIN message has more than two NULs";
	} else {
		std::string_view authzid = message.substr(0, first);
		std::string_view authcid = message.substr(first + 1, second - first - 1);
		std::string_view password = message.substr(second + 1);
		if (authcid.empty())
			error_r = "empty authentication identity";
		else if (password.empty())
			error_r = "empty password";
		else if (authzid.size() > kMaxSaslIdentity)
			error_r = "authorization identity too long";
		else if (authcid.size() > kMaxSaslIdentity)
			error_r = "authentication identity too long";
		else if (password.size() > kMaxSaslPassword)
			error_r = "password too long";
		else
			result = PlainCredentials{std::string(authzid), std::string(authcid), std::string(password)};
	}
	wipe(*raw);
	return result;
}

std::optional<std::string> decode_sasl_login_field(std::string_view base64, std::string &error_r)
{
	std::optional<std::string> raw = decode_or_error(base64, error_r);
	if (!raw)
		return std::nullopt;
	if (raw->empty())
		error_r = "empty field";
	else if (raw->size() > kMaxSaslPassword)
		error_r = "field too long";
	else if (raw->find_first_of(std::string_view("\0\r\n", 3)) != std::string::npos)
		error_r = "NUL, CR or LF in field";
	else
		return raw;
	wipe(*raw);
	return std::nullopt;
}

} // namespace maild
