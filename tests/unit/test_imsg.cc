// imsg: MsgWriter/MsgReader, the MsgDecoder's framing and every MsgError it
// reports, Channel over a real socketpair and event loop (descriptor
// passing, partial writes, malformed peers, close), and the blocking helpers.
#include "common/imsg.h"

#include <criterion/criterion.h>
#include <event2/event.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using maild::Channel;
using maild::encode_msg;
using maild::Msg;
using maild::MsgDecoder;
using maild::MsgError;
using maild::MsgReader;
using maild::MsgType;
using maild::MsgWriter;
using maild::UniqueFd;

namespace {

// --- fixtures ------------------------------------------------------------

std::vector<MsgType> all_types()
{
	std::vector<MsgType> types;
	for (const auto &spec : maild::kMsgSpecs)
		types.push_back(spec.type);
	return types;
}

std::vector<uint8_t> header(uint32_t type, uint32_t length, uint32_t nfds)
{
	MsgWriter w;
	w.u32(type).u32(length).u32(nfds);
	return w.take();
}

std::vector<uint8_t> header(MsgType type, uint32_t length, uint32_t nfds)
{
	return header(static_cast<uint32_t>(type), length, nfds);
}

std::vector<uint8_t> concat(std::initializer_list<std::vector<uint8_t>> parts)
{
	std::vector<uint8_t> all;
	for (const auto &part : parts)
		all.insert(all.end(), part.begin(), part.end());
	return all;
}

std::vector<uint8_t> ready_payload(uint32_t version)
{
	MsgWriter w;
	w.u32(version);
	return w.take();
}

std::vector<uint8_t> role_ready(uint32_t version)
{
	return encode_msg(MsgType::RoleReady, ready_payload(version), 0);
}

std::vector<uint8_t> setup_config(std::string_view path, std::string_view text)
{
	MsgWriter w;
	w.u32(maild::kProtocolVersion).str(path).str(text).u8(1);
	return w.take();
}

// A payload of `size` bytes whose content depends on `seed` and position.
std::vector<uint8_t> pattern(std::size_t size, unsigned seed)
{
	std::vector<uint8_t> bytes(size);
	for (std::size_t i = 0; i < size; i++)
		bytes[i] = static_cast<uint8_t>(i * 131 + seed * 7 + (i >> 9));
	return bytes;
}

int open_fd_count()
{
	int n = 0;
	for ([[maybe_unused]] const auto &entry : std::filesystem::directory_iterator("/proc/self/fd"))
		n++;
	return n;
}

struct SocketPair {
	UniqueFd a, b;
	SocketPair()
	{
		int sv[2];
		cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
		a.reset(sv[0]);
		b.reset(sv[1]);
	}
};

struct Pipe {
	UniqueFd r, w;
	Pipe()
	{
		int p[2];
		// Non-blocking, so that a test that expects data or EOF fails
		// instead of hanging.
		cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
		r.reset(p[0]);
		w.reset(p[1]);
	}
};

struct EventBase {
	event_base *base = event_base_new();
	EventBase() { cr_assert_not_null(base); }
	~EventBase() { event_base_free(base); }
	EventBase(const EventBase &) = delete;
	EventBase &operator=(const EventBase &) = delete;
};

// What a Channel handed to its owner.
struct Recorder {
	std::vector<Msg> msgs;
	int closes = 0;
	int msgs_after_close = 0;
	std::optional<MsgError> error;
	std::string detail;

	Channel::MsgHandler on_msg()
	{
		return [this](Channel &, Msg &&m) {
			if (closes > 0)
				msgs_after_close++;
			msgs.push_back(std::move(m));
		};
	}
	Channel::CloseHandler on_close()
	{
		return [this](Channel &, std::optional<MsgError> e, std::string_view d) {
			closes++;
			error = e;
			detail = d;
		};
	}
};

// Turns the loop without blocking until done() or max_turns.
template <class Done>
bool run_until(event_base *base, Done done, int max_turns = 20000)
{
	for (int i = 0; i < max_turns; i++) {
		if (done())
			return true;
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	return done();
}

void run_turns(event_base *base, int turns)
{
	run_until(base, [] { return false; }, turns);
}

void write_all(int fd, std::span<const uint8_t> bytes)
{
	cr_assert_eq(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
}

// Writes through a received descriptor and reads it back from the pipe.
void check_pipe_link(int write_end, int read_end, std::string_view text)
{
	cr_assert_eq(write(write_end, text.data(), text.size()), static_cast<ssize_t>(text.size()));
	char buf[64] = {};
	cr_assert_eq(read(read_end, buf, sizeof buf), static_cast<ssize_t>(text.size()));
	cr_assert_eq(std::string_view(buf, text.size()), text);
}

// Feeds `chunks` one after another and drains the decoder after each.
std::vector<Msg> decode(MsgDecoder &decoder, const std::vector<std::span<const uint8_t>> &chunks)
{
	std::vector<Msg> out;
	for (auto chunk : chunks) {
		decoder.feed(chunk);
		while (auto m = decoder.next())
			out.push_back(std::move(*m));
	}
	return out;
}

void expect_msg(const Msg &m, MsgType type, std::span<const uint8_t> payload)
{
	cr_assert_eq(m.type, type, "type %u, want %u", static_cast<unsigned>(m.type), static_cast<unsigned>(type));
	cr_assert_eq(m.payload.size(), payload.size());
	cr_assert(std::equal(payload.begin(), payload.end(), m.payload.begin()));
}

// What a decoder accepting `accepted` says about `bytes` in one feed.
std::optional<MsgError> decode_error(std::span<const MsgType> accepted, std::span<const uint8_t> bytes)
{
	MsgDecoder d(accepted);
	decode(d, {bytes});
	return d.error();
}

} // namespace

// --- MsgWriter / MsgReader -------------------------------------------------

Test(reader, round_trip_of_every_field_kind)
{
	MsgWriter w;
	w.u8(0xfe).u16(0xbeef).u32(0xdeadbeef).i32(-42).u64(0x0123456789abcdefULL).str("hello").str("").u8(7);
	auto payload = w.take();
	cr_assert_eq(payload.size(), 1 + 2 + 4 + 4 + 8 + (4 + 5) + 4 + 1);

	MsgReader r{payload};
	cr_assert_eq(r.u8(), 0xfe);
	cr_assert_eq(r.u16(), 0xbeef);
	cr_assert_eq(r.u32(), 0xdeadbeefu);
	cr_assert_eq(r.i32(), -42);
	cr_assert_eq(r.u64(), 0x0123456789abcdefULL);
	cr_assert_eq(r.str(5), "hello");
	cr_assert_eq(r.str(0), "");
	cr_assert(!r.end(), "one byte is left");
	cr_assert_eq(r.u8(), 7);
	cr_assert(r.ok());
	cr_assert(r.end());
}

Test(reader, host_byte_order)
{
	MsgWriter w;
	w.u32(0x01020304);
	uint32_t v;
	std::memcpy(&v, w.data().data(), 4);
	cr_assert_eq(v, 0x01020304u);
}

Test(reader, short_read_fails_for_good)
{
	MsgWriter w;
	w.u16(0x1234).u8(9);
	auto payload = w.take();
	MsgReader r{payload};
	cr_assert_eq(r.u32(), 0u, "three bytes are no u32");
	cr_assert(!r.ok());
	// The bytes are still there, but the reader stays failed.
	cr_assert_eq(r.u8(), 0);
	cr_assert_eq(r.u16(), 0);
	cr_assert_eq(r.str(10), "");
	cr_assert(!r.ok());
	cr_assert(!r.end());
}

Test(reader, string_longer_than_max_fails)
{
	MsgWriter w;
	w.str("abcd").u8(5);
	auto payload = w.take();
	MsgReader exact{payload};
	cr_assert_eq(exact.str(4), "abcd");
	cr_assert_eq(exact.u8(), 5);
	cr_assert(exact.end());

	MsgReader r{payload};
	cr_assert_eq(r.str(3), "");
	cr_assert(!r.ok());
	cr_assert_eq(r.u8(), 0, "sticky after an over-long string");
	cr_assert(!r.end());
}

Test(reader, string_shorter_than_its_length_fails)
{
	MsgWriter w;
	w.u32(10);
	w.u8('a').u8('b');
	auto payload = w.take();
	MsgReader r{payload};
	cr_assert_eq(r.str(100), "");
	cr_assert(!r.ok());
}

Test(reader, trailing_bytes_are_not_end)
{
	MsgWriter w;
	w.u32(1).u8(0);
	auto payload = w.take();
	MsgReader r{payload};
	cr_assert_eq(r.u32(), 1u);
	cr_assert(r.ok());
	cr_assert(!r.end());
}

Test(reader, empty_payload)
{
	MsgReader r{std::span<const uint8_t>{}};
	cr_assert(r.end());
	cr_assert_eq(r.u8(), 0);
	cr_assert(!r.ok());
}

Test(imsg, error_names)
{
	const std::pair<MsgError, std::string_view> names[] = {
	    {MsgError::UnknownType, "unknown_type"}, {MsgError::NotAllowed, "not_allowed"},
	    {MsgError::TooLong, "too_long"},         {MsgError::FdMismatch, "fd_mismatch"},
	    {MsgError::MissingFds, "missing_fds"},   {MsgError::StrayFds, "stray_fds"},
	    {MsgError::CtrlTruncated, "ctrl_truncated"}, {MsgError::Truncated, "truncated"},
	};
	for (auto [e, name] : names)
		cr_assert_eq(maild::to_string(e), name);
}

Test(imsg, encode_layout)
{
	const uint8_t payload[] = {1, 2, 3};
	auto bytes = encode_msg(MsgType::SetupPeer, payload, 1);
	cr_assert_eq(bytes.size(), maild::kMsgHeaderSize + 3);
	MsgReader r{bytes};
	cr_assert_eq(r.u32(), static_cast<uint32_t>(MsgType::SetupPeer));
	cr_assert_eq(r.u32(), 3u);
	cr_assert_eq(r.u32(), 1u);
	cr_assert_eq(r.u8(), 1);
	cr_assert_eq(r.u8(), 2);
	cr_assert_eq(r.u8(), 3);
	cr_assert(r.end());
}

// --- MsgDecoder ------------------------------------------------------------

namespace {

struct Stream {
	std::vector<uint8_t> bytes;
	std::vector<std::pair<MsgType, std::vector<uint8_t>>> want;
};

Stream three_messages()
{
	Stream s;
	auto config = setup_config("/etc/maild.conf", "listen on lo\n");
	MsgWriter ready;
	ready.u32(maild::kProtocolVersion);
	s.want = {{MsgType::SetupConfig, config}, {MsgType::SetupDone, {}}, {MsgType::RoleReady, ready.take()}};
	for (const auto &[type, payload] : s.want) {
		auto m = encode_msg(type, payload, 0);
		s.bytes.insert(s.bytes.end(), m.begin(), m.end());
	}
	return s;
}

void expect_stream(const std::vector<Msg> &got, const Stream &s)
{
	cr_assert_eq(got.size(), s.want.size(), "got %zu messages, want %zu", got.size(), s.want.size());
	for (std::size_t i = 0; i < got.size(); i++) {
		expect_msg(got[i], s.want[i].first, s.want[i].second);
		cr_assert(got[i].fds.empty());
	}
}

} // namespace

Test(decoder, several_messages_in_one_feed)
{
	auto types = all_types();
	MsgDecoder d(types);
	Stream s = three_messages();
	auto got = decode(d, {s.bytes});
	expect_stream(got, s);
	cr_assert_eq(d.buffered(), 0u);
	cr_assert(!d.error());
	d.finish();
	cr_assert(!d.error(), "clean end at a message boundary");

	MsgReader r{got[0].payload};
	cr_assert_eq(r.u32(), maild::kProtocolVersion);
	cr_assert_eq(r.str(100), "/etc/maild.conf");
	cr_assert_eq(r.str(100), "listen on lo\n");
	cr_assert_eq(r.u8(), 1);
	cr_assert(r.end());
}

Test(decoder, byte_at_a_time)
{
	auto types = all_types();
	Stream s = three_messages();
	MsgDecoder d(types);
	std::vector<Msg> got;
	for (std::size_t i = 0; i < s.bytes.size(); i++) {
		d.feed(std::span(s.bytes).subspan(i, 1));
		cr_assert_eq(d.buffered() + [&] {
			std::size_t done = 0;
			for (const auto &m : got)
				done += maild::kMsgHeaderSize + m.payload.size();
			return done;
		}(), i + 1, "buffered() counts every byte not yet returned");
		while (auto m = d.next())
			got.push_back(std::move(*m));
	}
	expect_stream(got, s);
	cr_assert_eq(d.buffered(), 0u);
	cr_assert(!d.error());
}

Test(decoder, every_split_of_two_messages)
{
	auto types = all_types();
	Stream s = three_messages();
	s.want.resize(2);
	s.bytes.resize(2 * maild::kMsgHeaderSize + s.want[0].second.size());
	for (std::size_t k = 0; k <= s.bytes.size(); k++) {
		MsgDecoder d(types);
		std::span<const uint8_t> all(s.bytes);
		auto got = decode(d, {all.first(k), all.subspan(k)});
		expect_stream(got, s);
		cr_assert_eq(d.buffered(), 0u, "split at %zu", k);
		cr_assert(!d.error(), "split at %zu", k);
	}
}

Test(decoder, partial_message_is_buffered)
{
	auto types = all_types();
	auto m = role_ready(1);
	MsgDecoder d(types);
	d.feed(std::span(m).first(m.size() - 1));
	cr_assert(!d.next());
	cr_assert(!d.error());
	cr_assert_eq(d.buffered(), m.size() - 1);
	d.feed(std::span(m).last(1));
	auto got = d.next();
	cr_assert(got.has_value());
	cr_assert_eq(got->type, MsgType::RoleReady);
	cr_assert_eq(d.buffered(), 0u);
}

Test(decoder, message_takes_its_descriptors)
{
	auto types = all_types();
	int before = open_fd_count();
	{
		Pipe p1, p2;
		int w1 = p1.w.get(), w2 = p2.w.get();
		const uint8_t peer[] = {3};
		auto bytes = concat({encode_msg(MsgType::SetupPeer, peer, 1), role_ready(1),
		    encode_msg(MsgType::SetupPeer, peer, 1)});
		MsgDecoder d(types);
		d.feed_fd(std::move(p1.w));
		d.feed_fd(std::move(p2.w));
		std::vector<Msg> got;
		for (std::size_t i = 0; i < bytes.size(); i++) {
			d.feed(std::span(bytes).subspan(i, 1));
			while (auto m = d.next())
				got.push_back(std::move(*m));
		}
		cr_assert_eq(got.size(), 3u);
		cr_assert_eq(got[0].fds.size(), 1u);
		cr_assert_eq(got[0].fds[0].get(), w1);
		cr_assert(got[1].fds.empty());
		cr_assert_eq(got[2].fds.size(), 1u);
		cr_assert_eq(got[2].fds[0].get(), w2);
		d.finish();
		cr_assert(!d.error());
	}
	cr_assert_eq(open_fd_count(), before);
}

Test(decoder, unknown_type)
{
	auto types = all_types();
	cr_assert_eq(decode_error(types, header(999, 0, 0)), MsgError::UnknownType);
	cr_assert_eq(decode_error(types, header(0, 0, 0)), MsgError::UnknownType);
	MsgDecoder d(types);
	d.feed(header(999, 0, 0));
	cr_assert_eq(d.error(), MsgError::UnknownType);
	cr_assert_neq(d.error_detail().find("type=999"), std::string::npos, "%s", d.error_detail().c_str());
}

Test(decoder, not_allowed)
{
	const MsgType only_ready[] = {MsgType::RoleReady};
	cr_assert_eq(decode_error(only_ready, encode_msg(MsgType::SetupDone, {}, 0)), MsgError::NotAllowed);
	cr_assert_eq(decode_error(only_ready, role_ready(1)), std::nullopt);
	cr_assert_eq(decode_error({}, role_ready(1)), MsgError::NotAllowed, "an empty allowlist takes nothing");
}

Test(decoder, too_long_is_refused_at_the_header)
{
	auto types = all_types();
	// RoleReady carries at most 4 bytes: the header alone decides.
	MsgDecoder d(types);
	d.feed(header(MsgType::RoleReady, 5, 0));
	cr_assert_eq(d.error(), MsgError::TooLong);
	cr_assert(!d.next());
	cr_assert_eq(d.buffered(), 0u, "nothing is kept after an error");

	cr_assert_eq(decode_error(types, header(MsgType::SetupConfig, maild::kMaxMsgPayload + 1, 0)),
	    MsgError::TooLong);
	cr_assert_eq(decode_error(types, header(MsgType::SetupDone, 0xffffffff, 0)),
	    MsgError::TooLong);
	// Exactly the limit is fine (the payload has not arrived yet).
	cr_assert_eq(decode_error(types, header(MsgType::SetupConfig, maild::kMaxMsgPayload, 0)),
	    std::nullopt);
}

Test(decoder, fd_mismatch)
{
	auto types = all_types();
	cr_assert_eq(decode_error(types, header(MsgType::SetupDone, 0, 1)), MsgError::FdMismatch);
	cr_assert_eq(decode_error(types, header(MsgType::SetupPeer, 1, 0)), MsgError::FdMismatch);
	cr_assert_eq(decode_error(types, header(MsgType::SetupPeer, 1, 2)), MsgError::FdMismatch);
}

Test(decoder, checks_run_in_order)
{
	// Each header breaks every later rule as well; the first one wins.
	const MsgType only_ready[] = {MsgType::RoleReady};
	cr_assert_eq(decode_error(only_ready, header(999, 0xffffffff, 9)), MsgError::UnknownType);
	cr_assert_eq(decode_error(only_ready, header(MsgType::SetupDone, 0xffffffff, 9)),
	    MsgError::NotAllowed);
	cr_assert_eq(decode_error(only_ready, header(MsgType::RoleReady, 5, 9)),
	    MsgError::TooLong);
	cr_assert_eq(decode_error(only_ready, header(MsgType::RoleReady, 4, 9)),
	    MsgError::FdMismatch);
}

Test(decoder, missing_fds)
{
	auto types = all_types();
	const uint8_t peer[] = {3};
	MsgDecoder d(types);
	auto bytes = encode_msg(MsgType::SetupPeer, peer, 1);
	d.feed(std::span(bytes).first(bytes.size() - 1));
	cr_assert(!d.next());
	cr_assert(!d.error(), "not complete yet");
	d.feed(std::span(bytes).last(1));
	cr_assert(!d.next());
	cr_assert_eq(d.error(), MsgError::MissingFds);
}

Test(decoder, stray_fds)
{
	auto types = all_types();
	int before = open_fd_count();
	{
		Pipe p;
		MsgDecoder d(types);
		d.feed_fd(std::move(p.w));
		auto bytes = role_ready(1);
		d.feed(bytes);
		auto m = d.next();
		cr_assert(m.has_value(), "a message without descriptors leaves them queued");
		cr_assert(m->fds.empty());
		cr_assert(!d.error());
		d.finish();
		cr_assert_eq(d.error(), MsgError::StrayFds);
		// The stray descriptor is closed at once: the pipe reads EOF.
		char c;
		cr_assert_eq(read(p.r.get(), &c, 1), 0);
	}
	cr_assert_eq(open_fd_count(), before);
}

Test(decoder, a_flood_of_fds_fails_early)
{
	auto types = all_types();
	int before = open_fd_count();
	{
		Pipe p;
		MsgDecoder d(types);
		for (int i = 0; i < 200 && !d.error(); i++)
			d.feed_fd(UniqueFd(dup(p.w.get())));
		cr_assert_eq(d.error(), MsgError::StrayFds);
	}
	cr_assert_eq(open_fd_count(), before);
}

Test(decoder, truncated_at_finish)
{
	auto types = all_types();
	auto bytes = role_ready(1);
	for (std::size_t k = 1; k < bytes.size(); k++) {
		MsgDecoder d(types);
		d.feed(std::span(bytes).first(k));
		cr_assert(!d.next());
		cr_assert(!d.error());
		d.finish();
		cr_assert_eq(d.error(), MsgError::Truncated, "cut after %zu bytes", k);
	}
}

Test(decoder, errors_are_sticky)
{
	auto types = all_types();
	auto good = role_ready(1);
	auto bytes = concat({good, header(999, 0, 0), good});
	MsgDecoder d(types);
	auto got = decode(d, {bytes});
	cr_assert_eq(got.size(), 1u, "the message before the bad one is delivered");
	cr_assert_eq(d.error(), MsgError::UnknownType);
	d.feed(good);
	cr_assert(!d.next());
	d.finish();
	cr_assert_eq(d.error(), MsgError::UnknownType, "finish keeps the first error");
}

// --- Channel ---------------------------------------------------------------

Test(channel, passes_a_descriptor)
{
	int before = open_fd_count();
	{
		EventBase eb;
		SocketPair sp;
		Pipe p;
		auto types = all_types();
		Recorder tx_rec, rx_rec;
		Channel tx(eb.base, std::move(sp.a), "rx", {}, tx_rec.on_msg(), tx_rec.on_close());
		Channel rx(eb.base, std::move(sp.b), "tx", types, rx_rec.on_msg(), rx_rec.on_close());
		const uint8_t peer[] = {3};
		std::vector<UniqueFd> fds;
		fds.push_back(std::move(p.w));
		tx.send(MsgType::SetupPeer, peer, std::move(fds));
		cr_assert_gt(tx.queued_bytes(), 0u);
		cr_assert(run_until(eb.base, [&] { return rx_rec.msgs.size() == 1; }));
		cr_assert_eq(tx.queued_bytes(), 0u);
		Msg &m = rx_rec.msgs[0];
		expect_msg(m, MsgType::SetupPeer, peer);
		cr_assert_eq(m.fds.size(), 1u);
		cr_assert(fcntl(m.fds[0].get(), F_GETFD) & FD_CLOEXEC, "received with MSG_CMSG_CLOEXEC");
		check_pipe_link(m.fds[0].get(), p.r.get(), "hello");
		// The sender closed its copy once sent: dropping ours ends the pipe.
		rx_rec.msgs.clear();
		char c;
		cr_assert_eq(read(p.r.get(), &c, 1), 0);
		cr_assert_eq(rx_rec.closes, 0);
		cr_assert_eq(tx_rec.closes, 0);
	}
	cr_assert_eq(open_fd_count(), before);
}

Test(channel, descriptors_stay_with_their_messages)
{
	int before = open_fd_count();
	{
		EventBase eb;
		SocketPair sp;
		Pipe pipes[3];
		auto types = all_types();
		Recorder tx_rec, rx_rec;
		Channel tx(eb.base, std::move(sp.a), "rx", {}, tx_rec.on_msg(), tx_rec.on_close());
		// Messages with and without descriptors, all queued before any write.
		for (uint8_t i = 0; i < 3; i++) {
			const uint8_t peer[] = {i};
			std::vector<UniqueFd> fds;
			fds.push_back(std::move(pipes[i].w));
			tx.send(MsgType::SetupPeer, peer, std::move(fds));
			tx.send(MsgType::SetupDone);
		}
		run_turns(eb.base, 10);
		Channel rx(eb.base, std::move(sp.b), "tx", types, rx_rec.on_msg(), rx_rec.on_close());
		cr_assert(run_until(eb.base, [&] { return rx_rec.msgs.size() == 6; }));
		for (uint8_t i = 0; i < 3; i++) {
			Msg &m = rx_rec.msgs[2 * i];
			const uint8_t peer[] = {i};
			expect_msg(m, MsgType::SetupPeer, peer);
			cr_assert_eq(m.fds.size(), 1u);
			check_pipe_link(m.fds[0].get(), pipes[i].r.get(), std::string(1, static_cast<char>('a' + i)));
			expect_msg(rx_rec.msgs[2 * i + 1], MsgType::SetupDone, {});
			cr_assert(rx_rec.msgs[2 * i + 1].fds.empty());
		}
		cr_assert_eq(rx_rec.closes, 0);
	}
	cr_assert_eq(open_fd_count(), before);
}

Test(channel, large_messages_survive_partial_writes)
{
	EventBase eb;
	SocketPair sp;
	// Small socket buffers so that one message cannot go in one write.
	int small = 32 * 1024;
	setsockopt(sp.a.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
	setsockopt(sp.b.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	auto types = all_types();
	Recorder tx_rec, rx_rec;
	Channel tx(eb.base, std::move(sp.a), "rx", {}, tx_rec.on_msg(), tx_rec.on_close());
	std::vector<std::vector<uint8_t>> payloads;
	std::size_t total = 0;
	for (unsigned i = 0; i < 4; i++) {
		payloads.push_back(pattern(maild::kMaxMsgPayload - i * 1000, i));
		tx.send(MsgType::SetupConfig, payloads.back());
		total += maild::kMsgHeaderSize + payloads.back().size();
	}
	cr_assert_eq(tx.queued_bytes(), total);
	// Nobody reads yet: the writer fills the socket and stops mid-message.
	run_turns(eb.base, 100);
	std::size_t left = tx.queued_bytes();
	cr_assert_gt(left, 0u);
	cr_assert_lt(left, total, "something was written");
	cr_assert_eq(tx_rec.closes, 0);

	Channel rx(eb.base, std::move(sp.b), "tx", types, rx_rec.on_msg(), rx_rec.on_close());
	cr_assert(run_until(eb.base, [&] { return rx_rec.msgs.size() == payloads.size(); }, 200000));
	for (std::size_t i = 0; i < payloads.size(); i++)
		expect_msg(rx_rec.msgs[i], MsgType::SetupConfig, payloads[i]);
	cr_assert_eq(tx.queued_bytes(), 0u);
	cr_assert_eq(rx_rec.closes, 0);
}

Test(channel, clean_close_at_a_boundary)
{
	EventBase eb;
	SocketPair sp;
	auto types = all_types();
	Recorder rx_rec;
	Channel rx(eb.base, std::move(sp.b), "tx", types, rx_rec.on_msg(), rx_rec.on_close());
	{
		Recorder tx_rec;
		Channel tx(eb.base, std::move(sp.a), "rx", {}, tx_rec.on_msg(), tx_rec.on_close());
		tx.send(MsgType::SetupDone);
		tx.send(MsgType::RoleReady, ready_payload(7));
		cr_assert(tx.flush());
		cr_assert_eq(tx.queued_bytes(), 0u);
	}
	cr_assert(run_until(eb.base, [&] { return rx_rec.closes > 0; }));
	cr_assert_eq(rx_rec.msgs.size(), 2u, "both messages arrive before the close");
	cr_assert_eq(rx_rec.error, std::nullopt, "detail: %s", rx_rec.detail.c_str());
	expect_msg(rx_rec.msgs[0], MsgType::SetupDone, {});
	expect_msg(rx_rec.msgs[1], MsgType::RoleReady, ready_payload(7));
	run_turns(eb.base, 100);
	cr_assert_eq(rx_rec.closes, 1);
}

Test(channel, truncated_close)
{
	EventBase eb;
	SocketPair sp;
	auto types = all_types();
	Recorder rx_rec;
	Channel rx(eb.base, std::move(sp.b), "tx", types, rx_rec.on_msg(), rx_rec.on_close());
	auto bytes = concat({role_ready(1), role_ready(2)});
	write_all(sp.a.get(), std::span(bytes).first(bytes.size() - 2));
	sp.a.reset();
	cr_assert(run_until(eb.base, [&] { return rx_rec.closes > 0; }));
	cr_assert_eq(rx_rec.msgs.size(), 1u);
	cr_assert_eq(rx_rec.error, MsgError::Truncated);
}

Test(channel, malformed_message_closes_and_silences)
{
	EventBase eb;
	SocketPair sp;
	const MsgType only_ready[] = {MsgType::RoleReady};
	Recorder rx_rec;
	Channel rx(eb.base, std::move(sp.b), "tx", only_ready, rx_rec.on_msg(), rx_rec.on_close());
	auto bytes = concat({role_ready(1), header(999, 0, 0), role_ready(2)});
	write_all(sp.a.get(), bytes);
	cr_assert(run_until(eb.base, [&] { return rx_rec.closes > 0; }));
	cr_assert_eq(rx_rec.msgs.size(), 1u);
	cr_assert_eq(rx_rec.error, MsgError::UnknownType);
	cr_assert_neq(rx_rec.detail.find("type=999"), std::string::npos, "detail: %s", rx_rec.detail.c_str());

	// More valid input, and the peer's close: nothing more is reported.
	write_all(sp.a.get(), role_ready(3));
	sp.a.reset();
	run_turns(eb.base, 200);
	cr_assert_eq(rx_rec.msgs.size(), 1u);
	cr_assert_eq(rx_rec.closes, 1);
	cr_assert_eq(rx_rec.msgs_after_close, 0);
}

Test(channel, not_allowed_names_the_type)
{
	EventBase eb;
	SocketPair sp;
	const MsgType only_ready[] = {MsgType::RoleReady};
	Recorder rx_rec;
	Channel rx(eb.base, std::move(sp.b), "tx", only_ready, rx_rec.on_msg(), rx_rec.on_close());
	MsgWriter w;
	w.str("no");
	write_all(sp.a.get(), encode_msg(MsgType::ControlError, w.data(), 0));
	cr_assert(run_until(eb.base, [&] { return rx_rec.closes > 0; }));
	cr_assert(rx_rec.msgs.empty());
	cr_assert_eq(rx_rec.error, MsgError::NotAllowed);
	cr_assert_neq(rx_rec.detail.find("ControlError"), std::string::npos, "detail: %s", rx_rec.detail.c_str());
}

Test(channel, too_long_header_closes_without_payload)
{
	EventBase eb;
	SocketPair sp;
	auto types = all_types();
	Recorder rx_rec;
	Channel rx(eb.base, std::move(sp.b), "tx", types, rx_rec.on_msg(), rx_rec.on_close());
	write_all(sp.a.get(), header(MsgType::ConfigReload, maild::kMaxMsgPayload + 1, 0));
	cr_assert(run_until(eb.base, [&] { return rx_rec.closes > 0; }));
	cr_assert_eq(rx_rec.error, MsgError::TooLong);
}

Test(channel, missing_fds)
{
	EventBase eb;
	SocketPair sp;
	auto types = all_types();
	Recorder rx_rec;
	Channel rx(eb.base, std::move(sp.b), "tx", types, rx_rec.on_msg(), rx_rec.on_close());
	const uint8_t peer[] = {3};
	// The header promises a descriptor; a plain write() sends none.
	write_all(sp.a.get(), encode_msg(MsgType::SetupPeer, peer, 1));
	cr_assert(run_until(eb.base, [&] { return rx_rec.closes > 0; }));
	cr_assert(rx_rec.msgs.empty());
	cr_assert_eq(rx_rec.error, MsgError::MissingFds);
}

Test(channel, too_many_fds_is_ctrl_truncated)
{
	int before = open_fd_count();
	{
		EventBase eb;
		SocketPair sp;
		Pipe p;
		auto types = all_types();
		Recorder rx_rec;
		Channel rx(eb.base, std::move(sp.b), "tx", types, rx_rec.on_msg(), rx_rec.on_close());
		// More descriptors in one sendmsg() than any message may carry.
		std::vector<int> fds(64, p.w.get());
		const uint8_t peer[] = {3};
		cr_assert(maild::send_msg_blocking(sp.a.get(), MsgType::SetupPeer, peer, fds));
		cr_assert(run_until(eb.base, [&] { return rx_rec.closes > 0; }));
		cr_assert(rx_rec.msgs.empty());
		cr_assert_eq(rx_rec.error, MsgError::CtrlTruncated);
		// Every descriptor that did arrive was closed again.
		p.w.reset();
		char c;
		cr_assert_eq(read(p.r.get(), &c, 1), 0);
	}
	cr_assert_eq(open_fd_count(), before);
}

Test(channel, write_to_a_closed_peer_closes_once)
{
	EventBase eb;
	SocketPair sp;
	Recorder tx_rec;
	Channel tx(eb.base, std::move(sp.a), "rx", {}, tx_rec.on_msg(), tx_rec.on_close());
	sp.b.reset();
	tx.send(MsgType::SetupDone);
	cr_assert(run_until(eb.base, [&] { return tx_rec.closes > 0; }));
	cr_assert_eq(tx_rec.error, std::nullopt);
	run_turns(eb.base, 100);
	cr_assert_eq(tx_rec.closes, 1);
}

Test(channel, flush_writes_everything_and_send_after_close_is_dropped)
{
	int before = open_fd_count();
	{
		EventBase eb;
		SocketPair sp;
		Recorder tx_rec;
		Channel tx(eb.base, std::move(sp.a), "rx", {}, tx_rec.on_msg(), tx_rec.on_close());
		tx.send(MsgType::SetupDone);
		tx.send(MsgType::RoleReady, ready_payload(9));
		cr_assert(tx.flush());
		cr_assert_eq(tx.queued_bytes(), 0u);
		auto want = concat({encode_msg(MsgType::SetupDone, {}, 0), role_ready(9)});
		std::vector<uint8_t> got(want.size() + 16);
		cr_assert_eq(read(sp.b.get(), got.data(), got.size()), static_cast<ssize_t>(want.size()));
		got.resize(want.size());
		cr_assert(got == want);

		sp.b.reset();
		cr_assert(run_until(eb.base, [&] { return tx_rec.closes > 0; }));
		Pipe p;
		std::vector<UniqueFd> fds;
		fds.push_back(std::move(p.w));
		const uint8_t peer[] = {3};
		tx.send(MsgType::SetupPeer, peer, std::move(fds));
		cr_assert_eq(tx.queued_bytes(), 0u, "a closed channel queues nothing");
		cr_assert(!tx.flush());
		char c;
		cr_assert_eq(read(p.r.get(), &c, 1), 0, "the descriptor was closed");
	}
	cr_assert_eq(open_fd_count(), before);
}

// --- blocking helpers ------------------------------------------------------

Test(blocking, passes_a_descriptor)
{
	int before = open_fd_count();
	{
		SocketPair sp;
		Pipe p;
		const uint8_t peer[] = {4};
		const int fds[] = {p.w.get()};
		cr_assert(maild::send_msg_blocking(sp.a.get(), MsgType::SetupPeer, peer, fds));
		p.w.reset(); // the caller keeps ownership of what it sends
		auto types = all_types();
		MsgDecoder d(types);
		std::string error;
		auto m = maild::recv_msg_blocking(sp.b.get(), d, 5000, error);
		cr_assert(m.has_value(), "error: %s", error.c_str());
		expect_msg(*m, MsgType::SetupPeer, peer);
		cr_assert_eq(m->fds.size(), 1u);
		cr_assert(fcntl(m->fds[0].get(), F_GETFD) & FD_CLOEXEC);
		check_pipe_link(m->fds[0].get(), p.r.get(), "through");
	}
	cr_assert_eq(open_fd_count(), before);
}

Test(blocking, keeps_later_messages_in_the_decoder)
{
	SocketPair sp;
	write_all(sp.a.get(), concat({role_ready(1), role_ready(2)}));
	sp.a.reset();
	auto types = all_types();
	MsgDecoder d(types);
	std::string error;
	auto first = maild::recv_msg_blocking(sp.b.get(), d, 5000, error);
	cr_assert(first.has_value(), "error: %s", error.c_str());
	cr_assert_eq(MsgReader{first->payload}.u32(), 1u);
	auto second = maild::recv_msg_blocking(sp.b.get(), d, 5000, error);
	cr_assert(second.has_value(), "error: %s", error.c_str());
	cr_assert_eq(MsgReader{second->payload}.u32(), 2u);
	auto none = maild::recv_msg_blocking(sp.b.get(), d, 5000, error);
	cr_assert(!none.has_value());
	cr_assert_eq(error, "connection closed");
}

Test(blocking, large_message_from_another_thread)
{
	SocketPair sp;
	auto payload = pattern(maild::kMaxMsgPayload, 5);
	// On a non-blocking socket send_msg_blocking waits for room itself.
	bool sent = false;
	std::thread writer([&] { sent = maild::send_msg_blocking(sp.a.get(), MsgType::ConfigReload, payload); });
	auto types = all_types();
	MsgDecoder d(types);
	std::string error;
	auto m = maild::recv_msg_blocking(sp.b.get(), d, 10000, error);
	writer.join();
	cr_assert(sent);
	cr_assert(m.has_value(), "error: %s", error.c_str());
	expect_msg(*m, MsgType::ConfigReload, payload);
}

Test(blocking, timeout)
{
	SocketPair sp;
	auto types = all_types();
	MsgDecoder d(types);
	std::string error;
	auto m = maild::recv_msg_blocking(sp.b.get(), d, 50, error);
	cr_assert(!m.has_value());
	cr_assert_neq(error.find("timed out"), std::string::npos, "error: %s", error.c_str());
	// A partial message does not count as an answer either.
	write_all(sp.a.get(), std::span<const uint8_t>(role_ready(1)).first(5));
	m = maild::recv_msg_blocking(sp.b.get(), d, 50, error);
	cr_assert(!m.has_value());
	cr_assert_neq(error.find("timed out"), std::string::npos, "error: %s", error.c_str());
}

Test(blocking, malformed_and_truncated)
{
	{
		SocketPair sp;
		const MsgType accepted[] = {MsgType::ControlStatusResult};
		MsgDecoder d(accepted);
		MsgWriter w;
		w.str("nope");
		cr_assert(maild::send_msg_blocking(sp.a.get(), MsgType::ControlError, w.data()));
		std::string error;
		cr_assert(!maild::recv_msg_blocking(sp.b.get(), d, 5000, error));
		cr_assert(error.starts_with("malformed message: not_allowed"), "error: %s", error.c_str());
	}
	{
		SocketPair sp;
		auto types = all_types();
		MsgDecoder d(types);
		write_all(sp.a.get(), std::span<const uint8_t>(role_ready(1)).first(14));
		sp.a.reset();
		std::string error;
		cr_assert(!maild::recv_msg_blocking(sp.b.get(), d, 5000, error));
		cr_assert(error.starts_with("malformed message: truncated"), "error: %s", error.c_str());
	}
}
