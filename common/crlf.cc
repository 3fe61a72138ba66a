// Strict CRLF framing: see crlf.h. Both readers share one scanner, so a line
// means exactly the same thing to the SMTP, IMAP and POP3 command readers and
// to the DATA reader.
#include "common/crlf.h"

namespace maild {

std::string_view to_string(FrameError e)
{
	// Values for log fields ("reason=bare_lf"), hence no spaces.
	switch (e) {
	case FrameError::None:
		return "none";
	case FrameError::BareCR:
		return "bare_cr";
	case FrameError::BareLF:
		return "bare_lf";
	case FrameError::Nul:
		return "nul";
	case FrameError::TooLong:
		return "too_long";
	}
	return "unknown";
}

namespace {

struct LineScan {
	enum Kind { Line, Partial, Error } kind;
	// Line: length of the line, its CRLF follows. Partial: bytes known to be
	// plain line bytes (a final CR, still waiting for its LF, is not
	// counted). Error: index of the byte that made the error certain.
	std::size_t at;
	FrameError error;
};

// Scans `s`, which starts at the beginning of a line, from index `from`
// (the bytes before it are already known to be plain). Errors are decided
// in byte order and each only from the bytes up to the one that reveals
// it, so the result does not depend on how the input was split into feeds.
// A CR followed by anything but LF is BareCR even on a line at the limit:
// it is the first byte that breaks the framing.
LineScan scan_line(std::string_view s, std::size_t from, std::size_t max_line)
{
	for (std::size_t i = from; i < s.size(); i++) {
		switch (s[i]) {
		case '\r':
			if (i + 1 == s.size())
				return {LineScan::Partial, i, FrameError::None};
			if (s[i + 1] != '\n')
				return {LineScan::Error, i + 1, FrameError::BareCR};
			return {LineScan::Line, i, FrameError::None};
		case '\n':
			return {LineScan::Error, i, FrameError::BareLF};
		case '\0':
			return {LineScan::Error, i, FrameError::Nul};
		default:
			if (i >= max_line)
				return {LineScan::Error, i, FrameError::TooLong};
		}
	}
	return {LineScan::Partial, s.size(), FrameError::None};
}

} // namespace

void LineReader::feed(std::string_view bytes)
{
	if (error_ != FrameError::None)
		return;
	// Drop returned lines once they outweigh what is still pending: each
	// byte is moved at most once per byte consumed, so feeding one byte at
	// a time stays linear.
	if (pos_ > 0 && pos_ >= buf_.size() - pos_) {
		buf_.erase(0, pos_);
		pos_ = 0;
	}
	buf_.append(bytes);
}

LineReader::Status LineReader::next(std::string_view &line)
{
	if (error_ != FrameError::None)
		return Status::Error;
	std::string_view pending = std::string_view(buf_).substr(pos_);
	LineScan scan = scan_line(pending, scanned_, max_line_);
	switch (scan.kind) {
	case LineScan::Line:
		line = pending.substr(0, scan.at);
		pos_ += scan.at + 2;
		scanned_ = 0;
		return Status::Line;
	case LineScan::Partial:
		scanned_ = scan.at;
		return Status::NeedMore;
	case LineScan::Error:
		error_ = scan.error;
		return Status::Error;
	}
	return Status::Error;
}

std::string LineReader::take_buffered()
{
	std::string rest = buf_.substr(pos_);
	buf_.clear();
	pos_ = 0;
	scanned_ = 0;
	return rest;
}

// On Error, `consumed` counts the bytes of `in` before the one that revealed
// the error, so that totals do not depend on how the input was split.
DataReader::Status DataReader::feed(std::string_view in, std::size_t &consumed, std::string &out)
{
	consumed = 0;
	if (error_ != FrameError::None)
		return Status::Error;
	// Takes one complete line (without its CRLF); true if it is the end
	// marker. RFC 5321 section 4.1.1.4: the data ends with a line that is a
	// single "."; section 4.5.2: any other line starting with "." loses it.
	auto take_line = [&](std::string_view line) {
		if (line == ".")
			return true;
		if (line.starts_with('.'))
			line.remove_prefix(1);
		size_ += line.size() + 2;
		if (size_ > max_size_)
			too_big_ = true;
		if (!too_big_) {
			out.append(line);
			out.append("\r\n");
		}
		return false;
	};
	std::size_t pos = 0;
	if (!line_.empty()) {
		// Finish the line held over from the last feed. Copy no more than
		// can still make a valid line, and nothing past its LF: the rest
		// may be pipelined commands that follow the end marker.
		std::size_t held = line_.size();
		std::size_t from = line_.back() == '\r' ? held - 1 : held;
		std::string_view more = in.substr(0, max_line_ + 2 - held);
		std::size_t lf = more.find('\n');
		if (lf != std::string_view::npos)
			more = more.substr(0, lf + 1);
		line_.append(more);
		LineScan scan = scan_line(line_, from, max_line_);
		switch (scan.kind) {
		case LineScan::Line: {
			bool end = take_line(std::string_view(line_).substr(0, scan.at));
			line_.clear();
			consumed = more.size();
			if (end)
				return Status::Done;
			pos = more.size();
			break;
		}
		case LineScan::Partial:
			consumed = more.size();
			return Status::NeedMore;
		case LineScan::Error:
			error_ = scan.error;
			consumed = scan.at - held;
			return Status::Error;
		}
	}
	while (pos < in.size()) {
		std::string_view rest = in.substr(pos);
		LineScan scan = scan_line(rest, 0, max_line_);
		switch (scan.kind) {
		case LineScan::Line:
			pos += scan.at + 2;
			consumed = pos;
			if (take_line(rest.substr(0, scan.at)))
				return Status::Done;
			break;
		case LineScan::Partial:
			// At most max_line_ + 1 bytes: the scan saw no excess byte.
			line_.assign(rest);
			consumed = in.size();
			return Status::NeedMore;
		case LineScan::Error:
			error_ = scan.error;
			consumed = pos + scan.at;
			return Status::Error;
		}
	}
	return Status::NeedMore;
}

} // namespace maild
