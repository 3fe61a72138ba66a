// Test messages of a chosen size, as a sending MTA puts them on the wire:
// a realistic header block, body lines of at most 78 characters (RFC 5322
// section 2.1.1), CRLF line ends, dot-stuffing applied (RFC 5321 section
// 4.5.2) and the end-of-data line. The body is built once and shared by
// every message; only the header differs (a unique Message-ID).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace maild::bench {

class MessageSource {
public:
	// size: the message's size in bytes before dot-stuffing, header
	// included (at least the header's size).
	MessageSource(std::size_t size, std::string sender, std::string recipient);

	// The header block and the blank line that ends it, for message
	// `sequence` of session `session`.
	std::string header(std::size_t session, uint64_t sequence) const;
	// The dot-stuffed body followed by ".\r\n".
	std::string_view body_and_end() const { return body_; }

private:
	std::string sender_;
	std::string recipient_;
	std::string date_;     // one Date: for the run; it is not what is measured
	std::string run_id_;   // makes Message-IDs unique across runs
	std::string body_;
};

} // namespace maild::bench
