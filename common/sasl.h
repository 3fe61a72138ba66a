// SASL building blocks shared by the SMTP, IMAP and POP3 servers: strict
// base64 (RFC 4648 section 4) and the decoding of the PLAIN (RFC 4616) and
// LOGIN (draft-murchison-sasl-login) client messages. Pure functions, no
// I/O: checking the credentials is the lookup role's business.
//
// Strictness is the point: a SASL parser must never accept malformed input,
// so the decoder refuses whitespace, characters outside the alphabet, a
// length that is not a multiple of 4, padding anywhere but at the end, and
// non-canonical encodings (pad bits that are not zero), so that each value
// has exactly one accepted encoding.
//
// Errors are short fixed phrases with no client bytes in them, safe to log.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace maild {

// The empty text decodes to the empty string (protocols spell an empty
// SASL response "=" and handle that themselves).
std::optional<std::string> base64_decode_strict(std::string_view text);
std::string base64_encode(std::string_view raw);

// RFC 4616: message = [authzid] NUL authcid NUL passwd.
struct PlainCredentials {
	std::string authzid; // empty: act as authcid
	std::string authcid;
	std::string password;
};

// Limits on the decoded parts, in octets. RFC 4616 lets each part be up to
// 255 octets; maild allows longer ones (long passphrases) but not unbounded.
inline constexpr std::size_t kMaxSaslIdentity = 1024; // authzid, authcid, LOGIN username
inline constexpr std::size_t kMaxSaslPassword = 4096;

// Decodes the base64 client message of PLAIN: exactly two NULs, authcid and
// password not empty, every part within its limit. The decoded buffer is
// wiped before returning; the caller should wipe the password when done.
std::optional<PlainCredentials> decode_sasl_plain(std::string_view base64, std::string &error_r);

// Decodes one client message of LOGIN, a username or a password: not
// empty, at most kMaxSaslPassword octets (the function cannot tell which
// of the two it has, so the larger limit applies), no NUL, CR or LF. The
// "*" that cancels an exchange (RFC 4954 section 4) is not base64 and is
// refused here: the protocol must check for it first.
std::optional<std::string> decode_sasl_login_field(std::string_view base64, std::string &error_r);

} // namespace maild
