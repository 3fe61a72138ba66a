// Fuzzes MsgDecoder and MsgReader (common/imsg.h).
//
// Input layout:
//   byte 0   count of chunk sizes that follow, modulo 8; 0 = one byte at a time
//   byte 1   bit i: feed a descriptor before chunk i (chunks 0-7)
//   then     that many bytes, each a chunk size (0 = an empty feed), cycled;
//            if all are 0, the stream goes in one piece
//   rest     the stream
// The stream goes to a decoder that accepts every type, in those chunks,
// draining next() after each and calling finish() at the end. Without
// descriptors the result must not depend on the chunking (one piece, the
// chunks and one byte at a time agree). Every message returned must fit
// its type's spec, and its payload is read field by field as the comments
// in imsg_types.h lay it out.
#include "common/envelope.h"
#include "common/imsg.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

using maild::Msg;
using maild::MsgDecoder;
using maild::MsgError;
using maild::MsgReader;
using maild::MsgType;
using maild::UniqueFd;

namespace {

std::vector<std::span<const uint8_t>> chunk(std::span<const uint8_t> stream, const std::vector<std::size_t> &sizes)
{
	std::vector<std::span<const uint8_t>> chunks;
	std::size_t total = 0;
	for (std::size_t s : sizes)
		total += s;
	if (total == 0 && !sizes.empty())
		return {stream};
	std::size_t pos = 0;
	for (std::size_t i = 0; pos < stream.size(); i++) {
		std::size_t n = sizes.empty() ? 1 : sizes[i % sizes.size()];
		n = std::min(n, stream.size() - pos);
		chunks.push_back(stream.subspan(pos, n));
		pos += n;
	}
	if (chunks.empty())
		chunks.push_back(stream);
	return chunks;
}

// A failed reader must stay failed and read as zero.
void check_reader_state(MsgReader &r)
{
	if (r.ok())
		return;
	if (r.end() || r.u8() != 0 || r.u32() != 0 || !r.str(1 << 20).empty())
		__builtin_trap();
}

void read_status_rows(MsgReader &r)
{
	uint32_t count = r.u32();
	for (uint32_t i = 0; i < count && r.ok(); i++) {
		r.str(64);
		r.i32();
		r.str(64);
		r.str(64);
	}
}

// An envelope as the queue reads it (a refused one is fatal there; here the
// reader's state is all that matters).
void read_envelope_fields(MsgReader &r)
{
	std::string error;
	(void)maild::read_envelope(r, error);
}

// Reads the payload as its type's handler would.
void parse_payload(const Msg &msg)
{
	MsgReader r{msg.payload};
	switch (msg.type) {
	case MsgType::SetupConfig:
		r.u32();
		r.str(maild::kMaxMsgPayload);
		r.str(maild::kMaxMsgPayload);
		r.u8();
		break;
	case MsgType::SetupPeer:
		r.u8();
		break;
	case MsgType::SetupListener:
		r.u8();
		r.str(255);
		r.u16();
		break;
	case MsgType::SetupControl:
	case MsgType::SetupDone:
	case MsgType::TestForbiddenSyscall:
		break;
	case MsgType::RoleReady:
	case MsgType::ControlStatusRequest:
	case MsgType::ParentStatusRequest:
		r.u32();
		break;
	case MsgType::ConfigReload:
		r.str(maild::kMaxMsgPayload);
		break;
	case MsgType::ControlStatusResult:
		read_status_rows(r);
		break;
	case MsgType::ControlError:
		r.str(1024);
		break;
	case MsgType::ParentStatusResult:
		r.u32();
		read_status_rows(r);
		break;
	case MsgType::LookupAuthRequest:
		r.u32();
		[[fallthrough]];
	case MsgType::ControlAuthTest:
		r.u32();
		r.str(64);
		r.str(1024);
		r.str(4096);
		break;
	case MsgType::LookupAuthResult:
		r.u32();
		[[fallthrough]];
	case MsgType::ControlAuthResult:
		r.u8();
		r.str(1024);
		break;
	case MsgType::LookupResolveRequest:
	case MsgType::ControlResolve:
		r.u32();
		r.str(1024);
		break;
	case MsgType::LookupResolveResult:
		r.u32();
		[[fallthrough]];
	case MsgType::ControlResolveResult:
		r.u8();
		for (int list = 0; list < 2 && r.ok(); list++) {
			uint32_t n = r.u32();
			for (uint32_t i = 0; i < n && r.ok(); i++)
				r.str(1024);
		}
		r.str(1024);
		break;
	case MsgType::QueueCreate:
	case MsgType::QueueShowRequest:
	case MsgType::ControlQueueShow:
		r.u32();
		break;
	case MsgType::QueueCreated:
	case MsgType::QueueCreateFailed:
		r.u32();
		r.str(1024);
		break;
	case MsgType::QueueCommit:
		r.u32();
		read_envelope_fields(r);
		break;
	case MsgType::QueueCommitResult:
	case MsgType::QueueActionResult:
		r.u32();
		[[fallthrough]];
	case MsgType::ControlQueueActionResult:
		r.u8();
		r.str(1024);
		break;
	case MsgType::QueueAbort:
		r.str(64);
		break;
	case MsgType::DeliverRequest:
		r.u32();
		r.str(64);
		r.str(1024);
		r.str(1024);
		r.u64();
		r.u8();
		break;
	case MsgType::DeliverResult:
		r.u32();
		r.u8();
		r.str(1024);
		break;
	case MsgType::QueueShowResult:
		r.u32();
		[[fallthrough]];
	case MsgType::ControlQueueShowResult: {
		r.u32();
		uint32_t n = r.u32();
		for (uint32_t i = 0; i < n && r.ok(); i++)
			read_envelope_fields(r);
		break;
	}
	case MsgType::QueueActionRequest:
		r.u32();
		[[fallthrough]];
	case MsgType::ControlQueueAction:
		r.u32();
		r.u8();
		r.str(64);
		break;
	}
	// end() is exactly "every byte read, no failure".
	bool end = r.end();
	check_reader_state(r);
	if (end && !r.ok())
		__builtin_trap();
}

struct Result {
	std::vector<MsgType> types;
	std::vector<std::vector<uint8_t>> payloads;
	std::optional<MsgError> error;
	bool operator==(const Result &) const = default;
};

Result run(const std::vector<std::span<const uint8_t>> &chunks, uint8_t fd_bits, int fd_source)
{
	std::vector<MsgType> all;
	for (const auto &spec : maild::kMsgSpecs)
		all.push_back(spec.type);
	MsgDecoder decoder(all);
	Result result;
	std::size_t consumed = 0, fed = 0;
	for (std::size_t i = 0; i < chunks.size(); i++) {
		if (i < 8 && (fd_bits >> i & 1) && fd_source >= 0) {
			UniqueFd fd(fcntl(fd_source, F_DUPFD_CLOEXEC, 0));
			if (fd)
				decoder.feed_fd(std::move(fd));
		}
		decoder.feed(chunks[i]);
		fed += chunks[i].size();
		while (auto msg = decoder.next()) {
			auto spec = maild::msg_spec(static_cast<uint32_t>(msg->type));
			if (!spec || msg->payload.size() > spec->max_payload || msg->fds.size() != spec->fds)
				__builtin_trap();
			for (const auto &fd : msg->fds)
				if (!fd.valid())
					__builtin_trap();
			parse_payload(*msg);
			consumed += maild::kMsgHeaderSize + msg->payload.size();
			result.types.push_back(msg->type);
			result.payloads.push_back(std::move(msg->payload));
		}
		if (decoder.error()) {
			if (decoder.next() || decoder.buffered() != 0)
				__builtin_trap();
		} else if (consumed + decoder.buffered() != fed) {
			__builtin_trap();
		} else if (decoder.buffered() > maild::kMsgHeaderSize + maild::kMaxMsgPayload) {
			// Never more than one message, and only a message that fits.
			__builtin_trap();
		}
	}
	decoder.finish();
	result.error = decoder.error();
	if (!result.error && decoder.buffered() != 0)
		__builtin_trap();
	if (decoder.next())
		__builtin_trap();
	return result;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	std::size_t nsizes = data[0] % 8;
	uint8_t fd_bits = data[1];
	if (size < 2 + nsizes)
		return 0;
	std::vector<std::size_t> sizes(data + 2, data + 2 + nsizes);
	std::span<const uint8_t> stream(data + 2 + nsizes, size - 2 - nsizes);

	if (fd_bits != 0) {
		UniqueFd source(open("/dev/null", O_RDONLY | O_CLOEXEC));
		run(chunk(stream, sizes), fd_bits, source.get());
		return 0;
	}
	Result whole = run({stream}, 0, -1);
	if (run(chunk(stream, sizes), 0, -1) != whole)
		__builtin_trap();
	if (!sizes.empty() && run(chunk(stream, {}), 0, -1) != whole)
		__builtin_trap();
	return 0;
}
