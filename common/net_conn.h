// NetConn: one client connection of a network role (smtpd, imapd, pop3d),
// non-blocking and driven by the role's libevent loop, in cleartext or TLS
// (libtls, server side).
//
// Reads go through one buffer on the stack of the read handler, so an idle
// connection holds no input memory: its cost is this object, its events and
// whatever output is still queued. Output is queued by write() and flushed as
// the socket (or the TLS layer, which may need to read in order to write)
// allows; partial writes resume where they stopped.
//
// Callbacks never run from inside a call the owner makes (write, start_tls,
// close_after_flush, ...): those only set state and wake the connection, so
// a protocol engine can call them from its own handlers. The owner may
// destroy the NetConn from inside any callback.
#pragma once

#include "common/unique_fd.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

struct event;
struct event_base;
struct tls;
struct tls_config;

namespace maild {

struct TlsDeleter {
	void operator()(tls *ctx) const;
};
struct TlsConfigDeleter {
	void operator()(tls_config *config) const;
};
using TlsPtr = std::unique_ptr<tls, TlsDeleter>;
using TlsConfigPtr = std::unique_ptr<tls_config, TlsConfigDeleter>;

// A libtls server context with the certificate chain and key read from
// these files now (call it before the jail: no file opens after), TLSv1.2
// and later only. nullptr with error_r set on failure.
TlsPtr tls_server_context(const std::string &cert_file, const std::string &key_file, std::string &error_r);

enum class NetCloseReason {
	Closed,    // close_after_flush() finished: everything queued was sent
	Eof,       // the client closed its side
	Error,     // a read or write failed (reset by the peer, ...)
	TlsFailed, // the handshake or a TLS read/write failed
	Timeout,   // the client did not read what close_after_flush() still had to send
};
std::string_view to_string(NetCloseReason reason);

class NetConn {
public:
	// While more than this much output waits, reading stops: a client that
	// does not read its replies cannot make us buffer without bound.
	static constexpr std::size_t kOutputHighWater = 1024 * 1024;
	// Bytes read (and handed to on_data) at most per read call.
	static constexpr std::size_t kReadChunk = 16 * 1024;

	struct Callbacks {
		std::function<void(std::string_view bytes)> on_data;
		// start_tls() finished its handshake; tls_version()/tls_cipher() are set.
		std::function<void()> on_tls_ready;
		// No input for the time set_timeout() gave.
		std::function<void()> on_timeout;
		// Called once; nothing else is called after it. detail: for the log.
		std::function<void(NetCloseReason reason, std::string_view detail)> on_closed;
	};

	// fd: a connected, non-blocking stream socket. Reading starts at once
	// (unless start_tls() is called before the loop runs again).
	NetConn(event_base *base, UniqueFd fd, Callbacks callbacks);
	~NetConn();
	NetConn(const NetConn &) = delete;
	NetConn &operator=(const NetConn &) = delete;

	// Queues bytes for the client. Ignored once closing or closed.
	void write(std::string_view bytes);
	// Sends what is queued, then closes (a TLS close_notify first).
	// Reads nothing more.
	void close_after_flush();
	// Flushes what is queued, then does the server side of a TLS handshake
	// with a context made from `server` (which must outlive this call only).
	// Nothing is read from the socket in between: input received before is
	// the caller's.
	void start_tls(tls *server);
	// Backpressure from the owner: stop and restart reading.
	void pause_reading();
	void resume_reading();
	// on_timeout after this many seconds without input; 0 disarms. A new call
	// replaces the old timeout.
	void set_timeout(uint32_t seconds);

	std::size_t queued_bytes() const { return out_.size() - out_pos_; }
	bool tls_active() const { return tls_ != nullptr && handshake_done_; }
	// After the handshake: "TLSv1.3", "TLS_AES_256_GCM_SHA384"; else "".
	std::string tls_version() const;
	std::string tls_cipher() const;

private:
	enum class Want : uint8_t { None, In, Out };

	static void on_event(int fd, short what, void *arg);
	static void on_timer(int fd, short what, void *arg);
	void pump();
	bool handshake();
	bool flush();
	bool read_input();
	void finish_close();
	void fail(NetCloseReason reason, std::string_view detail);
	void update_interest();
	void wake();
	bool reading_allowed() const;
	std::string tls_error_text() const;

	struct EventDeleter {
		void operator()(event *ev) const;
	};
	using EventPtr = std::unique_ptr<event, EventDeleter>;

	event_base *base_;
	UniqueFd fd_;
	Callbacks callbacks_;
	// Shared with the running callbacks so that they notice when the owner
	// destroyed this connection from inside one of them.
	std::shared_ptr<bool> alive_;
	EventPtr read_ev_, write_ev_, wake_ev_, timer_ev_;
	bool read_added_ = false, write_added_ = false;

	std::string out_;
	std::size_t out_pos_ = 0;

	TlsPtr tls_;
	tls *tls_server_ = nullptr; // a start_tls() waiting for the output to drain
	bool handshake_done_ = false;
	Want handshake_wants_ = Want::None;
	Want read_wants_ = Want::In;
	Want write_wants_ = Want::None;

	bool paused_ = false;
	bool closing_ = false;
	bool closed_ = false;
	uint32_t timeout_seconds_ = 0;
};

} // namespace maild
