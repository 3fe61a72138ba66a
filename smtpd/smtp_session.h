// One SMTP server session (RFC 5321 and the extensions smtpd offers), as a
// state machine without I/O: the host (smtpd_main.cc) feeds it the bytes the
// client sent and the answers of lookup and the queue; the session tells
// the host what to write, what to ask and when to close, through
// SmtpSessionHost. Unit tests drive it with a fake host.
//
// The session asks one question at a time (resolve, authenticate, create,
// commit) and processes no further input until the answer has come: with
// PIPELINING the client may send a whole transaction in one write, and the
// replies still come in order (RFC 2920 section 3.1). Input that arrives
// meanwhile is buffered, up to a bound; wants_input() tells the host when to
// stop reading.
//
// Framing is strict (DESIGN.md invariant 1): a bare CR, a bare LF or a NUL
// in a command closes the session with 500 5.5.2; in DATA or BDAT content
// with 554 5.6.0 (message content has bad line ends); the transaction is
// aborted and nothing of it is queued.
#pragma once

#include "common/config.h"
#include "common/envelope.h"
#include "common/imsg_types.h"
#include "common/unique_fd.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maild {

struct SmtpSessionConfig {
	ListenerKind kind = ListenerKind::Smtp; // Smtp, Submission or Submissions
	std::string hostname;                   // greeting, Received:, Message-ID
	bool tls_available = false;             // a certificate is loaded: STARTTLS may be offered
	uint64_t max_message_size = 35ull * 1024 * 1024;
	uint32_t max_recipients = 100;
	std::size_t max_command_length = 512; // command line with its CRLF (RFC 5321 4.5.3.1.4; AUTH: 12288)
	std::size_t max_line_length = 998;    // message text line without CRLF
	uint32_t max_errors = 10;             // then 421 4.7.0 and close
	uint32_t command_timeout = 300;       // seconds, waiting for a command
	uint32_t data_timeout = 600;          // seconds, waiting for message content
	bool pipelining_guard = true;   // refuse early bytes after end of data (unauthenticated)
	bool received_auth_user = false; // name the authenticated user in Received:
};

struct TlsInfo {
	std::string version; // "TLSv1.3"
	std::string cipher;  // "TLS_AES_256_GCM_SHA384"
};

struct SmtpClient {
	std::string address;    // numeric IP (IPv6 without brackets)
	uint16_t port = 0;
	std::string session_id; // 16 hex digits, in every log line of the session
};

// lookup's answer to a resolve (LookupResolveResult).
struct ResolveAnswer {
	ResolveKind kind = ResolveKind::TempFail;
	std::vector<std::string> local_accounts;
	std::vector<std::string> external;
	std::string error;
};

class SmtpSessionHost {
public:
	virtual ~SmtpSessionHost() = default;
	// Queues bytes (replies) for the client, in order.
	virtual void write(std::string_view bytes) = 0;
	// Called right after the "220 2.0.0 Ready to start TLS" reply was
	// written: flush it, then handshake; then on_tls_started(), or on
	// failure close the connection without another word.
	virtual void start_tls() = 0;
	// Flush what was written, then close. No more calls into the session.
	virtual void close() = 0;
	// From now on, close with on_timeout() after this many seconds without
	// input; a new call replaces the old timeout.
	virtual void set_timeout(uint32_t seconds) = 0;
	// Questions; exactly one answer each, on_resolved / on_authenticated /
	// on_message_created or on_message_create_failed / on_committed.
	virtual void resolve(std::string_view address) = 0;
	virtual void authenticate(std::string_view user, std::string_view password) = 0;
	virtual void create_message() = 0;
	virtual void commit_message(const Envelope &envelope) = 0;
	// The transaction with this queue id ends without a commit. No answer.
	virtual void abort_message(std::string_view qid) = 0;
	// One event for the log ("accepted qid=... from=<...> size=... nrcpt=...");
	// the host adds the session id. Never a password, never raw client
	// bytes that could hold control characters.
	virtual void log(std::string_view event) = 0;
};

class SmtpSession {
public:
	SmtpSession(SmtpSessionHost &host, SmtpSessionConfig config, SmtpClient client);
	~SmtpSession();
	SmtpSession(const SmtpSession &) = delete;
	SmtpSession &operator=(const SmtpSession &) = delete;

	// Sends the greeting. tls is set on an implicit-TLS listener, whose
	// handshake the host has already done.
	void start(std::optional<TlsInfo> tls);

	void on_input(std::string_view bytes);
	void on_eof();     // the client went away: abort any transaction
	void on_timeout(); // 421 4.4.2 and close
	void on_tls_started(const TlsInfo &tls);
	void on_resolved(const ResolveAnswer &answer);
	void on_authenticated(AuthResult result, std::string_view account);
	void on_message_created(std::string_view qid, UniqueFd file);
	void on_message_create_failed(std::string_view error);
	void on_committed(bool ok, std::string_view error);

	// False while so much input is buffered that the host should stop
	// reading until the session has worked through it.
	bool wants_input() const;
	bool closed() const;

private:
	struct Impl;
	std::unique_ptr<Impl> impl_;
};

} // namespace maild
