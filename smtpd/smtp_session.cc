// The SMTP server session: see smtp_session.h. One input entry point
// (pump) works through buffered bytes while no question is outstanding;
// every answer resumes it. The transaction (MAIL to end of data) is one
// object, so RSET, EHLO, STARTTLS and errors end it in one move.
#include "smtpd/smtp_session.h"

#include "common/address.h"
#include "common/crlf.h"
#include "common/sasl.h"
#include "smtpd/smtp_command.h"

#include <openssl/crypto.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <set>
#include <utility>

namespace maild {

namespace {

// RFC 4954 section 4: a server must take AUTH lines (the command with an
// initial response, and each SASL response) of at least 12288 octets.
constexpr std::size_t kMaxAuthLine = 12288;
// Input held while a question is outstanding; past it the host stops reading.
constexpr std::size_t kMaxBufferedInput = 64 * 1024;
// Message bytes collected before one write(2) to the message file.
constexpr std::size_t kWriteBuffer = 64 * 1024;
// A submitted message's header section is held until its end to see
// whether Date: and Message-ID: are there; a longer one is written as is.
constexpr std::size_t kMaxHeaderSection = 256 * 1024;

bool is_submission(ListenerKind kind)
{
	return kind == ListenerKind::Submission || kind == ListenerKind::Submissions;
}

bool iequals(std::string_view a, std::string_view b)
{
	return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
		auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
		return lower(x) == lower(y);
	});
}

bool istarts_with(std::string_view text, std::string_view prefix)
{
	return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

bool is_printable_ascii(std::string_view s)
{
	return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// For log lines: printable ASCII as is, anything else (and the backslash,
// so that the escape is unambiguous) as \xNN.
std::string log_safe(std::string_view s)
{
	static constexpr char kHex[] = "0123456789abcdef";
	std::string out;
	for (unsigned char c : s) {
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			out += static_cast<char>(c);
		} else {
			out += "\\x";
			out += kHex[c >> 4];
			out += kHex[c & 0xf];
		}
	}
	return out;
}

// Text that may stand in a Received: comment or clause (RFC 5322 section
// 3.2.2): printable ASCII, and nothing that would end or nest a comment.
bool is_received_safe(std::string_view s)
{
	return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
		return c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '\\';
	});
}

void wipe(std::string &s)
{
	if (!s.empty())
		OPENSSL_cleanse(s.data(), s.size());
	s.clear();
}

// RFC 5322 section 3.3 date-time, in UTC, independent of the locale.
std::string rfc5322_date(time_t now)
{
	static constexpr const char *kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static constexpr const char *kMonths[] = {
	    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm {};
	gmtime_r(&now, &tm);
	char buf[64];
	snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday], tm.tm_mday,
	    kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return buf;
}

// Whether a header section (lines with CRLF) has a field of this name
// (given lower case with its colon), at the start of a line.
bool has_field(std::string_view header, std::string_view name_colon)
{
	std::size_t pos = 0;
	while (pos < header.size()) {
		std::size_t end = header.find("\r\n", pos);
		std::string_view line = header.substr(pos, end == std::string_view::npos ? end : end - pos);
		if (istarts_with(line, name_colon))
			return true;
		if (end == std::string_view::npos)
			break;
		pos = end + 2;
	}
	return false;
}

// One mail transaction, from MAIL to its end. At namespace scope, not
// inside Impl: clang cannot see a nested class with member initializers
// as default-constructible while the enclosing class is incomplete.
struct Transaction {
	Envelope envelope;
	uint32_t recipients = 0;   // accepted RCPT commands
	std::string first_rcpt;    // for Received: "for <...>" with one recipient
	std::set<std::string> local_targets;
	std::set<std::string> remote_targets;
	bool used_bdat = false;
	UniqueFd file;
	// Content.
	std::optional<DataReader> data;
	uint64_t chunk_size = 0;
	uint64_t chunk_remaining = 0;
	bool chunk_last = false;
	uint64_t content_size = 0; // content octets as received (BDAT) or unstuffed (DATA)
	bool too_big = false;
	bool write_failed = false;
	bool chunk_cr = false;       // BDAT: the last octet was CR
	std::size_t chunk_line = 0;  // BDAT: octets of the current line
	bool header_phase = false;   // submission: still collecting the header section
	std::string header;
	std::string out;             // pending bytes for the file
	uint64_t written = 0;        // bytes in the file
};

} // namespace

struct SmtpSession::Impl {
	Impl(SmtpSessionHost &h, SmtpSessionConfig c, SmtpClient cl)
	    : host(h), config(std::move(c)), client(std::move(cl)),
	      reader(std::max(config.max_command_length, kMaxAuthLine))
	{
	}

	enum class Greeting { None, Helo, Ehlo };
	// What the next input bytes are.
	enum class Mode {
		Command,
		AuthPlain,     // the PLAIN response after "334 "
		AuthLoginUser, // the LOGIN user name
		AuthLoginPass, // the LOGIN password
		Data,          // DATA content, up to the end marker
		Bdat,          // the octets of an accepted BDAT chunk
		BdatDiscard,   // the octets of a refused BDAT chunk, then its reply
	};
	// The one outstanding question to the host.
	enum class Question { None, ResolveSender, ResolveRcpt, Auth, Create, Commit, StartTls };

	// MAIL FROM to the end of data.

	SmtpSessionHost &host;
	SmtpSessionConfig config;
	SmtpClient client;

	bool closed = false;
	bool pumping = false;
	std::optional<TlsInfo> tls;
	Greeting greeting = Greeting::None;
	std::string helo;
	bool authenticated = false;
	std::string account;
	uint32_t errors = 0;

	LineReader reader; // command mode input
	std::string raw;   // content mode input
	std::size_t raw_pos = 0;
	Mode mode = Mode::Command;
	Question question = Question::None;
	// Set once the end of data of an unauthenticated client was processed:
	// bytes arriving before the commit answer violate RFC 2920 section 3.1.
	bool guard_armed = false;
	bool early_input = false; // bytes came while guard_armed: refused after the commit answer

	std::string login_user; // LOGIN: between the two responses; wiped
	std::string auth_log_user;
	std::optional<MailParams> pending_mail;
	std::optional<RcptParams> pending_rcpt;
	std::string pending_rcpt_address;
	std::string discard_reply; // BdatDiscard: sent once the chunk is consumed
	uint64_t discard_remaining = 0;

	std::optional<Transaction> txn;

	// Output.
	void reply(std::string_view line)
	{
		if (closed)
			return;
		std::string bytes(line);
		bytes += "\r\n";
		host.write(bytes);
	}
	void close_session()
	{
		if (closed)
			return;
		closed = true;
		host.close();
	}
	// A 4xx or 5xx reply to a command: counted against max_errors.
	void error_reply(std::string_view line)
	{
		reply(line);
		if (closed)
			return;
		if (++errors >= config.max_errors) {
			reply("421 4.7.0 " + config.hostname + " Too many errors, closing connection");
			host.log("too many errors");
			abort_transaction();
			close_session();
		}
	}
	void log(std::string_view event) { host.log(event); }

	void abort_transaction()
	{
		if (txn && !txn->envelope.qid.empty())
			host.abort_message(txn->envelope.qid);
		txn.reset();
	}

	bool guard_applies() const { return config.pipelining_guard && !authenticated; }

	std::size_t buffered() const { return reader.buffered() + (raw.size() - raw_pos); }

	// Mode changes: command bytes live in the LineReader, content bytes
	// in `raw`; whatever follows the switch point moves over.
	void enter_content(Mode m)
	{
		raw = reader.take_buffered();
		raw_pos = 0;
		mode = m;
		host.set_timeout(config.data_timeout);
	}
	void leave_content()
	{
		reader = LineReader(std::max(config.max_command_length, kMaxAuthLine));
		reader.feed(std::string_view(raw).substr(raw_pos));
		raw.clear();
		raw_pos = 0;
		mode = Mode::Command;
		host.set_timeout(config.command_timeout);
	}

	void pump();
	bool content_step();
	void command_line(std::string_view line);
	void auth_line(std::string_view line);
	void command(const SmtpCommand &cmd);

	void cmd_ehlo(const SmtpCommand &cmd);
	void cmd_helo(const SmtpCommand &cmd);
	void cmd_mail(const SmtpCommand &cmd);
	void cmd_rcpt(const SmtpCommand &cmd);
	void cmd_data();
	void cmd_bdat(const SmtpCommand &cmd);
	void cmd_starttls();
	void cmd_auth(const SmtpCommand &cmd);

	void accept_mail(const MailParams &mail, uint8_t flags);
	void refuse_mail(std::string_view reply_line, std::string_view reason);
	void refuse_rcpt(std::string_view reply_line, std::string_view reason);
	void auth_plain(std::string_view base64);
	void auth_ask(std::string user, std::string password);

	void start_content();
	void write_received();
	void sink(std::string_view content);
	void finish_header();
	void flush();
	void content_framing_error(FrameError error);
	void end_of_data();
	std::string protocol() const;
};

void SmtpSession::Impl::pump()
{
	// Answers may come from inside a question (a host that answers at
	// once): the outer loop carries on, so never nest.
	if (pumping)
		return;
	pumping = true;
	while (!closed && question == Question::None) {
		if (mode == Mode::Data || mode == Mode::Bdat || mode == Mode::BdatDiscard) {
			if (!content_step())
				break;
			continue;
		}
		std::string_view line;
		LineReader::Status status = reader.next(line);
		if (status == LineReader::Status::NeedMore)
			break;
		if (status == LineReader::Status::Error) {
			FrameError error = reader.error();
			log("framing error in command reason=" + std::string(to_string(error)));
			if (error == FrameError::TooLong)
				reply("500 5.5.6 Line too long");
			else
				reply("500 5.5.2 Bare CR, bare LF or NUL in command");
			abort_transaction();
			close_session();
			break;
		}
		if (mode == Mode::Command)
			command_line(line);
		else
			auth_line(line);
	}
	pumping = false;
}

void SmtpSession::Impl::command_line(std::string_view line)
{
	// RFC 5321 section 4.5.3.1.4: a command line is at most 512 octets with
	// its CRLF (max_command_length counts it too); only AUTH may be longer.
	if (line.size() + 2 > config.max_command_length && !istarts_with(line, "AUTH ")) {
		log("framing error in command reason=too_long");
		reply("500 5.5.6 Line too long");
		abort_transaction();
		close_session();
		return;
	}
	std::string error;
	std::optional<SmtpCommand> cmd = parse_command_line(line, error);
	if (!cmd) {
		error_reply(error);
		return;
	}
	command(*cmd);
}

void SmtpSession::Impl::command(const SmtpCommand &cmd)
{
	switch (cmd.verb) {
	case SmtpVerb::Ehlo:
		cmd_ehlo(cmd);
		return;
	case SmtpVerb::Helo:
		cmd_helo(cmd);
		return;
	case SmtpVerb::Mail:
		cmd_mail(cmd);
		return;
	case SmtpVerb::Rcpt:
		cmd_rcpt(cmd);
		return;
	case SmtpVerb::Data:
		cmd_data();
		return;
	case SmtpVerb::Bdat:
		cmd_bdat(cmd);
		return;
	case SmtpVerb::Rset:
		abort_transaction();
		reply("250 2.0.0 Ok");
		return;
	case SmtpVerb::Noop:
		reply("250 2.0.0 Ok");
		return;
	case SmtpVerb::Quit:
		reply("221 2.0.0 Bye");
		abort_transaction();
		close_session();
		return;
	case SmtpVerb::Help:
		reply("214 2.0.0 See https://www.rfc-editor.org/rfc/rfc5321");
		return;
	case SmtpVerb::Vrfy:
		// RFC 5321 section 3.5.3: 252 when the server will not verify.
		reply("252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
		return;
	case SmtpVerb::Expn:
		error_reply("502 5.5.1 EXPN not available");
		return;
	case SmtpVerb::Starttls:
		cmd_starttls();
		return;
	case SmtpVerb::Auth:
		cmd_auth(cmd);
		return;
	case SmtpVerb::Unknown:
		error_reply("500 5.5.1 Command unrecognized");
		return;
	}
}

void SmtpSession::Impl::cmd_ehlo(const SmtpCommand &cmd)
{
	// RFC 5321 section 4.1.4: EHLO may be repeated and resets the state.
	abort_transaction();
	greeting = Greeting::Ehlo;
	helo = std::string(cmd.argument);
	// The client's name is not echoed: no client bytes in replies.
	std::vector<std::string> lines = {config.hostname + " Hello [" + client.address + "]", "PIPELINING",
	    "SIZE " + std::to_string(config.max_message_size), "8BITMIME", "ENHANCEDSTATUSCODES"};
	if (config.tls_available && !tls &&
	    (config.kind == ListenerKind::Smtp || config.kind == ListenerKind::Submission))
		lines.emplace_back("STARTTLS");
	lines.emplace_back("CHUNKING");
	lines.emplace_back("SMTPUTF8");
	lines.emplace_back("DSN");
	// RFC 4954 section 4 and DESIGN invariant 4: AUTH only over TLS.
	if (is_submission(config.kind) && tls)
		lines.emplace_back("AUTH PLAIN LOGIN");
	std::string out;
	for (std::size_t i = 0; i < lines.size(); i++)
		out += (i + 1 == lines.size() ? "250 " : "250-") + lines[i] + "\r\n";
	host.write(out);
}

void SmtpSession::Impl::cmd_helo(const SmtpCommand &cmd)
{
	abort_transaction();
	greeting = Greeting::Helo;
	helo = std::string(cmd.argument);
	reply("250 " + config.hostname);
}

void SmtpSession::Impl::cmd_mail(const SmtpCommand &cmd)
{
	if (greeting == Greeting::None || txn) {
		error_reply("503 5.5.1 Bad sequence of commands");
		return;
	}
	if (is_submission(config.kind) && !authenticated) {
		error_reply("530 5.7.0 Authentication required");
		return;
	}
	bool ehlo = greeting == Greeting::Ehlo;
	MailParseOptions options{.size = ehlo, .eightbitmime = ehlo, .binarymime = false, .smtputf8 = ehlo,
	    .dsn = ehlo, .auth = ehlo && is_submission(config.kind)};
	std::string error;
	std::optional<MailParams> mail = parse_mail_from(cmd.argument, options, error);
	if (!mail) {
		error_reply(error);
		return;
	}
	std::string sender = mail->path.null ? "" : to_string(mail->path.mailbox);
	// RFC 1870 section 6.1: a declared size over the limit is refused now.
	if (mail->size && *mail->size > config.max_message_size) {
		log("mail from=<" + log_safe(sender) + "> refused: size exceeded");
		error_reply("552 5.3.4 Message size exceeds fixed maximum message size");
		return;
	}
	if (is_submission(config.kind)) {
		// The submitter may only send as an address that reaches its
		// own account; the null sender is for bounces, not for users.
		if (mail->path.null) {
			refuse_mail("553 5.7.1 Sender address not owned by the authenticated user",
			    "sender not owned");
			return;
		}
	} else if (mail->path.null) {
		accept_mail(*mail, 0);
		return;
	}
	pending_mail = std::move(*mail);
	question = Question::ResolveSender;
	host.resolve(sender);
}

void SmtpSession::Impl::accept_mail(const MailParams &mail, uint8_t flags)
{
	txn.emplace();
	Envelope &e = txn->envelope;
	e.sender = mail.path.null ? "" : to_string(mail.path.mailbox);
	e.body = static_cast<uint8_t>(mail.body);
	e.smtputf8 = mail.smtputf8;
	e.ret = static_cast<uint8_t>(mail.ret);
	e.envid = mail.envid;
	e.auth_user = authenticated ? account : "";
	e.client_address = client.address;
	e.helo = helo;
	e.flags = flags;
	log("mail from=<" + log_safe(e.sender) + ">");
	reply("250 2.1.0 Ok");
}

void SmtpSession::Impl::refuse_mail(std::string_view reply_line, std::string_view reason)
{
	std::string sender;
	if (pending_mail && !pending_mail->path.null)
		sender = to_string(pending_mail->path.mailbox);
	pending_mail.reset();
	log("mail from=<" + log_safe(sender) + "> refused: " + std::string(reason));
	error_reply(reply_line);
}

void SmtpSession::Impl::cmd_rcpt(const SmtpCommand &cmd)
{
	if (!txn) {
		error_reply("503 5.5.1 Bad sequence of commands");
		return;
	}
	std::string error;
	RcptParseOptions options{.dsn = greeting == Greeting::Ehlo, .smtputf8 = txn->envelope.smtputf8};
	std::optional<RcptParams> rcpt = parse_rcpt_to(cmd.argument, options, error);
	if (!rcpt) {
		error_reply(error);
		return;
	}
	// RFC 5321 section 4.1.1.3: <Postmaster> without a domain is the
	// postmaster of this host.
	pending_rcpt_address = rcpt->postmaster_only ? "postmaster@" + config.hostname : to_string(rcpt->path.mailbox);
	pending_rcpt = std::move(*rcpt);
	// RFC 5321 section 4.5.3.1.8: 452 for too many recipients.
	if (txn->recipients >= config.max_recipients) {
		refuse_rcpt("452 4.5.3 Too many recipients", "too many recipients");
		return;
	}
	question = Question::ResolveRcpt;
	host.resolve(pending_rcpt_address);
}

void SmtpSession::Impl::refuse_rcpt(std::string_view reply_line, std::string_view reason)
{
	log("rcpt to=<" + log_safe(pending_rcpt_address) + "> refused: " + std::string(reason));
	pending_rcpt.reset();
	error_reply(reply_line);
}

void SmtpSession::Impl::cmd_data()
{
	// RFC 3030 section 3: DATA may not follow BDAT in one transaction.
	if (!txn || txn->recipients == 0 || txn->used_bdat) {
		error_reply("503 5.5.1 Bad sequence of commands");
		return;
	}
	question = Question::Create;
	host.create_message();
}

void SmtpSession::Impl::cmd_bdat(const SmtpCommand &cmd)
{
	std::string error;
	std::optional<BdatParams> bdat = parse_bdat(cmd.argument, error);
	if (!bdat) {
		error_reply(error);
		return;
	}
	// RFC 3030 section 2: the chunk follows whatever the reply; a refused
	// chunk is read and dropped so that its bytes are never commands.
	if (greeting != Greeting::Ehlo || !txn || txn->recipients == 0) {
		discard_reply = "503 5.5.1 Bad sequence of commands";
		discard_remaining = bdat->size;
		enter_content(Mode::BdatDiscard);
		return;
	}
	txn->used_bdat = true;
	txn->chunk_size = bdat->size;
	txn->chunk_remaining = bdat->size;
	txn->chunk_last = bdat->last;
	if (txn->envelope.qid.empty()) {
		question = Question::Create;
		host.create_message();
		return;
	}
	enter_content(Mode::Bdat);
}

void SmtpSession::Impl::cmd_starttls()
{
	if (tls) {
		error_reply("503 5.5.1 TLS already active");
		return;
	}
	if (!config.tls_available || config.kind == ListenerKind::Submissions) {
		error_reply("502 5.5.1 STARTTLS not available");
		return;
	}
	if (greeting != Greeting::Ehlo || txn) {
		error_reply("503 5.5.1 Bad sequence of commands");
		return;
	}
	// RFC 3207 section 4.2 and DESIGN invariant 2: cleartext pipelined
	// after STARTTLS must not reach the TLS session, nor be dropped
	// silently.
	if (reader.buffered() > 0) {
		log("starttls refused: data pipelined after STARTTLS");
		reply("554 5.5.0 Data pipelined after STARTTLS");
		close_session();
		return;
	}
	reply("220 2.0.0 Ready to start TLS");
	question = Question::StartTls;
	host.start_tls();
}

void SmtpSession::Impl::cmd_auth(const SmtpCommand &cmd)
{
	if (!is_submission(config.kind)) {
		error_reply("503 5.5.1 AUTH not available");
		return;
	}
	if (!tls) {
		error_reply("530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if (authenticated) {
		// RFC 4954 section 4: one successful AUTH per session.
		error_reply("503 5.5.1 Already authenticated");
		return;
	}
	// RFC 4954 section 4: after EHLO, and not in a transaction (which on
	// submission exists only after AUTH, caught above).
	if (greeting != Greeting::Ehlo) {
		error_reply("503 5.5.1 Bad sequence of commands");
		return;
	}
	std::string error;
	std::optional<AuthCommand> auth = parse_auth(cmd.argument, error);
	if (!auth) {
		error_reply(error);
		return;
	}
	// RFC 4954 section 4: "=" is an empty initial response.
	std::optional<std::string_view> initial = auth->initial_response;
	if (initial && *initial == "=")
		initial = std::string_view();
	if (auth->mechanism == "PLAIN") {
		if (initial) {
			auth_plain(*initial);
			return;
		}
		reply("334 ");
		mode = Mode::AuthPlain;
		return;
	}
	if (auth->mechanism == "LOGIN") {
		mode = Mode::AuthLoginUser;
		if (initial) {
			auth_line(*initial);
			return;
		}
		reply("334 VXNlcm5hbWU6"); // "Username:"
		return;
	}
	error_reply("504 5.5.4 Unrecognized authentication type");
}

void SmtpSession::Impl::auth_line(std::string_view line)
{
	Mode was = mode;
	mode = Mode::Command;
	// RFC 4954 section 4: "*" cancels the exchange.
	if (line == "*") {
		wipe(login_user);
		log("auth cancelled");
		error_reply("501 5.0.0 Authentication cancelled");
		return;
	}
	if (was == Mode::AuthPlain) {
		auth_plain(line);
		return;
	}
	std::string error;
	std::optional<std::string> field = decode_sasl_login_field(line, error);
	if (!field) {
		wipe(login_user);
		log("auth failed reason=bad_response");
		error_reply("501 5.5.2 Invalid base64 data");
		return;
	}
	if (was == Mode::AuthLoginUser) {
		login_user = std::move(*field);
		reply("334 UGFzc3dvcmQ6"); // "Password:"
		mode = Mode::AuthLoginPass;
		return;
	}
	std::string user = std::move(login_user);
	login_user.clear();
	auth_ask(std::move(user), std::move(*field));
}

void SmtpSession::Impl::auth_plain(std::string_view base64)
{
	std::string error;
	std::optional<PlainCredentials> creds = decode_sasl_plain(base64, error);
	if (!creds) {
		log("auth failed reason=bad_response");
		error_reply("501 5.5.2 Invalid base64 data");
		return;
	}
	// maild has no proxy authorization (RFC 4616 section 2): the
	// authorization identity may only name the authenticated one.
	if (!creds->authzid.empty() && creds->authzid != creds->authcid) {
		wipe(creds->password);
		log("auth failed reason=authzid");
		error_reply("535 5.7.8 Authentication credentials invalid");
		return;
	}
	auth_ask(std::move(creds->authcid), std::move(creds->password));
}

void SmtpSession::Impl::auth_ask(std::string user, std::string password)
{
	auth_log_user = is_printable_ascii(user) && user.find(' ') == std::string::npos ? user : "";
	question = Question::Auth;
	host.authenticate(user, password);
	wipe(password);
	wipe(user);
}

// The message file is open: the headers smtpd adds come first.
void SmtpSession::Impl::start_content()
{
	txn->header_phase = is_submission(config.kind);
	write_received();
}

std::string SmtpSession::Impl::protocol() const
{
	// RFC 3848 and RFC 6531 section 3.7.3: the WITH protocol type names
	// the greeting, TLS and AUTH.
	std::string name = txn->envelope.smtputf8 ? "UTF8SMTP" : greeting == Greeting::Ehlo ? "ESMTP" : "SMTP";
	if (tls)
		name += "S";
	if (authenticated)
		name += "A";
	return name;
}

void SmtpSession::Impl::write_received()
{
	// RFC 5321 section 4.4: the trace header, first in the message.
	std::string r = "Received: from " + (is_received_safe(helo) ? helo : std::string("unknown")) + " ([" +
	    client.address + "])\r\n\tby " + config.hostname + " (maild) with " + protocol() + " id " +
	    txn->envelope.qid;
	if (tls)
		r += "\r\n\t(" + tls->version + " cipher " + tls->cipher + ")";
	if (config.received_auth_user && authenticated && is_received_safe(account))
		r += "\r\n\t(authenticated as " + account + ")";
	if (txn->recipients == 1)
		r += "\r\n\tfor <" + txn->first_rcpt + ">";
	r += "; " + rfc5322_date(time(nullptr)) + "\r\n";
	txn->out += r;
}

void SmtpSession::Impl::sink(std::string_view content)
{
	if (txn->too_big || txn->write_failed || content.empty())
		return;
	if (!txn->header_phase) {
		txn->out.append(content);
	} else {
		std::size_t from = txn->header.size() < 3 ? 0 : txn->header.size() - 3;
		txn->header.append(content);
		std::string_view h = txn->header;
		if (h.starts_with("\r\n") || h.find("\r\n\r\n", from) != std::string_view::npos) {
			finish_header();
		} else if (h.size() > kMaxHeaderSection) {
			txn->out += txn->header;
			txn->header.clear();
			txn->header_phase = false;
		}
	}
	if (txn->out.size() >= kWriteBuffer)
		flush();
}

// Submission only (RFC 6409 sections 8.2 and 8.3): supply Date: and
// Message-ID: when the client's header section lacks them.
void SmtpSession::Impl::finish_header()
{
	std::string_view h = txn->header;
	std::size_t end = h.starts_with("\r\n") ? 0 : h.find("\r\n\r\n");
	std::string_view section = h.substr(0, end == std::string_view::npos ? h.size() : end + 2);
	time_t now = time(nullptr);
	if (!has_field(section, "date:"))
		txn->out += "Date: " + rfc5322_date(now) + "\r\n";
	if (!has_field(section, "message-id:"))
		txn->out += "Message-ID: <" + txn->envelope.qid + "." + std::to_string(now) + "@" + config.hostname +
		    ">\r\n";
	txn->out += txn->header;
	txn->header.clear();
	txn->header_phase = false;
}

void SmtpSession::Impl::flush()
{
	std::string_view rest = txn->out;
	while (!rest.empty() && !txn->write_failed) {
		ssize_t n = ::write(txn->file.get(), rest.data(), rest.size());
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			txn->write_failed = true;
			break;
		}
		rest.remove_prefix(static_cast<std::size_t>(n));
		txn->written += static_cast<uint64_t>(n);
	}
	txn->out.clear();
}

void SmtpSession::Impl::content_framing_error(FrameError error)
{
	log("framing error in content reason=" + std::string(to_string(error)));
	if (error == FrameError::TooLong)
		reply("554 5.6.0 Message line longer than " + std::to_string(config.max_line_length) + " octets");
	else
		reply("554 5.6.0 Bare CR, bare LF or NUL in message content");
	abort_transaction();
	close_session();
}

// Returns false when more input is needed (or the session ended).
bool SmtpSession::Impl::content_step()
{
	std::string_view in = std::string_view(raw).substr(raw_pos);
	if (mode == Mode::BdatDiscard) {
		std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(discard_remaining, in.size()));
		discard_remaining -= n;
		raw_pos += n;
		if (discard_remaining > 0) {
			raw.clear();
			raw_pos = 0;
			return false;
		}
		leave_content();
		error_reply(discard_reply);
		return !closed;
	}
	if (mode == Mode::Data) {
		std::size_t consumed = 0;
		std::string content;
		DataReader::Status status = txn->data->feed(in, consumed, content);
		raw_pos += consumed;
		sink(content);
		switch (status) {
		case DataReader::Status::NeedMore:
			raw.erase(0, raw_pos);
			raw_pos = 0;
			return false;
		case DataReader::Status::Error:
			content_framing_error(txn->data->error());
			return false;
		case DataReader::Status::Done:
			txn->content_size = txn->data->size();
			txn->too_big = txn->too_big || txn->data->too_big();
			end_of_data();
			return !closed;
		}
		return false;
	}
	// BDAT: the octets are taken as they are (no dot-stuffing, RFC 3030
	// section 2), but maild stores only CRLF text, so the framing rules
	// of DATA apply to them too.
	std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(txn->chunk_remaining, in.size()));
	std::string_view chunk = in.substr(0, n);
	for (std::size_t i = 0; i < chunk.size(); i++) {
		char c = chunk[i];
		if (txn->chunk_cr) {
			txn->chunk_cr = false;
			if (c != '\n') {
				content_framing_error(FrameError::BareCR);
				return false;
			}
			txn->chunk_line = 0;
			continue;
		}
		FrameError error = FrameError::None;
		if (c == '\r')
			txn->chunk_cr = true;
		else if (c == '\n')
			error = FrameError::BareLF;
		else if (c == '\0')
			error = FrameError::Nul;
		else if (++txn->chunk_line > config.max_line_length)
			error = FrameError::TooLong;
		if (error != FrameError::None) {
			content_framing_error(error);
			return false;
		}
	}
	txn->content_size += n;
	if (txn->content_size > config.max_message_size)
		txn->too_big = true;
	sink(chunk);
	txn->chunk_remaining -= n;
	raw_pos += n;
	if (txn->chunk_remaining > 0) {
		raw.clear();
		raw_pos = 0;
		return false;
	}
	if (!txn->chunk_last) {
		leave_content();
		reply("250 2.0.0 " + std::to_string(txn->chunk_size) + " octets received");
		return true;
	}
	if (txn->chunk_cr) {
		content_framing_error(FrameError::BareCR);
		return false;
	}
	// A last line without its CRLF is completed: the stored message is
	// CRLF text throughout, as the mta and the mailbox expect.
	if (txn->chunk_line > 0) {
		txn->content_size += 2;
		if (txn->content_size > config.max_message_size)
			txn->too_big = true;
		sink("\r\n");
	}
	end_of_data();
	return !closed;
}

void SmtpSession::Impl::end_of_data()
{
	// RFC 2920 section 3.1: the client must wait for the reply to the
	// end of data. An unauthenticated client that does not is likely a
	// spam engine or a smuggling attempt.
	if (guard_applies() && raw_pos < raw.size()) {
		log("pipelining error: commands sent before the reply to end of data");
		reply("554 5.5.0 Commands sent before the reply to end of data");
		abort_transaction();
		close_session();
		return;
	}
	leave_content();
	if (txn->too_big) {
		log("message refused: size exceeded size=" + std::to_string(txn->content_size));
		abort_transaction();
		error_reply("552 5.3.4 Message size exceeds fixed maximum message size");
		return;
	}
	if (txn->header_phase)
		finish_header();
	flush();
	if (txn->write_failed) {
		log("message refused: write to queue file failed");
		abort_transaction();
		error_reply("452 4.3.1 Insufficient system storage");
		return;
	}
	txn->file.reset();
	txn->envelope.size = txn->written;
	txn->envelope.created = static_cast<uint64_t>(time(nullptr));
	guard_armed = guard_applies();
	question = Question::Commit;
	host.commit_message(txn->envelope);
}


SmtpSession::SmtpSession(SmtpSessionHost &host, SmtpSessionConfig config, SmtpClient client)
    : impl_(std::make_unique<Impl>(host, std::move(config), std::move(client)))
{
}

SmtpSession::~SmtpSession() = default;

void SmtpSession::start(std::optional<TlsInfo> tls)
{
	impl_->tls = std::move(tls);
	impl_->reply("220 " + impl_->config.hostname + " ESMTP maild");
	impl_->host.set_timeout(impl_->config.command_timeout);
}

void SmtpSession::on_input(std::string_view bytes)
{
	Impl &s = *impl_;
	if (s.closed || bytes.empty())
		return;
	if (s.question == Impl::Question::StartTls) {
		// Cleartext after the 220 to STARTTLS: DESIGN invariant 2.
		s.log("starttls refused: data pipelined after STARTTLS");
		s.reply("554 5.5.0 Data pipelined after STARTTLS");
		s.close_session();
		return;
	}
	if (s.guard_armed && s.question == Impl::Question::Commit) {
		// The commit is already on its way and cannot be taken back
		// without risking a message that is delivered although the
		// client was refused: drop these bytes, and once the commit is
		// answered, refuse them and close (on_committed).
		s.early_input = true;
		return;
	}
	if (s.mode == Impl::Mode::Data || s.mode == Impl::Mode::Bdat || s.mode == Impl::Mode::BdatDiscard)
		s.raw.append(bytes);
	else
		s.reader.feed(bytes);
	s.pump();
}

void SmtpSession::on_eof()
{
	Impl &s = *impl_;
	if (s.closed)
		return;
	// The host logs the disconnect with its reason.
	s.abort_transaction();
	s.closed = true;
}

void SmtpSession::on_timeout()
{
	Impl &s = *impl_;
	if (s.closed)
		return;
	s.log("timeout");
	s.reply("421 4.4.2 " + s.config.hostname + " Timeout, closing connection");
	s.abort_transaction();
	s.close_session();
}

void SmtpSession::on_tls_started(const TlsInfo &tls)
{
	Impl &s = *impl_;
	if (s.closed || s.question != Impl::Question::StartTls)
		return;
	// RFC 3207 section 4.2: forget everything learnt in cleartext.
	s.question = Impl::Question::None;
	s.tls = tls;
	s.greeting = Impl::Greeting::None;
	s.helo.clear();
	s.authenticated = false;
	s.account.clear();
	s.abort_transaction();
	s.reader = LineReader(std::max(s.config.max_command_length, kMaxAuthLine));
	s.mode = Impl::Mode::Command;
	s.log("tls version=" + log_safe(tls.version) + " cipher=" + log_safe(tls.cipher));
	s.host.set_timeout(s.config.command_timeout);
	s.pump();
}

void SmtpSession::on_resolved(const ResolveAnswer &answer)
{
	Impl &s = *impl_;
	if (s.closed)
		return;
	if (s.question == Impl::Question::ResolveSender) {
		s.question = Impl::Question::None;
		if (is_submission(s.config.kind)) {
			// Accounts come back canonical, as AUTH returned ours.
			bool owned = answer.kind == ResolveKind::Deliver &&
			    std::find(answer.local_accounts.begin(), answer.local_accounts.end(), s.account) !=
			        answer.local_accounts.end();
			if (answer.kind == ResolveKind::TempFail)
				s.refuse_mail("451 4.3.0 Temporary lookup failure, try again later",
				    "temporary lookup failure");
			else if (!owned)
				s.refuse_mail("553 5.7.1 Sender address not owned by the authenticated user",
				    "sender not owned");
			else
				s.accept_mail(*s.pending_mail, 0);
		} else {
			// Port 25 without AUTH: a sender in one of our domains is
			// unproven; the flag lets later checks (SPF, DMARC) see it.
			uint8_t flags = answer.kind != ResolveKind::NotLocalDomain ? kEnvelopeLocalSenderUnauthenticated : 0;
			s.accept_mail(*s.pending_mail, flags);
		}
		s.pending_mail.reset();
	} else if (s.question == Impl::Question::ResolveRcpt) {
		s.question = Impl::Question::None;
		Transaction &t = *s.txn;
		const RcptParams &rcpt = *s.pending_rcpt;
		std::string orcpt = rcpt.orcpt ? rcpt.orcpt->first + ";" + rcpt.orcpt->second : "";
		auto target = [&](TargetKind kind, const std::string &address) {
			EnvelopeTarget e;
			e.kind = kind;
			e.address = address;
			e.rcpt = s.pending_rcpt_address;
			e.notify = rcpt.notify;
			e.orcpt = orcpt;
			return e;
		};
		std::vector<EnvelopeTarget> added;
		bool accept = false;
		switch (answer.kind) {
		case ResolveKind::Deliver:
			for (const std::string &a : answer.local_accounts)
				if (!t.local_targets.contains(a) &&
				    std::none_of(added.begin(), added.end(), [&](const EnvelopeTarget &e) {
					    return e.kind == TargetKind::Local && e.address == a;
				    }))
					added.push_back(target(TargetKind::Local, a));
			for (const std::string &a : answer.external)
				if (!t.remote_targets.contains(a) &&
				    std::none_of(added.begin(), added.end(), [&](const EnvelopeTarget &e) {
					    return e.kind == TargetKind::Remote && e.address == a;
				    }))
					added.push_back(target(TargetKind::Remote, a));
			if (answer.local_accounts.empty() && answer.external.empty()) {
				s.refuse_rcpt("451 4.3.0 Temporary lookup failure, try again later", "empty lookup answer");
				break;
			}
			accept = true;
			break;
		case ResolveKind::NotLocalDomain:
			// DESIGN invariant 3: relaying only for authenticated users.
			if (!(is_submission(s.config.kind) && s.authenticated)) {
				s.refuse_rcpt("550 5.7.1 Relaying denied", "relaying denied");
				break;
			}
			if (!t.remote_targets.contains(s.pending_rcpt_address))
				added.push_back(target(TargetKind::Remote, s.pending_rcpt_address));
			accept = true;
			break;
		case ResolveKind::UnknownUser:
			s.refuse_rcpt("550 5.1.1 User unknown", "user unknown");
			break;
		case ResolveKind::Disabled:
			s.refuse_rcpt("550 5.2.1 Mailbox disabled", "mailbox disabled");
			break;
		case ResolveKind::TempFail:
			s.refuse_rcpt("451 4.3.0 Temporary lookup failure, try again later",
			    "temporary lookup failure" + (answer.error.empty() ? "" : " (" + log_safe(answer.error) + ")"));
			break;
		}
		if (accept) {
			std::size_t before = t.envelope.targets.size();
			t.envelope.targets.insert(t.envelope.targets.end(), added.begin(), added.end());
			// The envelope must fit one QueueCommit message.
			if (t.envelope.targets.size() > kMaxEnvelopeTargets ||
			    envelope_wire_size(t.envelope) > kMaxEnvelopeWire) {
				t.envelope.targets.resize(before);
				s.refuse_rcpt("452 4.5.3 Too many recipients", "envelope too large");
			} else {
				for (const EnvelopeTarget &e : added)
					(e.kind == TargetKind::Local ? t.local_targets : t.remote_targets).insert(e.address);
				if (++t.recipients == 1)
					t.first_rcpt = s.pending_rcpt_address;
				s.log("rcpt to=<" + log_safe(s.pending_rcpt_address) + ">");
				s.pending_rcpt.reset();
				s.reply("250 2.1.5 Ok");
			}
		}
	} else {
		return;
	}
	s.pump();
}

void SmtpSession::on_authenticated(AuthResult result, std::string_view account)
{
	Impl &s = *impl_;
	if (s.closed || s.question != Impl::Question::Auth)
		return;
	s.question = Impl::Question::None;
	std::string user = s.auth_log_user.empty() ? "" : " user=" + s.auth_log_user;
	s.auth_log_user.clear();
	switch (result) {
	case AuthResult::Ok:
		s.authenticated = true;
		s.account = std::string(account);
		s.log("auth ok user=" + log_safe(s.account));
		s.reply("235 2.7.0 Authentication successful");
		break;
	case AuthResult::Fail:
		s.log("auth failed" + user);
		s.error_reply("535 5.7.8 Authentication credentials invalid");
		break;
	case AuthResult::TempFail:
		s.log("auth failed reason=tempfail" + user);
		s.error_reply("454 4.7.0 Temporary authentication failure");
		break;
	}
	s.pump();
}

void SmtpSession::on_message_created(std::string_view qid, UniqueFd file)
{
	Impl &s = *impl_;
	if (s.closed || s.question != Impl::Question::Create) {
		// Nobody will write or commit it.
		s.host.abort_message(qid);
		return;
	}
	s.question = Impl::Question::None;
	s.txn->envelope.qid = std::string(qid);
	s.txn->file = std::move(file);
	s.start_content();
	if (s.txn->used_bdat) {
		s.enter_content(Impl::Mode::Bdat);
	} else {
		s.reply("354 End data with <CR><LF>.<CR><LF>");
		s.txn->data.emplace(s.config.max_line_length, s.config.max_message_size);
		s.enter_content(Impl::Mode::Data);
	}
	s.pump();
}

void SmtpSession::on_message_create_failed(std::string_view error)
{
	Impl &s = *impl_;
	if (s.closed || s.question != Impl::Question::Create)
		return;
	s.question = Impl::Question::None;
	s.log("queue create failed: " + log_safe(error));
	const char *reply_line = "451 4.3.0 Queue unavailable, try again later";
	if (s.txn->used_bdat) {
		// The chunk is on its way: read it, then answer.
		s.discard_reply = reply_line;
		s.discard_remaining = s.txn->chunk_remaining;
		s.txn.reset();
		s.enter_content(Impl::Mode::BdatDiscard);
	} else {
		s.txn.reset();
		s.error_reply(reply_line);
	}
	s.pump();
}

void SmtpSession::on_committed(bool ok, std::string_view error)
{
	Impl &s = *impl_;
	if (s.closed || s.question != Impl::Question::Commit)
		return;
	s.question = Impl::Question::None;
	s.guard_armed = false;
	const Envelope &e = s.txn->envelope;
	if (ok) {
		s.log("accepted qid=" + e.qid + " from=<" + log_safe(e.sender) + "> size=" + std::to_string(e.size) +
		    " nrcpt=" + std::to_string(s.txn->recipients));
		s.reply("250 2.0.0 Ok: queued as " + e.qid);
	} else {
		s.log("commit failed qid=" + e.qid + " error=" + log_safe(error));
		s.error_reply("451 4.3.0 Queue write failed, try again later");
	}
	if (s.early_input) {
		s.log("pipelining error: commands sent before the reply to end of data");
		s.reply("554 5.5.0 Commands sent before the reply to end of data");
		s.txn.reset();
		s.close_session();
		return;
	}
	// The transaction ends either way; AUTH and EHLO stay.
	s.txn.reset();
	s.pump();
}

bool SmtpSession::wants_input() const
{
	return !impl_->closed && impl_->buffered() < kMaxBufferedInput;
}

bool SmtpSession::closed() const
{
	return impl_->closed;
}

} // namespace maild
