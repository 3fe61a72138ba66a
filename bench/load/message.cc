// Test messages: see message.h.
#include "bench/load/message.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <ctime>

namespace maild::bench {

namespace {

constexpr std::size_t kMaxBodyLine = 78; // RFC 5322 section 2.1.1's "SHOULD"

// Words for the body: ordinary prose, so that whatever a server does with
// text (scanning, compressing) sees something like mail.
constexpr std::array<std::string_view, 32> kWords = {
	"the", "meeting", "is", "moved", "to", "thursday", "afternoon", "please", "bring", "your",
	"notes", "and", "the", "quarterly", "figures", "we", "will", "review", "delivery", "queue",
	"latency", "before", "lunch", "regards", "server", "mailbox", "report", "attached", "budget",
	"schedule", "with", "again",
};

// A small deterministic generator: the same size gives the same body.
class Random {
public:
	uint32_t next()
	{
		state_ ^= state_ << 13;
		state_ ^= state_ >> 7;
		state_ ^= state_ << 17;
		return static_cast<uint32_t>(state_);
	}

private:
	uint64_t state_ = 0x9e3779b97f4a7c15ULL;
};

std::string rfc5322_date(std::time_t when)
{
	std::tm tm{};
	gmtime_r(&when, &tm);
	char text[64];
	std::size_t n = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	return std::string(text, n);
}

// One line of prose, at most `limit` characters (at least 1).
std::string prose_line(Random &random, std::size_t limit)
{
	std::string line;
	for (;;) {
		std::string_view word = kWords[random.next() % kWords.size()];
		std::size_t extra = word.size() + (line.empty() ? 0 : 1);
		if (line.size() + extra > limit)
			break;
		if (!line.empty())
			line += ' ';
		line += word;
	}
	if (line.empty())
		line.assign(limit, 'x');
	return line;
}

// `size` bytes of body (CRLF counted, before stuffing), dot-stuffed, then
// the end-of-data line. Every 16th line starts with a ".", as quoted text
// and diffs sometimes do, so the server's unstuffing is on the path.
std::string stuffed_body(std::size_t size)
{
	Random random;
	std::string out;
	out.reserve(size + size / 64 + 8);
	std::size_t written = 0;
	for (std::size_t number = 0; written < size; number++) {
		std::size_t room = size - written;
		if (room < 3) {
			// Too little for a line with text: an empty line ends the body
			// (a byte short when only one is left).
			if (room == 2)
				out += "\r\n";
			break;
		}
		std::size_t limit = std::min(kMaxBodyLine, room - 2);
		std::string line = prose_line(random, limit);
		if (number % 16 == 15)
			line.insert(0, ".").resize(std::min(line.size(), limit));
		// The last line fills the remaining room exactly.
		if (room - 2 <= kMaxBodyLine)
			line.resize(room - 2, '.');
		written += line.size() + 2;
		if (line.starts_with('.'))
			out += '.'; // RFC 5321 section 4.5.2
		out += line;
		out += "\r\n";
	}
	out += ".\r\n";
	return out;
}

} // namespace

MessageSource::MessageSource(std::size_t size, std::string sender, std::string recipient)
    : sender_(std::move(sender)), recipient_(std::move(recipient)), date_(rfc5322_date(std::time(nullptr))),
      run_id_(std::to_string(std::time(nullptr)) + "." + std::to_string(getpid()))
{
	std::size_t header_size = header(0, 0).size();
	body_ = stuffed_body(size > header_size ? size - header_size : 0);
}

std::string MessageSource::header(std::size_t session, uint64_t sequence) const
{
	std::string h;
	h.reserve(512);
	h += "Date: " + date_ + "\r\n";
	h += "From: Load Generator <" + sender_ + ">\r\n";
	h += "To: <" + recipient_ + ">\r\n";
	h += "Subject: maild bench message " + std::to_string(sequence) + " of session " +
	    std::to_string(session) + "\r\n";
	h += "Message-ID: <" + run_id_ + "." + std::to_string(session) + "." + std::to_string(sequence) +
	    "@bench.invalid>\r\n";
	h += "MIME-Version: 1.0\r\n";
	h += "Content-Type: text/plain; charset=us-ascii\r\n";
	h += "Content-Transfer-Encoding: 7bit\r\n";
	h += "\r\n";
	return h;
}

} // namespace maild::bench
