#include "common/envelope.h"

#include <array>
#include <cstring>

namespace maild {

namespace {

// Largest values of the small enums and bit sets the envelope carries
// (MailParams::Body and ::Ret, NotifyFlag in smtpd/smtp_command.h).
constexpr uint8_t kMaxBody = 2;
constexpr uint8_t kMaxRet = 2;
constexpr uint8_t kNotifyMask = 0x0f;
constexpr uint8_t kKnownEnvelopeFlags = kEnvelopeLocalSenderUnauthenticated | kEnvelopeHeld;

constexpr char kFileMagic[8] = {'M', 'A', 'I', 'L', 'D', 'E', 'N', 'V'};
constexpr uint32_t kFileVersion = 1;
// magic, version, wire length, then after the wire bytes the CRC.
constexpr std::size_t kFileHeaderSize = sizeof(kFileMagic) + 4 + 4;
constexpr std::size_t kFileTrailerSize = 4;

// Fixed-size parts of the wire form: everything but the string bytes.
constexpr std::size_t kEnvelopeFixedWire = 4 + 8 + 8 + 4 + 1 + 1 + 1 + 4 + 4 + 4 + 4 + 1 + 4;
constexpr std::size_t kTargetFixedWire = 1 + 4 + 4 + 1 + 4 + 1 + 4 + 8 + 4;

// CRC-32 as in IEEE 802.3 (the reflected polynomial 0xEDB88320, the one
// zlib and PNG use), one table lookup per byte.
constexpr std::array<uint32_t, 256> make_crc_table()
{
	std::array<uint32_t, 256> table{};
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		table[n] = c;
	}
	return table;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

uint32_t crc32(std::span<const uint8_t> bytes)
{
	uint32_t c = 0xFFFFFFFFu;
	for (uint8_t b : bytes)
		c = kCrcTable[(c ^ b) & 0xff] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

bool is_inert(std::string_view s)
{
	return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

// Reads one string field; false (and error_r set) if the reader failed or
// the value holds CR, LF or NUL.
bool read_string(MsgReader &r, std::size_t max_len, std::string &out, const char *what, std::string &error_r)
{
	std::string_view s = r.str(max_len);
	if (!r.ok()) {
		error_r = std::string("truncated or over-long ") + what;
		return false;
	}
	if (!is_inert(s)) {
		error_r = std::string("CR, LF or NUL in ") + what;
		return false;
	}
	out.assign(s);
	return true;
}

uint32_t load_u32(const char *p)
{
	uint32_t v;
	std::memcpy(&v, p, sizeof(v));
	return v;
}

void append_u32(std::string &out, uint32_t v)
{
	char b[sizeof(v)];
	std::memcpy(b, &v, sizeof(v));
	out.append(b, sizeof(b));
}

std::optional<EnvelopeTarget> read_target(MsgReader &r, std::string &error_r)
{
	EnvelopeTarget t;
	uint8_t kind = r.u8();
	if (!r.ok() || kind > static_cast<uint8_t>(TargetKind::Remote)) {
		error_r = "bad target kind";
		return std::nullopt;
	}
	t.kind = static_cast<TargetKind>(kind);
	if (!read_string(r, kMaxEnvelopeAddress, t.address, "target address", error_r) ||
	    !read_string(r, kMaxEnvelopeAddress, t.rcpt, "target rcpt", error_r))
		return std::nullopt;
	if (t.address.empty()) {
		error_r = "empty target address";
		return std::nullopt;
	}
	t.notify = r.u8();
	if (!r.ok() || (t.notify & ~kNotifyMask) != 0) {
		error_r = "bad target notify";
		return std::nullopt;
	}
	if (!read_string(r, kMaxEnvelopeText, t.orcpt, "target orcpt", error_r))
		return std::nullopt;
	uint8_t state = r.u8();
	if (!r.ok() || state > static_cast<uint8_t>(TargetState::WaitingOutbound)) {
		error_r = "bad target state";
		return std::nullopt;
	}
	t.state = static_cast<TargetState>(state);
	t.attempts = r.u32();
	t.next_attempt = r.u64();
	if (!read_string(r, kMaxEnvelopeText, t.last_error, "target last error", error_r))
		return std::nullopt;
	return t;
}

} // namespace

bool is_valid_queue_id(std::string_view qid)
{
	if (qid.size() != kQueueIdLength)
		return false;
	for (char c : qid)
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	return true;
}

std::string_view to_string(TargetState state)
{
	switch (state) {
	case TargetState::Pending:
		return "pending";
	case TargetState::Delivered:
		return "delivered";
	case TargetState::Failed:
		return "failed";
	case TargetState::WaitingOutbound:
		return "waiting for outbound";
	}
	return "unknown";
}

// The wire form, field by field (docs/QUEUE.md has the table):
//   str qid, u64 created, u64 size, str sender, u8 body, u8 smtputf8, u8 ret,
//   str envid, str auth_user, str client_address, str helo, u8 flags,
//   u32 n, n x target
// and per target:
//   u8 kind, str address, str rcpt, u8 notify, str orcpt, u8 state,
//   u32 attempts, u64 next_attempt, str last_error
void write_envelope(MsgWriter &w, const Envelope &envelope)
{
	w.str(envelope.qid);
	w.u64(envelope.created);
	w.u64(envelope.size);
	w.str(envelope.sender);
	w.u8(envelope.body);
	w.u8(envelope.smtputf8 ? 1 : 0);
	w.u8(envelope.ret);
	w.str(envelope.envid);
	w.str(envelope.auth_user);
	w.str(envelope.client_address);
	w.str(envelope.helo);
	w.u8(envelope.flags);
	w.u32(static_cast<uint32_t>(envelope.targets.size()));
	for (const EnvelopeTarget &t : envelope.targets) {
		w.u8(static_cast<uint8_t>(t.kind));
		w.str(t.address);
		w.str(t.rcpt);
		w.u8(t.notify);
		w.str(t.orcpt);
		w.u8(static_cast<uint8_t>(t.state));
		w.u32(t.attempts);
		w.u64(t.next_attempt);
		w.str(t.last_error);
	}
}

std::optional<Envelope> read_envelope(MsgReader &r, std::string &error_r)
{
	Envelope e;
	if (!read_string(r, kQueueIdLength, e.qid, "queue id", error_r))
		return std::nullopt;
	if (!is_valid_queue_id(e.qid)) {
		error_r = "bad queue id";
		return std::nullopt;
	}
	e.created = r.u64();
	e.size = r.u64();
	if (!read_string(r, kMaxEnvelopeAddress, e.sender, "sender", error_r))
		return std::nullopt;
	e.body = r.u8();
	uint8_t smtputf8 = r.u8();
	e.ret = r.u8();
	if (!r.ok() || e.body > kMaxBody || smtputf8 > 1 || e.ret > kMaxRet) {
		error_r = "bad body, smtputf8 or ret";
		return std::nullopt;
	}
	e.smtputf8 = smtputf8 == 1;
	if (!read_string(r, kMaxEnvelopeText, e.envid, "envid", error_r) ||
	    !read_string(r, kMaxEnvelopeAddress, e.auth_user, "auth user", error_r) ||
	    !read_string(r, kMaxEnvelopeAddress, e.client_address, "client address", error_r) ||
	    !read_string(r, kMaxEnvelopeAddress, e.helo, "helo", error_r))
		return std::nullopt;
	e.flags = r.u8();
	if (!r.ok() || (e.flags & ~kKnownEnvelopeFlags) != 0) {
		error_r = "bad envelope flags";
		return std::nullopt;
	}
	uint32_t n = r.u32();
	if (!r.ok() || n == 0 || n > kMaxEnvelopeTargets) {
		error_r = "bad target count";
		return std::nullopt;
	}
	// Each target takes at least kTargetFixedWire bytes, so a count the
	// input cannot hold fails on its first short target, not by reserving.
	for (uint32_t i = 0; i < n; i++) {
		auto t = read_target(r, error_r);
		if (!t)
			return std::nullopt;
		e.targets.push_back(std::move(*t));
	}
	return e;
}

std::size_t envelope_wire_size(const Envelope &envelope)
{
	std::size_t n = kEnvelopeFixedWire + envelope.qid.size() + envelope.sender.size() + envelope.envid.size() +
	    envelope.auth_user.size() + envelope.client_address.size() + envelope.helo.size();
	for (const EnvelopeTarget &t : envelope.targets)
		n += kTargetFixedWire + t.address.size() + t.rcpt.size() + t.orcpt.size() + t.last_error.size();
	return n;
}

std::string encode_envelope_file(const Envelope &envelope)
{
	MsgWriter w;
	write_envelope(w, envelope);
	std::span<const uint8_t> wire = w.data();
	std::string out;
	out.reserve(kFileHeaderSize + wire.size() + kFileTrailerSize);
	out.append(kFileMagic, sizeof(kFileMagic));
	append_u32(out, kFileVersion);
	append_u32(out, static_cast<uint32_t>(wire.size()));
	out.append(reinterpret_cast<const char *>(wire.data()), wire.size());
	append_u32(out, crc32(wire));
	return out;
}

std::optional<Envelope> decode_envelope_file(std::string_view bytes, std::string &error_r)
{
	if (bytes.size() < kFileHeaderSize + kFileTrailerSize) {
		error_r = "file too short";
		return std::nullopt;
	}
	if (std::memcmp(bytes.data(), kFileMagic, sizeof(kFileMagic)) != 0) {
		error_r = "bad magic";
		return std::nullopt;
	}
	if (load_u32(bytes.data() + 8) != kFileVersion) {
		error_r = "unknown format version";
		return std::nullopt;
	}
	uint32_t length = load_u32(bytes.data() + 12);
	if (length > kMaxEnvelopeWire) {
		error_r = "envelope too long";
		return std::nullopt;
	}
	if (bytes.size() != kFileHeaderSize + length + kFileTrailerSize) {
		error_r = bytes.size() < kFileHeaderSize + length + kFileTrailerSize ? "file truncated"
		                                                                     : "trailing bytes after envelope";
		return std::nullopt;
	}
	std::span<const uint8_t> wire(reinterpret_cast<const uint8_t *>(bytes.data()) + kFileHeaderSize, length);
	if (load_u32(bytes.data() + kFileHeaderSize + length) != crc32(wire)) {
		error_r = "checksum mismatch";
		return std::nullopt;
	}
	MsgReader r{wire};
	auto envelope = read_envelope(r, error_r);
	if (!envelope)
		return std::nullopt;
	if (!r.end()) {
		error_r = "trailing bytes in envelope";
		return std::nullopt;
	}
	return envelope;
}

} // namespace maild
