// SMTP command parsing: see smtp_command.h. Every reply text here is a
// fixed string, so the session can send error_r as it is.
#include "smtpd/smtp_command.h"

#include "common/sasl.h"
#include "smtpd/xtext.h"

#include <algorithm>
#include <array>

namespace maild {

namespace {

// RFC 1870 section 3: up to 20 digits, which is what a uint64_t holds.
constexpr std::size_t kMaxDecimalDigits = 20;
// RFC 4422 section 3.1: a SASL mechanism name is 1 to 20 characters.
constexpr std::size_t kMaxMechanism = 20;

bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

char upper(char c)
{
	return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

bool iequals(std::string_view a, std::string_view b)
{
	if (a.size() != b.size())
		return false;
	for (std::size_t i = 0; i < a.size(); i++)
		if (upper(a[i]) != upper(b[i]))
			return false;
	return true;
}

bool istarts_with(std::string_view s, std::string_view prefix)
{
	return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

bool is_printable_ascii(std::string_view s)
{
	for (unsigned char c : s)
		if (c < 0x20 || c > 0x7e)
			return false;
	return true;
}

bool has_non_ascii(std::string_view s)
{
	for (unsigned char c : s)
		if (c >= 0x80)
			return true;
	return false;
}

// RFC 5322 atext, ASCII part.
bool is_atext(unsigned char c)
{
	return is_alpha(c) || is_digit(c) || std::string_view("!#$%&'*+-/=?^_`{|}~").find(static_cast<char>(c)) !=
	    std::string_view::npos;
}

// Takes the next SP-separated word from `rest` (skipping any run of SP
// before it); empty when nothing is left.
std::string_view next_word(std::string_view &rest)
{
	std::size_t start = rest.find_first_not_of(' ');
	if (start == std::string_view::npos) {
		rest = {};
		return {};
	}
	rest.remove_prefix(start);
	std::size_t end = std::min(rest.find(' '), rest.size());
	std::string_view word = rest.substr(0, end);
	rest.remove_prefix(end);
	return word;
}

// 1 to 20 decimal digits that fit in 64 bits.
std::optional<uint64_t> parse_decimal(std::string_view s)
{
	if (s.empty() || s.size() > kMaxDecimalDigits)
		return std::nullopt;
	uint64_t value = 0;
	for (unsigned char c : s) {
		if (!is_digit(c))
			return std::nullopt;
		uint64_t digit = c - '0';
		if (value > (UINT64_MAX - digit) / 10)
			return std::nullopt;
		value = value * 10 + digit;
	}
	return value;
}

bool fail(std::string &error_r, std::string_view reply)
{
	error_r = reply;
	return false;
}

// The command table: what each verb's argument must be.
enum class ArgRule { None, Optional, Required, Domain };
struct VerbSpec {
	std::string_view name;
	SmtpVerb verb;
	ArgRule arg;
};
constexpr std::array<VerbSpec, 14> kVerbs = {{
    {"AUTH", SmtpVerb::Auth, ArgRule::Required},
    {"BDAT", SmtpVerb::Bdat, ArgRule::Required},
    {"DATA", SmtpVerb::Data, ArgRule::None},
    {"EHLO", SmtpVerb::Ehlo, ArgRule::Domain},
    {"EXPN", SmtpVerb::Expn, ArgRule::Required},
    {"HELO", SmtpVerb::Helo, ArgRule::Domain},
    {"HELP", SmtpVerb::Help, ArgRule::Optional},
    {"MAIL", SmtpVerb::Mail, ArgRule::Required},
    {"NOOP", SmtpVerb::Noop, ArgRule::Optional},
    {"QUIT", SmtpVerb::Quit, ArgRule::None},
    {"RCPT", SmtpVerb::Rcpt, ArgRule::Required},
    {"RSET", SmtpVerb::Rset, ArgRule::None},
    {"STARTTLS", SmtpVerb::Starttls, ArgRule::None},
    {"VRFY", SmtpVerb::Vrfy, ArgRule::Optional},
}};

// HELO/EHLO: Domain / address-literal (RFC 5321 section 4.1.1.1). The
// literal is checked by parsing it as the domain of a mailbox.
bool is_valid_helo_name(std::string_view name)
{
	if (is_valid_domain(name, false))
		return true;
	if (!name.starts_with('['))
		return false;
	std::string error;
	std::optional<Mailbox> m = parse_mailbox("x@" + std::string(name), ParseOptions{}, error);
	return m && m->domain_is_literal;
}

// esmtp-param = esmtp-keyword ["=" esmtp-value] (RFC 5321 section 4.1.2).
struct Param {
	std::string_view keyword;
	std::optional<std::string_view> value;
};

bool split_param(std::string_view word, Param &out)
{
	std::size_t eq = word.find('=');
	out.keyword = word.substr(0, eq);
	out.value = std::nullopt;
	if (out.keyword.empty())
		return false;
	for (std::size_t i = 0; i < out.keyword.size(); i++) {
		auto c = static_cast<unsigned char>(out.keyword[i]);
		if (!is_alpha(c) && !is_digit(c) && (i == 0 || c != '-'))
			return false;
	}
	if (eq == std::string_view::npos)
		return true;
	std::string_view value = word.substr(eq + 1);
	// esmtp-value = 1*(%d33-60 / %d62-126): no '=', no controls, no SP.
	if (value.empty())
		return false;
	for (unsigned char c : value)
		if (c < 33 || c > 126 || c == '=')
			return false;
	out.value = value;
	return true;
}

// Marks a parameter as seen; a second one is an error.
bool take_once(unsigned &seen, unsigned bit, std::string &error_r)
{
	if (seen & bit)
		return fail(error_r, "501 5.5.4 Duplicate parameter");
	seen |= bit;
	return true;
}

// An xtext value that maild stores: decoded, printable ASCII, bounded.
std::optional<std::string> stored_xtext(std::string_view value, std::size_t max)
{
	std::optional<std::string> decoded = xtext_decode(value);
	if (!decoded || decoded->empty() || decoded->size() > max || !is_printable_ascii(*decoded))
		return std::nullopt;
	return decoded;
}

// "FROM:" / "TO:" and the spaces maild tolerates after it; returns the
// rest, starting at the path.
std::optional<std::string_view> after_keyword(std::string_view argument, std::string_view keyword)
{
	if (!istarts_with(argument, keyword))
		return std::nullopt;
	argument.remove_prefix(keyword.size());
	std::size_t start = argument.find_first_not_of(' ');
	return argument.substr(std::min(start, argument.size()));
}

// What follows a path must be nothing or SP and parameters.
bool parameters_follow(std::string_view rest)
{
	return rest.empty() || rest.front() == ' ';
}

bool mail_param(const Param &p, const MailParseOptions &options, unsigned &seen, MailParams &out,
    std::string &error_r)
{
	enum : unsigned { kSize = 1, kBody = 2, kSmtputf8 = 4, kRet = 8, kEnvid = 16, kAuth = 32 };
	const std::string_view value = p.value.value_or("");
	if (iequals(p.keyword, "SIZE") && options.size) {
		if (!take_once(seen, kSize, error_r))
			return false;
		out.size = parse_decimal(value);
		return out.size ? true : fail(error_r, "501 5.5.4 Invalid SIZE value");
	}
	if (iequals(p.keyword, "BODY") && (options.eightbitmime || options.binarymime)) {
		if (!take_once(seen, kBody, error_r))
			return false;
		if (iequals(value, "7BIT"))
			out.body = MailParams::SevenBit;
		else if (iequals(value, "8BITMIME") && options.eightbitmime)
			out.body = MailParams::EightBitMime;
		else if (iequals(value, "BINARYMIME") && options.binarymime)
			out.body = MailParams::BinaryMime;
		else
			return fail(error_r, "501 5.5.4 Invalid BODY value");
		return true;
	}
	if (iequals(p.keyword, "SMTPUTF8") && options.smtputf8) {
		if (!take_once(seen, kSmtputf8, error_r))
			return false;
		if (p.value)
			return fail(error_r, "501 5.5.4 SMTPUTF8 takes no value");
		out.smtputf8 = true;
		return true;
	}
	if (iequals(p.keyword, "RET") && options.dsn) {
		if (!take_once(seen, kRet, error_r))
			return false;
		if (iequals(value, "FULL"))
			out.ret = MailParams::Full;
		else if (iequals(value, "HDRS"))
			out.ret = MailParams::Hdrs;
		else
			return fail(error_r, "501 5.5.4 Invalid RET value");
		return true;
	}
	if (iequals(p.keyword, "ENVID") && options.dsn) {
		if (!take_once(seen, kEnvid, error_r))
			return false;
		std::optional<std::string> envid = stored_xtext(value, kMaxEnvid);
		if (!envid)
			return fail(error_r, "501 5.5.4 Invalid ENVID value");
		out.envid = std::move(*envid);
		return true;
	}
	if (iequals(p.keyword, "AUTH") && options.auth) {
		if (!take_once(seen, kAuth, error_r))
			return false;
		std::optional<std::string> auth = stored_xtext(value, kMaxAuthParam);
		if (!auth)
			return fail(error_r, "501 5.5.4 Invalid AUTH value");
		out.auth = std::move(*auth);
		return true;
	}
	return fail(error_r, "555 5.5.4 Unsupported parameter");
}

// NOTIFY = "NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ), no repeats.
std::optional<uint8_t> parse_notify(std::string_view value)
{
	if (iequals(value, "NEVER"))
		return kNotifyNever;
	uint8_t flags = 0;
	for (;;) {
		std::size_t comma = value.find(',');
		std::string_view item = value.substr(0, comma);
		uint8_t flag = 0;
		if (iequals(item, "SUCCESS"))
			flag = kNotifySuccess;
		else if (iequals(item, "FAILURE"))
			flag = kNotifyFailure;
		else if (iequals(item, "DELAY"))
			flag = kNotifyDelay;
		if (flag == 0 || (flags & flag))
			return std::nullopt;
		flags |= flag;
		if (comma == std::string_view::npos)
			return flags;
		value.remove_prefix(comma + 1);
	}
}

// ORCPT = addr-type ";" xtext (RFC 3461 section 4.2), addr-type an atom.
std::optional<std::pair<std::string, std::string>> parse_orcpt(std::string_view value)
{
	if (value.size() > kMaxOrcpt)
		return std::nullopt;
	std::size_t semi = value.find(';');
	if (semi == 0 || semi == std::string_view::npos)
		return std::nullopt;
	std::string_view type = value.substr(0, semi);
	for (unsigned char c : type)
		if (!is_atext(c))
			return std::nullopt;
	std::optional<std::string> address = stored_xtext(value.substr(semi + 1), kMaxOrcpt);
	if (!address)
		return std::nullopt;
	return std::pair{std::string(type), std::move(*address)};
}

bool rcpt_param(const Param &p, const RcptParseOptions &options, unsigned &seen, RcptParams &out,
    std::string &error_r)
{
	enum : unsigned { kNotify = 1, kOrcpt = 2 };
	const std::string_view value = p.value.value_or("");
	if (iequals(p.keyword, "NOTIFY") && options.dsn) {
		if (!take_once(seen, kNotify, error_r))
			return false;
		std::optional<uint8_t> notify = parse_notify(value);
		if (!notify)
			return fail(error_r, "501 5.5.4 Invalid NOTIFY value");
		out.notify = *notify;
		return true;
	}
	if (iequals(p.keyword, "ORCPT") && options.dsn) {
		if (!take_once(seen, kOrcpt, error_r))
			return false;
		out.orcpt = parse_orcpt(value);
		return out.orcpt ? true : fail(error_r, "501 5.5.4 Invalid ORCPT value");
	}
	return fail(error_r, "555 5.5.4 Unsupported parameter");
}

// "<Postmaster>" with no domain, in any case, followed by the end or SP.
std::optional<Path> postmaster_path(std::string_view text)
{
	constexpr std::string_view kPostmaster = "<Postmaster>";
	if (!istarts_with(text, kPostmaster) || !parameters_follow(text.substr(kPostmaster.size())))
		return std::nullopt;
	Path path;
	path.mailbox.local = text.substr(1, kPostmaster.size() - 2);
	path.consumed = kPostmaster.size();
	return path;
}

// The ESMTP parameters after a path (RFC 5321 4.1.2 Mail-parameters and
// Rcpt-parameters): each KEY[=VALUE] word goes to `handle`, which checks it.
template <typename Handle>
bool parse_parameters(std::string_view rest, std::string &error_r, Handle handle)
{
	if (!parameters_follow(rest)) {
		error_r = "501 5.5.4 Syntax error after address";
		return false;
	}
	for (std::string_view word = next_word(rest); !word.empty(); word = next_word(rest)) {
		Param p;
		if (!split_param(word, p)) {
			error_r = "501 5.5.4 Syntax error in parameters";
			return false;
		}
		if (!handle(p))
			return false;
	}
	return true;
}

} // namespace

std::optional<SmtpCommand> parse_command_line(std::string_view line, std::string &error_r)
{
	if (line.empty() || line.front() == ' ') {
		error_r = "500 5.5.2 Syntax error";
		return std::nullopt;
	}
	SmtpCommand command;
	std::size_t space = std::min(line.find(' '), line.size());
	command.verb_text = line.substr(0, space);
	std::string_view argument = line.substr(space);
	std::size_t start = argument.find_first_not_of(' ');
	if (start == std::string_view::npos)
		argument = {};
	else
		argument = argument.substr(start, argument.find_last_not_of(' ') - start + 1);
	command.argument = argument;

	const VerbSpec *spec = nullptr;
	for (const VerbSpec &v : kVerbs)
		if (iequals(command.verb_text, v.name))
			spec = &v;
	if (spec == nullptr)
		return command;
	command.verb = spec->verb;
	switch (spec->arg) {
	case ArgRule::None:
		if (!argument.empty()) {
			error_r = "501 5.5.4 No argument allowed";
			return std::nullopt;
		}
		break;
	case ArgRule::Optional:
		break;
	case ArgRule::Required:
		if (argument.empty()) {
			error_r = "501 5.5.4 Argument required";
			return std::nullopt;
		}
		break;
	case ArgRule::Domain:
		if (argument.empty()) {
			error_r = "501 5.5.4 Domain name required";
			return std::nullopt;
		}
		if (!is_valid_helo_name(argument)) {
			error_r = "501 5.5.4 Invalid domain name";
			return std::nullopt;
		}
		break;
	}
	return command;
}

std::optional<MailParams> parse_mail_from(std::string_view argument, const MailParseOptions &options,
    std::string &error_r)
{
	std::optional<std::string_view> text = after_keyword(argument, "FROM:");
	if (!text) {
		error_r = "501 5.5.4 Syntax: MAIL FROM:<address>";
		return std::nullopt;
	}
	MailParams params;
	std::string detail;
	ParseOptions parse_options{.allow_utf8 = options.smtputf8,
	    .allow_address_literal = options.allow_address_literal};
	std::optional<Path> path = parse_path(*text, true, parse_options, detail);
	if (!path) {
		error_r = "501 5.1.7 Bad sender address syntax (" + detail + ")";
		return std::nullopt;
	}
	params.path = std::move(*path);
	unsigned seen = 0;
	if (!parse_parameters(text->substr(params.path.consumed), error_r,
		[&](const Param &p) { return mail_param(p, options, seen, params, error_r); }))
		return std::nullopt;
	// RFC 6531 section 3.4: a UTF-8 path needs the SMTPUTF8 parameter.
	const Mailbox &sender = params.path.mailbox;
	if (!params.smtputf8 && (has_non_ascii(sender.local) || has_non_ascii(sender.domain))) {
		error_r = "553 5.6.7 Non-ASCII address needs SMTPUTF8";
		return std::nullopt;
	}
	return params;
}

std::optional<RcptParams> parse_rcpt_to(std::string_view argument, const RcptParseOptions &options,
    std::string &error_r)
{
	std::optional<std::string_view> text = after_keyword(argument, "TO:");
	if (!text) {
		error_r = "501 5.5.4 Syntax: RCPT TO:<address>";
		return std::nullopt;
	}
	RcptParams params;
	if (std::optional<Path> postmaster = postmaster_path(*text)) {
		params.path = std::move(*postmaster);
		params.postmaster_only = true;
	} else {
		std::string detail;
		ParseOptions parse_options{.allow_utf8 = options.smtputf8,
		    .allow_address_literal = options.allow_address_literal};
		std::optional<Path> path = parse_path(*text, false, parse_options, detail);
		if (!path) {
			error_r = "501 5.1.3 Bad recipient address syntax (" + detail + ")";
			return std::nullopt;
		}
		params.path = std::move(*path);
	}
	unsigned seen = 0;
	if (!parse_parameters(text->substr(params.path.consumed), error_r,
		[&](const Param &p) { return rcpt_param(p, options, seen, params, error_r); }))
		return std::nullopt;
	return params;
}

std::optional<BdatParams> parse_bdat(std::string_view argument, std::string &error_r)
{
	std::string_view rest = argument;
	std::optional<uint64_t> size = parse_decimal(next_word(rest));
	std::string_view marker = next_word(rest);
	if (!size || !next_word(rest).empty() || (!marker.empty() && !iequals(marker, "LAST"))) {
		error_r = "501 5.5.4 Syntax: BDAT size [LAST]";
		return std::nullopt;
	}
	return BdatParams{*size, !marker.empty()};
}

std::optional<AuthCommand> parse_auth(std::string_view argument, std::string &error_r)
{
	std::string_view rest = argument;
	std::string_view mechanism = next_word(rest);
	std::string_view response = next_word(rest);
	bool bad_name = mechanism.empty() || mechanism.size() > kMaxMechanism;
	for (unsigned char c : mechanism)
		if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_')
			bad_name = true;
	if (bad_name || !next_word(rest).empty()) {
		error_r = "501 5.5.4 Syntax: AUTH mechanism [initial-response]";
		return std::nullopt;
	}
	AuthCommand command;
	for (char c : mechanism)
		command.mechanism += upper(c);
	if (!response.empty()) {
		if (response != "=" && !base64_decode_strict(response)) {
			error_r = "501 5.5.2 Cannot decode base64 initial response";
			return std::nullopt;
		}
		command.initial_response = response;
	}
	return command;
}

} // namespace maild
