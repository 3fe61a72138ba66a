// The queue commands: show what the spool holds, and flush, remove, hold or
// release a message. The control role relays them to the queue role, the
// only process that touches the spool; mailctl never reads it itself.
#include "mailctl/mailctl.h"

#include "common/envelope.h"

#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

namespace maild {

namespace {

// A listing is one pass over the queue's in-memory index; an action may
// wait behind a commit's fsync.
constexpr int kQueueTimeoutMs = 30'000;
// ControlQueueActionResult's message (imsg_types.h).
constexpr std::size_t kMaxActionMessage = 1024;

// "45s", "3m", "2h", "5d": the largest whole unit, as an operator reads it.
std::string format_duration(uint64_t seconds)
{
	if (seconds < 60)
		return std::to_string(seconds) + "s";
	if (seconds < 60 * 60)
		return std::to_string(seconds / 60) + "m";
	if (seconds < 24 * 60 * 60)
		return std::to_string(seconds / (60 * 60)) + "h";
	return std::to_string(seconds / (24 * 60 * 60)) + "d";
}

// Every string of an envelope came from an SMTP client: read_envelope has
// refused CR, LF and NUL, and printable() escapes the other control bytes.
void print_envelope(const Envelope &envelope, uint64_t now)
{
	uint64_t age = now > envelope.created ? now - envelope.created : 0;
	bool held = (envelope.flags & kEnvelopeHeld) != 0;
	std::printf("%s  age %s  size %" PRIu64 "  %s\n", envelope.qid.c_str(), format_duration(age).c_str(),
	    envelope.size, held ? "held" : "active");
	std::printf("  from <%s>\n", printable(envelope.sender).c_str());
	for (const auto &target : envelope.targets) {
		std::string line = "  to " + printable(target.address);
		if (target.rcpt != target.address)
			line += " (rcpt " + printable(target.rcpt) + ")";
		line += "  ";
		line += to_string(target.state);
		line += "  attempts " + std::to_string(target.attempts);
		if (target.state == TargetState::Pending && target.next_attempt > now)
			line += "  next in " + format_duration(target.next_attempt - now);
		if (!target.last_error.empty())
			line += "  last error: " + printable(target.last_error);
		std::printf("%s\n", line.c_str());
	}
}

// Sends one action on the message the operand names (none: every message,
// for a flush) and prints its answer: the queue's message on standard
// output when it worked, as an error when it did not (no such message).
int queue_action(const Options &options, QueueAction action, Operands operands)
{
	std::string_view qid = operands.empty() ? std::string_view{} : operands[0];
	if (!operands.empty() && !is_valid_queue_id(qid)) {
		print_error("invalid queue id %s: not %zu lowercase hex digits", printable(qid).c_str(), kQueueIdLength);
		return kExitUsage;
	}
	MsgWriter request;
	request.u32(kProtocolVersion).u8(static_cast<uint8_t>(action)).str(qid);
	int exit_status = kExitOk;
	std::optional<Msg> reply = ask(options, MsgType::ControlQueueAction, request.data(),
	    MsgType::ControlQueueActionResult, kQueueTimeoutMs, exit_status);
	if (!reply)
		return exit_status;
	MsgReader r{reply->payload};
	uint8_t ok = r.u8();
	std::string_view message = r.str(kMaxActionMessage);
	if (!r.end() || ok > 1)
		return malformed_answer();
	if (ok == 0) {
		print_error("%s", printable(message).c_str());
		return kExitFailed;
	}
	if (!message.empty())
		std::printf("%s\n", printable(message).c_str());
	return kExitOk;
}

} // namespace

int queue_show(const Options &options, Operands)
{
	MsgWriter request;
	request.u32(kProtocolVersion);
	int exit_status = kExitOk;
	std::optional<Msg> reply = ask(options, MsgType::ControlQueueShow, request.data(),
	    MsgType::ControlQueueShowResult, kQueueTimeoutMs, exit_status);
	if (!reply)
		return exit_status;

	MsgReader r{reply->payload};
	uint32_t total = r.u32();
	uint32_t n = r.u32();
	if (!r.ok() || n > total)
		return malformed_answer();
	std::vector<Envelope> envelopes;
	for (uint32_t i = 0; i < n; i++) {
		std::string error;
		std::optional<Envelope> envelope = read_envelope(r, error);
		if (!envelope) {
			print_error("malformed answer from maild: %s", error.c_str());
			return kExitSystem;
		}
		envelopes.push_back(std::move(*envelope));
	}
	if (!r.end())
		return malformed_answer();

	if (total == 0) {
		std::printf("queue is empty\n");
		return kExitOk;
	}
	auto now = static_cast<uint64_t>(std::time(nullptr));
	for (const auto &envelope : envelopes) {
		print_envelope(envelope, now);
		std::printf("\n");
	}
	std::printf("%" PRIu32 " %s", total, total == 1 ? "message" : "messages");
	if (n < total)
		std::printf(" (showing %" PRIu32 " of %" PRIu32 ")", n, total);
	std::printf("\n");
	return kExitOk;
}

int queue_flush(const Options &options, Operands operands)
{
	return queue_action(options, QueueAction::Flush, operands);
}

int queue_remove(const Options &options, Operands operands)
{
	return queue_action(options, QueueAction::Remove, operands);
}

int queue_hold(const Options &options, Operands operands)
{
	return queue_action(options, QueueAction::Hold, operands);
}

int queue_release(const Options &options, Operands operands)
{
	return queue_action(options, QueueAction::Release, operands);
}

} // namespace maild
