// Fuzzes LineReader and DataReader (common/crlf.h).
//
// Input layout:
//   byte 0   bit 0: 0 = LineReader, 1 = DataReader; bits 1-7: DataReader
//            max_size in units of 8 bytes (0..1016)
//   byte 1   max_line, modulo 65 (0..64)
//   byte 2   count of chunk sizes that follow, modulo 8; 0 = one byte at a time
//   then     that many bytes, each a chunk size (0 = an empty feed), cycled;
//            if all are 0, the stream goes in one piece
//   rest     the stream
// The stream is read in those chunks and in one piece: both must give the
// same result. Each result is also checked on its own: lines are clean and
// bounded, the held bytes stay bounded, DATA output stays under max_size and
// equals what a LineReader plus unstuffing produces.
#include "common/crlf.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using maild::DataReader;
using maild::FrameError;
using maild::LineReader;

namespace {

// Splits `stream` by cycling through `sizes`; no sizes means one byte each.
std::vector<std::string_view> chunk(std::string_view stream, const std::vector<std::size_t> &sizes)
{
	std::vector<std::string_view> chunks;
	std::size_t total = 0;
	for (std::size_t s : sizes)
		total += s;
	if (total == 0 && !sizes.empty())
		return {stream};
	std::size_t pos = 0;
	for (std::size_t i = 0; pos < stream.size(); i++) {
		std::size_t n = sizes.empty() ? 1 : sizes[i % sizes.size()];
		chunks.push_back(stream.substr(pos, n));
		pos += chunks.back().size();
	}
	if (chunks.empty())
		chunks.push_back(stream);
	return chunks;
}

struct LineResult {
	std::vector<std::string> lines;
	LineReader::Status status = LineReader::Status::NeedMore;
	FrameError error = FrameError::None;
	std::string buffered;
	bool operator==(const LineResult &) const = default;
};

LineResult read_lines(const std::vector<std::string_view> &chunks, std::size_t max_line)
{
	LineReader reader(max_line);
	LineResult r;
	for (std::string_view piece : chunks) {
		reader.feed(piece);
		std::string_view line;
		while ((r.status = reader.next(line)) == LineReader::Status::Line) {
			if (line.size() > max_line || line.find_first_of(std::string_view("\r\n\0", 3)) != line.npos)
				__builtin_trap();
			r.lines.emplace_back(line);
		}
		if (r.status == LineReader::Status::Error)
			break;
		// Everything fed has been scanned: at most a full line and its CR.
		if (reader.buffered() > max_line + 1)
			__builtin_trap();
	}
	r.error = reader.error();
	if ((r.status == LineReader::Status::Error) != (r.error != FrameError::None))
		__builtin_trap();
	if (r.status == LineReader::Status::NeedMore) {
		std::size_t pending = reader.buffered();
		r.buffered = reader.take_buffered();
		if (r.buffered.size() != pending || reader.buffered() != 0)
			__builtin_trap();
	}
	return r;
}

void check_lines(std::string_view stream, const std::vector<std::string_view> &chunks, std::size_t max_line)
{
	LineResult whole = read_lines({stream}, max_line);
	if (read_lines(chunks, max_line) != whole)
		__builtin_trap();
	// The lines, their CRLFs and the buffered rest rebuild the stream; on
	// an error they rebuild a prefix of it.
	std::string rebuilt;
	for (const auto &line : whole.lines)
		rebuilt += line + "\r\n";
	rebuilt += whole.buffered;
	if (whole.status == LineReader::Status::NeedMore ? rebuilt != stream : !stream.starts_with(rebuilt))
		__builtin_trap();
}

struct DataResult {
	DataReader::Status status = DataReader::Status::NeedMore;
	FrameError error = FrameError::None;
	std::string out;
	std::size_t consumed = 0;
	bool too_big = false;
	uint64_t size = 0;
	bool operator==(const DataResult &) const = default;
};

DataResult read_data(const std::vector<std::string_view> &chunks, std::size_t max_line, uint64_t max_size)
{
	DataReader reader(max_line, max_size);
	DataResult r;
	for (std::string_view piece : chunks) {
		std::size_t consumed = 0;
		r.status = reader.feed(piece, consumed, r.out);
		if (consumed > piece.size())
			__builtin_trap();
		r.consumed += consumed;
		if (r.out.size() > max_size)
			__builtin_trap();
		if (r.status != DataReader::Status::NeedMore)
			break;
		if (consumed != piece.size())
			__builtin_trap();
	}
	r.error = reader.error();
	r.too_big = reader.too_big();
	r.size = reader.size();
	if ((r.status == DataReader::Status::Error) != (r.error != FrameError::None))
		__builtin_trap();
	if (r.size < r.out.size() || (!r.too_big && r.size != r.out.size()))
		__builtin_trap();
	return r;
}

// What DataReader must produce, built from LineReader: lines up to ".",
// each unstuffed (RFC 5321 section 4.5.2) and kept while the total fits.
DataResult model_data(std::string_view stream, std::size_t max_line, uint64_t max_size)
{
	LineReader reader(max_line);
	reader.feed(stream);
	DataResult r;
	std::string_view line;
	LineReader::Status status;
	while ((status = reader.next(line)) == LineReader::Status::Line) {
		r.consumed += line.size() + 2;
		if (line == ".") {
			r.status = DataReader::Status::Done;
			return r;
		}
		if (line.starts_with('.'))
			line.remove_prefix(1);
		r.size += line.size() + 2;
		r.too_big = r.too_big || r.size > max_size;
		if (!r.too_big)
			r.out += std::string(line) + "\r\n";
	}
	if (status == LineReader::Status::Error) {
		r.status = DataReader::Status::Error;
		r.error = reader.error();
	} else {
		r.consumed = stream.size();
	}
	return r;
}

void check_data(std::string_view stream, const std::vector<std::string_view> &chunks, std::size_t max_line,
    uint64_t max_size)
{
	DataResult whole = read_data({stream}, max_line, max_size);
	if (read_data(chunks, max_line, max_size) != whole)
		__builtin_trap();
	DataResult model = model_data(stream, max_line, max_size);
	// The model cannot say where inside a line an error was seen.
	if (model.status == DataReader::Status::Error)
		model.consumed = whole.consumed;
	if (whole != model)
		__builtin_trap();
	if (whole.status == DataReader::Status::Done) {
		std::string_view taken = stream.substr(0, whole.consumed);
		if (taken != ".\r\n" && !taken.ends_with("\r\n.\r\n"))
			__builtin_trap();
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	bool data_mode = data[0] & 1;
	uint64_t max_size = uint64_t{data[0]} / 2 * 8;
	std::size_t max_line = data[1] % 65;
	std::size_t nsizes = data[2] % 8;
	if (size < 3 + nsizes)
		return 0;
	std::vector<std::size_t> sizes(data + 3, data + 3 + nsizes);
	std::string_view stream(reinterpret_cast<const char *>(data) + 3 + nsizes, size - 3 - nsizes);
	std::vector<std::string_view> chunks = chunk(stream, sizes);
	if (data_mode)
		check_data(stream, chunks, max_line, max_size);
	else
		check_lines(stream, chunks, max_line);
	return 0;
}
