// The load generator's seam between its driver (connections, timing,
// results) and a protocol module (what is said on one connection). A module
// is a Session per connection plus a row in kProtocols (protocols.cc);
// adding IMAP or POP3 is a new module and a new row, nothing else.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace maild::bench {

class MessageSource;

// The connection, as a session sees it.
class Transport {
public:
	virtual ~Transport() = default;
	// Queues bytes for sending (copied).
	virtual void send(std::string_view bytes) = 0;
	// Queues bytes that outlive the run (the shared message body): not copied.
	virtual void send_shared(std::string_view bytes) = 0;
	// The session is over: orderly (after QUIT) or failed (why says how).
	virtual void finish(bool failed, std::string_view why) = 0;
};

// What a session reports to the driver.
class SessionEvents {
public:
	virtual ~SessionEvents() = default;
	// Greeted and introduced (EHLO answered): ready for transactions.
	// pipelined: commands go out in batches (SMTP PIPELINING, RFC 2920).
	virtual void ready(bool pipelined) = 0;
	// One transaction ended: accepted (the final 250) or refused (reply holds
	// the refusing reply). latency runs from its first command sent to its
	// last reply received.
	virtual void transaction(bool accepted, std::chrono::steady_clock::duration latency,
	    std::string_view reply) = 0;
};

// What a ready session does next.
enum class Next {
	Transaction, // run one more
	Hold,        // stay connected and silent (idle mode)
	Quit,        // say goodbye and finish
};

class Workload {
public:
	virtual ~Workload() = default;
	virtual Next next() = 0;
};

struct SessionOptions {
	std::string hello_name; // EHLO argument
	std::string sender;     // MAIL FROM
	std::string recipient;  // RCPT TO
	bool pipelining = true; // use PIPELINING when the server offers it
};

struct SessionContext {
	Transport &transport;
	SessionEvents &events;
	Workload &workload;
	const SessionOptions &options;
	const MessageSource &messages;
	std::size_t index; // this session's number, for unique message ids
};

class Session {
public:
	virtual ~Session() = default;
	// One line from the server, CRLF removed (framing is strict: see
	// common/crlf.h). The session answers through its Transport.
	virtual void on_line(std::string_view line) = 0;
	// The connection ended under the session (the server closed it, or a
	// read or write failed): why says how.
	virtual void on_close(std::string_view why) = 0;
};

struct Protocol {
	std::string_view name;
	std::unique_ptr<Session> (*make)(const SessionContext &context);
};

// nullptr when no module has that name.
const Protocol *find_protocol(std::string_view name);

} // namespace maild::bench
