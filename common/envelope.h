// The envelope of a queued message: who sent it, to whom it goes, and what
// has become of each recipient. One format, two encodings:
//
//   - the wire form, written with MsgWriter and read with MsgReader: smtpd
//     sends it in QueueCommit, the queue lists it in QueueShowResult;
//   - the file form in the spool (docs/QUEUE.md): a magic, a version, the
//     length of the wire form, the wire form, and a CRC-32 of it, so that a
//     torn or corrupt file is recognised and never half-trusted.
//
// Every field is length-prefixed, so no field can start a new record; on
// top of that the readers refuse CR, LF and NUL in every string, so a value
// stays inert bytes wherever it is later printed or logged.
#pragma once

#include "common/imsg.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace maild {

// A queue id: 16 lowercase hex digits, unique in one spool.
inline constexpr std::size_t kQueueIdLength = 16;
bool is_valid_queue_id(std::string_view qid);

// String bounds, checked by the readers.
inline constexpr std::size_t kMaxEnvelopeAddress = 1024; // addresses, accounts, HELO names
inline constexpr std::size_t kMaxEnvelopeText = 1024;    // errors, ENVID, ORCPT
inline constexpr std::size_t kMaxEnvelopeTargets = 10000;

enum class TargetKind : uint8_t {
	Local = 0,  // address is a local account: deliver into its Maildir
	Remote = 1, // address is a remote mailbox: for the mta (the outbound issue)
};

enum class TargetState : uint8_t {
	Pending = 0,         // waiting for (another) delivery attempt
	Delivered = 1,       // durable in the mailbox or accepted by the next hop
	Failed = 2,          // permanently failed (the bounce is for the outbound issue)
	WaitingOutbound = 3, // remote, and maild cannot send remote mail yet
};
std::string_view to_string(TargetState state);

struct EnvelopeTarget {
	TargetKind kind = TargetKind::Local;
	std::string address; // local: the account (canonical); remote: the mailbox
	std::string rcpt;    // the RCPT TO address it came from
	uint8_t notify = 0;  // RFC 3461 NotifyFlag bits (smtpd/smtp_command.h); 0: not given
	std::string orcpt;   // RFC 3461 ORCPT as "addr-type;address" (decoded); empty: not given

	// Kept by the queue.
	TargetState state = TargetState::Pending;
	uint32_t attempts = 0;
	uint64_t next_attempt = 0; // unix seconds; 0: as soon as possible
	std::string last_error;    // the last temporary or permanent failure, for mailctl queue show
};

// EnvelopeFlags.
inline constexpr uint8_t kEnvelopeLocalSenderUnauthenticated = 1 << 0; // port 25, a local domain as
                                                                       // sender, no AUTH: for SPF/DMARC
inline constexpr uint8_t kEnvelopeHeld = 1 << 1; // mailctl queue hold

struct Envelope {
	std::string qid;
	uint64_t created = 0; // unix seconds, when the message was committed
	uint64_t size = 0;    // bytes of the message file
	std::string sender;   // the reverse path's mailbox; empty for <>
	uint8_t body = 0;     // MailParams::Body (7BIT, 8BITMIME, BINARYMIME)
	bool smtputf8 = false;
	uint8_t ret = 0;      // MailParams::Ret (none, FULL, HDRS)
	std::string envid;    // RFC 3461 ENVID, decoded; empty: not given
	std::string auth_user;      // the authenticated account; empty: none
	std::string client_address; // numeric IP of the client
	std::string helo;           // what the client said in HELO/EHLO
	uint8_t flags = 0;          // EnvelopeFlags
	std::vector<EnvelopeTarget> targets;
};

// The wire form. write_envelope appends the fields to w; read_envelope reads
// exactly one envelope's fields from r, checks every bound, the queue id,
// the enums and that no string holds CR, LF or NUL, and returns nullopt with
// error_r saying what was wrong (a fixed text, no input bytes).
void write_envelope(MsgWriter &w, const Envelope &envelope);
std::optional<Envelope> read_envelope(MsgReader &r, std::string &error_r);
// How many bytes the wire form of `envelope` takes: smtpd refuses a
// recipient that would take it past kMaxEnvelopeWire (imsg_types.h).
std::size_t envelope_wire_size(const Envelope &envelope);

// The file form.
std::string encode_envelope_file(const Envelope &envelope);
std::optional<Envelope> decode_envelope_file(std::string_view bytes, std::string &error_r);

} // namespace maild
