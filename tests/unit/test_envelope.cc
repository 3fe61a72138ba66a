// The envelope's wire and file forms (common/envelope.h): every field round
// trips, every bound and enum is checked, CR/LF/NUL is refused in each
// string, and a torn, flipped or padded file is recognised.
#include "common/envelope.h"

#include <criterion/criterion.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

using maild::decode_envelope_file;
using maild::encode_envelope_file;
using maild::Envelope;
using maild::EnvelopeTarget;
using maild::MsgReader;
using maild::MsgWriter;
using maild::TargetKind;
using maild::TargetState;

namespace {

Envelope sample()
{
	Envelope e;
	e.qid = "0123456789abcdef";
	e.created = 1700000000;
	e.size = 123456789012ULL;
	e.sender = "alice@example.org";
	e.body = 2;
	e.smtputf8 = true;
	e.ret = 1;
	e.envid = "envid-42";
	e.auth_user = "alice@example.org";
	e.client_address = "192.0.2.7";
	e.helo = "mail.example.org";
	e.flags = maild::kEnvelopeLocalSenderUnauthenticated | maild::kEnvelopeHeld;
	EnvelopeTarget local;
	local.kind = TargetKind::Local;
	local.address = "bob@example.com";
	local.rcpt = "Bob+tag@example.com";
	local.notify = 2 | 4;
	local.orcpt = "rfc822;bob@example.com";
	local.state = TargetState::Failed;
	local.attempts = 7;
	local.next_attempt = 0xfedcba9876543210ULL;
	local.last_error = "mailbox full";
	EnvelopeTarget remote;
	remote.kind = TargetKind::Remote;
	remote.address = "carol@remote.example";
	remote.rcpt = "carol@remote.example";
	remote.state = TargetState::WaitingOutbound;
	e.targets = {local, remote};
	return e;
}

std::vector<uint8_t> wire(const Envelope &e)
{
	MsgWriter w;
	maild::write_envelope(w, e);
	return w.take();
}

std::optional<Envelope> read_wire(const std::vector<uint8_t> &bytes, std::string &error)
{
	MsgReader r{bytes};
	auto e = maild::read_envelope(r, error);
	if (e && !r.end()) {
		error = "trailing";
		return std::nullopt;
	}
	return e;
}

void assert_same(const Envelope &a, const Envelope &b)
{
	cr_assert_eq(a.qid, b.qid);
	cr_assert_eq(a.created, b.created);
	cr_assert_eq(a.size, b.size);
	cr_assert_eq(a.sender, b.sender);
	cr_assert_eq(a.body, b.body);
	cr_assert_eq(a.smtputf8, b.smtputf8);
	cr_assert_eq(a.ret, b.ret);
	cr_assert_eq(a.envid, b.envid);
	cr_assert_eq(a.auth_user, b.auth_user);
	cr_assert_eq(a.client_address, b.client_address);
	cr_assert_eq(a.helo, b.helo);
	cr_assert_eq(a.flags, b.flags);
	cr_assert_eq(a.targets.size(), b.targets.size());
	for (std::size_t i = 0; i < a.targets.size(); i++) {
		const EnvelopeTarget &x = a.targets[i], &y = b.targets[i];
		cr_assert_eq(x.kind, y.kind);
		cr_assert_eq(x.address, y.address);
		cr_assert_eq(x.rcpt, y.rcpt);
		cr_assert_eq(x.notify, y.notify);
		cr_assert_eq(x.orcpt, y.orcpt);
		cr_assert_eq(x.state, y.state);
		cr_assert_eq(x.attempts, y.attempts);
		cr_assert_eq(x.next_attempt, y.next_attempt);
		cr_assert_eq(x.last_error, y.last_error);
	}
}

// CRC-32 (IEEE) bit by bit, independent of the encoder's table.
uint32_t reference_crc32(const std::vector<uint8_t> &bytes)
{
	uint32_t crc = 0xFFFFFFFFu;
	for (uint8_t b : bytes) {
		crc ^= b;
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
	}
	return crc ^ 0xFFFFFFFFu;
}

// Each string field of an envelope, by name, for the per-string tests.
struct StringField {
	const char *name;
	std::function<std::string &(Envelope &)> get;
	std::size_t max;
};

std::vector<StringField> string_fields()
{
	return {
	    {"sender", [](Envelope &e) -> std::string & { return e.sender; }, maild::kMaxEnvelopeAddress},
	    {"envid", [](Envelope &e) -> std::string & { return e.envid; }, maild::kMaxEnvelopeText},
	    {"auth_user", [](Envelope &e) -> std::string & { return e.auth_user; }, maild::kMaxEnvelopeAddress},
	    {"client_address", [](Envelope &e) -> std::string & { return e.client_address; },
		maild::kMaxEnvelopeAddress},
	    {"helo", [](Envelope &e) -> std::string & { return e.helo; }, maild::kMaxEnvelopeAddress},
	    {"target address", [](Envelope &e) -> std::string & { return e.targets[0].address; },
		maild::kMaxEnvelopeAddress},
	    {"target rcpt", [](Envelope &e) -> std::string & { return e.targets[0].rcpt; },
		maild::kMaxEnvelopeAddress},
	    {"target orcpt", [](Envelope &e) -> std::string & { return e.targets[0].orcpt; },
		maild::kMaxEnvelopeText},
	    {"target last_error", [](Envelope &e) -> std::string & { return e.targets[1].last_error; },
		maild::kMaxEnvelopeText},
	};
}

} // namespace

Test(envelope, wire_round_trip_keeps_every_field)
{
	Envelope e = sample();
	auto bytes = wire(e);
	cr_assert_eq(bytes.size(), maild::envelope_wire_size(e), "envelope_wire_size must be exact");
	std::string error;
	auto back = read_wire(bytes, error);
	cr_assert(back.has_value(), "%s", error.c_str());
	assert_same(e, *back);
}

Test(envelope, file_round_trip_keeps_every_field)
{
	Envelope e = sample();
	std::string file = encode_envelope_file(e);
	cr_assert_eq(file.substr(0, 8), "MAILDENV");
	cr_assert_eq(file.size(), 8 + 4 + 4 + maild::envelope_wire_size(e) + 4);
	std::string error;
	auto back = decode_envelope_file(file, error);
	cr_assert(back.has_value(), "%s", error.c_str());
	assert_same(e, *back);
}

Test(envelope, wire_size_is_exact_for_empty_and_maximal_strings)
{
	Envelope e = sample();
	for (auto &field : string_fields()) {
		for (std::size_t len : {std::size_t{0}, std::size_t{1}, field.max}) {
			Envelope v = e;
			field.get(v).assign(len, 'x');
			cr_assert_eq(wire(v).size(), maild::envelope_wire_size(v), "%s len %zu", field.name, len);
		}
	}
}

Test(envelope, each_string_takes_its_maximum_and_refuses_one_more)
{
	for (auto &field : string_fields()) {
		Envelope v = sample();
		field.get(v).assign(field.max, 'a');
		std::string error;
		cr_assert(read_wire(wire(v), error).has_value(), "%s at its maximum: %s", field.name, error.c_str());
		field.get(v).assign(field.max + 1, 'a');
		cr_assert_not(read_wire(wire(v), error).has_value(), "%s over its maximum", field.name);
		cr_assert_not(decode_envelope_file(encode_envelope_file(v), error).has_value(), "%s in a file", field.name);
	}
}

Test(envelope, cr_lf_and_nul_are_refused_in_every_string)
{
	for (auto &field : string_fields()) {
		for (char bad : {'\r', '\n', '\0'}) {
			Envelope v = sample();
			field.get(v) = std::string("a") + bad + "b";
			std::string error;
			cr_assert_not(read_wire(wire(v), error).has_value(), "%s with byte %d", field.name, bad);
			cr_assert(error.find("CR, LF or NUL") != std::string::npos, "%s: %s", field.name, error.c_str());
		}
	}
}

Test(envelope, the_queue_id_must_be_16_lowercase_hex)
{
	cr_assert(maild::is_valid_queue_id("0123456789abcdef"));
	for (const char *bad : {"", "0123456789abcde", "0123456789abcdef0", "0123456789ABCDEF", "0123456789abcdeg",
		 "../../etc/passw", "0123456789abcd/f"}) {
		cr_assert_not(maild::is_valid_queue_id(bad), "%s", bad);
		Envelope v = sample();
		v.qid = bad;
		std::string error;
		cr_assert_not(read_wire(wire(v), error).has_value(), "qid %s accepted", bad);
	}
}

Test(envelope, enums_and_flags_out_of_range_are_refused)
{
	std::vector<std::pair<const char *, std::function<void(Envelope &)>>> cases = {
	    {"body 3", [](Envelope &e) { e.body = 3; }},
	    {"ret 3", [](Envelope &e) { e.ret = 3; }},
	    {"flags bit 7", [](Envelope &e) { e.flags = 0x80; }},
	    {"notify 16", [](Envelope &e) { e.targets[0].notify = 16; }},
	    {"kind 2", [](Envelope &e) { e.targets[0].kind = static_cast<TargetKind>(2); }},
	    {"state 4", [](Envelope &e) { e.targets[0].state = static_cast<TargetState>(4); }},
	    {"no targets", [](Envelope &e) { e.targets.clear(); }},
	    {"empty target address", [](Envelope &e) { e.targets[0].address.clear(); }},
	};
	for (auto &[name, mutate] : cases) {
		Envelope v = sample();
		mutate(v);
		std::string error;
		cr_assert_not(read_wire(wire(v), error).has_value(), "%s accepted", name);
		cr_assert_not(error.empty(), "%s: no error text", name);
	}
	// smtputf8 is written from a bool: patch the byte itself.
	auto bytes = wire(sample());
	std::size_t at = 4 + 16 + 8 + 8 + 4 + std::strlen("alice@example.org") + 1;
	cr_assert_eq(bytes[at], 1);
	bytes[at] = 2;
	std::string error;
	cr_assert_not(read_wire(bytes, error).has_value(), "smtputf8 2 accepted");
}

Test(envelope, target_count_is_bounded)
{
	Envelope v = sample();
	v.targets.assign(maild::kMaxEnvelopeTargets, v.targets[1]);
	std::string error;
	cr_assert(read_wire(wire(v), error).has_value(), "%s", error.c_str());
	v.targets.push_back(v.targets[0]);
	cr_assert_not(read_wire(wire(v), error).has_value());
	cr_assert_str_eq(error.c_str(), "bad target count");
	// A count that promises more targets than the bytes hold.
	auto bytes = wire(sample());
	std::size_t count_at = maild::envelope_wire_size(sample()) - 4;
	for (const auto &t : sample().targets)
		count_at -= 1 + 4 + t.address.size() + 4 + t.rcpt.size() + 1 + 4 + t.orcpt.size() + 1 + 4 + 8 + 4 +
		    t.last_error.size();
	uint32_t huge = maild::kMaxEnvelopeTargets;
	std::memcpy(&bytes[count_at], &huge, 4);
	cr_assert_not(read_wire(bytes, error).has_value());
}

Test(envelope, a_torn_file_is_refused_at_every_length)
{
	std::string file = encode_envelope_file(sample());
	for (std::size_t len = 0; len < file.size(); len++) {
		std::string error;
		cr_assert_not(decode_envelope_file(std::string_view(file).substr(0, len), error).has_value(),
		    "accepted at length %zu", len);
		cr_assert_not(error.empty());
	}
}

Test(envelope, a_flipped_byte_is_caught)
{
	std::string file = encode_envelope_file(sample());
	for (std::size_t i = 0; i < file.size(); i++) {
		for (uint8_t mask : {0x01, 0x80}) {
			std::string bad = file;
			bad[i] = static_cast<char>(bad[i] ^ mask);
			std::string error;
			cr_assert_not(decode_envelope_file(bad, error).has_value(), "flip at %zu accepted", i);
			if (i >= 16 && i < file.size() - 4)
				cr_assert_str_eq(error.c_str(), "checksum mismatch", "flip at %zu", i);
		}
	}
}

Test(envelope, header_errors_are_named)
{
	std::string file = encode_envelope_file(sample());
	std::string error;
	std::string bad = file;
	bad[0] = 'X';
	cr_assert_not(decode_envelope_file(bad, error).has_value());
	cr_assert_str_eq(error.c_str(), "bad magic");
	bad = file;
	bad[8] = 2;
	cr_assert_not(decode_envelope_file(bad, error).has_value());
	cr_assert_str_eq(error.c_str(), "unknown format version");
	bad = file;
	uint32_t huge = maild::kMaxEnvelopeWire + 1;
	std::memcpy(&bad[12], &huge, 4);
	cr_assert_not(decode_envelope_file(bad, error).has_value());
	cr_assert_str_eq(error.c_str(), "envelope too long");
}

Test(envelope, trailing_bytes_are_refused)
{
	std::string file = encode_envelope_file(sample());
	std::string error;
	cr_assert_not(decode_envelope_file(file + '\0', error).has_value());
	cr_assert_str_eq(error.c_str(), "trailing bytes after envelope");
	// Bytes after the envelope inside the checksummed region: a
	// consistent length and CRC do not make them acceptable.
	Envelope e = sample();
	MsgWriter w;
	maild::write_envelope(w, e);
	w.u8(0);
	auto extra = w.take();
	std::string wrapped = file.substr(0, 12);
	uint32_t len = static_cast<uint32_t>(extra.size());
	wrapped.append(reinterpret_cast<const char *>(&len), 4);
	wrapped.append(reinterpret_cast<const char *>(extra.data()), extra.size());
	uint32_t crc = reference_crc32(extra);
	wrapped.append(reinterpret_cast<const char *>(&crc), 4);
	cr_assert_not(decode_envelope_file(wrapped, error).has_value());
	cr_assert_str_eq(error.c_str(), "trailing bytes in envelope");
}

Test(envelope, the_checksum_is_standard_crc32)
{
	// A file's last four bytes are the CRC-32 (IEEE) of its wire bytes.
	Envelope e = sample();
	uint32_t crc = reference_crc32(wire(e));
	std::string file = encode_envelope_file(e);
	uint32_t stored;
	std::memcpy(&stored, file.data() + file.size() - 4, 4);
	cr_assert_eq(stored, crc);
	// The reference is the standard CRC-32: its published check value.
	std::string digits = "123456789";
	cr_assert_eq(reference_crc32(std::vector<uint8_t>(digits.begin(), digits.end())), 0xCBF43926u);
}

Test(envelope, target_states_have_names)
{
	cr_assert_eq(maild::to_string(TargetState::Pending), "pending");
	cr_assert_eq(maild::to_string(TargetState::Delivered), "delivered");
	cr_assert_eq(maild::to_string(TargetState::Failed), "failed");
	cr_assert_eq(maild::to_string(TargetState::WaitingOutbound), "waiting for outbound");
}
