// Fuzzes a whole SMTP server session (smtpd/smtp_session.h): the bytes a
// client sends, in chunks of varying size, against a host that answers
// every question at once. The first input byte picks the listener kind and
// options, the second the chunk size; the rest is what the client sends.
//
// Invariants: every reply is a CRLF-terminated line of printable ASCII that
// starts with a three-digit code and SP or "-" (no client byte is ever
// echoed raw); the session asks at most one question at a time; nothing is
// written after close(); a message is committed only with a queue id the
// host gave, with at least one target, and only after the content was
// written; and the session never buffers without bound.
#include "smtpd/smtp_session.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

enum class Question { None, Resolve, Auth, Create, Commit, StartTls };

class FuzzHost : public maild::SmtpSessionHost {
public:
	void write(std::string_view bytes) override
	{
		check(!closed);
		out.append(bytes);
	}
	void start_tls() override { ask(Question::StartTls); }
	void close() override
	{
		check(!closed);
		closed = true;
	}
	void set_timeout(uint32_t seconds) override { check(seconds > 0); }
	void resolve(std::string_view address) override
	{
		ask(Question::Resolve);
		resolved_address = address;
	}
	void authenticate(std::string_view, std::string_view password) override
	{
		ask(Question::Auth);
		password_ok = password == "secret";
	}
	void create_message() override { ask(Question::Create); }
	void commit_message(const maild::Envelope &envelope) override
	{
		ask(Question::Commit);
		check(envelope.qid == kQid && !envelope.targets.empty());
	}
	void abort_message(std::string_view qid) override { check(qid == kQid); }
	void log(std::string_view event) override
	{
		for (unsigned char c : event)
			check(c >= 0x20 && c != 0x7f);
	}

	static constexpr std::string_view kQid = "0123456789abcdef";
	std::string out;
	bool closed = false;
	Question pending = Question::None;
	std::string resolved_address;
	bool password_ok = false;

private:
	void ask(Question q)
	{
		check(!closed && pending == Question::None);
		pending = q;
	}
};

// Each reply line: "NNN" then SP or "-", printable ASCII, CRLF.
void check_replies(std::string_view out)
{
	while (!out.empty()) {
		std::size_t end = out.find("\r\n");
		check(end != std::string_view::npos && end >= 4);
		std::string_view line = out.substr(0, end);
		check(is_digit(line[0]) && is_digit(line[1]) && is_digit(line[2]));
		check(line[3] == ' ' || line[3] == '-');
		for (unsigned char c : line)
			check(c >= 0x20 && c < 0x7f);
		out.remove_prefix(end + 2);
	}
}

// Answers the pending question the way a small test domain would.
void answer(FuzzHost &host, maild::SmtpSession &session)
{
	Question q = host.pending;
	host.pending = Question::None;
	switch (q) {
	case Question::None:
		return;
	case Question::Resolve: {
		maild::ResolveAnswer a;
		std::string_view address = host.resolved_address;
		if (address.find("unknown") != std::string_view::npos) {
			a.kind = maild::ResolveKind::UnknownUser;
		} else if (address.find("temp") != std::string_view::npos) {
			a.kind = maild::ResolveKind::TempFail;
		} else if (address.ends_with("@example.org")) {
			a.kind = maild::ResolveKind::Deliver;
			a.local_accounts = {"alice@example.org"};
			if (address.starts_with("list"))
				a.external = {"bob@remote.test"};
		} else {
			a.kind = maild::ResolveKind::NotLocalDomain;
		}
		session.on_resolved(a);
		return;
	}
	case Question::Auth:
		session.on_authenticated(host.password_ok ? maild::AuthResult::Ok : maild::AuthResult::Fail,
		    host.password_ok ? "alice@example.org" : "");
		return;
	case Question::Create: {
		maild::UniqueFd file(open("/dev/null", O_WRONLY | O_CLOEXEC));
		check(file.get() >= 0);
		session.on_message_created(FuzzHost::kQid, std::move(file));
		return;
	}
	case Question::Commit:
		session.on_committed(true, "");
		return;
	case Question::StartTls:
		session.on_tls_started(maild::TlsInfo{"TLSv1.3", "TLS_AES_256_GCM_SHA384"});
		return;
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > 64 * 1024)
		return 0;
	const uint8_t flags = data[0];
	const std::size_t chunk = 1 + data[1] % 64 * (data[1] >= 128 ? 64 : 1);
	std::string_view input(reinterpret_cast<const char *>(data + 2), size - 2);

	maild::SmtpSessionConfig config;
	constexpr maild::ListenerKind kinds[] = {
	    maild::ListenerKind::Smtp, maild::ListenerKind::Submission, maild::ListenerKind::Submissions};
	config.kind = kinds[flags % 3];
	config.hostname = "mx.example.org";
	config.tls_available = (flags & 0x04) != 0 || config.kind == maild::ListenerKind::Submissions;
	config.pipelining_guard = (flags & 0x08) != 0;
	config.max_message_size = 4096;
	config.max_recipients = 5;
	config.max_errors = 1 + (flags >> 4);

	FuzzHost host;
	{
		maild::SmtpSession session(host, config, maild::SmtpClient{"192.0.2.1", 4242, "feedfacecafebeef"});
		std::optional<maild::TlsInfo> tls;
		if (config.kind == maild::ListenerKind::Submissions)
			tls = maild::TlsInfo{"TLSv1.3", "TLS_AES_256_GCM_SHA384"};
		session.start(tls);
		while (!input.empty() && !session.closed()) {
			std::string_view piece = input.substr(0, chunk);
			input.remove_prefix(piece.size());
			session.on_input(piece);
			// Answer until the session has worked through what it has.
			for (int rounds = 0; host.pending != Question::None && !session.closed(); rounds++) {
				check(rounds < 100000);
				answer(host, session);
			}
			// With every question answered, the session has worked
			// through its input: nothing may stay buffered.
			check(session.closed() || session.wants_input());
		}
		if (!session.closed())
			session.on_eof();
	}
	check_replies(host.out);
	return 0;
}
