// Mail addresses: the RFC 5321 Mailbox and Path grammar (section 4.1.2),
// with the RFC 6531 SMTPUTF8 extensions, for the SMTP server (MAIL FROM and
// RCPT TO), the lookup role and mailctl. Pure functions, no I/O.
//
// What the parser accepts:
//   Mailbox    = Local-part "@" ( Domain / address-literal )
//   Local-part = Dot-string / Quoted-string
//   Domain     = sub-domain *( "." sub-domain ), sub-domain = Let-dig [Ldh-str]
//   address-literal = "[" IPv4 "]" / "[IPv6:" IPv6 "]"
// Limits (section 4.5.3.1), counted in octets as written, quotes and
// backslashes included: local part 64, domain 255, label 63, path 256
// (angle brackets and source route included).
// With SMTPUTF8 (allow_utf8), atext, quoted-string text and domain labels
// may also hold UTF-8 non-ASCII characters, which must be well-formed
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
// IDNA rules for U-labels (RFC 5891) are not checked here.
//
// What it refuses, always: control characters (C0, DEL and, in UTF-8, C1)
// anywhere, even inside quotes; General-address-literals (a tag other than
// IPv6); IPv4 literals with leading zeros (inet_pton's rule: "010" could be
// read as octal elsewhere). IPv6 literals follow inet_pton, which also
// lets "::" stand for a single zero group (RFC 4291) where RFC 5321's
// grammar wants two: the address is the same either way.
// Errors are short fixed phrases that show an offending byte only in hex,
// so they are safe to log.
//
// RCPT TO:<Postmaster> without a domain (RFC 5321 section 4.1.1.3) is not a
// Mailbox; the SMTP command parser has to recognise it itself.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace maild {

struct Mailbox {
	// The local part in canonical form: a quoted-string whose content is a
	// valid Dot-string is unquoted ("\"john.doe\"" is john.doe); otherwise
	// the content with its quoted-pairs resolved, and local_quoted is set
	// (the grammar allows an empty one: "\"\"@example.com" has local "").
	// Case is kept: RFC 5321 section 2.4 makes the local part case
	// sensitive; fold_local is for lookups that choose not to be.
	std::string local;
	// The domain as written (not lowercased: see canonical_domain). An
	// address literal keeps its brackets: "[192.0.2.1]", "[IPv6:2001:db8::1]".
	std::string domain;
	bool domain_is_literal = false;
	// The local part is not a Dot-string, so it must be quoted when
	// rendered (to_string does so).
	bool local_quoted = false;

	bool operator==(const Mailbox &) const = default;
};

struct ParseOptions {
	bool allow_utf8 = false;            // the SMTPUTF8 extension is in use
	bool allow_address_literal = true;  // "user@[192.0.2.1]"
};

// Parses `text`, which must be exactly one Mailbox. On failure error_r says
// why ("local part longer than 64 octets", "invalid UTF-8", ...).
std::optional<Mailbox> parse_mailbox(std::string_view text, const ParseOptions &options, std::string &error_r);

struct Path {
	bool null = false; // "<>", the null reverse-path
	Mailbox mailbox;   // empty when null
	std::size_t consumed = 0; // bytes of text the path took, through its '>'
};

// Parses "<" [ A-d-l ":" ] Mailbox ">" at the start of `text`; what follows
// the '>' (ESMTP parameters) is left to the caller, from text[consumed].
// A source route (A-d-l) is checked and then ignored (RFC 5321 section
// 4.1.2 and appendix C). "<>" is accepted only when allow_null.
std::optional<Path> parse_path(std::string_view text, bool allow_null, const ParseOptions &options,
    std::string &error_r);

// Renders a mailbox in a form parse_mailbox reads back to the same value:
// the local part is quoted (escaping '"' and '\') when it is not a
// Dot-string. Meant for mailboxes that came from the parser.
std::string to_string(const Mailbox &mailbox);

// A bare domain name (not an address literal), as for "mailctl domain add":
// the same rules and limits as the domain of a Mailbox.
bool is_valid_domain(std::string_view domain, bool allow_utf8);

// Keys for lookups. Both lowercase ASCII letters only: domains are case
// insensitive, and UTF-8 labels would need IDNA mapping, which is not done
// here. A trailing dot is not stripped (a Domain in a path has none).
std::string canonical_domain(std::string_view domain);
std::string fold_local(std::string_view local);

// Subaddressing ("user+detail"): splits `local` at the first `separator`.
// A local part that starts with the separator is not split (has_detail is
// false and user is the whole local part). The views point into `local`.
struct SubaddressSplit {
	std::string_view user;
	std::string_view detail;
	bool has_detail = false;
};
SubaddressSplit split_subaddress(std::string_view local, char separator);

} // namespace maild
