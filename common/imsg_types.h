// The one vocabulary of messages between the processes of the family.
//
// Every message type declares the largest payload it may carry and exactly
// how many file descriptors travel with it; the receiver checks both before
// any handler sees the message. Bump kProtocolVersion on every change here so
// that a stale mailctl or role cannot talk to a newer parent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace maild {

inline constexpr uint32_t kProtocolVersion = 3;

// No message of any type may be larger than this (payload bytes).
inline constexpr uint32_t kMaxMsgPayload = 256 * 1024;
// The largest envelope in its wire form (common/envelope.h): a commit and
// one entry of a queue listing are bounded by it.
inline constexpr uint32_t kMaxEnvelopeWire = 200 * 1024;
// No message carries more descriptors than this.
inline constexpr uint32_t kMaxMsgFds = 2;

enum class MsgType : uint32_t {
	// Setup: parent -> role, before the role jails itself.
	SetupConfig = 1,  // u32 protocol version, str config path, str config text, u8 flags
	SetupPeer,        // u8 peer role; fd: our end of the socketpair to that peer
	SetupListener,    // u8 listener kind, str address, u16 port; fd: listening socket
	SetupControl,     // fd: the listening control socket (control only)
	SetupDone,        // (empty): jail yourself and start work
	// Role -> parent.
	RoleReady,        // u32 protocol version: jailed and serving
	// Parent -> role at run time.
	ConfigReload,     // str config text: a validated new configuration
	// mailctl <-> control. mailctl is not trusted: a bad request from it
	// drops that client only.
	ControlStatusRequest, // u32 protocol version
	ControlStatusResult,  // u32 count, then per process: str role, i32 pid, str user, str state
	ControlError,         // str message (a fixed, safe string)
	// control <-> parent, paired by request id.
	ParentStatusRequest,  // u32 request id
	ParentStatusResult,   // u32 request id, then as ControlStatusResult
	// Test hooks (only built with MAILD_TEST_HOOKS): parent -> role.
	TestForbiddenSyscall, // (empty): make a system call the sandbox forbids
	// Any role that serves users <-> lookup, paired by request id.
	LookupAuthRequest,    // u32 id, str client address, str user, str password
	LookupAuthResult,     // u32 id, u8 AuthResult, str canonical user (empty unless Ok)
	LookupResolveRequest, // u32 id, str address
	LookupResolveResult,  // u32 id, u8 ResolveKind, u32 n, n x str local account,
	                      // u32 m, m x str external target, str error
	// mailctl <-> control: the operator's view of lookup.
	ControlAuthTest,      // u32 protocol version, str client address, str user, str password
	ControlAuthResult,    // u8 AuthResult, str canonical user
	ControlResolve,       // u32 protocol version, str address
	ControlResolveResult, // as LookupResolveResult without the id
	// smtpd <-> queue: one transaction's message file and its commit
	// (common/envelope.h has the envelope's wire form).
	QueueCreate,          // u32 id
	QueueCreated,         // u32 id, str qid; fd: the new, empty message file, open for writing
	QueueCreateFailed,    // u32 id, str error
	QueueCommit,          // u32 id, envelope: the message file is complete; make it durable
	QueueCommitResult,    // u32 id, u8 ok, str error
	QueueAbort,           // str qid: the transaction ended without a commit; remove its file
	// queue <-> deliver: one local recipient's copy.
	DeliverRequest,       // u32 id, str qid, str account, str return path, u64 created, u8 DeliverFlags;
	                      // fd: the message file, read-only
	DeliverResult,        // u32 id, u8 DeliveryStatus, str error
	// mailctl <-> control <-> queue: the operator's view of the queue.
	ControlQueueShow,         // u32 protocol version
	ControlQueueShowResult,   // u32 total, u32 n, n x envelope (the first n of total)
	ControlQueueAction,       // u32 protocol version, u8 QueueAction, str qid (empty: every message)
	ControlQueueActionResult, // u8 ok, str message
	QueueShowRequest,         // u32 request id
	QueueShowResult,          // u32 request id, then as ControlQueueShowResult
	QueueActionRequest,       // u32 request id, u8 QueueAction, str qid
	QueueActionResult,        // u32 request id, u8 ok, str message
};

enum class DeliveryStatus : uint8_t {
	Ok = 0,       // durable in the mailbox (or found there from an earlier try)
	TempFail = 1, // disk full, permissions, I/O error: retry later
	PermFail = 2, // can never succeed (e.g. an account name no mailbox can have)
};

// DeliverRequest flags.
// An earlier attempt may have left a copy (the queue restarted since the
// message was queued, or an attempt failed): deliver looks in cur/ too.
inline constexpr uint8_t kDeliverRetry = 1 << 0;

enum class QueueAction : uint8_t {
	Flush = 0,   // try now whatever waits for a retry (one message, or all)
	Remove = 1,  // delete the message and its envelope
	Hold = 2,    // stop trying until released
	Release = 3, // undo hold
};

// The answer to a password check. Unknown user and wrong password are one
// answer (Fail), so that nobody can learn which addresses exist.
enum class AuthResult : uint8_t {
	Ok = 0,
	Fail = 1,
	TempFail = 2, // rate limited, overloaded, or a broken stored hash
};

// lookup's answer to "who gets mail for this address?" (lookup/resolve.h).
enum class ResolveKind : uint8_t {
	Deliver,        // to local_accounts and/or external (at least one)
	UnknownUser,    // a local domain, but nobody by that name (550 5.1.1)
	Disabled,       // only disabled accounts (550 5.2.1)
	NotLocalDomain, // not ours (relaying is smtpd's decision)
	TempFail,       // alias loop, chain too deep, dangling alias, database error: 451, never a drop
};
struct MsgSpec {
	MsgType type;
	std::string_view name;
	uint32_t max_payload;
	uint8_t fds; // exactly this many descriptors travel with the message
};

inline constexpr MsgSpec kMsgSpecs[] = {
    {MsgType::SetupConfig, "SetupConfig", kMaxMsgPayload, 0},
    {MsgType::SetupPeer, "SetupPeer", 1, 1},
    {MsgType::SetupListener, "SetupListener", 1 + 4 + 255 + 2, 1},
    {MsgType::SetupControl, "SetupControl", 0, 1},
    {MsgType::SetupDone, "SetupDone", 0, 0},
    {MsgType::RoleReady, "RoleReady", 4, 0},
    {MsgType::ConfigReload, "ConfigReload", kMaxMsgPayload, 0},
    {MsgType::ControlStatusRequest, "ControlStatusRequest", 4, 0},
    {MsgType::ControlStatusResult, "ControlStatusResult", 64 * 1024, 0},
    {MsgType::ControlError, "ControlError", 1024, 0},
    {MsgType::ParentStatusRequest, "ParentStatusRequest", 4, 0},
    {MsgType::ParentStatusResult, "ParentStatusResult", 4 + 64 * 1024, 0},
    {MsgType::TestForbiddenSyscall, "TestForbiddenSyscall", 0, 0},
    {MsgType::LookupAuthRequest, "LookupAuthRequest", 4 + 4 + 64 + 4 + 1024 + 4 + 4096, 0},
    {MsgType::LookupAuthResult, "LookupAuthResult", 4 + 1 + 4 + 1024, 0},
    {MsgType::LookupResolveRequest, "LookupResolveRequest", 4 + 4 + 1024, 0},
    {MsgType::LookupResolveResult, "LookupResolveResult", 64 * 1024, 0},
    {MsgType::ControlAuthTest, "ControlAuthTest", 4 + 4 + 64 + 4 + 1024 + 4 + 4096, 0},
    {MsgType::ControlAuthResult, "ControlAuthResult", 1 + 4 + 1024, 0},
    {MsgType::ControlResolve, "ControlResolve", 4 + 4 + 1024, 0},
    {MsgType::ControlResolveResult, "ControlResolveResult", 64 * 1024, 0},
    {MsgType::QueueCreate, "QueueCreate", 4, 0},
    {MsgType::QueueCreated, "QueueCreated", 4 + 4 + 64, 1},
    {MsgType::QueueCreateFailed, "QueueCreateFailed", 4 + 4 + 1024, 0},
    {MsgType::QueueCommit, "QueueCommit", 4 + kMaxEnvelopeWire, 0},
    {MsgType::QueueCommitResult, "QueueCommitResult", 4 + 1 + 4 + 1024, 0},
    {MsgType::QueueAbort, "QueueAbort", 4 + 64, 0},
    {MsgType::DeliverRequest, "DeliverRequest", 4 + 4 + 64 + 4 + 1024 + 4 + 1024 + 8 + 1, 1},
    {MsgType::DeliverResult, "DeliverResult", 4 + 1 + 4 + 1024, 0},
    {MsgType::ControlQueueShow, "ControlQueueShow", 4, 0},
    {MsgType::ControlQueueShowResult, "ControlQueueShowResult", kMaxMsgPayload - 4, 0},
    {MsgType::ControlQueueAction, "ControlQueueAction", 4 + 1 + 4 + 64, 0},
    {MsgType::ControlQueueActionResult, "ControlQueueActionResult", 1 + 4 + 1024, 0},
    {MsgType::QueueShowRequest, "QueueShowRequest", 4, 0},
    {MsgType::QueueShowResult, "QueueShowResult", kMaxMsgPayload, 0},
    {MsgType::QueueActionRequest, "QueueActionRequest", 4 + 1 + 4 + 64, 0},
    {MsgType::QueueActionResult, "QueueActionResult", 4 + 1 + 4 + 1024, 0},
};

// The spec of a raw type value, or nullopt for a value that is no MsgType.
constexpr std::optional<MsgSpec> msg_spec(uint32_t raw)
{
	for (const auto &spec : kMsgSpecs)
		if (static_cast<uint32_t>(spec.type) == raw)
			return spec;
	return std::nullopt;
}

constexpr std::string_view to_string(MsgType type)
{
	auto spec = msg_spec(static_cast<uint32_t>(type));
	return spec ? spec->name : std::string_view{"unknown"};
}

} // namespace maild
