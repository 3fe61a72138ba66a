// imsg: typed, length-prefixed messages over AF_UNIX stream socketpairs,
// with SCM_RIGHTS descriptor passing.
//
// Wire format of one message: a 12-byte header in host byte order (both ends
// are on one machine)
//     u32 type    a MsgType value
//     u32 length  payload bytes that follow the header
//     u32 nfds    descriptors that belong to this message
// then `length` payload bytes. The descriptors ride in SCM_RIGHTS control
// data of a sendmsg() that carries bytes of the same message; the receiver
// queues descriptors as they arrive and hands a message exactly `nfds` of
// them when the message is complete.
//
// Payload fields are encoded explicitly with MsgWriter and decoded with the
// bounded MsgReader: integers in host byte order, strings as u32 length +
// bytes (no terminator). Nothing is memcpy'd as a struct.
#pragma once

#include "common/imsg_types.h"
#include "common/unique_fd.h"

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct event_base;
struct event;

namespace maild {

inline constexpr std::size_t kMsgHeaderSize = 12;

struct Msg {
	MsgType type{};
	std::vector<uint8_t> payload;
	std::vector<UniqueFd> fds;
};

// Builds a payload.
class MsgWriter {
public:
	MsgWriter &u8(uint8_t v);
	MsgWriter &u16(uint16_t v);
	MsgWriter &u32(uint32_t v);
	MsgWriter &i32(int32_t v);
	MsgWriter &u64(uint64_t v);
	MsgWriter &str(std::string_view s); // u32 length + bytes
	std::span<const uint8_t> data() const { return buf_; }
	std::vector<uint8_t> take() { return std::move(buf_); }

private:
	std::vector<uint8_t> buf_;
};

// Reads a payload. The first short read or over-long string puts the reader
// in a failed state: every later read returns 0 or "", and end() is false.
// end() is also false if bytes remain, so a handler that reads every field
// and then checks end() has validated the whole message.
class MsgReader {
public:
	explicit MsgReader(std::span<const uint8_t> payload) : rest_(payload) {}
	uint8_t u8();
	uint16_t u16();
	uint32_t u32();
	int32_t i32();
	uint64_t u64();
	// A string of at most max_len bytes; a longer one fails the reader.
	std::string_view str(std::size_t max_len);
	bool ok() const { return ok_; }
	bool end() const { return ok_ && rest_.empty(); }

private:
	bool take(std::size_t n, const uint8_t **out);
	std::span<const uint8_t> rest_;
	bool ok_ = true;
};

enum class MsgError {
	UnknownType,     // the type value is no MsgType
	NotAllowed,      // a real type, but not one this peer may send
	TooLong,         // payload longer than the type (or kMaxMsgPayload) allows
	FdMismatch,      // the header's nfds differs from what the type declares
	MissingFds,      // the message completed before its descriptors arrived
	StrayFds,        // descriptors arrived that no message claims
	CtrlTruncated,   // the kernel truncated control data (MSG_CTRUNC)
	Truncated,       // the peer closed in the middle of a message
};
std::string_view to_string(MsgError e);

// Pure decoder: bytes and descriptors in, validated messages out.
// Used by Channel, by blocking clients (mailctl) and by the fuzz harness.
class MsgDecoder {
public:
	// accepted: the types this peer may send us. Anything else is an error.
	explicit MsgDecoder(std::span<const MsgType> accepted);

	void feed(std::span<const uint8_t> bytes);
	void feed_fd(UniqueFd fd);

	// The next complete message, nullopt when more bytes are needed or after
	// an error (then error() says which; the decoder stays failed).
	std::optional<Msg> next();
	std::optional<MsgError> error() const { return error_; }
	// After an error: what the offending header or stream said, for the
	// log ("type=99 length=4 nfds=0").
	const std::string &error_detail() const { return error_detail_; }
	// Call at end of stream: a partial message or leftover fds is an error.
	void finish();
	// Bytes received but not yet part of a returned message.
	std::size_t buffered() const { return buf_.size() - pos_; }

private:
	std::vector<MsgType> accepted_;
	std::vector<uint8_t> buf_;
	std::size_t pos_ = 0;
	std::deque<UniqueFd> fds_;
	std::optional<MsgError> error_;
	std::string error_detail_;

	std::span<const uint8_t> pending() const { return std::span(buf_).subspan(pos_); }
	bool check_header();
	void fail(MsgError e, std::string detail);
};

// Encodes one message (header + payload). Checks nothing: senders are trusted
// to use the right types; receivers check everything.
std::vector<uint8_t> encode_msg(MsgType type, std::span<const uint8_t> payload, uint32_t nfds);

// A message stream to one peer, driven by a libevent loop. Writes are queued
// and flushed as the socket allows (partial writes are resumed); reads are
// decoded with MsgDecoder. The fd must be a non-blocking AF_UNIX stream socket.
class Channel {
public:
	using MsgHandler = std::function<void(Channel &, Msg &&)>;
	// Called once when the channel can no longer be used: the peer closed
	// (error = nullopt, clean EOF at a message boundary), or a read/write
	// failed, or the peer sent something invalid (error set). The channel
	// stops reading; its owner decides: a role treats it as fatal, control
	// drops one mailctl client. detail is for the log.
	using CloseHandler = std::function<void(Channel &, std::optional<MsgError> error, std::string_view detail)>;

	Channel(event_base *base, UniqueFd fd, std::string peer_name, std::span<const MsgType> accepted,
	    MsgHandler on_msg, CloseHandler on_close);
	~Channel();
	Channel(const Channel &) = delete;
	Channel &operator=(const Channel &) = delete;

	void send(MsgType type, std::span<const uint8_t> payload = {}, std::vector<UniqueFd> fds = {});
	// Writes all queued messages now, blocking if needed (before exit, and in
	// tests). Returns false if the socket failed.
	bool flush();
	const std::string &peer_name() const { return peer_name_; }
	int fd() const { return fd_.get(); }
	std::size_t queued_bytes() const;

private:
	struct Impl;
	std::unique_ptr<Impl> impl_;
	UniqueFd fd_;
	std::string peer_name_;
};

// Blocking helpers for short-lived clients such as mailctl.
bool send_msg_blocking(int fd, MsgType type, std::span<const uint8_t> payload, std::span<const int> fds = {});
// Reads until one whole message arrives or timeout_ms passes (-1: no limit).
// Returns nullopt on EOF, timeout, error or a message the decoder rejects;
// error_r says why.
std::optional<Msg> recv_msg_blocking(int fd, MsgDecoder &decoder, int timeout_ms, std::string &error_r);

} // namespace maild
