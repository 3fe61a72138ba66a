// SMTP command parsing for the server (RFC 5321 section 4.1 and the ESMTP
// extensions maild offers): one command line, already framed by LineReader
// (common/crlf.h: no CRLF, no bare CR or LF, no NUL), in; a verb and its
// typed arguments out. Pure functions, no I/O, no session state: which
// command is allowed when (section 4.1.4) is the session's business.
//
// On failure error_r holds a complete reply ("501 5.5.4 ..."): a code, an
// enhanced status code (RFC 3463) and fixed text, with no client bytes in
// it except, for a bad address, the address parser's detail, which shows
// bytes only in hex. It is safe to send and to log.
//
// Deliberate leniencies, each one something widely deployed clients send:
//   - one or more SP separate the verb, the path and each parameter (RFC
//     5321 says exactly one) and trailing SP is ignored;
//   - spaces may follow "FROM:" and "TO:" (RFC 5321 allows none).
// Nothing else is guessed: HTAB is not a separator, every parameter is
// checked, and an unknown or disabled parameter is refused (RFC 5321
// section 4.1.1.11: 555) rather than ignored.
#pragma once

#include "common/address.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace maild {

enum class SmtpVerb {
	Helo,
	Ehlo,
	Mail,
	Rcpt,
	Data,
	Bdat,
	Rset,
	Noop,
	Quit,
	Help,
	Vrfy,
	Expn,
	Starttls,
	Auth,
	Unknown,
};

struct SmtpCommand {
	SmtpVerb verb = SmtpVerb::Unknown;
	std::string_view verb_text; // as sent (client bytes: do not log raw)
	std::string_view argument;  // after the separating SP, trailing SP removed; may be empty
};

// Splits a command line and checks what the verb alone decides: DATA,
// RSET, QUIT and STARTTLS take no argument; HELO and EHLO need a domain or
// an address literal (ASCII only: SMTPUTF8 is not in force before EHLO);
// MAIL, RCPT, BDAT, AUTH and EXPN need an argument; NOOP, HELP and VRFY may
// have one. A verb maild does not know is not an error: it comes back as
// SmtpVerb::Unknown, for the session to answer 500 and count. An empty line
// or one starting with SP is an error. The views point into `line`.
std::optional<SmtpCommand> parse_command_line(std::string_view line, std::string &error_r);

// The extensions the session advertised, and so whose parameters it takes.
struct MailParseOptions {
	bool size = false;          // RFC 1870: SIZE=
	bool eightbitmime = false;  // RFC 6152: BODY=7BIT / BODY=8BITMIME
	bool binarymime = false;    // RFC 3030: BODY=BINARYMIME (needs CHUNKING)
	bool smtputf8 = false;      // RFC 6531: SMTPUTF8
	bool dsn = false;           // RFC 3461: RET=, ENVID=
	bool auth = false;          // RFC 4954: AUTH=
	bool allow_address_literal = true;
};

// Values maild keeps from DSN and AUTH parameters are stored and may reach
// line-oriented records, so after xtext decoding they must be printable
// ASCII (0x20-0x7E); RFC 3461 and RFC 4954 carry addresses and printable
// identifiers there, nothing else.
inline constexpr std::size_t kMaxEnvid = 100; // RFC 3461 section 4.4, decoded
inline constexpr std::size_t kMaxAuthParam = 500; // decoded; a mailbox is at most 254
inline constexpr std::size_t kMaxOrcpt = 500; // RFC 3461 section 4.2, as written

struct MailParams {
	Path path; // path.null for "<>"
	std::optional<uint64_t> size;
	enum Body { SevenBit, EightBitMime, BinaryMime } body = SevenBit;
	bool smtputf8 = false;
	enum Ret { None, Full, Hdrs } ret = None;
	std::string envid; // decoded xtext; empty when not given
	std::string auth;  // decoded xtext, "<>" kept as is; empty when not given
};

// `argument` follows "MAIL ": "FROM:<a@b> SIZE=100 BODY=8BITMIME". "FROM:"
// and parameter keywords and keyword values are case-insensitive. Each
// parameter may appear once. The path may hold UTF-8 only when SMTPUTF8 is
// both enabled and given as a parameter (RFC 6531 section 3.4).
std::optional<MailParams> parse_mail_from(std::string_view argument, const MailParseOptions &options,
    std::string &error_r);

struct RcptParseOptions {
	bool dsn = false;      // RFC 3461: NOTIFY=, ORCPT=
	bool smtputf8 = false; // the transaction's MAIL FROM had SMTPUTF8
	bool allow_address_literal = true;
};

enum NotifyFlag : uint8_t {
	kNotifyNever = 1,
	kNotifySuccess = 2,
	kNotifyFailure = 4,
	kNotifyDelay = 8,
};

struct RcptParams {
	// Never null. For "<Postmaster>" (any case, no domain: RFC 5321 section
	// 4.1.1.3) postmaster_only is set and path.mailbox has the local part
	// as written and an empty domain.
	Path path;
	bool postmaster_only = false;
	uint8_t notify = 0; // NotifyFlag bits; 0 when NOTIFY was not given
	std::optional<std::pair<std::string, std::string>> orcpt; // addr-type as written, decoded address
};

// `argument` follows "RCPT ": "TO:<a@b> NOTIFY=SUCCESS,FAILURE".
std::optional<RcptParams> parse_rcpt_to(std::string_view argument, const RcptParseOptions &options,
    std::string &error_r);

// RFC 3030: "BDAT" SP chunk-size [ SP "LAST" ].
struct BdatParams {
	uint64_t size = 0;
	bool last = false;
};
std::optional<BdatParams> parse_bdat(std::string_view argument, std::string &error_r);

// RFC 4954: "AUTH" SP mechanism [ SP initial-response ]. The mechanism is a
// SASL name (RFC 4422: 1-20 of A-Z, 0-9, "-", "_"), returned in upper
// case. The initial response is checked to be strict base64 (or "=", the
// empty response) and returned as sent, a view into `argument`.
struct AuthCommand {
	std::string mechanism;
	std::optional<std::string_view> initial_response;
};
std::optional<AuthCommand> parse_auth(std::string_view argument, std::string &error_r);

} // namespace maild
