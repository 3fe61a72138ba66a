// Fuzzes the SMTP command parsers (smtpd/smtp_command.h). The input is one
// command line for parse_command_line; then both the input itself and the
// argument the line parser found go to parse_mail_from (under every
// combination of MailParseOptions), parse_rcpt_to (every RcptParseOptions),
// parse_bdat and parse_auth.
// Invariants: errors are well-formed, printable replies; the line's views
// lie inside it, with no SP at either end of the argument; enabling more
// extensions only widens what is accepted and never changes a result; a
// parameter is only accepted when its extension is on; stored DSN and AUTH
// values are printable ASCII within their limits; every accepted MAIL,
// RCPT and BDAT renders back to text that parses to the same result; an
// AUTH mechanism is an upper-case SASL name and its initial response strict
// base64 or "=".
#include "common/sasl.h"
#include "smtpd/smtp_command.h"
#include "smtpd/xtext.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

using maild::MailParams;
using maild::MailParseOptions;
using maild::RcptParams;
using maild::RcptParseOptions;

namespace {

// Lines come from the framer, which bounds them; longer inputs only slow
// the fuzzer down.
constexpr std::size_t kMaxInput = 2048;

void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

void check_reply(const std::string &error)
{
	check(error.size() > 10 && is_digit(error[0]) && is_digit(error[1]) && is_digit(error[2]));
	check(error[3] == ' ' && is_digit(error[4]) && error[5] == '.');
	check(error[0] == '5' && error[4] == '5');
	for (unsigned char c : error)
		check(c >= 0x20 && c < 0x7f);
}

bool printable_ascii(std::string_view s)
{
	for (unsigned char c : s)
		if (c < 0x20 || c > 0x7e)
			return false;
	return true;
}

bool ascii(std::string_view s)
{
	for (unsigned char c : s)
		if (c >= 0x80)
			return false;
	return true;
}

bool inside(std::string_view part, std::string_view whole)
{
	return part.empty() ||
	    (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void check_line(std::string_view line)
{
	std::string error;
	std::optional<maild::SmtpCommand> c = maild::parse_command_line(line, error);
	if (!c) {
		check_reply(error);
		return;
	}
	check(!c->verb_text.empty() && c->verb_text.find(' ') == std::string_view::npos);
	check(c->verb_text.data() == line.data());
	check(inside(c->argument, line));
	if (!c->argument.empty())
		check(c->argument.front() != ' ' && c->argument.back() != ' ');
}

std::string render_path(const maild::Path &path)
{
	return path.null ? "<>" : "<" + maild::to_string(path.mailbox) + ">";
}

bool same_mail(const MailParams &a, const MailParams &b)
{
	return a.path.null == b.path.null && a.path.mailbox == b.path.mailbox && a.size == b.size && a.body == b.body &&
	    a.smtputf8 == b.smtputf8 && a.ret == b.ret && a.envid == b.envid && a.auth == b.auth;
}

std::string render_mail(const MailParams &p)
{
	std::string r = "FROM:" + render_path(p.path);
	if (p.size)
		r += " SIZE=" + std::to_string(*p.size);
	if (p.body == MailParams::EightBitMime)
		r += " BODY=8BITMIME";
	else if (p.body == MailParams::BinaryMime)
		r += " BODY=BINARYMIME";
	if (p.smtputf8)
		r += " SMTPUTF8";
	if (p.ret == MailParams::Full)
		r += " RET=FULL";
	else if (p.ret == MailParams::Hdrs)
		r += " RET=HDRS";
	if (!p.envid.empty())
		r += " ENVID=" + maild::xtext_encode(p.envid);
	if (!p.auth.empty())
		r += " AUTH=" + maild::xtext_encode(p.auth);
	return r;
}

MailParseOptions mail_options(unsigned bits)
{
	return MailParseOptions{.size = (bits & 1) != 0, .eightbitmime = (bits & 2) != 0, .binarymime = (bits & 4) != 0,
	    .smtputf8 = (bits & 8) != 0, .dsn = (bits & 16) != 0, .auth = (bits & 32) != 0,
	    .allow_address_literal = (bits & 64) != 0};
}

void check_mail(std::string_view argument)
{
	std::string error;
	const MailParseOptions all = mail_options(127);
	std::optional<MailParams> widest = maild::parse_mail_from(argument, all, error);
	for (unsigned bits = 0; bits < 128; bits++) {
		const MailParseOptions options = mail_options(bits);
		error.clear();
		std::optional<MailParams> p = maild::parse_mail_from(argument, options, error);
		if (!p) {
			check_reply(error);
			continue;
		}
		check(widest && same_mail(*p, *widest));
		check(!p->size || options.size);
		check(p->body != MailParams::EightBitMime || options.eightbitmime);
		check(p->body != MailParams::BinaryMime || options.binarymime);
		check(!p->smtputf8 || options.smtputf8);
		check((p->ret == MailParams::None && p->envid.empty()) || options.dsn);
		check(p->auth.empty() || options.auth);
		check(p->envid.size() <= maild::kMaxEnvid && printable_ascii(p->envid));
		check(p->auth.size() <= maild::kMaxAuthParam && printable_ascii(p->auth));
		check(p->smtputf8 || (ascii(p->path.mailbox.local) && ascii(p->path.mailbox.domain)));
		check(!p->path.null || p->path.mailbox == maild::Mailbox{});
		std::optional<MailParams> again = maild::parse_mail_from(render_mail(*p), options, error);
		check(again && same_mail(*again, *p));
	}
}

std::string render_rcpt(const RcptParams &p)
{
	std::string r = "TO:";
	r += p.postmaster_only ? "<" + p.path.mailbox.local + ">" : render_path(p.path);
	if (p.notify == maild::kNotifyNever) {
		r += " NOTIFY=NEVER";
	} else if (p.notify != 0) {
		std::string list;
		if (p.notify & maild::kNotifySuccess)
			list += ",SUCCESS";
		if (p.notify & maild::kNotifyFailure)
			list += ",FAILURE";
		if (p.notify & maild::kNotifyDelay)
			list += ",DELAY";
		r += " NOTIFY=" + list.substr(1);
	}
	if (p.orcpt)
		r += " ORCPT=" + p.orcpt->first + ";" + maild::xtext_encode(p.orcpt->second);
	return r;
}

bool same_rcpt(const RcptParams &a, const RcptParams &b)
{
	return a.path.null == b.path.null && a.path.mailbox == b.path.mailbox &&
	    a.postmaster_only == b.postmaster_only && a.notify == b.notify && a.orcpt == b.orcpt;
}

void check_rcpt(std::string_view argument)
{
	std::string error;
	const RcptParseOptions all{.dsn = true, .smtputf8 = true, .allow_address_literal = true};
	std::optional<RcptParams> widest = maild::parse_rcpt_to(argument, all, error);
	for (unsigned bits = 0; bits < 8; bits++) {
		const RcptParseOptions options{
		    .dsn = (bits & 1) != 0, .smtputf8 = (bits & 2) != 0, .allow_address_literal = (bits & 4) != 0};
		error.clear();
		std::optional<RcptParams> p = maild::parse_rcpt_to(argument, options, error);
		if (!p) {
			check_reply(error);
			continue;
		}
		check(widest && same_rcpt(*p, *widest));
		check(!p->path.null);
		check((p->notify == 0 && !p->orcpt) || options.dsn);
		check(p->notify == 0 || p->notify == maild::kNotifyNever || (p->notify & ~14u) == 0);
		if (p->postmaster_only)
			check(p->path.mailbox.domain.empty() && p->path.mailbox.local.size() == 10);
		else
			check(!p->path.mailbox.domain.empty());
		if (!options.smtputf8)
			check(ascii(p->path.mailbox.local) && ascii(p->path.mailbox.domain));
		if (p->orcpt)
			check(!p->orcpt->first.empty() && !p->orcpt->second.empty() &&
			    printable_ascii(p->orcpt->second));
		std::optional<RcptParams> again = maild::parse_rcpt_to(render_rcpt(*p), options, error);
		check(again && same_rcpt(*again, *p));
	}
}

void check_bdat(std::string_view argument)
{
	std::string error;
	std::optional<maild::BdatParams> b = maild::parse_bdat(argument, error);
	if (!b) {
		check_reply(error);
		return;
	}
	std::optional<maild::BdatParams> again =
	    maild::parse_bdat(std::to_string(b->size) + (b->last ? " LAST" : ""), error);
	check(again && again->size == b->size && again->last == b->last);
}

void check_auth(std::string_view argument)
{
	std::string error;
	std::optional<maild::AuthCommand> a = maild::parse_auth(argument, error);
	if (!a) {
		check_reply(error);
		return;
	}
	check(!a->mechanism.empty() && a->mechanism.size() <= 20);
	for (char c : a->mechanism)
		check((c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '_');
	if (a->initial_response) {
		check(inside(*a->initial_response, argument));
		check(*a->initial_response == "=" || maild::base64_decode_strict(*a->initial_response).has_value());
	}
}

void check_arguments(std::string_view argument)
{
	check_mail(argument);
	check_rcpt(argument);
	check_bdat(argument);
	check_auth(argument);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > kMaxInput)
		return 0;
	std::string_view line(reinterpret_cast<const char *>(data), size);
	check_line(line);
	check_arguments(line);
	std::string error;
	std::optional<maild::SmtpCommand> c = maild::parse_command_line(line, error);
	if (c && c->argument != line)
		check_arguments(c->argument);
	return 0;
}
