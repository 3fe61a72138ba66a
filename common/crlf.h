// Strict CRLF framing for every line protocol (SMTP, IMAP, POP3), and the
// SMTP DATA reader (dot-unstuffing and the end-of-data marker).
//
// The readers are pure buffers: the caller feeds whatever bytes its stream
// (plain socket or TLS) produced, in pieces of any size, and pulls lines out.
// They never truncate: a line that is too long is an error, and so is a bare
// CR, a bare LF or a NUL (SMTP smuggling is impossible by construction:
// RFC 5321 section 2.3.8 requires CRLF, and maild does not guess). Each
// error is distinct so that the protocol can send the right reply before it
// closes the session.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace maild {

enum class FrameError {
	None,
	BareCR,  // a CR not followed by LF
	BareLF,  // an LF not preceded by CR
	Nul,     // a NUL byte
	TooLong, // a line longer than the limit
};
std::string_view to_string(FrameError e);

class LineReader {
public:
	// max_line: the longest line accepted, in bytes, not counting the CRLF.
	explicit LineReader(std::size_t max_line) : max_line_(max_line) {}

	void feed(std::string_view bytes);

	enum class Status { Line, NeedMore, Error };
	// On Line, `line` holds the next line without its CRLF (valid until the
	// next call to feed or next). On Error, error() says which; the reader
	// stays in error. An error is reported as soon as it is certain: a line
	// over the limit fails before its CRLF arrives, so memory stays bounded.
	Status next(std::string_view &line);
	FrameError error() const { return error_; }

	// Bytes received after the last line returned: a protocol checks this is
	// zero before STARTTLS (pipelined cleartext must not reach the TLS
	// session) and may hand it to another reader (e.g. at DATA).
	std::size_t buffered() const { return buf_.size() - pos_; }
	std::string take_buffered();

private:
	std::size_t max_line_;
	std::string buf_;
	std::size_t pos_ = 0;     // start of the first unreturned byte
	std::size_t scanned_ = 0; // bytes after pos_ already checked
	FrameError error_ = FrameError::None;
};

// Reads an SMTP DATA section (RFC 5321 section 4.1.1.4): lines until one that
// is a single ".", removing one leading "." from every other line that
// starts with one (section 4.5.2). The message content is produced with
// CRLF line endings, exactly as it will be stored.
class DataReader {
public:
	// max_line: longest line in bytes without CRLF (before unstuffing).
	// max_size: content bytes accepted; past that, content is discarded
	// but reading continues to the end marker so that the session can
	// answer 552 and stay in sync (RFC 1870 section 6.3).
	DataReader(std::size_t max_line, uint64_t max_size) : max_line_(max_line), max_size_(max_size) {}

	enum class Status { NeedMore, Done, Error };
	// Consumes bytes from `in`; `consumed` says how many (on Done, the bytes
	// after the end marker are not consumed: they are pipelined commands).
	// Appends unstuffed content to `out` unless the message is too big.
	Status feed(std::string_view in, std::size_t &consumed, std::string &out);
	FrameError error() const { return error_; }
	bool too_big() const { return too_big_; }
	uint64_t size() const { return size_; } // content bytes seen, even if discarded

private:
	std::size_t max_line_;
	uint64_t max_size_;
	uint64_t size_ = 0;
	bool too_big_ = false;
	FrameError error_ = FrameError::None;
	std::string line_; // the current, incomplete line (bounded by max_line_ + 2)
};

} // namespace maild
