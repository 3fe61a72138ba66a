// imsg: see imsg.h. The decoder trusts nothing it is fed; the writers trust
// their callers.
#include "common/imsg.h"

#include "common/log.h"

#include <event2/event.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>

namespace maild {

namespace {

// Room for this many descriptors in one recvmsg(). The kernel hands over the
// descriptors of at most one sendmsg() per recvmsg(), and a well-behaved
// peer attaches at most kMaxMsgFds to one; more is MSG_CTRUNC.
constexpr std::size_t kRecvMaxFds = kMaxMsgFds * 4;
// A decoder holding more descriptors than this is being flooded: no stream
// of well-formed messages, drained after every read, gets near it.
constexpr std::size_t kMaxPendingFds = kMaxMsgFds * 16;
// Bytes asked of one recvmsg().
constexpr std::size_t kReadChunk = 64 * 1024;
// Messages gathered into one sendmsg().
constexpr std::size_t kMaxIov = 16;

struct Header {
	uint32_t type;
	uint32_t length;
	uint32_t nfds;
};

Header read_header(std::span<const uint8_t> bytes)
{
	Header h;
	std::memcpy(&h.type, bytes.data(), 4);
	std::memcpy(&h.length, bytes.data() + 4, 4);
	std::memcpy(&h.nfds, bytes.data() + 8, 4);
	return h;
}

std::string describe(const Header &h)
{
	std::string s = "type=" + std::to_string(h.type);
	if (auto spec = msg_spec(h.type))
		s += " (" + std::string(spec->name) + ")";
	return s + " length=" + std::to_string(h.length) + " nfds=" + std::to_string(h.nfds);
}

// Control data carrying `fds` as SCM_RIGHTS; the vector keeps it aligned.
std::vector<cmsghdr> rights_control(std::span<const int> fds, msghdr &msg)
{
	std::size_t space = CMSG_SPACE(fds.size() * sizeof(int));
	std::vector<cmsghdr> storage((space + sizeof(cmsghdr) - 1) / sizeof(cmsghdr));
	msg.msg_control = storage.data();
	msg.msg_controllen = space;
	cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
	std::memcpy(CMSG_DATA(cmsg), fds.data(), fds.size() * sizeof(int));
	return storage;
}

struct Received {
	ssize_t n;                 // as from recvmsg()
	std::vector<UniqueFd> fds; // owned at once, so none can leak
	bool ctrunc;
};

Received recv_with_fds(int fd, std::span<uint8_t> buf, int flags)
{
	union {
		cmsghdr align;
		char buf[CMSG_SPACE(kRecvMaxFds * sizeof(int))];
	} control;
	iovec iov{buf.data(), buf.size()};
	msghdr msg{};
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	Received r{recvmsg(fd, &msg, flags | MSG_CMSG_CLOEXEC), {}, false};
	if (r.n < 0)
		return r;
	for (cmsghdr *cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
			continue;
		std::size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		const unsigned char *data = CMSG_DATA(cmsg);
		for (std::size_t i = 0; i < count; i++) {
			int received;
			std::memcpy(&received, data + i * sizeof(int), sizeof(int));
			r.fds.emplace_back(received);
		}
	}
	r.ctrunc = (msg.msg_flags & MSG_CTRUNC) != 0;
	return r;
}

std::string errno_text(const char *call)
{
	return std::string(call) + ": " + std::strerror(errno);
}

} // namespace

std::string_view to_string(MsgError e)
{
	// Values for log fields ("reason=not_allowed"), hence no spaces.
	switch (e) {
	case MsgError::UnknownType:
		return "unknown_type";
	case MsgError::NotAllowed:
		return "not_allowed";
	case MsgError::TooLong:
		return "too_long";
	case MsgError::FdMismatch:
		return "fd_mismatch";
	case MsgError::MissingFds:
		return "missing_fds";
	case MsgError::StrayFds:
		return "stray_fds";
	case MsgError::CtrlTruncated:
		return "ctrl_truncated";
	case MsgError::Truncated:
		return "truncated";
	}
	return "unknown";
}

// MsgWriter / MsgReader

MsgWriter &MsgWriter::u8(uint8_t v)
{
	buf_.push_back(v);
	return *this;
}

MsgWriter &MsgWriter::u16(uint16_t v)
{
	const auto *p = reinterpret_cast<const uint8_t *>(&v);
	buf_.insert(buf_.end(), p, p + sizeof v);
	return *this;
}

MsgWriter &MsgWriter::u32(uint32_t v)
{
	const auto *p = reinterpret_cast<const uint8_t *>(&v);
	buf_.insert(buf_.end(), p, p + sizeof v);
	return *this;
}

MsgWriter &MsgWriter::i32(int32_t v)
{
	return u32(static_cast<uint32_t>(v));
}

MsgWriter &MsgWriter::u64(uint64_t v)
{
	const auto *p = reinterpret_cast<const uint8_t *>(&v);
	buf_.insert(buf_.end(), p, p + sizeof v);
	return *this;
}

MsgWriter &MsgWriter::str(std::string_view s)
{
	u32(static_cast<uint32_t>(s.size()));
	buf_.insert(buf_.end(), s.begin(), s.end());
	return *this;
}

bool MsgReader::take(std::size_t n, const uint8_t **out)
{
	if (!ok_ || rest_.size() < n) {
		ok_ = false;
		rest_ = {};
		return false;
	}
	*out = rest_.data();
	rest_ = rest_.subspan(n);
	return true;
}

uint8_t MsgReader::u8()
{
	const uint8_t *p;
	return take(1, &p) ? *p : 0;
}

uint16_t MsgReader::u16()
{
	const uint8_t *p;
	uint16_t v = 0;
	if (take(sizeof v, &p))
		std::memcpy(&v, p, sizeof v);
	return v;
}

uint32_t MsgReader::u32()
{
	const uint8_t *p;
	uint32_t v = 0;
	if (take(sizeof v, &p))
		std::memcpy(&v, p, sizeof v);
	return v;
}

int32_t MsgReader::i32()
{
	return static_cast<int32_t>(u32());
}

uint64_t MsgReader::u64()
{
	const uint8_t *p;
	uint64_t v = 0;
	if (take(sizeof v, &p))
		std::memcpy(&v, p, sizeof v);
	return v;
}

std::string_view MsgReader::str(std::size_t max_len)
{
	uint32_t len = u32();
	if (ok_ && len > max_len) {
		ok_ = false;
		rest_ = {};
	}
	const uint8_t *p;
	if (!take(len, &p))
		return {};
	return {reinterpret_cast<const char *>(p), len};
}

// MsgDecoder

MsgDecoder::MsgDecoder(std::span<const MsgType> accepted) : accepted_(accepted.begin(), accepted.end()) {}

void MsgDecoder::fail(MsgError e, std::string detail)
{
	error_ = e;
	error_detail_ = std::move(detail);
	// Nothing more will be decoded: free the bytes, close the descriptors.
	buf_.clear();
	pos_ = 0;
	fds_.clear();
}

void MsgDecoder::feed(std::span<const uint8_t> bytes)
{
	if (error_)
		return;
	// Drop returned messages once they outweigh what is still pending, so
	// each byte is moved at most once per byte consumed.
	if (pos_ > 0 && pos_ >= buf_.size() - pos_) {
		buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(pos_));
		pos_ = 0;
	}
	buf_.insert(buf_.end(), bytes.begin(), bytes.end());
	// Judge the header now, so that an oversized message is refused before
	// its payload piles up.
	check_header();
}

void MsgDecoder::feed_fd(UniqueFd fd)
{
	if (error_)
		return;
	fds_.push_back(std::move(fd));
	if (fds_.size() > kMaxPendingFds)
		fail(MsgError::StrayFds, "pending_fds=" + std::to_string(fds_.size()));
}

bool MsgDecoder::check_header()
{
	if (error_)
		return false;
	if (pending().size() < kMsgHeaderSize)
		return true;
	Header h = read_header(pending());
	auto spec = msg_spec(h.type);
	if (!spec) {
		fail(MsgError::UnknownType, describe(h));
		return false;
	}
	if (std::find(accepted_.begin(), accepted_.end(), spec->type) == accepted_.end()) {
		fail(MsgError::NotAllowed, describe(h));
		return false;
	}
	uint32_t max_payload = std::min(spec->max_payload, kMaxMsgPayload);
	if (h.length > max_payload) {
		fail(MsgError::TooLong, describe(h) + " max=" + std::to_string(max_payload));
		return false;
	}
	if (h.nfds != spec->fds) {
		fail(MsgError::FdMismatch, describe(h) + " expected_nfds=" + std::to_string(spec->fds));
		return false;
	}
	return true;
}

std::optional<Msg> MsgDecoder::next()
{
	if (!check_header() || pending().size() < kMsgHeaderSize)
		return std::nullopt;
	Header h = read_header(pending());
	if (pending().size() - kMsgHeaderSize < h.length)
		return std::nullopt;
	// Descriptors travel with the message's first bytes, so by now they
	// must all be here.
	if (fds_.size() < h.nfds) {
		fail(MsgError::MissingFds, describe(h) + " received_fds=" + std::to_string(fds_.size()));
		return std::nullopt;
	}
	Msg msg;
	msg.type = static_cast<MsgType>(h.type);
	auto payload = pending().subspan(kMsgHeaderSize, h.length);
	msg.payload.assign(payload.begin(), payload.end());
	for (uint32_t i = 0; i < h.nfds; i++) {
		msg.fds.push_back(std::move(fds_.front()));
		fds_.pop_front();
	}
	pos_ += kMsgHeaderSize + h.length;
	if (pos_ == buf_.size()) {
		buf_.clear();
		pos_ = 0;
	}
	return msg;
}

void MsgDecoder::finish()
{
	if (error_)
		return;
	// Callers drain next() first, so any byte left is a message cut short.
	if (buffered() > 0)
		fail(MsgError::Truncated, "buffered=" + std::to_string(buffered()));
	else if (!fds_.empty())
		fail(MsgError::StrayFds, "pending_fds=" + std::to_string(fds_.size()));
}

std::vector<uint8_t> encode_msg(MsgType type, std::span<const uint8_t> payload, uint32_t nfds)
{
	MsgWriter w;
	w.u32(static_cast<uint32_t>(type));
	w.u32(static_cast<uint32_t>(payload.size()));
	w.u32(nfds);
	std::vector<uint8_t> bytes = w.take();
	bytes.insert(bytes.end(), payload.begin(), payload.end());
	return bytes;
}

// Channel

namespace {

struct OutMsg {
	std::vector<uint8_t> bytes;
	std::vector<UniqueFd> fds; // sent with bytes[0], then closed
	std::size_t sent = 0;
};

enum class WriteResult { Progress, WouldBlock, Failed };

} // namespace

struct Channel::Impl {
	Channel &self;
	MsgDecoder decoder;
	MsgHandler on_msg;
	CloseHandler on_close;
	event *read_ev = nullptr;
	event *write_ev = nullptr;
	bool write_armed = false;
	bool closed = false;
	std::deque<OutMsg> out;
	std::size_t out_bytes = 0;
	std::vector<uint8_t> rbuf = std::vector<uint8_t>(kReadChunk);

	Impl(Channel &channel, std::span<const MsgType> accepted, MsgHandler msg_handler, CloseHandler close_handler)
	    : self(channel), decoder(accepted), on_msg(std::move(msg_handler)), on_close(std::move(close_handler))
	{
	}
	~Impl()
	{
		if (read_ev != nullptr)
			event_free(read_ev);
		if (write_ev != nullptr)
			event_free(write_ev);
	}
	Impl(const Impl &) = delete;
	Impl &operator=(const Impl &) = delete;

	static void read_cb(evutil_socket_t, short, void *arg) { static_cast<Impl *>(arg)->on_readable(); }
	static void write_cb(evutil_socket_t, short, void *arg) { static_cast<Impl *>(arg)->on_writable(); }

	void on_readable();
	void on_writable();
	WriteResult write_some();
	void arm_write(bool on);
	void close(std::optional<MsgError> error, std::string_view detail);
};

void Channel::Impl::close(std::optional<MsgError> error, std::string_view detail)
{
	if (closed)
		return;
	closed = true;
	event_del(read_ev);
	arm_write(false);
	out.clear();
	out_bytes = 0;
	// The owner must not destroy the Channel from inside on_close (nor
	// on_msg); it may defer that to the next turn of the loop. Every path
	// that invokes a callback returns right after or checks `closed`.
	on_close(self, error, detail);
}

void Channel::Impl::arm_write(bool on)
{
	if (on == write_armed)
		return;
	if (on)
		event_add(write_ev, nullptr);
	else
		event_del(write_ev);
	write_armed = on;
}

void Channel::Impl::on_readable()
{
	// A bounded number of reads per wakeup keeps one busy peer from
	// starving the others; the read event is level-triggered.
	for (int reads = 0; reads < 16 && !closed; reads++) {
		Received r = recv_with_fds(self.fd(), rbuf, MSG_DONTWAIT);
		if (r.n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			close(std::nullopt, errno_text("recvmsg"));
			return;
		}
		if (r.ctrunc) {
			close(MsgError::CtrlTruncated, "control data truncated, " + std::to_string(r.fds.size()) +
			    " descriptors received");
			return;
		}
		for (auto &fd : r.fds)
			decoder.feed_fd(std::move(fd));
		if (r.n == 0) {
			decoder.finish();
			if (auto error = decoder.error())
				close(error, decoder.error_detail());
			else
				close(std::nullopt, "peer closed");
			return;
		}
		decoder.feed(std::span(rbuf).first(static_cast<std::size_t>(r.n)));
		// on_msg must not destroy the Channel (see close()); if it got
		// the channel closed anyway, no callback may follow on_close.
		while (!closed) {
			std::optional<Msg> msg = decoder.next();
			if (!msg)
				break;
			on_msg(self, std::move(*msg));
		}
		if (closed)
			return;
		if (auto error = decoder.error()) {
			close(error, decoder.error_detail());
			return;
		}
	}
}

WriteResult Channel::Impl::write_some()
{
	// One sendmsg() covers the rest of the first message and the messages
	// after it up to (not including) the next one with descriptors, so
	// descriptors always ride with the first byte of their own message.
	std::array<iovec, kMaxIov> iov;
	std::size_t niov = 0;
	for (std::size_t i = 0; i < out.size() && niov < kMaxIov; i++) {
		OutMsg &m = out[i];
		if (i > 0 && !m.fds.empty())
			break;
		iov[niov++] = {m.bytes.data() + m.sent, m.bytes.size() - m.sent};
	}
	msghdr msg{};
	msg.msg_iov = iov.data();
	msg.msg_iovlen = niov;
	std::vector<cmsghdr> control;
	OutMsg &front = out.front();
	if (front.sent == 0 && !front.fds.empty()) {
		std::vector<int> raw;
		for (const auto &fd : front.fds)
			raw.push_back(fd.get());
		control = rights_control(raw, msg);
	}
	ssize_t n = sendmsg(self.fd(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EINTR)
			return WriteResult::Progress;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return WriteResult::WouldBlock;
		return WriteResult::Failed;
	}
	auto left = static_cast<std::size_t>(n);
	while (left > 0) {
		OutMsg &m = out.front();
		std::size_t take = std::min(left, m.bytes.size() - m.sent);
		// The kernel now holds its own references to the descriptors.
		m.fds.clear();
		m.sent += take;
		out_bytes -= take;
		left -= take;
		if (m.sent == m.bytes.size())
			out.pop_front();
	}
	return WriteResult::Progress;
}

void Channel::Impl::on_writable()
{
	while (!out.empty()) {
		switch (write_some()) {
		case WriteResult::Progress:
			break;
		case WriteResult::WouldBlock:
			return;
		case WriteResult::Failed:
			close(std::nullopt, errno_text("sendmsg"));
			return;
		}
	}
	arm_write(false);
}

Channel::Channel(event_base *base, UniqueFd fd, std::string peer_name, std::span<const MsgType> accepted,
    MsgHandler on_msg, CloseHandler on_close)
    : impl_(std::make_unique<Impl>(*this, accepted, std::move(on_msg), std::move(on_close))), fd_(std::move(fd)),
      peer_name_(std::move(peer_name))
{
	impl_->read_ev = event_new(base, fd_.get(), EV_READ | EV_PERSIST, Impl::read_cb, impl_.get());
	impl_->write_ev = event_new(base, fd_.get(), EV_WRITE | EV_PERSIST, Impl::write_cb, impl_.get());
	if (impl_->read_ev == nullptr || impl_->write_ev == nullptr || event_add(impl_->read_ev, nullptr) < 0)
		fatalx("imsg: cannot set up events for peer %s", peer_name_.c_str());
}

Channel::~Channel()
{
	// Free the events while the descriptor is still open.
	impl_.reset();
}

void Channel::send(MsgType type, std::span<const uint8_t> payload, std::vector<UniqueFd> fds)
{
	if (impl_->closed)
		return;
	OutMsg m{encode_msg(type, payload, static_cast<uint32_t>(fds.size())), std::move(fds)};
	impl_->out_bytes += m.bytes.size();
	impl_->out.push_back(std::move(m));
	impl_->arm_write(true);
}

bool Channel::flush()
{
	Impl &impl = *impl_;
	if (impl.closed)
		return false;
	while (!impl.out.empty()) {
		switch (impl.write_some()) {
		case WriteResult::Progress:
			break;
		case WriteResult::WouldBlock: {
			pollfd p{fd_.get(), POLLOUT, 0};
			if (poll(&p, 1, -1) < 0 && errno != EINTR)
				return false;
			break;
		}
		case WriteResult::Failed:
			// The write event reports it through on_close.
			return false;
		}
	}
	impl.arm_write(false);
	return true;
}

std::size_t Channel::queued_bytes() const
{
	return impl_->out_bytes;
}

// Blocking helpers

bool send_msg_blocking(int fd, MsgType type, std::span<const uint8_t> payload, std::span<const int> fds)
{
	std::vector<uint8_t> bytes = encode_msg(type, payload, static_cast<uint32_t>(fds.size()));
	std::size_t off = 0;
	while (off < bytes.size()) {
		iovec iov{bytes.data() + off, bytes.size() - off};
		msghdr msg{};
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		std::vector<cmsghdr> control;
		if (off == 0 && !fds.empty())
			control = rights_control(fds, msg);
		ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				// A non-blocking socket: wait until it drains.
				pollfd p{fd, POLLOUT, 0};
				if (poll(&p, 1, -1) < 0 && errno != EINTR)
					return false;
				continue;
			}
			return false;
		}
		off += static_cast<std::size_t>(n);
	}
	return true;
}

std::optional<Msg> recv_msg_blocking(int fd, MsgDecoder &decoder, int timeout_ms, std::string &error_r)
{
	using Clock = std::chrono::steady_clock;
	const auto deadline = Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
	std::vector<uint8_t> buf(kReadChunk);
	auto malformed = [&](MsgError e, std::string_view detail) {
		error_r = "malformed message: " + std::string(to_string(e));
		if (!detail.empty())
			error_r += " (" + std::string(detail) + ")";
		return std::nullopt;
	};
	for (;;) {
		// Messages that came with an earlier read are handed out first.
		if (std::optional<Msg> msg = decoder.next())
			return msg;
		if (auto e = decoder.error())
			return malformed(*e, decoder.error_detail());

		int wait = -1;
		if (timeout_ms >= 0) {
			auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
			wait = static_cast<int>(std::clamp<decltype(left)>(left, 0, INT_MAX));
		}
		pollfd p{fd, POLLIN, 0};
		int ready = poll(&p, 1, wait);
		if (ready < 0) {
			if (errno == EINTR)
				continue;
			error_r = errno_text("poll");
			return std::nullopt;
		}
		if (ready == 0) {
			error_r = "timed out";
			return std::nullopt;
		}

		Received r = recv_with_fds(fd, buf, MSG_DONTWAIT);
		if (r.n < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			error_r = errno_text("recvmsg");
			return std::nullopt;
		}
		if (r.ctrunc)
			return malformed(MsgError::CtrlTruncated, {});
		for (auto &received : r.fds)
			decoder.feed_fd(std::move(received));
		if (r.n == 0) {
			decoder.finish();
			if (auto e = decoder.error())
				return malformed(*e, decoder.error_detail());
			error_r = "connection closed";
			return std::nullopt;
		}
		decoder.feed(std::span(buf).first(static_cast<std::size_t>(r.n)));
	}
}

} // namespace maild
