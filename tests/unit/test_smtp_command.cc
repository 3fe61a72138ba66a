// SMTP command parsing (smtpd/smtp_command.h): table-driven got/want cases
// for the command line (RFC 5321 section 4.1.1), MAIL FROM and RCPT TO with
// each extension's parameters (SIZE, BODY, SMTPUTF8, DSN, AUTH) enabled and
// disabled, BDAT and AUTH; limits at the boundary and one over; and every
// error reply.
#include "smtpd/smtp_command.h"

#include "common/sasl.h"
#include "smtpd/xtext.h"

#include <criterion/criterion.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace std::literals;
using maild::MailParams;
using maild::MailParseOptions;
using maild::RcptParseOptions;
using maild::SmtpVerb;

namespace {

const MailParseOptions kAllMail{.size = true, .eightbitmime = true, .binarymime = true, .smtputf8 = true,
    .dsn = true, .auth = true};
const MailParseOptions kNoExtensions{};
const RcptParseOptions kDsnRcpt{.dsn = true};
const RcptParseOptions kPlainRcpt{};
const std::string kUtf8Local = "j\xc3\xb6rg";               // jörg
const std::string kUtf8Domain = "b\xc3\xbc" "cher.example"; // bücher.example

// An error reply: "ddd d.d.d text", printable ASCII.
void check_reply(const std::string &error, const std::string &context)
{
	cr_expect(error.size() > 10 && error[3] == ' ' && error[5] == '.', "%s: reply \"%s\"", context.c_str(),
	    error.c_str());
	for (unsigned char c : error)
		cr_expect(c >= 0x20 && c < 0x7f, "%s: unprintable reply", context.c_str());
}

struct LineCase {
	std::string line;
	SmtpVerb verb;
	std::string argument;
	std::string error; // empty: accepted
};

const std::vector<LineCase> kLineCases = {
    {"HELO example.com", SmtpVerb::Helo, "example.com", ""},
    {"helo example.com", SmtpVerb::Helo, "example.com", ""},
    {"EHLO mail.example.com", SmtpVerb::Ehlo, "mail.example.com", ""},
    {"eHlO x", SmtpVerb::Ehlo, "x", ""},
    {"EHLO [192.0.2.1]", SmtpVerb::Ehlo, "[192.0.2.1]", ""},
    {"EHLO [IPv6:2001:db8::1]", SmtpVerb::Ehlo, "[IPv6:2001:db8::1]", ""},
    {"EHLO   example.com  ", SmtpVerb::Ehlo, "example.com", ""},
    {"EHLO", SmtpVerb::Ehlo, "", "501 5.5.4 Domain name required"},
    {"EHLO ", SmtpVerb::Ehlo, "", "501 5.5.4 Domain name required"},
    {"HELO example.com extra", SmtpVerb::Helo, "", "501 5.5.4 Invalid domain name"},
    {"HELO exa_mple.com", SmtpVerb::Helo, "", "501 5.5.4 Invalid domain name"},
    {"HELO example.com.", SmtpVerb::Helo, "", "501 5.5.4 Invalid domain name"},
    {"HELO [256.0.0.1]", SmtpVerb::Helo, "", "501 5.5.4 Invalid domain name"},
    {"HELO [x-tag:foo]", SmtpVerb::Helo, "", "501 5.5.4 Invalid domain name"},
    {"HELO [192.0.2.1", SmtpVerb::Helo, "", "501 5.5.4 Invalid domain name"},
    {"HELO b\xc3\xbc" "cher.example", SmtpVerb::Helo, "", "501 5.5.4 Invalid domain name"},
    {"MAIL FROM:<a@b>", SmtpVerb::Mail, "FROM:<a@b>", ""},
    {"mail from:<a@b> SIZE=1", SmtpVerb::Mail, "from:<a@b> SIZE=1", ""},
    {"MAIL", SmtpVerb::Mail, "", "501 5.5.4 Argument required"},
    {"RCPT TO:<a@b>", SmtpVerb::Rcpt, "TO:<a@b>", ""},
    {"RCPT", SmtpVerb::Rcpt, "", "501 5.5.4 Argument required"},
    {"DATA", SmtpVerb::Data, "", ""},
    {"data", SmtpVerb::Data, "", ""},
    {"DATA ", SmtpVerb::Data, "", ""},
    {"DATA x", SmtpVerb::Data, "", "501 5.5.4 No argument allowed"},
    {"BDAT 100 LAST", SmtpVerb::Bdat, "100 LAST", ""},
    {"BDAT", SmtpVerb::Bdat, "", "501 5.5.4 Argument required"},
    {"RSET", SmtpVerb::Rset, "", ""},
    {"RSET now", SmtpVerb::Rset, "", "501 5.5.4 No argument allowed"},
    {"QUIT", SmtpVerb::Quit, "", ""},
    {"QUIT please", SmtpVerb::Quit, "", "501 5.5.4 No argument allowed"},
    {"STARTTLS", SmtpVerb::Starttls, "", ""},
    {"StartTLS", SmtpVerb::Starttls, "", ""},
    {"STARTTLS x", SmtpVerb::Starttls, "", "501 5.5.4 No argument allowed"},
    {"NOOP", SmtpVerb::Noop, "", ""},
    {"NOOP anything at all", SmtpVerb::Noop, "anything at all", ""},
    {"HELP", SmtpVerb::Help, "", ""},
    {"HELP MAIL", SmtpVerb::Help, "MAIL", ""},
    {"VRFY", SmtpVerb::Vrfy, "", ""},
    {"VRFY postmaster", SmtpVerb::Vrfy, "postmaster", ""},
    {"EXPN list", SmtpVerb::Expn, "list", ""},
    {"EXPN", SmtpVerb::Expn, "", "501 5.5.4 Argument required"},
    {"AUTH PLAIN", SmtpVerb::Auth, "PLAIN", ""},
    {"AUTH", SmtpVerb::Auth, "", "501 5.5.4 Argument required"},
    // Unknown verbs are not errors.
    {"TURN", SmtpVerb::Unknown, "", ""},
    {"XCLIENT ADDR=1.2.3.4", SmtpVerb::Unknown, "ADDR=1.2.3.4", ""},
    {"MAILFROM:<a@b>", SmtpVerb::Unknown, "", ""},
    {"DATA\t", SmtpVerb::Unknown, "", ""},   // HTAB is not a separator
    {"HELO\texample.com", SmtpVerb::Unknown, "", ""},
    {"DAT", SmtpVerb::Unknown, "", ""},
    {"DATAX", SmtpVerb::Unknown, "", ""},
    {"\xff\xfe", SmtpVerb::Unknown, "", ""},
    // Malformed lines.
    {"", SmtpVerb::Unknown, "", "500 5.5.2 Syntax error"},
    {" DATA", SmtpVerb::Unknown, "", "500 5.5.2 Syntax error"},
    {"   ", SmtpVerb::Unknown, "", "500 5.5.2 Syntax error"},
};

} // namespace

Test(parse_command_line, table)
{
	for (const LineCase &c : kLineCases) {
		std::string error;
		std::optional<maild::SmtpCommand> got = maild::parse_command_line(c.line, error);
		if (!c.error.empty()) {
			cr_expect(!got.has_value(), "\"%s\" accepted", c.line.c_str());
			cr_expect_eq(error, c.error, "\"%s\": got error \"%s\"", c.line.c_str(), error.c_str());
			check_reply(error, c.line);
			continue;
		}
		cr_expect(got.has_value(), "\"%s\" refused: %s", c.line.c_str(), error.c_str());
		if (!got)
			continue;
		cr_expect(got->verb == c.verb, "\"%s\": verb %d", c.line.c_str(), static_cast<int>(got->verb));
		if (c.verb != SmtpVerb::Unknown)
			cr_expect(got->argument == c.argument, "\"%s\": argument \"%.*s\"", c.line.c_str(),
			    static_cast<int>(got->argument.size()), got->argument.data());
	}
}

Test(parse_command_line, views_point_into_line)
{
	std::string line = "Mail  FROM:<a@b>  ";
	std::string error;
	auto got = maild::parse_command_line(line, error);
	cr_assert(got.has_value());
	cr_expect(got->verb_text == "Mail");
	cr_expect(got->verb_text.data() == line.data());
	cr_expect(got->argument == "FROM:<a@b>");
	cr_expect(got->argument.data() == line.data() + 6);
}

namespace {

struct MailCase {
	std::string name;
	std::string argument;
	MailParseOptions options;
	std::string error; // empty: accepted; then check() runs
	bool (*check)(const MailParams &) = nullptr;
};

bool sender_is(const MailParams &p, std::string_view local, std::string_view domain)
{
	return !p.path.null && p.path.mailbox.local == local && p.path.mailbox.domain == domain;
}

bool defaults(const MailParams &p)
{
	return !p.size && p.body == MailParams::SevenBit && !p.smtputf8 && p.ret == MailParams::None &&
	    p.envid.empty() && p.auth.empty();
}

const std::vector<MailCase> &mail_cases()
{
	static const std::vector<MailCase> cases = {
	    {"simple", "FROM:<user@example.com>", kNoExtensions, "",
	     [](const MailParams &p) { return sender_is(p, "user", "example.com") && defaults(p); }},
	    {"lower-case from", "from:<a@b>", kNoExtensions, "",
	     [](const MailParams &p) { return sender_is(p, "a", "b"); }},
	    {"mixed-case from", "FrOm:<a@b>", kNoExtensions, "",
	     [](const MailParams &p) { return sender_is(p, "a", "b"); }},
	    {"null path", "FROM:<>", kNoExtensions, "", [](const MailParams &p) { return p.path.null && defaults(p); }},
	    {"space after colon", "FROM: <a@b>", kNoExtensions, "",
	     [](const MailParams &p) { return sender_is(p, "a", "b"); }},
	    {"spaces after colon", "FROM:   <>", kNoExtensions, "", [](const MailParams &p) { return p.path.null; }},
	    {"source route", "FROM:<@relay.example,@r2.example:a@b>", kNoExtensions, "",
	     [](const MailParams &p) { return sender_is(p, "a", "b"); }},
	    {"literal", "FROM:<a@[192.0.2.1]>", kNoExtensions, "",
	     [](const MailParams &p) { return p.path.mailbox.domain_is_literal; }},
	    {"trailing space", "FROM:<a@b> ", kNoExtensions, "", [](const MailParams &p) { return defaults(p); }},
	    {"literal refused by options",
	     "FROM:<a@[192.0.2.1]>",
	     {.allow_address_literal = false},
	     "501 5.1.7 Bad sender address syntax (address literal not allowed)"},
	    {"no FROM", "<a@b>", kNoExtensions, "501 5.5.4 Syntax: MAIL FROM:<address>"},
	    {"FROM without colon", "FROM <a@b>", kNoExtensions, "501 5.5.4 Syntax: MAIL FROM:<address>"},
	    {"space before colon", "FROM :<a@b>", kNoExtensions, "501 5.5.4 Syntax: MAIL FROM:<address>"},
	    {"TO instead of FROM", "TO:<a@b>", kNoExtensions, "501 5.5.4 Syntax: MAIL FROM:<address>"},
	    {"empty", "", kNoExtensions, "501 5.5.4 Syntax: MAIL FROM:<address>"},
	    {"no brackets", "FROM:a@b", kNoExtensions,
	     "501 5.1.7 Bad sender address syntax (path does not start with <)"},
	    {"nothing after colon", "FROM:", kNoExtensions,
	     "501 5.1.7 Bad sender address syntax (path does not start with <)"},
	    {"unterminated", "FROM:<a@b", kNoExtensions,
	     "501 5.1.7 Bad sender address syntax (missing > at end of path)"},
	    {"bad local part", "FROM:<a b@c>", kNoExtensions,
	     "501 5.1.7 Bad sender address syntax (bad character 0x20 in local part)"},
	    {"junk after path", "FROM:<a@b>x", kNoExtensions, "501 5.5.4 Syntax error after address"},
	    {"tab after path", "FROM:<a@b>\tSIZE=1", kAllMail, "501 5.5.4 Syntax error after address"},
	    {"path over 256",
	     "FROM:<" + std::string(64, 'l') + "@" + std::string(63, 'd') + "." + std::string(63, 'd') + "." +
	         std::string(63, 'd') + ".dd>",
	     kNoExtensions, "501 5.1.7 Bad sender address syntax (path longer than 256 octets)"},
	    // SIZE (RFC 1870).
	    {"size", "FROM:<a@b> SIZE=12345", kAllMail, "", [](const MailParams &p) { return p.size == 12345u; }},
	    {"size zero", "FROM:<a@b> SIZE=0", kAllMail, "", [](const MailParams &p) { return p.size == 0u; }},
	    {"size lower-case keyword", "FROM:<a@b> size=7", kAllMail, "",
	     [](const MailParams &p) { return p.size == 7u; }},
	    {"size max", "FROM:<a@b> SIZE=18446744073709551615", kAllMail, "",
	     [](const MailParams &p) { return p.size == UINT64_MAX; }},
	    {"size leading zeros, 20 digits", "FROM:<a@b> SIZE=00000000000000000042", kAllMail, "",
	     [](const MailParams &p) { return p.size == 42u; }},
	    {"size overflow", "FROM:<a@b> SIZE=18446744073709551616", kAllMail, "501 5.5.4 Invalid SIZE value"},
	    {"size 21 digits", "FROM:<a@b> SIZE=000000000000000000042", kAllMail, "501 5.5.4 Invalid SIZE value"},
	    {"size negative", "FROM:<a@b> SIZE=-1", kAllMail, "501 5.5.4 Invalid SIZE value"},
	    {"size plus", "FROM:<a@b> SIZE=+1", kAllMail, "501 5.5.4 Invalid SIZE value"},
	    {"size hex", "FROM:<a@b> SIZE=0x10", kAllMail, "501 5.5.4 Invalid SIZE value"},
	    {"size without value", "FROM:<a@b> SIZE", kAllMail, "501 5.5.4 Invalid SIZE value"},
	    {"size empty value", "FROM:<a@b> SIZE=", kAllMail, "501 5.5.4 Syntax error in parameters"},
	    {"size twice", "FROM:<a@b> SIZE=1 SIZE=1", kAllMail, "501 5.5.4 Duplicate parameter"},
	    {"size disabled", "FROM:<a@b> SIZE=1", kNoExtensions, "555 5.5.4 Unsupported parameter"},
	    // BODY (RFC 6152, RFC 3030).
	    {"body 8bitmime", "FROM:<a@b> BODY=8BITMIME", kAllMail, "",
	     [](const MailParams &p) { return p.body == MailParams::EightBitMime; }},
	    {"body lower case", "FROM:<a@b> body=8bitmime", kAllMail, "",
	     [](const MailParams &p) { return p.body == MailParams::EightBitMime; }},
	    {"body 7bit", "FROM:<a@b> BODY=7BIT", kAllMail, "",
	     [](const MailParams &p) { return p.body == MailParams::SevenBit; }},
	    {"body binarymime", "FROM:<a@b> BODY=BINARYMIME", kAllMail, "",
	     [](const MailParams &p) { return p.body == MailParams::BinaryMime; }},
	    {"body binarymime disabled",
	     "FROM:<a@b> BODY=BINARYMIME",
	     {.eightbitmime = true},
	     "501 5.5.4 Invalid BODY value"},
	    {"body 8bitmime disabled",
	     "FROM:<a@b> BODY=8BITMIME",
	     {.binarymime = true},
	     "501 5.5.4 Invalid BODY value"},
	    {"body disabled", "FROM:<a@b> BODY=7BIT", kNoExtensions, "555 5.5.4 Unsupported parameter"},
	    {"body unknown", "FROM:<a@b> BODY=8BIT", kAllMail, "501 5.5.4 Invalid BODY value"},
	    {"body without value", "FROM:<a@b> BODY", kAllMail, "501 5.5.4 Invalid BODY value"},
	    {"body twice", "FROM:<a@b> BODY=7BIT BODY=8BITMIME", kAllMail, "501 5.5.4 Duplicate parameter"},
	    // SMTPUTF8 (RFC 6531).
	    {"smtputf8", "FROM:<" + kUtf8Local + "@" + kUtf8Domain + "> SMTPUTF8", kAllMail, "",
	     [](const MailParams &p) { return p.smtputf8 && sender_is(p, kUtf8Local, kUtf8Domain); }},
	    {"smtputf8 ascii path", "FROM:<a@b> smtputf8", kAllMail, "",
	     [](const MailParams &p) { return p.smtputf8; }},
	    {"utf8 path without param", "FROM:<j\xc3\xb6rg@b> BODY=8BITMIME", kAllMail,
	     "553 5.6.7 Non-ASCII address needs SMTPUTF8"},
	    {"utf8 path, extension off", "FROM:<j\xc3\xb6rg@b>", kNoExtensions,
	     "501 5.1.7 Bad sender address syntax (non-ASCII character (needs SMTPUTF8))"},
	    {"smtputf8 disabled", "FROM:<a@b> SMTPUTF8", kNoExtensions, "555 5.5.4 Unsupported parameter"},
	    {"smtputf8 with value", "FROM:<a@b> SMTPUTF8=YES", kAllMail, "501 5.5.4 SMTPUTF8 takes no value"},
	    {"smtputf8 twice", "FROM:<a@b> SMTPUTF8 SMTPUTF8", kAllMail, "501 5.5.4 Duplicate parameter"},
	    {"invalid utf8", "FROM:<j\xc3@b> SMTPUTF8", kAllMail,
	     "501 5.1.7 Bad sender address syntax (invalid UTF-8)"},
	    // DSN (RFC 3461).
	    {"ret full", "FROM:<a@b> RET=FULL", kAllMail, "",
	     [](const MailParams &p) { return p.ret == MailParams::Full; }},
	    {"ret hdrs", "FROM:<a@b> ret=hdrs", kAllMail, "",
	     [](const MailParams &p) { return p.ret == MailParams::Hdrs; }},
	    {"ret unknown", "FROM:<a@b> RET=BODY", kAllMail, "501 5.5.4 Invalid RET value"},
	    {"ret without value", "FROM:<a@b> RET", kAllMail, "501 5.5.4 Invalid RET value"},
	    {"ret twice", "FROM:<a@b> RET=FULL RET=FULL", kAllMail, "501 5.5.4 Duplicate parameter"},
	    {"ret disabled", "FROM:<a@b> RET=FULL", kNoExtensions, "555 5.5.4 Unsupported parameter"},
	    {"envid", "FROM:<a@b> ENVID=QQ314159+2Bx", kAllMail, "",
	     [](const MailParams &p) { return p.envid == "QQ314159+x"; }},
	    {"envid 100", "FROM:<a@b> ENVID=" + std::string(100, 'e'), kAllMail, "",
	     [](const MailParams &p) { return p.envid.size() == 100; }},
	    {"envid 100 decoded", "FROM:<a@b> ENVID=" + std::string(99, 'e') + "+20", kAllMail, "",
	     [](const MailParams &p) { return p.envid.size() == 100 && p.envid.back() == ' '; }},
	    {"envid 101", "FROM:<a@b> ENVID=" + std::string(101, 'e'), kAllMail, "501 5.5.4 Invalid ENVID value"},
	    {"envid bad xtext", "FROM:<a@b> ENVID=a+2b", kAllMail, "501 5.5.4 Invalid ENVID value"},
	    {"envid control", "FROM:<a@b> ENVID=a+0Ab", kAllMail, "501 5.5.4 Invalid ENVID value"},
	    {"envid non-ascii", "FROM:<a@b> ENVID=a+C3+B6", kAllMail, "501 5.5.4 Invalid ENVID value"},
	    {"envid twice", "FROM:<a@b> ENVID=a ENVID=b", kAllMail, "501 5.5.4 Duplicate parameter"},
	    {"envid disabled", "FROM:<a@b> ENVID=a", kNoExtensions, "555 5.5.4 Unsupported parameter"},
	    // AUTH= (RFC 4954 section 5).
	    {"auth", "FROM:<a@b> AUTH=e+3Dmc2@example.com", kAllMail, "",
	     [](const MailParams &p) { return p.auth == "e=mc2@example.com"; }},
	    {"auth null", "FROM:<a@b> AUTH=<>", kAllMail, "", [](const MailParams &p) { return p.auth == "<>"; }},
	    {"auth bad xtext", "FROM:<a@b> AUTH=a+", kAllMail, "501 5.5.4 Invalid AUTH value"},
	    {"auth control", "FROM:<a@b> AUTH=a+0D+0A", kAllMail, "501 5.5.4 Invalid AUTH value"},
	    {"auth too long", "FROM:<a@b> AUTH=" + std::string(501, 'a'), kAllMail, "501 5.5.4 Invalid AUTH value"},
	    {"auth twice", "FROM:<a@b> AUTH=<> AUTH=<>", kAllMail, "501 5.5.4 Duplicate parameter"},
	    {"auth disabled", "FROM:<a@b> AUTH=<>", kNoExtensions, "555 5.5.4 Unsupported parameter"},
	    // Everything at once, with the tolerated extra spaces.
	    {"all", "FROM: <a@b>  SIZE=10 BODY=BINARYMIME   SMTPUTF8 RET=HDRS ENVID=x AUTH=<>  ", kAllMail, "",
	     [](const MailParams &p) {
		     return sender_is(p, "a", "b") && p.size == 10u && p.body == MailParams::BinaryMime && p.smtputf8 &&
		         p.ret == MailParams::Hdrs && p.envid == "x" && p.auth == "<>";
	     }},
	    // Unknown and malformed parameters.
	    {"unknown parameter", "FROM:<a@b> XFOO=1", kAllMail, "555 5.5.4 Unsupported parameter"},
	    {"unknown keyword only", "FROM:<a@b> XFOO", kAllMail, "555 5.5.4 Unsupported parameter"},
	    {"keyword with hyphen", "FROM:<a@b> X-FOO=1", kAllMail, "555 5.5.4 Unsupported parameter"},
	    {"keyword starts with hyphen", "FROM:<a@b> -X=1", kAllMail, "501 5.5.4 Syntax error in parameters"},
	    {"empty keyword", "FROM:<a@b> =1", kAllMail, "501 5.5.4 Syntax error in parameters"},
	    {"two equals", "FROM:<a@b> SIZE=1=2", kAllMail, "501 5.5.4 Syntax error in parameters"},
	    {"control in value", "FROM:<a@b> ENVID=a\x01", kAllMail, "501 5.5.4 Syntax error in parameters"},
	    {"non-ascii in value", "FROM:<a@b> ENVID=\xc3\xb6", kAllMail, "501 5.5.4 Syntax error in parameters"},
	    {"underscore keyword", "FROM:<a@b> X_Y=1", kAllMail, "501 5.5.4 Syntax error in parameters"},
	};
	return cases;
}

} // namespace

Test(parse_mail_from, table)
{
	for (const MailCase &c : mail_cases()) {
		std::string error;
		std::optional<MailParams> got = maild::parse_mail_from(c.argument, c.options, error);
		if (!c.error.empty()) {
			cr_expect(!got.has_value(), "%s: accepted", c.name.c_str());
			cr_expect_eq(error, c.error, "%s: got error \"%s\"", c.name.c_str(), error.c_str());
			check_reply(error, c.name);
			continue;
		}
		cr_expect(got.has_value(), "%s: refused: %s", c.name.c_str(), error.c_str());
		if (got && c.check)
			cr_expect(c.check(*got), "%s: wrong result", c.name.c_str());
	}
}

namespace {

struct RcptCase {
	std::string name;
	std::string argument;
	RcptParseOptions options;
	std::string error;
	bool (*check)(const maild::RcptParams &) = nullptr;
};

const std::vector<RcptCase> &rcpt_cases()
{
	using maild::RcptParams;
	static const std::vector<RcptCase> cases = {
	    {"simple", "TO:<a@b>", kPlainRcpt, "",
	     [](const RcptParams &p) {
		     return !p.path.null && p.path.mailbox.local == "a" && p.path.mailbox.domain == "b" &&
		            !p.postmaster_only && p.notify == 0 && !p.orcpt;
	     }},
	    {"lower-case to", "to:<a@b>", kPlainRcpt, "",
	     [](const RcptParams &p) { return p.path.mailbox.local == "a"; }},
	    {"space after colon", "TO: <a@b>", kPlainRcpt, "",
	     [](const RcptParams &p) { return p.path.mailbox.local == "a"; }},
	    {"postmaster", "TO:<Postmaster>", kPlainRcpt, "",
	     [](const RcptParams &p) {
		     return p.postmaster_only && !p.path.null && p.path.mailbox.local == "Postmaster" &&
		         p.path.mailbox.domain.empty() && p.path.consumed == 12;
	     }},
	    {"postmaster any case", "TO:<pOSTMASTER>", kPlainRcpt, "",
	     [](const RcptParams &p) { return p.postmaster_only && p.path.mailbox.local == "pOSTMASTER"; }},
	    {"postmaster with params", "TO:<postmaster> NOTIFY=NEVER", kDsnRcpt, "",
	     [](const RcptParams &p) { return p.postmaster_only && p.notify == maild::kNotifyNever; }},
	    {"postmaster with domain", "TO:<postmaster@example.com>", kPlainRcpt, "",
	     [](const RcptParams &p) { return !p.postmaster_only && p.path.mailbox.domain == "example.com"; }},
	    {"postmaster junk after", "TO:<postmaster>x", kPlainRcpt,
	     "501 5.1.3 Bad recipient address syntax (missing @domain)"},
	    {"other local part alone", "TO:<abuse>", kPlainRcpt,
	     "501 5.1.3 Bad recipient address syntax (missing @domain)"},
	    {"null path", "TO:<>", kPlainRcpt, "501 5.1.3 Bad recipient address syntax (null path not allowed)"},
	    {"no TO", "<a@b>", kPlainRcpt, "501 5.5.4 Syntax: RCPT TO:<address>"},
	    {"FROM instead of TO", "FROM:<a@b>", kPlainRcpt, "501 5.5.4 Syntax: RCPT TO:<address>"},
	    {"junk after path", "TO:<a@b>,<c@d>", kPlainRcpt, "501 5.5.4 Syntax error after address"},
	    {"utf8 in transaction",
	     "TO:<\xc3\xa9@b>",
	     {.smtputf8 = true},
	     "",
	     [](const RcptParams &p) { return p.path.mailbox.local == "\xc3\xa9"; }},
	    {"utf8 outside transaction", "TO:<\xc3\xa9@b>", kPlainRcpt,
	     "501 5.1.3 Bad recipient address syntax (non-ASCII character (needs SMTPUTF8))"},
	    // NOTIFY.
	    {"notify never", "TO:<a@b> NOTIFY=NEVER", kDsnRcpt, "",
	     [](const RcptParams &p) { return p.notify == maild::kNotifyNever; }},
	    {"notify list", "TO:<a@b> NOTIFY=SUCCESS,failure,Delay", kDsnRcpt, "",
	     [](const RcptParams &p) {
		     return p.notify == (maild::kNotifySuccess | maild::kNotifyFailure | maild::kNotifyDelay);
	     }},
	    {"notify one", "TO:<a@b> NOTIFY=DELAY", kDsnRcpt, "",
	     [](const RcptParams &p) { return p.notify == maild::kNotifyDelay; }},
	    {"notify never and more", "TO:<a@b> NOTIFY=NEVER,SUCCESS", kDsnRcpt, "501 5.5.4 Invalid NOTIFY value"},
	    {"notify more and never", "TO:<a@b> NOTIFY=SUCCESS,NEVER", kDsnRcpt, "501 5.5.4 Invalid NOTIFY value"},
	    {"notify repeated", "TO:<a@b> NOTIFY=SUCCESS,SUCCESS", kDsnRcpt, "501 5.5.4 Invalid NOTIFY value"},
	    {"notify empty item", "TO:<a@b> NOTIFY=SUCCESS,", kDsnRcpt, "501 5.5.4 Invalid NOTIFY value"},
	    {"notify leading comma", "TO:<a@b> NOTIFY=,DELAY", kDsnRcpt, "501 5.5.4 Invalid NOTIFY value"},
	    {"notify unknown", "TO:<a@b> NOTIFY=ALWAYS", kDsnRcpt, "501 5.5.4 Invalid NOTIFY value"},
	    {"notify without value", "TO:<a@b> NOTIFY", kDsnRcpt, "501 5.5.4 Invalid NOTIFY value"},
	    {"notify twice", "TO:<a@b> NOTIFY=DELAY NOTIFY=DELAY", kDsnRcpt, "501 5.5.4 Duplicate parameter"},
	    {"notify disabled", "TO:<a@b> NOTIFY=NEVER", kPlainRcpt, "555 5.5.4 Unsupported parameter"},
	    // ORCPT.
	    {"orcpt", "TO:<a@b> ORCPT=rfc822;a+2Bx@b", kDsnRcpt, "",
	     [](const RcptParams &p) { return p.orcpt && p.orcpt->first == "rfc822" && p.orcpt->second == "a+x@b"; }},
	    {"orcpt at limit", "TO:<a@b> ORCPT=rfc822;" + std::string(493, 'x'), kDsnRcpt, "",
	     [](const RcptParams &p) { return p.orcpt && p.orcpt->second.size() == 493; }},
	    {"orcpt over limit", "TO:<a@b> ORCPT=rfc822;" + std::string(494, 'x'), kDsnRcpt,
	     "501 5.5.4 Invalid ORCPT value"},
	    {"orcpt no type", "TO:<a@b> ORCPT=;a@b", kDsnRcpt, "501 5.5.4 Invalid ORCPT value"},
	    {"orcpt no semicolon", "TO:<a@b> ORCPT=a@b", kDsnRcpt, "501 5.5.4 Invalid ORCPT value"},
	    {"orcpt empty address", "TO:<a@b> ORCPT=rfc822;", kDsnRcpt, "501 5.5.4 Invalid ORCPT value"},
	    {"orcpt bad type", "TO:<a@b> ORCPT=rfc\"822;a@b", kDsnRcpt, "501 5.5.4 Invalid ORCPT value"},
	    {"orcpt bad xtext", "TO:<a@b> ORCPT=rfc822;a+4", kDsnRcpt, "501 5.5.4 Invalid ORCPT value"},
	    {"orcpt control", "TO:<a@b> ORCPT=rfc822;a+0A", kDsnRcpt, "501 5.5.4 Invalid ORCPT value"},
	    {"orcpt twice", "TO:<a@b> ORCPT=rfc822;a ORCPT=rfc822;a", kDsnRcpt, "501 5.5.4 Duplicate parameter"},
	    {"orcpt disabled", "TO:<a@b> ORCPT=rfc822;a", kPlainRcpt, "555 5.5.4 Unsupported parameter"},
	    {"both", "TO:<a@b>  NOTIFY=FAILURE  ORCPT=rfc822;a@b ", kDsnRcpt, "",
	     [](const RcptParams &p) { return p.notify == maild::kNotifyFailure && p.orcpt; }},
	    {"mail parameter", "TO:<a@b> SIZE=1", kDsnRcpt, "555 5.5.4 Unsupported parameter"},
	    {"bad parameter syntax", "TO:<a@b> NOTIFY=", kDsnRcpt, "501 5.5.4 Syntax error in parameters"},
	};
	return cases;
}

} // namespace

Test(parse_rcpt_to, table)
{
	for (const RcptCase &c : rcpt_cases()) {
		std::string error;
		std::optional<maild::RcptParams> got = maild::parse_rcpt_to(c.argument, c.options, error);
		if (!c.error.empty()) {
			cr_expect(!got.has_value(), "%s: accepted", c.name.c_str());
			cr_expect_eq(error, c.error, "%s: got error \"%s\"", c.name.c_str(), error.c_str());
			check_reply(error, c.name);
			continue;
		}
		cr_expect(got.has_value(), "%s: refused: %s", c.name.c_str(), error.c_str());
		if (got && c.check)
			cr_expect(c.check(*got), "%s: wrong result", c.name.c_str());
	}
}

Test(parse_bdat, table)
{
	struct Case {
		std::string argument;
		std::optional<maild::BdatParams> want;
	};
	const std::vector<Case> cases = {
	    {"100", maild::BdatParams{100, false}},
	    {"100 LAST", maild::BdatParams{100, true}},
	    {"0 LAST", maild::BdatParams{0, true}},
	    {"0", maild::BdatParams{0, false}},
	    {"1 last", maild::BdatParams{1, true}},
	    {"1  LAST ", maild::BdatParams{1, true}},
	    {"18446744073709551615", maild::BdatParams{UINT64_MAX, false}},
	    {"18446744073709551616", std::nullopt},
	    {"000000000000000000001", std::nullopt},
	    {"", std::nullopt},
	    {"LAST", std::nullopt},
	    {"-1", std::nullopt},
	    {"1 FIRST", std::nullopt},
	    {"1 LAST LAST", std::nullopt},
	    {"1 LASTX", std::nullopt},
	    {"1,LAST", std::nullopt},
	    {"1\tLAST", std::nullopt},
	    {"1e3", std::nullopt},
	};
	for (const Case &c : cases) {
		std::string error;
		std::optional<maild::BdatParams> got = maild::parse_bdat(c.argument, error);
		if (!c.want) {
			cr_expect(!got.has_value(), "\"%s\" accepted", c.argument.c_str());
			cr_expect_eq(error, "501 5.5.4 Syntax: BDAT size [LAST]"s, "\"%s\"", c.argument.c_str());
			continue;
		}
		cr_expect(got.has_value(), "\"%s\" refused", c.argument.c_str());
		if (got)
			cr_expect(got->size == c.want->size && got->last == c.want->last, "\"%s\"", c.argument.c_str());
	}
}

Test(parse_auth, table)
{
	struct Case {
		std::string argument;
		std::string mechanism;
		std::optional<std::string> response;
		std::string error;
	};
	const std::string kSyntax = "501 5.5.4 Syntax: AUTH mechanism [initial-response]";
	const std::string kBase64 = "501 5.5.2 Cannot decode base64 initial response";
	const std::vector<Case> cases = {
	    {"PLAIN", "PLAIN", std::nullopt, ""},
	    {"plain", "PLAIN", std::nullopt, ""},
	    {"login", "LOGIN", std::nullopt, ""},
	    {"SCRAM-SHA-256", "SCRAM-SHA-256", std::nullopt, ""},
	    {"X_MECH", "X_MECH", std::nullopt, ""},
	    {"PLAIN AHVzZXIAcGFzcw==", "PLAIN", "AHVzZXIAcGFzcw==", ""},
	    {"PLAIN =", "PLAIN", "=", ""},
	    {"PLAIN  AHVzZXIAcGFzcw==  ", "PLAIN", "AHVzZXIAcGFzcw==", ""},
	    {std::string(20, 'M'), std::string(20, 'M'), std::nullopt, ""},
	    {std::string(21, 'M'), "", std::nullopt, kSyntax},
	    {"", "", std::nullopt, kSyntax},
	    {"PL.AIN", "", std::nullopt, kSyntax},
	    {"PLAIN\tx", "", std::nullopt, kSyntax},
	    {"PLAIN a b", "", std::nullopt, kSyntax},
	    {"PLAIN AHVzZXIAcGFzcw", "", std::nullopt, kBase64},
	    {"PLAIN AHVzZXIAcGFzcw=", "", std::nullopt, kBase64},
	    {"PLAIN ==", "", std::nullopt, kBase64},
	    {"PLAIN *", "", std::nullopt, kBase64},
	    {"PLAIN Zh==", "", std::nullopt, kBase64},
	};
	for (const Case &c : cases) {
		std::string error;
		std::optional<maild::AuthCommand> got = maild::parse_auth(c.argument, error);
		if (!c.error.empty()) {
			cr_expect(!got.has_value(), "\"%s\" accepted", c.argument.c_str());
			cr_expect_eq(error, c.error, "\"%s\": got \"%s\"", c.argument.c_str(), error.c_str());
			continue;
		}
		cr_expect(got.has_value(), "\"%s\" refused: %s", c.argument.c_str(), error.c_str());
		if (!got)
			continue;
		cr_expect_eq(got->mechanism, c.mechanism, "\"%s\"", c.argument.c_str());
		cr_expect(got->initial_response.has_value() == c.response.has_value(), "\"%s\"", c.argument.c_str());
		if (got->initial_response && c.response)
			cr_expect(*got->initial_response == *c.response, "\"%s\"", c.argument.c_str());
	}
}

// The pieces fit together: a PLAIN initial response taken from AUTH decodes.
Test(parse_auth, initial_response_decodes)
{
	std::string error;
	std::string line = "AUTH PLAIN " + maild::base64_encode("\0user\0pass"s);
	auto command = maild::parse_command_line(line, error);
	cr_assert(command && command->verb == SmtpVerb::Auth);
	auto auth = maild::parse_auth(command->argument, error);
	cr_assert(auth && auth->initial_response);
	auto credentials = maild::decode_sasl_plain(*auth->initial_response, error);
	cr_assert(credentials.has_value(), "%s", error.c_str());
	cr_expect_eq(credentials->authcid, "user"s);
	cr_expect_eq(credentials->password, "pass"s);
}

// An ENVID written by xtext_encode is read back by parse_mail_from.
Test(parse_mail_from, envid_round_trip)
{
	std::string raw = "id with spaces, +plus and =equals";
	std::string error;
	auto p = maild::parse_mail_from("FROM:<> ENVID=" + maild::xtext_encode(raw), kAllMail, error);
	cr_assert(p.has_value(), "%s", error.c_str());
	cr_expect_eq(p->envid, raw);
}
