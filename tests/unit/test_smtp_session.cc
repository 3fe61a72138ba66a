// The SMTP server session (smtpd/smtp_session.h) driven through a fake
// host that records what the session writes, asks and logs, and answers
// like a small domain would: example.org with alice, bob, an alias "team"
// (alice and bob), a list (alice and a remote address), a disabled and a
// failing address. Replies are compared byte for byte; message content is
// read back from the real file the session wrote.
#include "smtpd/smtp_session.h"

#include "common/sasl.h"
#include "smtpd/smtp_command.h"
#include "temp_dir.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

using namespace std::literals;
using maild::AuthResult;
using maild::Envelope;
using maild::ListenerKind;
using maild::ResolveAnswer;
using maild::ResolveKind;
using maild::SmtpSession;
using maild::SmtpSessionConfig;
using maild::TargetKind;
using maild::TlsInfo;

namespace {

constexpr std::string_view kQid = "0123456789abcdef";
const TlsInfo kTls{"TLSv1.3", "TLS_AES_256_GCM_SHA384"};

enum class Question { None, Resolve, Auth, Create, Commit, StartTls };

class FakeHost : public maild::SmtpSessionHost {
public:
	void write(std::string_view bytes) override
	{
		cr_assert(!closed, "write after close");
		out.append(bytes);
	}
	void start_tls() override
	{
		start_tls_calls++;
		ask(Question::StartTls);
	}
	void close() override
	{
		cr_assert(!closed, "close twice");
		closed = true;
	}
	void set_timeout(uint32_t seconds) override { timeout = seconds; }
	void resolve(std::string_view address) override
	{
		ask(Question::Resolve);
		resolved.emplace_back(address);
	}
	void authenticate(std::string_view user, std::string_view password) override
	{
		ask(Question::Auth);
		auth_user = user;
		auth_password = password;
	}
	void create_message() override { ask(Question::Create); }
	void commit_message(const Envelope &envelope) override
	{
		ask(Question::Commit);
		commits.push_back(envelope);
	}
	void abort_message(std::string_view qid) override { aborts.emplace_back(qid); }
	void log(std::string_view event) override { logs.emplace_back(event); }

	std::string out;
	bool closed = false;
	int start_tls_calls = 0;
	uint32_t timeout = 0;
	Question pending = Question::None;
	std::vector<std::string> resolved;
	std::string auth_user, auth_password;
	std::vector<Envelope> commits;
	std::vector<std::string> aborts;
	std::vector<std::string> logs;

private:
	void ask(Question q)
	{
		cr_assert(pending == Question::None, "two questions at once");
		pending = q;
	}
};

ResolveAnswer lookup(std::string_view address)
{
	ResolveAnswer a;
	a.kind = ResolveKind::Deliver;
	if (address == "alice@example.org")
		a.local_accounts = {"alice@example.org"};
	else if (address == "bob@example.org")
		a.local_accounts = {"bob@example.org"};
	else if (address == "team@example.org")
		a.local_accounts = {"alice@example.org", "bob@example.org"};
	else if (address == "list@example.org") {
		a.local_accounts = {"alice@example.org"};
		a.external = {"carol@remote.test"};
	} else if (address == "postmaster@mx.example.org")
		a.local_accounts = {"admin@example.org"};
	else if (address == "huge@example.org") {
		// A list whose targets alone exceed one QueueCommit message.
		for (int i = 0; i < 1000; i++)
			a.external.push_back(std::to_string(i) + std::string(200, 'x') + "@remote.test");
	} else if (address == "off@example.org")
		a.kind = ResolveKind::Disabled;
	else if (address == "broken@example.org")
		a.kind = ResolveKind::TempFail;
	else if (address.ends_with("@example.org"))
		a.kind = ResolveKind::UnknownUser;
	else
		a.kind = ResolveKind::NotLocalDomain;
	return a;
}

std::string read_file(const std::string &path)
{
	std::ifstream in(path, std::ios::binary);
	std::stringstream ss;
	ss << in.rdbuf();
	return ss.str();
}

std::string plain(std::string_view authzid, std::string_view user, std::string_view password)
{
	std::string raw = std::string(authzid) + '\0' + std::string(user) + '\0' + std::string(password);
	return maild::base64_encode(raw);
}

SmtpSessionConfig make_config(ListenerKind kind)
{
	SmtpSessionConfig c;
	c.kind = kind;
	c.hostname = "mx.example.org";
	c.tls_available = true;
	return c;
}

// One session, its fake host and a directory for message files. With
// `automatic`, every question is answered as soon as it is asked.
struct Harness {
	explicit Harness(SmtpSessionConfig c, std::optional<TlsInfo> tls = std::nullopt)
	    : config(std::move(c)), session(host, config, maild::SmtpClient{"192.0.2.1", 4242, "feedfacecafebeef"})
	{
		session.start(std::move(tls));
		host.out.clear();
	}

	// Sends bytes and answers questions until the session waits for input.
	std::string send(std::string_view bytes)
	{
		session.on_input(bytes);
		if (automatic)
			settle();
		return take();
	}
	std::string take() { return std::exchange(host.out, ""); }

	void settle()
	{
		while (host.pending != Question::None && !host.closed)
			answer();
	}
	void answer()
	{
		Question q = std::exchange(host.pending, Question::None);
		switch (q) {
		case Question::None:
			return;
		case Question::Resolve:
			session.on_resolved(lookup(host.resolved.back()));
			return;
		case Question::Auth: {
			AuthResult r = host.auth_password == "secret" ? AuthResult::Ok
			    : host.auth_password == "tempfail"        ? AuthResult::TempFail
			                                              : AuthResult::Fail;
			session.on_authenticated(r, r == AuthResult::Ok ? "alice@example.org" : "");
			return;
		}
		case Question::Create: {
			if (!create_ok) {
				session.on_message_create_failed("spool full");
				return;
			}
			maild::UniqueFd fd(open(file_path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
			cr_assert(fd.valid());
			session.on_message_created(kQid, std::move(fd));
			return;
		}
		case Question::Commit:
			session.on_committed(commit_ok, commit_ok ? "" : "fsync failed");
			return;
		case Question::StartTls:
			session.on_tls_started(kTls);
			return;
		}
	}

	std::string file_path() const { return dir / "message"; }
	std::string file() const { return read_file(file_path()); }
	// The message file without the Received: header smtpd put first.
	std::string body() const
	{
		std::string f = file();
		cr_assert(f.starts_with("Received: from "), "no Received: first: %s", f.c_str());
		std::size_t end = f.find("\r\n", f.find("; "));
		return f.substr(end + 2);
	}
	bool logged(std::string_view prefix) const
	{
		for (const std::string &l : host.logs)
			if (l.starts_with(prefix))
				return true;
		return false;
	}

	// EHLO, STARTTLS where needed, and AUTH PLAIN as alice.
	void login()
	{
		if (config.kind == ListenerKind::Submission) {
			send("EHLO client.test\r\n");
			cr_assert_eq(send("STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n");
		}
		send("EHLO client.test\r\n");
		cr_assert_eq(send("AUTH PLAIN " + plain("", "alice", "secret") + "\r\n"),
		    "235 2.7.0 Authentication successful\r\n");
	}

	maild::test::TempDir dir;
	FakeHost host;
	SmtpSessionConfig config;
	SmtpSession session;
	bool automatic = true;
	bool create_ok = true;
	bool commit_ok = true;
};

const std::string kEhloSmtp = "250-mx.example.org Hello [192.0.2.1]\r\n"
                              "250-PIPELINING\r\n"
                              "250-SIZE 36700160\r\n"
                              "250-8BITMIME\r\n"
                              "250-ENHANCEDSTATUSCODES\r\n"
                              "250-STARTTLS\r\n"
                              "250-CHUNKING\r\n"
                              "250-SMTPUTF8\r\n"
                              "250 DSN\r\n";

} // namespace

Test(smtp_session, greeting_and_ehlo_on_port_25)
{
	FakeHost host;
	SmtpSessionConfig config = make_config(ListenerKind::Smtp);
	SmtpSession session(host, config, maild::SmtpClient{"192.0.2.1", 4242, "feedfacecafebeef"});
	session.start(std::nullopt);
	cr_assert_eq(host.out, "220 mx.example.org ESMTP maild\r\n");
	cr_assert_eq(host.timeout, 300u);
	host.out.clear();
	session.on_input("EHLO client.test\r\n");
	cr_assert_eq(host.out, kEhloSmtp);
}

Test(smtp_session, ehlo_without_certificate_has_no_starttls)
{
	SmtpSessionConfig c = make_config(ListenerKind::Smtp);
	c.tls_available = false;
	c.max_message_size = 1000;
	Harness h(c);
	cr_assert_eq(h.send("EHLO client.test\r\n"), "250-mx.example.org Hello [192.0.2.1]\r\n250-PIPELINING\r\n"
	                                             "250-SIZE 1000\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
	                                             "250-CHUNKING\r\n250-SMTPUTF8\r\n250 DSN\r\n");
	cr_assert_eq(h.send("STARTTLS\r\n"), "502 5.5.1 STARTTLS not available\r\n");
}

Test(smtp_session, ehlo_after_starttls_on_port_25)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\n");
	cr_assert_eq(h.send("STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n");
	cr_assert_eq(h.host.start_tls_calls, 1);
	cr_assert(h.logged("tls version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384"));
	// RFC 3207 section 4.2: the EHLO before TLS is forgotten.
	cr_assert_eq(h.send("MAIL FROM:<a@remote.test>\r\n"), "503 5.5.1 Bad sequence of commands\r\n");
	std::string ehlo = h.send("EHLO client.test\r\n");
	cr_assert(ehlo.find("STARTTLS") == std::string::npos);
	cr_assert(ehlo.find("AUTH") == std::string::npos, "port 25 offers no AUTH");
	cr_assert_eq(h.send("STARTTLS\r\n"), "503 5.5.1 TLS already active\r\n");
	cr_assert_eq(h.send("AUTH PLAIN " + plain("", "alice", "secret") + "\r\n"), "503 5.5.1 AUTH not available\r\n");
}

Test(smtp_session, ehlo_on_submission)
{
	Harness h(make_config(ListenerKind::Submission));
	std::string before = h.send("EHLO client.test\r\n");
	cr_assert(before.find("250-STARTTLS\r\n") != std::string::npos);
	cr_assert(before.find("AUTH") == std::string::npos, "no AUTH before TLS");
	h.send("STARTTLS\r\n");
	std::string after = h.send("EHLO client.test\r\n");
	cr_assert(after.find("STARTTLS") == std::string::npos);
	cr_assert(after.ends_with("250-DSN\r\n250 AUTH PLAIN LOGIN\r\n"), "%s", after.c_str());
}

Test(smtp_session, ehlo_on_submissions)
{
	Harness h(make_config(ListenerKind::Submissions), kTls);
	std::string ehlo = h.send("EHLO client.test\r\n");
	cr_assert(ehlo.find("STARTTLS") == std::string::npos);
	cr_assert(ehlo.ends_with("250 AUTH PLAIN LOGIN\r\n"));
	cr_assert_eq(h.send("STARTTLS\r\n"), "503 5.5.1 TLS already active\r\n");
}

Test(smtp_session, helo_and_simple_commands)
{
	Harness h(make_config(ListenerKind::Smtp));
	cr_assert_eq(h.send("MAIL FROM:<a@remote.test>\r\n"), "503 5.5.1 Bad sequence of commands\r\n");
	cr_assert_eq(h.send("HELO client.test\r\n"), "250 mx.example.org\r\n");
	// No extension is in force after HELO.
	cr_assert(h.send("MAIL FROM:<a@remote.test> SIZE=10\r\n").starts_with("555 "));
	cr_assert_eq(h.send("NOOP\r\n"), "250 2.0.0 Ok\r\n");
	cr_assert_eq(h.send("RSET\r\n"), "250 2.0.0 Ok\r\n");
	cr_assert_eq(h.send("HELP\r\n"), "214 2.0.0 See https://www.rfc-editor.org/rfc/rfc5321\r\n");
	cr_assert_eq(h.send("VRFY alice\r\n"),
	    "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n");
	cr_assert(h.host.resolved.empty(), "VRFY asks nothing");
	cr_assert_eq(h.send("EXPN team\r\n"), "502 5.5.1 EXPN not available\r\n");
	cr_assert_eq(h.send("FROB\r\n"), "500 5.5.1 Command unrecognized\r\n");
	cr_assert_eq(h.send("QUIT\r\n"), "221 2.0.0 Bye\r\n");
	cr_assert(h.host.closed);
	cr_assert(h.session.closed());
}

Test(smtp_session, sequence_errors)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\n");
	cr_assert_eq(h.send("RCPT TO:<alice@example.org>\r\n"), "503 5.5.1 Bad sequence of commands\r\n");
	cr_assert_eq(h.send("DATA\r\n"), "503 5.5.1 Bad sequence of commands\r\n");
	cr_assert_eq(h.send("MAIL FROM:<a@remote.test>\r\n"), "250 2.1.0 Ok\r\n");
	cr_assert_eq(h.send("MAIL FROM:<a@remote.test>\r\n"), "503 5.5.1 Bad sequence of commands\r\n");
	cr_assert_eq(h.send("DATA\r\n"), "503 5.5.1 Bad sequence of commands\r\n");
	// A refused BDAT still has its chunk read, never taken as commands.
	cr_assert_eq(h.send("BDAT 6\r\nQUIT\r\n"), "503 5.5.1 Bad sequence of commands\r\n");
	cr_assert(!h.host.closed);
	cr_assert_eq(h.send("RCPT TO:<alice@example.org>\r\n"), "250 2.1.5 Ok\r\n");
	cr_assert_eq(h.send("BDAT 4\r\nab\r\n"), "250 2.0.0 4 octets received\r\n");
	cr_assert_eq(h.send("DATA\r\n"), "503 5.5.1 Bad sequence of commands\r\n");
	cr_assert_eq(h.send("EHLO client.test\r\n").substr(0, 4), "250-");
	cr_assert_eq(h.host.aborts, std::vector<std::string>{std::string(kQid)}, "EHLO ends the transaction");
}

Test(smtp_session, full_transaction_with_data)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\n");
	cr_assert_eq(h.send("MAIL FROM:<sender@remote.test> BODY=8BITMIME\r\n"), "250 2.1.0 Ok\r\n");
	cr_assert_eq(h.send("RCPT TO:<alice@example.org>\r\n"), "250 2.1.5 Ok\r\n");
	cr_assert_eq(h.send("DATA\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n");
	cr_assert_eq(h.host.timeout, 600u);
	cr_assert_eq(h.send("Subject: hi\r\n\r\n..leading dot\r\n.\r\n"), "250 2.0.0 Ok: queued as 0123456789abcdef\r\n");
	cr_assert_eq(h.host.timeout, 300u);
	cr_assert_eq(h.body(), "Subject: hi\r\n\r\n.leading dot\r\n");
	std::string f = h.file();
	cr_assert(f.starts_with("Received: from client.test ([192.0.2.1])\r\n"
	                        "\tby mx.example.org (maild) with ESMTP id 0123456789abcdef\r\n"
	                        "\tfor <alice@example.org>; "),
	    "%s", f.c_str());
	cr_assert(f.find(" +0000\r\nSubject: hi\r\n") != std::string::npos);
	cr_assert_eq(h.host.commits.size(), 1u);
	const Envelope &e = h.host.commits[0];
	cr_assert_eq(e.qid, kQid);
	cr_assert_eq(e.sender, "sender@remote.test");
	cr_assert_eq(e.size, f.size());
	cr_assert_eq(e.body, 1);
	cr_assert_eq(e.helo, "client.test");
	cr_assert_eq(e.client_address, "192.0.2.1");
	cr_assert_eq(e.flags, 0);
	cr_assert_eq(e.targets.size(), 1u);
	cr_assert_eq(e.targets[0].kind, TargetKind::Local);
	cr_assert_eq(e.targets[0].address, "alice@example.org");
	cr_assert(h.logged("accepted qid=0123456789abcdef from=<sender@remote.test> size="));
	cr_assert(h.logged("mail from=<sender@remote.test>"));
	// The session goes on after the transaction.
	cr_assert_eq(h.send("MAIL FROM:<>\r\n"), "250 2.1.0 Ok\r\n");
}

Test(smtp_session, received_for_only_with_one_recipient)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n");
	cr_assert_eq(h.send("DATA\r\n"), "354 End data with <CR><LF>.<CR><LF>\r\n");
	h.send("x\r\n.\r\n");
	std::string f = h.file();
	cr_assert(f.find("for <") == std::string::npos, "%s", f.c_str());
	cr_assert(f.starts_with("Received: from client.test ([192.0.2.1])\r\n"
	                        "\tby mx.example.org (maild) with ESMTP id 0123456789abcdef; "));
	cr_assert(f.ends_with(" +0000\r\nx\r\n"));
	cr_assert_eq(h.host.commits[0].targets.size(), 2u);
}

Test(smtp_session, bdat_chunks)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.org>\r\n");
	cr_assert_eq(h.send("BDAT 9\r\nSubject: "), "250 2.0.0 9 octets received\r\n");
	// Chunk bytes are content even when they look like commands or an
	// end marker (no dot-stuffing in BDAT).
	cr_assert_eq(h.send("BDAT 17\r\nx\r\n\r\n.\r\nQUIT\r\n.\r"), "");
	cr_assert_eq(h.send("\n"), "250 2.0.0 17 octets received\r\n");
	cr_assert_eq(h.send("BDAT 0 LAST\r\n"), "250 2.0.0 Ok: queued as 0123456789abcdef\r\n");
	cr_assert_eq(h.body(), "Subject: x\r\n\r\n.\r\nQUIT\r\n.\r\n");
	cr_assert_eq(h.host.commits.size(), 1u);
	cr_assert(!h.host.closed);
}

Test(smtp_session, bdat_single_last_chunk)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.org>\r\n");
	cr_assert_eq(h.send("BDAT 12 LAST\r\nSubject: x\r\n"), "250 2.0.0 Ok: queued as 0123456789abcdef\r\n");
	cr_assert_eq(h.body(), "Subject: x\r\n");
	cr_assert_eq(h.send("QUIT\r\n"), "221 2.0.0 Bye\r\n");
}

Test(smtp_session, bdat_bare_lf_and_long_line)
{
	{
		Harness h(make_config(ListenerKind::Smtp));
		h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.org>\r\n");
		cr_assert_eq(h.send("BDAT 8 LAST\r\nab\n.\r\nxy"), "554 5.6.0 Bare CR, bare LF or NUL in message content\r\n");
		cr_assert(h.host.closed);
		cr_assert(h.host.commits.empty());
		cr_assert_eq(h.host.aborts.size(), 1u);
	}
	{
		SmtpSessionConfig c = make_config(ListenerKind::Smtp);
		c.max_line_length = 10;
		Harness h(c);
		h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.org>\r\n");
		cr_assert_eq(h.send("BDAT 12\r\n0123456789\r\n"), "250 2.0.0 12 octets received\r\n");
		cr_assert_eq(h.send("BDAT 11\r\n0123456789x"),
		    "554 5.6.0 Message line longer than 10 octets\r\n");
		cr_assert(h.host.closed);
	}
}

Test(smtp_session, pipelined_transaction_in_one_write)
{
	Harness h(make_config(ListenerKind::Smtp));
	std::string replies = h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\n"
	                             "RCPT TO:<alice@example.org>\r\nRCPT TO:<nobody@example.org>\r\n"
	                             "RCPT TO:<bob@example.org>\r\nDATA\r\n");
	cr_assert_eq(replies, kEhloSmtp + "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 User unknown\r\n"
	                                  "250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
	cr_assert_eq(h.send("Subject: x\r\n\r\nbody\r\n.\r\n"), "250 2.0.0 Ok: queued as 0123456789abcdef\r\n");
	cr_assert_eq(h.send("QUIT\r\n"), "221 2.0.0 Bye\r\n");
	cr_assert(h.logged("rcpt to=<nobody@example.org> refused: user unknown"));
}

Test(smtp_session, pipelined_answers_come_one_at_a_time)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.automatic = false;
	cr_assert_eq(h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nNOOP\r\n"),
	    kEhloSmtp);
	cr_assert_eq(h.host.pending, Question::Resolve);
	cr_assert_eq(h.host.resolved.back(), "a@remote.test");
	h.answer();
	cr_assert_eq(h.host.resolved.back(), "alice@example.org");
	cr_assert_eq(h.take(), "250 2.1.0 Ok\r\n");
	h.answer();
	cr_assert_eq(h.take(), "250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n");
}

Test(smtp_session, smuggling_probes_are_framing_errors)
{
	const std::vector<std::string> probes = {"\n.\n", "\r\n.\r", "\n.\r\n", "\r.\r\n"};
	for (const std::string &probe : probes) {
		Harness h(make_config(ListenerKind::Smtp));
		h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n");
		std::string out = h.send("Subject: x\r\n\r\nhello" + probe +
		    "MAIL FROM:<evil@remote.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nevil\r\n.\r\n");
		cr_assert_eq(out, "554 5.6.0 Bare CR, bare LF or NUL in message content\r\n", "probe %zu",
		    &probe - probes.data());
		cr_assert(h.host.closed);
		cr_assert(h.host.commits.empty());
		cr_assert_eq(h.host.aborts, std::vector<std::string>{std::string(kQid)});
		cr_assert(h.logged("framing error in content"));
	}
}

Test(smtp_session, smuggling_probe_split_across_inputs)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n");
	cr_assert_eq(h.send("hello\r\n.\r"), "");
	cr_assert_eq(h.send("MAIL FROM:<evil@remote.test>\r\n"), "554 5.6.0 Bare CR, bare LF or NUL in message content\r\n");
	cr_assert(h.host.commits.empty());
}

Test(smtp_session, nul_in_data)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n");
	cr_assert_eq(h.send("a\0b\r\n.\r\n"sv), "554 5.6.0 Bare CR, bare LF or NUL in message content\r\n");
	cr_assert(h.host.closed);
	cr_assert(h.host.commits.empty());
}

Test(smtp_session, long_data_line)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n");
	cr_assert_eq(h.send(std::string(998, 'a') + "\r\n"), "");
	cr_assert_eq(h.send(std::string(999, 'a') + "\r\n"), "554 5.6.0 Message line longer than 998 octets\r\n");
	cr_assert(h.host.closed);
}

Test(smtp_session, bare_lf_and_cr_in_command)
{
	{
		Harness h(make_config(ListenerKind::Smtp));
		cr_assert_eq(h.send("EHLO client.test\nMAIL FROM:<a@remote.test>\r\n"),
		    "500 5.5.2 Bare CR, bare LF or NUL in command\r\n");
		cr_assert(h.host.closed);
	}
	{
		Harness h(make_config(ListenerKind::Smtp));
		h.send("EHLO client.test\r\n");
		cr_assert_eq(h.send("NOOP\rQUIT\r\n"), "500 5.5.2 Bare CR, bare LF or NUL in command\r\n");
		cr_assert(h.host.closed);
	}
	{
		Harness h(make_config(ListenerKind::Smtp));
		cr_assert_eq(h.send("NO\0OP\r\n"sv), "500 5.5.2 Bare CR, bare LF or NUL in command\r\n");
	}
}

Test(smtp_session, starttls_injection)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\n");
	cr_assert_eq(h.send("STARTTLS\r\nMAIL FROM:<a@remote.test>\r\n"), "554 5.5.0 Data pipelined after STARTTLS\r\n");
	cr_assert(h.host.closed);
	cr_assert_eq(h.host.start_tls_calls, 0);
}

Test(smtp_session, cleartext_before_handshake_closes)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.automatic = false;
	h.send("EHLO client.test\r\n");
	cr_assert_eq(h.send("STARTTLS\r\n"), "220 2.0.0 Ready to start TLS\r\n");
	cr_assert_eq(h.send("MAIL FROM:<a@remote.test>\r\n"), "554 5.5.0 Data pipelined after STARTTLS\r\n");
	cr_assert(h.host.closed);
}

Test(smtp_session, pipelining_guard_buffered_after_end_of_data)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n");
	cr_assert_eq(h.send("x\r\n.\r\nQUIT\r\n"), "554 5.5.0 Commands sent before the reply to end of data\r\n");
	cr_assert(h.host.closed);
	cr_assert(h.host.commits.empty());
	cr_assert_eq(h.host.aborts, std::vector<std::string>{std::string(kQid)});
}

Test(smtp_session, pipelining_guard_bytes_before_commit_answer)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n");
	h.automatic = false;
	h.send("x\r\n.\r\n");
	cr_assert_eq(h.host.pending, Question::Commit);
	// The commit is on its way: the early bytes are dropped, and refused
	// once the message they followed is safe (it is not taken back).
	cr_assert_eq(h.send("QUIT\r\n"), "");
	h.answer();
	cr_assert_eq(h.take(), "250 2.0.0 Ok: queued as " + std::string(kQid) +
		"\r\n554 5.5.0 Commands sent before the reply to end of data\r\n");
	cr_assert(h.host.closed);
	cr_assert(h.host.aborts.empty());
}

Test(smtp_session, pipelining_guard_bdat_last)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\n");
	cr_assert_eq(h.send("BDAT 3 LAST\r\nx\r\nQUIT\r\n"), "554 5.5.0 Commands sent before the reply to end of data\r\n");
	cr_assert(h.host.commits.empty());
}

Test(smtp_session, pipelining_guard_off)
{
	SmtpSessionConfig c = make_config(ListenerKind::Smtp);
	c.pipelining_guard = false;
	Harness h(c);
	h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n");
	cr_assert_eq(h.send("x\r\n.\r\nQUIT\r\n"), "250 2.0.0 Ok: queued as 0123456789abcdef\r\n221 2.0.0 Bye\r\n");
}

Test(smtp_session, authenticated_client_may_pipeline_after_data)
{
	Harness h(make_config(ListenerKind::Submissions), kTls);
	h.login();
	h.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
	cr_assert_eq(h.send("x\r\n.\r\nQUIT\r\n"), "250 2.0.0 Ok: queued as 0123456789abcdef\r\n221 2.0.0 Bye\r\n");
}

Test(smtp_session, size_limits)
{
	SmtpSessionConfig c = make_config(ListenerKind::Smtp);
	c.max_message_size = 100;
	Harness h(c);
	h.send("EHLO client.test\r\n");
	cr_assert_eq(h.send("MAIL FROM:<a@remote.test> SIZE=101\r\n"),
	    "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
	cr_assert_eq(h.send("MAIL FROM:<a@remote.test> SIZE=100\r\n"), "250 2.1.0 Ok\r\n");
	h.send("RCPT TO:<alice@example.org>\r\nDATA\r\n");
	std::string big;
	for (int i = 0; i < 20; i++)
		big += "0123456789\r\n";
	cr_assert_eq(h.send(big + ".\r\n"), "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
	cr_assert(h.host.commits.empty());
	cr_assert_eq(h.host.aborts, std::vector<std::string>{std::string(kQid)});
	cr_assert(!h.host.closed);
	// In sync: the next transaction works.
	cr_assert_eq(h.send("MAIL FROM:<a@remote.test>\r\n"), "250 2.1.0 Ok\r\n");
	h.send("RCPT TO:<alice@example.org>\r\n");
	cr_assert_eq(h.send("BDAT 120\r\n" + big.substr(0, 120)), "250 2.0.0 120 octets received\r\n");
	cr_assert_eq(h.send("BDAT 0 LAST\r\n"), "552 5.3.4 Message size exceeds fixed maximum message size\r\n");
	cr_assert(h.host.commits.empty());
}

Test(smtp_session, max_recipients)
{
	SmtpSessionConfig c = make_config(ListenerKind::Smtp);
	c.max_recipients = 2;
	Harness h(c);
	h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\n");
	cr_assert_eq(h.send("RCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<team@example.org>\r\n"),
	    "250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n452 4.5.3 Too many recipients\r\n");
	cr_assert(h.logged("rcpt to=<team@example.org> refused: too many recipients"));
}

Test(smtp_session, recipient_refusals)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\n");
	cr_assert_eq(h.send("RCPT TO:<x@remote.test>\r\n"), "550 5.7.1 Relaying denied\r\n");
	cr_assert_eq(h.send("RCPT TO:<nobody@example.org>\r\n"), "550 5.1.1 User unknown\r\n");
	cr_assert_eq(h.send("RCPT TO:<off@example.org>\r\n"), "550 5.2.1 Mailbox disabled\r\n");
	cr_assert_eq(h.send("RCPT TO:<broken@example.org>\r\n"), "451 4.3.0 Temporary lookup failure, try again later\r\n");
	cr_assert(h.logged("rcpt to=<x@remote.test> refused: relaying denied"));
	cr_assert(h.logged("rcpt to=<off@example.org> refused: mailbox disabled"));
	cr_assert(h.logged("rcpt to=<broken@example.org> refused: temporary lookup failure"));
	cr_assert_eq(h.send("RCPT TO:<Postmaster>\r\n"), "250 2.1.5 Ok\r\n");
	cr_assert_eq(h.host.resolved.back(), "postmaster@mx.example.org");
}

Test(smtp_session, envelope_targets)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\nMAIL FROM:<someone@example.org> RET=HDRS ENVID=abc\r\n");
	h.send("RCPT TO:<team@example.org> NOTIFY=SUCCESS ORCPT=rfc822;team@example.org\r\n");
	h.send("RCPT TO:<alice@example.org>\r\nRCPT TO:<list@example.org> NOTIFY=NEVER\r\nDATA\r\nx\r\n.\r\n");
	cr_assert_eq(h.host.commits.size(), 1u);
	const Envelope &e = h.host.commits[0];
	cr_assert_eq(e.flags, maild::kEnvelopeLocalSenderUnauthenticated, "local sender without AUTH on port 25");
	cr_assert_eq(e.envid, "abc");
	cr_assert_eq(e.ret, 2);
	cr_assert_eq(e.targets.size(), 3u);
	cr_assert_eq(e.targets[0].kind, TargetKind::Local);
	cr_assert_eq(e.targets[0].address, "alice@example.org");
	cr_assert_eq(e.targets[0].rcpt, "team@example.org");
	cr_assert_eq(e.targets[0].notify, maild::kNotifySuccess);
	cr_assert_eq(e.targets[0].orcpt, "rfc822;team@example.org");
	cr_assert_eq(e.targets[1].address, "bob@example.org");
	cr_assert_eq(e.targets[2].kind, TargetKind::Remote);
	cr_assert_eq(e.targets[2].address, "carol@remote.test");
	cr_assert_eq(e.targets[2].rcpt, "list@example.org");
	cr_assert_eq(e.targets[2].notify, maild::kNotifyNever);
	cr_assert(e.targets[2].orcpt.empty());
}

Test(smtp_session, submission_requires_auth_and_tls)
{
	Harness h(make_config(ListenerKind::Submission));
	h.send("EHLO client.test\r\n");
	cr_assert_eq(h.send("MAIL FROM:<alice@example.org>\r\n"), "530 5.7.0 Authentication required\r\n");
	cr_assert_eq(h.send("AUTH PLAIN " + plain("", "alice", "secret") + "\r\n"),
	    "530 5.7.0 Must issue a STARTTLS command first\r\n");
	cr_assert(h.host.auth_user.empty());
}

Test(smtp_session, auth_plain_results)
{
	Harness h(make_config(ListenerKind::Submissions), kTls);
	h.send("EHLO client.test\r\n");
	cr_assert_eq(h.send("AUTH PLAIN " + plain("", "alice", "wrong") + "\r\n"),
	    "535 5.7.8 Authentication credentials invalid\r\n");
	cr_assert(h.logged("auth failed user=alice"));
	cr_assert_eq(h.send("AUTH PLAIN " + plain("", "alice", "tempfail") + "\r\n"),
	    "454 4.7.0 Temporary authentication failure\r\n");
	cr_assert_eq(h.send("AUTH PLAIN " + plain("bob", "alice", "secret") + "\r\n"),
	    "535 5.7.8 Authentication credentials invalid\r\n");
	cr_assert_eq(h.send("AUTH PLAIN Zm9v=\r\n").substr(0, 10), "501 5.5.2 ");
	cr_assert_eq(h.send("AUTH CRAM-MD5\r\n"), "504 5.5.4 Unrecognized authentication type\r\n");
	cr_assert_eq(h.send("AUTH PLAIN\r\n"), "334 \r\n");
	cr_assert_eq(h.send("AAAA\r\n"), "501 5.5.2 Invalid base64 data\r\n");
	cr_assert_eq(h.send("AUTH PLAIN\r\n"), "334 \r\n");
	cr_assert_eq(h.send(plain("alice", "alice", "secret") + "\r\n"), "235 2.7.0 Authentication successful\r\n");
	cr_assert_eq(h.host.auth_user, "alice");
	cr_assert(h.logged("auth ok user=alice@example.org"));
	cr_assert_eq(h.send("AUTH PLAIN " + plain("", "alice", "secret") + "\r\n"), "503 5.5.1 Already authenticated\r\n");
	for (const std::string &l : h.host.logs)
		cr_assert(l.find("secret") == std::string::npos && l.find("wrong") == std::string::npos,
		    "password logged: %s", l.c_str());
}

Test(smtp_session, auth_login_and_cancel)
{
	Harness h(make_config(ListenerKind::Submissions), kTls);
	cr_assert_eq(h.send("AUTH LOGIN\r\n"), "503 5.5.1 Bad sequence of commands\r\n", "AUTH needs EHLO");
	h.send("EHLO client.test\r\n");
	cr_assert_eq(h.send("AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
	cr_assert_eq(h.send("*\r\n"), "501 5.0.0 Authentication cancelled\r\n");
	cr_assert_eq(h.send("AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
	cr_assert_eq(h.send(maild::base64_encode("alice") + "\r\n"), "334 UGFzc3dvcmQ6\r\n");
	cr_assert_eq(h.send("*\r\n"), "501 5.0.0 Authentication cancelled\r\n");
	cr_assert(h.host.auth_user.empty(), "cancelled exchange asks nothing");
	cr_assert_eq(h.send("AUTH LOGIN " + maild::base64_encode("alice") + "\r\n"), "334 UGFzc3dvcmQ6\r\n");
	cr_assert_eq(h.send(maild::base64_encode("secret") + "\r\n"), "235 2.7.0 Authentication successful\r\n");
	cr_assert_eq(h.host.auth_user, "alice");
}

Test(smtp_session, auth_during_transaction)
{
	Harness h(make_config(ListenerKind::Submissions), kTls);
	h.send("EHLO client.test\r\n");
	cr_assert_eq(h.send("AUTH PLAIN " + plain("", "alice", "secret") + "\r\n"), "235 2.7.0 Authentication successful\r\n");
	h.send("MAIL FROM:<alice@example.org>\r\n");
	cr_assert_eq(h.send("AUTH PLAIN " + plain("", "alice", "secret") + "\r\n"), "503 5.5.1 Already authenticated\r\n");
}

Test(smtp_session, submission_sender_ownership)
{
	Harness h(make_config(ListenerKind::Submission));
	h.login();
	cr_assert_eq(h.send("MAIL FROM:<bob@example.org>\r\n"),
	    "553 5.7.1 Sender address not owned by the authenticated user\r\n");
	cr_assert_eq(h.send("MAIL FROM:<someone@remote.test>\r\n"),
	    "553 5.7.1 Sender address not owned by the authenticated user\r\n");
	cr_assert_eq(h.send("MAIL FROM:<>\r\n"), "553 5.7.1 Sender address not owned by the authenticated user\r\n");
	cr_assert_eq(h.send("MAIL FROM:<alice@example.org>\r\n"), "250 2.1.0 Ok\r\n");
	// Relaying for the authenticated user: a Remote target.
	cr_assert_eq(h.send("RCPT TO:<dave@remote.test>\r\n"), "250 2.1.5 Ok\r\n");
	cr_assert_eq(h.send("RCPT TO:<dave@remote.test>\r\n"), "250 2.1.5 Ok\r\n");
	h.send("DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n");
	cr_assert_eq(h.host.commits.size(), 1u);
	const Envelope &e = h.host.commits[0];
	cr_assert_eq(e.auth_user, "alice@example.org");
	cr_assert_eq(e.flags, 0);
	cr_assert_eq(e.targets.size(), 1u);
	cr_assert_eq(e.targets[0].kind, TargetKind::Remote);
	cr_assert_eq(e.targets[0].address, "dave@remote.test");
	// Two RCPT commands (one target): no "for" clause.
	cr_assert(h.file().find("with ESMTPSA id 0123456789abcdef\r\n\t(TLSv1.3 cipher TLS_AES_256_GCM_SHA384); ") !=
	        std::string::npos,
	    "%s", h.file().c_str());
}

Test(smtp_session, received_names_authenticated_user_when_configured)
{
	SmtpSessionConfig c = make_config(ListenerKind::Submissions);
	c.received_auth_user = true;
	Harness h(c, kTls);
	h.login();
	h.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nx\r\n.\r\n");
	cr_assert(h.file().find("\r\n\t(authenticated as alice@example.org)\r\n") != std::string::npos);
}

Test(smtp_session, date_and_message_id_added_on_submission)
{
	Harness h(make_config(ListenerKind::Submissions), kTls);
	h.login();
	h.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
	cr_assert_eq(h.send("Subject: x\r\n\r\nDate: in the body\r\n.\r\n"), "250 2.0.0 Ok: queued as 0123456789abcdef\r\n");
	std::string body = h.body();
	cr_assert(body.starts_with("Date: "), "%s", body.c_str());
	std::size_t mid = body.find("\r\nMessage-ID: <0123456789abcdef.");
	cr_assert(mid != std::string::npos, "%s", body.c_str());
	cr_assert(body.find("@mx.example.org>\r\nSubject: x\r\n\r\nDate: in the body\r\n") != std::string::npos, "%s",
	    body.c_str());
}

Test(smtp_session, date_and_message_id_kept_when_present)
{
	Harness h(make_config(ListenerKind::Submissions), kTls);
	h.login();
	h.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
	std::string msg = "date: Tue, 1 Dec 2026 10:00:00 +0000\r\nMESSAGE-ID: <a@b>\r\n\r\nbody\r\n";
	h.send(msg + ".\r\n");
	cr_assert_eq(h.body(), msg);
	// Only one of the two missing: only that one is added (BDAT too).
	h.send("MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n");
	std::string m2 = "Message-Id: <a@b>\r\n\r\nbody\r\n";
	cr_assert_eq(h.send("BDAT " + std::to_string(m2.size()) + " LAST\r\n" + m2),
	    "250 2.0.0 Ok: queued as 0123456789abcdef\r\n");
	std::string body = h.body();
	cr_assert(body.starts_with("Date: ") && body.ends_with(" +0000\r\n" + m2), "%s", body.c_str());
}

Test(smtp_session, no_headers_added_on_port_25)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
	h.send("Subject: x\r\n\r\nbody\r\n.\r\n");
	cr_assert_eq(h.body(), "Subject: x\r\n\r\nbody\r\n");
}

Test(smtp_session, too_many_errors)
{
	SmtpSessionConfig c = make_config(ListenerKind::Smtp);
	c.max_errors = 3;
	Harness h(c);
	cr_assert_eq(h.send("FOO\r\nBAR\r\n"), "500 5.5.1 Command unrecognized\r\n500 5.5.1 Command unrecognized\r\n");
	cr_assert(!h.host.closed);
	cr_assert_eq(h.send("MAIL FROM:<a@b.test>\r\nNOOP\r\n"),
	    "503 5.5.1 Bad sequence of commands\r\n421 4.7.0 mx.example.org Too many errors, closing connection\r\n");
	cr_assert(h.host.closed);
}

Test(smtp_session, timeout_aborts)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\npartial\r\n");
	h.session.on_timeout();
	cr_assert_eq(h.take(), "421 4.4.2 mx.example.org Timeout, closing connection\r\n");
	cr_assert(h.host.closed);
	cr_assert_eq(h.host.aborts, std::vector<std::string>{std::string(kQid)});
}

Test(smtp_session, eof_aborts)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.org>\r\nBDAT 10\r\nabc");
	h.session.on_eof();
	cr_assert(h.session.closed());
	cr_assert_eq(h.host.aborts, std::vector<std::string>{std::string(kQid)});
	cr_assert(h.host.commits.empty());
}

Test(smtp_session, command_length_limit)
{
	Harness h(make_config(ListenerKind::Smtp));
	// RFC 5321 section 4.5.3.1.4: 512 octets with the CRLF.
	cr_assert_eq(h.send("NOOP " + std::string(505, 'a') + "\r\n"), "250 2.0.0 Ok\r\n");
	cr_assert_eq(h.send("NOOP " + std::string(506, 'a') + "\r\n"), "500 5.5.6 Line too long\r\n");
	cr_assert(h.host.closed);
}

Test(smtp_session, huge_ehlo_refused_with_bounded_memory)
{
	Harness h(make_config(ListenerKind::Smtp));
	std::string chunk(1024, 'a');
	h.send("EHLO ");
	int sent = 0;
	while (!h.session.closed() && sent < 64) {
		h.session.on_input(chunk);
		sent++;
	}
	cr_assert(h.session.closed());
	cr_assert_leq(sent, 13, "refused only after %d KiB", sent);
	cr_assert_eq(h.take(), "500 5.5.6 Line too long\r\n");
	cr_assert(!h.session.wants_input());
}

Test(smtp_session, long_auth_line_accepted)
{
	Harness h(make_config(ListenerKind::Submissions), kTls);
	h.send("EHLO client.test\r\n");
	std::string password(3000, 'p');
	cr_assert_eq(h.send("AUTH PLAIN " + plain("", "alice", password) + "\r\n"),
	    "535 5.7.8 Authentication credentials invalid\r\n");
	cr_assert_eq(h.host.auth_password, password);
}

Test(smtp_session, envid_xtext_decoding_to_cr)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\n");
	std::string reply = h.send("MAIL FROM:<a@remote.test> ENVID=abc+0Ddef\r\n");
	cr_assert(reply.starts_with("501 "), "%s", reply.c_str());
	cr_assert(h.host.resolved.empty());
}

Test(smtp_session, input_buffer_is_bounded_while_asking)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.automatic = false;
	h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\n");
	cr_assert_eq(h.host.pending, Question::Resolve);
	std::string noops;
	while (noops.size() < 70 * 1024)
		noops += "NOOP\r\n";
	h.session.on_input(noops);
	cr_assert(!h.session.wants_input());
	h.answer();
	cr_assert(h.session.wants_input());
	cr_assert(h.take().ends_with("250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"));
}

Test(smtp_session, queue_failures)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.create_ok = false;
	h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.org>\r\n");
	cr_assert_eq(h.send("DATA\r\n"), "451 4.3.0 Queue unavailable, try again later\r\n");
	h.send("MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.org>\r\n");
	cr_assert_eq(h.send("BDAT 6\r\nQUIT\r\n"), "451 4.3.0 Queue unavailable, try again later\r\n");
	cr_assert(!h.host.closed, "the chunk was read, not run");
	h.create_ok = true;
	h.commit_ok = false;
	h.send("MAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n");
	cr_assert_eq(h.send("x\r\n.\r\n"), "451 4.3.0 Queue write failed, try again later\r\n");
	cr_assert_eq(h.send("MAIL FROM:<a@remote.test>\r\n"), "250 2.1.0 Ok\r\n");
}

Test(smtp_session, helo_session_protocol)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("HELO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\nx\r\n.\r\n");
	cr_assert(h.file().find("with SMTP id ") != std::string::npos);
	cr_assert_eq(h.send("BDAT 1 LAST\r\nx"), "503 5.5.1 Bad sequence of commands\r\n", "no CHUNKING after HELO");
}

Test(smtp_session, envelope_size_limit)
{
	Harness h(make_config(ListenerKind::Smtp));
	h.send("EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\n");
	cr_assert_eq(h.send("RCPT TO:<huge@example.org>\r\n"), "452 4.5.3 Too many recipients\r\n");
	cr_assert(h.logged("rcpt to=<huge@example.org> refused: envelope too large"));
	cr_assert_eq(h.send("RCPT TO:<alice@example.org>\r\nDATA\r\nx\r\n.\r\n"),
	    "250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as 0123456789abcdef\r\n");
	cr_assert_eq(h.host.commits.size(), 1u);
	cr_assert_eq(h.host.commits[0].targets.size(), 1u);
}

// Framing must not depend on how the input is split: one byte at a time
// gives the same replies and the same file as one write.
Test(smtp_session, byte_at_a_time)
{
	const std::string script = "EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<alice@example.org>\r\n"
	                           "DATA\r\nSubject: x\r\n\r\n..one\r\n.\r\nMAIL FROM:<a@remote.test>\r\n"
	                           "RCPT TO:<bob@example.org>\r\nBDAT 7\r\nab\r\n.\r\nBDAT 4 LAST\r\ncd\r\nQUIT\r\n";
	std::vector<std::string> files;
	std::vector<std::string> outputs;
	for (int split = 0; split < 2; split++) {
		SmtpSessionConfig c = make_config(ListenerKind::Smtp);
		c.pipelining_guard = false;
		Harness h(c);
		std::string out;
		if (split == 0) {
			out = h.send(script);
		} else {
			for (char ch : script)
				out += h.send(std::string_view(&ch, 1));
		}
		cr_assert(h.host.closed);
		cr_assert_eq(h.host.commits.size(), 2u);
		outputs.push_back(out);
		files.push_back(h.body());
	}
	cr_assert_eq(outputs[0], outputs[1]);
	cr_assert_eq(files[0], "ab\r\n.\r\ncd\r\n");
	cr_assert_eq(files[1], files[0]);
	cr_assert(outputs[0].ends_with("250 2.0.0 7 octets received\r\n250 2.0.0 Ok: queued as 0123456789abcdef\r\n"
	                               "221 2.0.0 Bye\r\n"));
}
