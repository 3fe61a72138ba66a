#include "common/net_conn.h"

#include "common/log.h"

#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <tls.h>

#include <cerrno>
#include <cstring>

namespace maild {

void TlsDeleter::operator()(tls *ctx) const
{
	tls_free(ctx);
}

void TlsConfigDeleter::operator()(tls_config *config) const
{
	tls_config_free(config);
}

void NetConn::EventDeleter::operator()(event *ev) const
{
	event_free(ev);
}

TlsPtr tls_server_context(const std::string &cert_file, const std::string &key_file, std::string &error_r)
{
	TlsConfigPtr config(tls_config_new());
	if (!config) {
		error_r = "tls_config_new failed";
		return nullptr;
	}
	if (tls_config_set_protocols(config.get(), TLS_PROTOCOL_TLSv1_2 | TLS_PROTOCOL_TLSv1_3) < 0 ||
	    tls_config_set_cert_file(config.get(), cert_file.c_str()) < 0 ||
	    tls_config_set_key_file(config.get(), key_file.c_str()) < 0) {
		error_r = tls_config_error(config.get());
		return nullptr;
	}
	TlsPtr server(tls_server());
	if (!server) {
		error_r = "tls_server failed";
		return nullptr;
	}
	// The context keeps its own reference to the configuration.
	if (tls_configure(server.get(), config.get()) < 0) {
		error_r = tls_error(server.get());
		return nullptr;
	}
	return server;
}

std::string_view to_string(NetCloseReason reason)
{
	switch (reason) {
	case NetCloseReason::Closed:
		return "closed";
	case NetCloseReason::Eof:
		return "eof";
	case NetCloseReason::Error:
		return "error";
	case NetCloseReason::TlsFailed:
		return "tls-failed";
	case NetCloseReason::Timeout:
		return "timeout";
	}
	return "unknown";
}

NetConn::NetConn(event_base *base, UniqueFd fd, Callbacks callbacks)
    : base_(base), fd_(std::move(fd)), callbacks_(std::move(callbacks)), alive_(std::make_shared<bool>(true))
{
	read_ev_.reset(event_new(base_, fd_.get(), EV_READ | EV_PERSIST, on_event, this));
	write_ev_.reset(event_new(base_, fd_.get(), EV_WRITE | EV_PERSIST, on_event, this));
	wake_ev_.reset(event_new(base_, -1, 0, on_event, this));
	timer_ev_.reset(evtimer_new(base_, on_timer, this));
	if (!read_ev_ || !write_ev_ || !wake_ev_ || !timer_ev_)
		fatalx("event_new failed"); // only when out of memory
	// Replies are already gathered into one write per loop pass; Nagle
	// would hold back the next one (a pipelined client's 354 after its
	// 250s) until the client's delayed ACK, 40 ms later. Not a TCP socket
	// (a test's socketpair): nothing to do.
	int one = 1;
	(void)setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	update_interest();
}

NetConn::~NetConn()
{
	*alive_ = false;
}

void NetConn::write(std::string_view bytes)
{
	if (closed_ || closing_ || bytes.empty())
		return;
	// Drop what was sent before growing the buffer again.
	if (out_pos_ > 0 && out_pos_ >= out_.size() / 2) {
		out_.erase(0, out_pos_);
		out_pos_ = 0;
	}
	out_.append(bytes);
	wake();
}

void NetConn::close_after_flush()
{
	if (closed_ || closing_)
		return;
	closing_ = true;
	// A client that does not read what is left must not keep us forever.
	set_timeout(timeout_seconds_ != 0 ? timeout_seconds_ : 30);
	wake();
}

void NetConn::start_tls(tls *server)
{
	if (closed_ || closing_ || tls_ || tls_server_ != nullptr)
		return;
	tls_server_ = server;
	update_interest(); // stop reading now, before the next loop turn
	wake();
}

void NetConn::pause_reading()
{
	paused_ = true;
	if (!closed_)
		update_interest();
}

void NetConn::resume_reading()
{
	if (!paused_)
		return;
	paused_ = false;
	// The TLS layer may hold decrypted input that epoll cannot see.
	wake();
}

void NetConn::set_timeout(uint32_t seconds)
{
	if (closed_)
		return;
	timeout_seconds_ = seconds;
	if (seconds == 0) {
		evtimer_del(timer_ev_.get());
		return;
	}
	timeval tv{static_cast<time_t>(seconds), 0};
	evtimer_add(timer_ev_.get(), &tv);
}

std::string NetConn::tls_version() const
{
	const char *version = tls_active() ? tls_conn_version(tls_.get()) : nullptr;
	return version != nullptr ? version : "";
}

std::string NetConn::tls_cipher() const
{
	const char *cipher = tls_active() ? tls_conn_cipher(tls_.get()) : nullptr;
	return cipher != nullptr ? cipher : "";
}

void NetConn::on_event(int, short, void *arg)
{
	static_cast<NetConn *>(arg)->pump();
}

void NetConn::on_timer(int, short, void *arg)
{
	auto &conn = *static_cast<NetConn *>(arg);
	if (conn.closed_)
		return;
	if (conn.closing_) {
		conn.fail(NetCloseReason::Timeout, "output not read");
		return;
	}
	if (conn.callbacks_.on_timeout)
		conn.callbacks_.on_timeout();
}

void NetConn::wake()
{
	if (!closed_)
		event_active(wake_ev_.get(), 0, 1);
}

bool NetConn::reading_allowed() const
{
	return !closed_ && !closing_ && !paused_ && tls_server_ == nullptr && (!tls_ || handshake_done_) &&
	    queued_bytes() <= kOutputHighWater;
}

std::string NetConn::tls_error_text() const
{
	const char *text = tls_ ? tls_error(tls_.get()) : nullptr;
	return text != nullptr ? text : "unknown TLS error";
}

// One pass over what the connection can do now: send, then start or continue
// a handshake, then read. Whatever a callback asks for wakes another pass.
void NetConn::pump()
{
	if (closed_)
		return;
	auto alive = alive_;
	if (!flush())
		return;
	if (closing_) {
		// Nothing can be sent in the middle of a handshake; a TLS not yet
		// begun is not begun any more.
		tls_server_ = nullptr;
		if ((tls_ && !handshake_done_) || queued_bytes() == 0)
			finish_close();
		else
			update_interest();
		return;
	}
	if (tls_server_ != nullptr && queued_bytes() == 0) {
		tls *accepted = nullptr;
		if (tls_accept_socket(tls_server_, &accepted, fd_.get()) < 0) {
			const char *text = tls_error(tls_server_);
			fail(NetCloseReason::TlsFailed, text != nullptr ? text : "tls_accept_socket failed");
			return;
		}
		tls_.reset(accepted);
		tls_server_ = nullptr;
	}
	if (tls_ && !handshake_done_) {
		if (!handshake())
			return;
		if (handshake_done_) {
			if (callbacks_.on_tls_ready)
				callbacks_.on_tls_ready();
			if (!*alive || closed_)
				return;
			wake(); // read what came with the handshake, send what the callback wrote
		}
		update_interest();
		return;
	}
	if (reading_allowed() && !read_input())
		return;
	update_interest();
}

bool NetConn::handshake()
{
	int rc = tls_handshake(tls_.get());
	if (rc == TLS_WANT_POLLIN) {
		handshake_wants_ = Want::In;
		return true;
	}
	if (rc == TLS_WANT_POLLOUT) {
		handshake_wants_ = Want::Out;
		return true;
	}
	if (rc < 0) {
		fail(NetCloseReason::TlsFailed, tls_error_text());
		return false;
	}
	handshake_done_ = true;
	handshake_wants_ = Want::None;
	read_wants_ = Want::In;
	return true;
}

// Sends as much of the queue as the socket takes. False once failed.
bool NetConn::flush()
{
	if (tls_ && !handshake_done_)
		return true;
	while (queued_bytes() > 0) {
		const char *data = out_.data() + out_pos_;
		std::size_t len = queued_bytes();
		ssize_t n;
		if (tls_) {
			n = tls_write(tls_.get(), data, len);
			if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
				write_wants_ = n == TLS_WANT_POLLIN ? Want::In : Want::Out;
				return true;
			}
			if (n < 0) {
				fail(NetCloseReason::TlsFailed, tls_error_text());
				return false;
			}
		} else {
			n = ::write(fd_.get(), data, len);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					write_wants_ = Want::Out;
					return true;
				}
				fail(NetCloseReason::Error, std::strerror(errno));
				return false;
			}
		}
		out_pos_ += static_cast<std::size_t>(n);
	}
	write_wants_ = Want::None;
	out_pos_ = 0;
	// An idle connection keeps no output buffer of any size.
	if (out_.capacity() > 4096)
		std::string().swap(out_);
	else
		out_.clear();
	return true;
}

// Reads a few chunks and hands each to on_data. False once closed or
// destroyed.
bool NetConn::read_input()
{
	constexpr int kChunksPerPass = 4; // then let other connections run
	char buf[kReadChunk];
	auto alive = alive_;
	for (int i = 0; i < kChunksPerPass; i++) {
		if (!reading_allowed())
			return true;
		ssize_t n;
		if (tls_) {
			n = tls_read(tls_.get(), buf, sizeof buf);
			if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
				read_wants_ = n == TLS_WANT_POLLIN ? Want::In : Want::Out;
				return true;
			}
			if (n < 0) {
				fail(NetCloseReason::TlsFailed, tls_error_text());
				return false;
			}
		} else {
			n = ::read(fd_.get(), buf, sizeof buf);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					read_wants_ = Want::In;
					return true;
				}
				fail(NetCloseReason::Error, std::strerror(errno));
				return false;
			}
		}
		if (n == 0) {
			fail(NetCloseReason::Eof, "");
			return false;
		}
		read_wants_ = Want::In;
		if (timeout_seconds_ != 0)
			set_timeout(timeout_seconds_);
		if (callbacks_.on_data)
			callbacks_.on_data(std::string_view(buf, static_cast<std::size_t>(n)));
		if (!*alive || closed_)
			return false;
	}
	// More may wait, some of it inside the TLS layer where epoll cannot
	// see it: come back after the other connections had their turn.
	wake();
	return true;
}

void NetConn::finish_close()
{
	// Best effort: a close_notify if it goes out at once, then no more
	// writing. Unread input must not turn the close into a reset that could
	// discard the last reply before the client read it.
	if (tls_ && handshake_done_)
		(void)tls_close(tls_.get());
	(void)shutdown(fd_.get(), SHUT_WR);
	fail(NetCloseReason::Closed, "");
}

void NetConn::fail(NetCloseReason reason, std::string_view detail)
{
	closed_ = true;
	event_del(read_ev_.get());
	event_del(write_ev_.get());
	event_del(wake_ev_.get());
	evtimer_del(timer_ev_.get());
	read_added_ = write_added_ = false;
	std::string text(detail); // detail may point into the TLS context freed next
	tls_.reset();
	fd_.reset();
	std::string().swap(out_);
	out_pos_ = 0;
	// The owner may destroy this connection, callbacks and all, in it.
	auto on_closed = std::move(callbacks_.on_closed);
	if (on_closed)
		on_closed(reason, text);
}

void NetConn::update_interest()
{
	bool want_in = false, want_out = false;
	auto add = [&](Want want) {
		want_in = want_in || want == Want::In;
		want_out = want_out || want == Want::Out;
	};
	if (tls_ && !handshake_done_) {
		add(handshake_wants_);
	} else if (tls_server_ == nullptr) {
		if (queued_bytes() > 0)
			add(write_wants_ == Want::None ? Want::Out : write_wants_);
		if (reading_allowed())
			add(read_wants_);
	}
	if (want_in != read_added_) {
		if (want_in)
			event_add(read_ev_.get(), nullptr);
		else
			event_del(read_ev_.get());
		read_added_ = want_in;
	}
	if (want_out != write_added_) {
		if (want_out)
			event_add(write_ev_.get(), nullptr);
		else
			event_del(write_ev_.get());
		write_added_ = want_out;
	}
}

} // namespace maild
