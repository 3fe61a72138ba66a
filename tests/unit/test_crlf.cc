// LineReader and DataReader: every case is run with the input in one feed,
// split in two at every position, and fed one byte at a time; all must give
// the same lines (or content), status, error and byte counts.
#include "common/crlf.h"

#include <criterion/criterion.h>

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

using namespace std::literals;
using maild::DataReader;
using maild::FrameError;
using maild::LineReader;

namespace {

// Renders bytes readably in failure messages.
std::string show(std::string_view s)
{
	std::string r = "\"";
	for (unsigned char c : s) {
		if (c == '\r') {
			r += "\\r";
		} else if (c == '\n') {
			r += "\\n";
		} else if (c == '"' || c == '\\') {
			r += '\\';
			r += static_cast<char>(c);
		} else if (c < 0x20 || c >= 0x7f) {
			char hex[8];
			std::snprintf(hex, sizeof hex, "\\x%02x", c);
			r += hex;
		} else {
			r += static_cast<char>(c);
		}
	}
	return r + "\"";
}

struct Split {
	std::string label;
	std::vector<std::string_view> chunks;
};

// The input in one feed, split in two at every position (including the
// empty first or last piece), and one byte at a time.
std::vector<Split> splits(std::string_view in)
{
	std::vector<Split> all;
	all.push_back({"one feed", {in}});
	for (std::size_t k = 0; k <= in.size(); k++)
		all.push_back({"split at " + std::to_string(k), {in.substr(0, k), in.substr(k)}});
	Split bytes{"byte at a time", {}};
	for (std::size_t i = 0; i < in.size(); i++)
		bytes.chunks.push_back(in.substr(i, 1));
	all.push_back(bytes);
	return all;
}

// --- LineReader ----------------------------------------------------------

const char *status_name(LineReader::Status s)
{
	switch (s) {
	case LineReader::Status::Line:
		return "Line";
	case LineReader::Status::NeedMore:
		return "NeedMore";
	case LineReader::Status::Error:
		return "Error";
	}
	return "?";
}

struct LineRun {
	std::vector<std::string> lines;
	LineReader::Status status = LineReader::Status::NeedMore;
	FrameError error = FrameError::None;
	std::string buffered; // what take_buffered() returns at the end, unless in error
	bool operator==(const LineRun &) const = default;
};

std::string describe(const LineRun &r)
{
	std::string s = "lines [";
	for (const auto &line : r.lines)
		s += show(line) + " ";
	s += "] status " + std::string(status_name(r.status)) + " error " + std::string(to_string(r.error));
	return s + " buffered " + show(r.buffered);
}

// Feeds each chunk and pulls every line it completes, as a session does.
LineRun run_lines(const std::vector<std::string_view> &chunks, std::size_t max_line)
{
	LineReader reader(max_line);
	LineRun run;
	for (std::string_view chunk : chunks) {
		reader.feed(chunk);
		std::string_view line;
		while ((run.status = reader.next(line)) == LineReader::Status::Line)
			run.lines.emplace_back(line);
		if (run.status == LineReader::Status::Error)
			break;
	}
	run.error = reader.error();
	if (run.status != LineReader::Status::Error) {
		std::size_t pending = reader.buffered();
		run.buffered = reader.take_buffered();
		cr_expect_eq(pending, run.buffered.size(), "buffered() says %zu, take_buffered() gave %s", pending,
		    show(run.buffered).c_str());
	}
	return run;
}

struct LineCase {
	const char *name;
	std::string_view input;
	std::size_t max_line;
	std::vector<std::string> lines;
	LineReader::Status status;
	FrameError error;
	std::string buffered;
};

constexpr auto kNeedMore = LineReader::Status::NeedMore;
constexpr auto kLineError = LineReader::Status::Error;

const std::vector<LineCase> &line_cases()
{
	static const std::vector<LineCase> cases = {
	    {"plain line", "HELO example.org\r\n", 64, {"HELO example.org"}, kNeedMore, FrameError::None, ""},
	    {"several lines", "EHLO a\r\nMAIL FROM:<x@y>\r\nRCPT TO:<z@y>\r\n", 64,
	     {"EHLO a", "MAIL FROM:<x@y>", "RCPT TO:<z@y>"}, kNeedMore, FrameError::None, ""},
	    {"empty line", "\r\n", 64, {""}, kNeedMore, FrameError::None, ""},
	    {"empty lines around text", "\r\n\r\nA\r\n\r\n", 64, {"", "", "A", ""}, kNeedMore, FrameError::None, ""},
	    {"no CRLF yet", "NOOP", 64, {}, kNeedMore, FrameError::None, "NOOP"},
	    {"CR last is not an error yet", "NOOP\r", 64, {}, kNeedMore, FrameError::None, "NOOP\r"},
	    {"pipelined rest stays buffered", "STARTTLS\r\nEHLO x", 64, {"STARTTLS"}, kNeedMore, FrameError::None,
	     "EHLO x"},
	    {"line of exactly max_line", "12345678\r\n", 8, {"12345678"}, kNeedMore, FrameError::None, ""},
	    {"max_line then a lone CR waits", "12345678\r", 8, {}, kNeedMore, FrameError::None, "12345678\r"},
	    {"line of max_line + 1", "123456789\r\n", 8, {}, kLineError, FrameError::TooLong, ""},
	    {"too long before any CRLF", "123456789", 8, {}, kLineError, FrameError::TooLong, ""},
	    {"too long after good lines", "ok\r\n12345678\r\n123456789", 8, {"ok", "12345678"}, kLineError,
	     FrameError::TooLong, ""},
	    {"max_line 0 accepts only empty lines", "\r\n\r\nx\r\n", 0, {"", ""}, kLineError, FrameError::TooLong,
	     ""},
	    {"bare CR mid-line", "AB\rCD\r\n", 64, {}, kLineError, FrameError::BareCR, ""},
	    {"bare CR then CR LF", "AB\r\r\n", 64, {}, kLineError, FrameError::BareCR, ""},
	    {"bare CR at line start", "\rX\r\n", 64, {}, kLineError, FrameError::BareCR, ""},
	    {"bare CR at max_line is BareCR", "12345678\rX", 8, {}, kLineError, FrameError::BareCR, ""},
	    {"bare CR after good line", "A\r\nB\rC", 64, {"A"}, kLineError, FrameError::BareCR, ""},
	    {"bare LF ends nothing", "AB\nCD\r\n", 64, {}, kLineError, FrameError::BareLF, ""},
	    {"bare LF alone", "\n", 64, {}, kLineError, FrameError::BareLF, ""},
	    {"LF CR is not CRLF", "A\n\r", 64, {}, kLineError, FrameError::BareLF, ""},
	    {"bare LF after good line", "A\r\nB\n", 64, {"A"}, kLineError, FrameError::BareLF, ""},
	    {"NUL mid-line", "A\0B\r\n"sv, 64, {}, kLineError, FrameError::Nul, ""},
	    {"NUL alone", "\0"sv, 64, {}, kLineError, FrameError::Nul, ""},
	    {"NUL beats TooLong at the same byte", "12345678\0"sv, 8, {}, kLineError, FrameError::Nul, ""},
	    {"NUL after good line", "A\r\n\0\r\n"sv, 64, {"A"}, kLineError, FrameError::Nul, ""},
	    {"first error wins", "A\nB\rC\0"sv, 64, {}, kLineError, FrameError::BareLF, ""},
	    {"dialogue", "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n", 64,
	     {"EHLO c", "MAIL FROM:<a@b>", "RCPT TO:<c@d>", "DATA", "Subject: x", "", "hi", ".", "QUIT"}, kNeedMore,
	     FrameError::None, ""},
	};
	return cases;
}

} // namespace

Test(line_reader, table)
{
	for (const auto &c : line_cases()) {
		LineRun got = run_lines({c.input}, c.max_line);
		LineRun want{c.lines, c.status, c.error, c.buffered};
		cr_expect(got == want, "%s: input %s\n  got  %s\n  want %s", c.name, show(c.input).c_str(),
		    describe(got).c_str(), describe(want).c_str());
	}
}

Test(line_reader, every_split_matches_one_feed)
{
	for (const auto &c : line_cases()) {
		LineRun want = run_lines({c.input}, c.max_line);
		for (const auto &split : splits(c.input)) {
			LineRun got = run_lines(split.chunks, c.max_line);
			cr_expect(got == want, "%s, %s: got %s, want %s", c.name, split.label.c_str(),
			    describe(got).c_str(), describe(want).c_str());
		}
	}
}

Test(line_reader, cr_at_end_of_feed_waits_for_lf)
{
	LineReader reader(64);
	std::string_view line;
	reader.feed("QUIT\r");
	LineReader::Status got = reader.next(line);
	cr_expect_eq(got, LineReader::Status::NeedMore, "a trailing CR must wait: got %s", status_name(got));
	reader.feed("\n");
	got = reader.next(line);
	cr_assert_eq(got, LineReader::Status::Line, "got %s, want Line", status_name(got));
	cr_expect(line == "QUIT", "got %s, want \"QUIT\"", show(line).c_str());
}

Test(line_reader, too_long_reported_before_crlf)
{
	LineReader reader(8);
	std::string_view line;
	reader.feed("12345678");
	LineReader::Status got = reader.next(line);
	cr_expect_eq(got, LineReader::Status::NeedMore, "8 bytes of 8: got %s, want NeedMore", status_name(got));
	reader.feed("9");
	got = reader.next(line);
	cr_expect_eq(got, LineReader::Status::Error, "9 bytes of 8: got %s, want Error", status_name(got));
	cr_expect_eq(reader.error(), FrameError::TooLong, "got %s, want too_long", to_string(reader.error()).data());
}

Test(line_reader, error_is_sticky)
{
	LineReader reader(64);
	std::string_view line;
	reader.feed("A\nB\r\n");
	cr_expect_eq(reader.next(line), LineReader::Status::Error);
	reader.feed("C\r\n");
	LineReader::Status got = reader.next(line);
	cr_expect_eq(got, LineReader::Status::Error, "after an error: got %s, want Error", status_name(got));
	cr_expect_eq(reader.error(), FrameError::BareLF, "got %s, want bare_lf", to_string(reader.error()).data());
}

// STARTTLS: the protocol must see the pipelined bytes and be able to take
// them away, leaving the reader empty.
Test(line_reader, take_buffered_after_line)
{
	LineReader reader(64);
	std::string_view line;
	reader.feed("STARTTLS\r\nEHLO evil\r\n");
	cr_assert_eq(reader.next(line), LineReader::Status::Line);
	cr_expect(line == "STARTTLS", "got %s", show(line).c_str());
	cr_expect_eq(reader.buffered(), 11u, "buffered: got %zu, want 11", reader.buffered());
	std::string rest = reader.take_buffered();
	cr_expect(rest == "EHLO evil\r\n", "take_buffered: got %s", show(rest).c_str());
	cr_expect_eq(reader.buffered(), 0u, "buffered after take: got %zu, want 0", reader.buffered());
	cr_expect_eq(reader.next(line), LineReader::Status::NeedMore);
	reader.feed("NOOP\r\n");
	cr_assert_eq(reader.next(line), LineReader::Status::Line);
	cr_expect(line == "NOOP", "after take: got %s", show(line).c_str());
	cr_expect_eq(reader.buffered(), 0u, "buffered after last line: got %zu, want 0", reader.buffered());
}

// A quadratic rescan would take minutes on this input; a linear one, a blink.
Test(line_reader, byte_at_a_time_is_linear, .timeout = 10)
{
	constexpr std::size_t n = 1 << 20;
	LineReader reader(n);
	std::string_view line;
	for (std::size_t i = 0; i < n; i++) {
		reader.feed("a");
		if (reader.next(line) != LineReader::Status::NeedMore)
			cr_assert_fail("byte %zu: want NeedMore", i);
	}
	reader.feed("\r");
	cr_assert_eq(reader.next(line), LineReader::Status::NeedMore);
	reader.feed("\n");
	cr_assert_eq(reader.next(line), LineReader::Status::Line);
	cr_expect_eq(line.size(), n, "got a line of %zu bytes, want %zu", line.size(), n);
	std::string lines;
	for (int i = 0; i < 100000; i++)
		lines += "NOOP\r\n";
	std::size_t count = 0;
	for (char c : lines) {
		reader.feed(std::string_view(&c, 1));
		while (reader.next(line) == LineReader::Status::Line) {
			count++;
			if (line != "NOOP")
				cr_assert_fail("line %zu: got %s", count, show(line).c_str());
		}
	}
	cr_expect_eq(count, 100000u, "got %zu lines, want 100000", count);
}

// --- DataReader ----------------------------------------------------------

namespace {

const char *status_name(DataReader::Status s)
{
	switch (s) {
	case DataReader::Status::NeedMore:
		return "NeedMore";
	case DataReader::Status::Done:
		return "Done";
	case DataReader::Status::Error:
		return "Error";
	}
	return "?";
}

struct DataRun {
	DataReader::Status status = DataReader::Status::NeedMore;
	FrameError error = FrameError::None;
	std::string out;
	std::size_t consumed = 0; // summed over the feeds
	bool too_big = false;
	uint64_t size = 0;
	bool left_bytes = false; // NeedMore without consuming a whole chunk
	bool operator==(const DataRun &) const = default;
};

std::string describe(const DataRun &r)
{
	return "status " + std::string(status_name(r.status)) + " error " + std::string(to_string(r.error)) +
	       " out " + show(r.out) + " consumed " + std::to_string(r.consumed) + " too_big " +
	       (r.too_big ? "yes" : "no") + " size " + std::to_string(r.size) +
	       (r.left_bytes ? " LEFT BYTES ON NeedMore" : "");
}

DataRun run_data(const std::vector<std::string_view> &chunks, std::size_t max_line, uint64_t max_size)
{
	DataReader reader(max_line, max_size);
	DataRun run;
	for (std::string_view chunk : chunks) {
		std::size_t consumed = 0;
		run.status = reader.feed(chunk, consumed, run.out);
		run.consumed += consumed;
		if (run.status != DataReader::Status::NeedMore)
			break;
		if (consumed != chunk.size())
			run.left_bytes = true;
	}
	run.error = reader.error();
	run.too_big = reader.too_big();
	run.size = reader.size();
	return run;
}

struct DataCase {
	const char *name;
	std::string_view input;
	std::size_t max_line;
	uint64_t max_size;
	DataRun want;
};

constexpr auto kDone = DataReader::Status::Done;
constexpr auto kMore = DataReader::Status::NeedMore;
constexpr auto kError = DataReader::Status::Error;
constexpr auto kNone = FrameError::None;

const std::vector<DataCase> &data_cases()
{
	static const std::vector<DataCase> cases = {
	    {"message", "Subject: x\r\n\r\nbody\r\n.\r\n", 64, 1000,
	     {kDone, kNone, "Subject: x\r\n\r\nbody\r\n", 23, false, 20}},
	    {"end marker at start", ".\r\n", 64, 1000, {kDone, kNone, "", 3, false, 0}},
	    {"end marker at start, max_size 0", ".\r\nQUIT\r\n", 64, 0, {kDone, kNone, "", 3, false, 0}},
	    {"empty lines then end", "\r\n\r\n.\r\n", 64, 1000, {kDone, kNone, "\r\n\r\n", 7, false, 4}},
	    {"dot-stuffed line", "..x\r\n.\r\n", 64, 1000, {kDone, kNone, ".x\r\n", 8, false, 4}},
	    {"two dots become one", "..\r\n.\r\n", 64, 1000, {kDone, kNone, ".\r\n", 7, false, 3}},
	    {"dot space does not end", ". \r\n.\r\n", 64, 1000, {kDone, kNone, " \r\n", 7, false, 3}},
	    {"dot text does not end", ".x\r\nmore\r\n.\r\n", 64, 1000, {kDone, kNone, "x\r\nmore\r\n", 13, false, 9}},
	    {"only one dot removed", "...\r\n.\r\n", 64, 1000, {kDone, kNone, "..\r\n", 8, false, 4}},
	    {"dot inside line kept", "a.b\r\n.\r\n", 64, 1000, {kDone, kNone, "a.b\r\n", 8, false, 5}},
	    {"pipelined QUIT not consumed", "hi\r\n.\r\nQUIT\r\n", 64, 1000, {kDone, kNone, "hi\r\n", 7, false, 4}},
	    {"pipelined junk not consumed", "hi\r\n.\r\n\n\0\r"sv, 64, 1000, {kDone, kNone, "hi\r\n", 7, false, 4}},
	    {"no end marker yet", "abc\r\n", 64, 1000, {kMore, kNone, "abc\r\n", 5, false, 5}},
	    {"partial end marker", "abc\r\n.", 64, 1000, {kMore, kNone, "abc\r\n", 6, false, 5}},
	    {"end marker missing its LF", "abc\r\n.\r", 64, 1000, {kMore, kNone, "abc\r\n", 7, false, 5}},
	    {"smuggling: LF dot LF", "a\n.\nMAIL FROM:<x@y>\r\n", 64, 1000, {kError, FrameError::BareLF, "", 1, false, 0}},
	    {"smuggling: LF dot LF at start", "\n.\n", 64, 1000, {kError, FrameError::BareLF, "", 0, false, 0}},
	    {"smuggling: CRLF dot LF", "a\r\n.\nMAIL FROM:<x@y>\r\n", 64, 1000,
	     {kError, FrameError::BareLF, "a\r\n", 4, false, 3}},
	    {"smuggling: LF dot CRLF", "a\n.\r\nMAIL FROM:<x@y>\r\n", 64, 1000,
	     {kError, FrameError::BareLF, "", 1, false, 0}},
	    {"smuggling: CR dot CR", "a\r.\rX", 64, 1000, {kError, FrameError::BareCR, "", 2, false, 0}},
	    {"dot CR then other byte", ".\rX\r\n", 64, 1000, {kError, FrameError::BareCR, "", 2, false, 0}},
	    {"dot CR CR LF", ".\r\r\n", 64, 1000, {kError, FrameError::BareCR, "", 2, false, 0}},
	    {"NUL in content", "a\0b\r\n.\r\n"sv, 64, 1000, {kError, FrameError::Nul, "", 1, false, 0}},
	    {"NUL after a line", "ok\r\n\0\r\n"sv, 64, 1000, {kError, FrameError::Nul, "ok\r\n", 4, false, 4}},
	    {"line of max_line", "1234\r\n.\r\n", 4, 1000, {kDone, kNone, "1234\r\n", 9, false, 6}},
	    {"stuffed line of max_line", ".123\r\n.\r\n", 4, 1000, {kDone, kNone, "123\r\n", 9, false, 5}},
	    {"line of max_line + 1", "12345\r\n.\r\n", 4, 1000, {kError, FrameError::TooLong, "", 4, false, 0}},
	    {"limit counts the stuffing dot", "..234\r\n.\r\n", 4, 1000, {kError, FrameError::TooLong, "", 4, false, 0}},
	    {"too long before CRLF", "ok\r\n12345", 4, 1000, {kError, FrameError::TooLong, "ok\r\n", 8, false, 4}},
	    {"exactly max_size", "12345678\r\n.\r\n", 64, 10, {kDone, kNone, "12345678\r\n", 13, false, 10}},
	    {"too big: discarded, Done, size counted", "12345678\r\nabc\r\n..x\r\n.\r\nQUIT\r\n", 64, 10,
	     {kDone, kNone, "12345678\r\n", 23, true, 19}},
	    {"too big from the first line", "\r\n.\r\n", 64, 0, {kDone, kNone, "", 5, true, 2}},
	    {"too big then framing error", "12345678\r\nabc\na", 64, 10,
	     {kError, FrameError::BareLF, "12345678\r\n", 13, false, 10}},
	    {"too big then bare LF", "12345678\r\nabc\r\nx\ny", 64, 10,
	     {kError, FrameError::BareLF, "12345678\r\n", 16, true, 15}},
	};
	return cases;
}

} // namespace

Test(data_reader, table)
{
	for (const auto &c : data_cases()) {
		DataRun got = run_data({c.input}, c.max_line, c.max_size);
		cr_expect(got == c.want, "%s: input %s\n  got  %s\n  want %s", c.name, show(c.input).c_str(),
		    describe(got).c_str(), describe(c.want).c_str());
	}
}

Test(data_reader, every_split_matches_one_feed)
{
	for (const auto &c : data_cases()) {
		DataRun want = run_data({c.input}, c.max_line, c.max_size);
		for (const auto &split : splits(c.input)) {
			DataRun got = run_data(split.chunks, c.max_line, c.max_size);
			cr_expect(got == want, "%s, %s: got %s, want %s", c.name, split.label.c_str(),
			    describe(got).c_str(), describe(want).c_str());
		}
	}
}

// The end-of-data sequence "\r\n.\r\n" arriving in two pieces, cut at each
// of its positions, inside a message with pipelined commands after it.
Test(data_reader, end_sequence_split_everywhere)
{
	constexpr std::string_view head = "Subject: s\r\n\r\nline";
	constexpr std::string_view end = "\r\n.\r\n";
	constexpr std::string_view tail = "RSET\r\n";
	for (std::size_t k = 0; k <= end.size(); k++) {
		std::string first = std::string(head) + std::string(end.substr(0, k));
		std::string second = std::string(end.substr(k)) + std::string(tail);
		DataRun got = run_data({first, second}, 64, 1000);
		DataRun want{kDone, kNone, "Subject: s\r\n\r\nline\r\n", head.size() + end.size(), false, 20};
		cr_expect(got == want, "cut at %zu: got %s, want %s", k, describe(got).c_str(), describe(want).c_str());
	}
}

Test(data_reader, error_is_sticky)
{
	DataReader reader(64, 1000);
	std::string out;
	std::size_t consumed = 99;
	cr_assert_eq(reader.feed("a\nb", consumed, out), DataReader::Status::Error);
	DataReader::Status got = reader.feed("ok\r\n.\r\n", consumed, out);
	cr_expect_eq(got, DataReader::Status::Error, "after an error: got %s, want Error", status_name(got));
	cr_expect_eq(consumed, 0u, "after an error: consumed %zu, want 0", consumed);
	cr_expect(out.empty(), "after an error: out %s, want empty", show(out).c_str());
}

// The held-over partial line never grows past max_line + 2, however the
// bytes arrive: a long line fails at the first excess byte.
Test(data_reader, long_line_fails_at_first_excess_byte)
{
	DataReader reader(8, 1000);
	std::string out;
	std::size_t consumed = 0;
	cr_assert_eq(reader.feed("1234", consumed, out), DataReader::Status::NeedMore);
	cr_assert_eq(reader.feed("5678", consumed, out), DataReader::Status::NeedMore);
	DataReader::Status got = reader.feed("9 and a great deal more", consumed, out);
	cr_expect_eq(got, DataReader::Status::Error, "got %s, want Error", status_name(got));
	cr_expect_eq(reader.error(), FrameError::TooLong, "got %s, want too_long", to_string(reader.error()).data());
	cr_expect_eq(consumed, 0u, "consumed %zu, want 0", consumed);
}

Test(frame_error, names)
{
	struct {
		FrameError error;
		std::string_view name;
	} const cases[] = {
	    {FrameError::None, "none"},
	    {FrameError::BareCR, "bare_cr"},
	    {FrameError::BareLF, "bare_lf"},
	    {FrameError::Nul, "nul"},
	    {FrameError::TooLong, "too_long"},
	};
	for (const auto &c : cases)
		cr_expect(to_string(c.error) == c.name, "got %s, want %s", std::string(to_string(c.error)).c_str(),
		    std::string(c.name).c_str());
}
