// Fuzzes the envelope's file and wire forms (common/envelope.h). The input
// is taken whole as an envelope file (decode_envelope_file) and, the same
// bytes, as a wire form (read_envelope).
// Invariants: whatever decodes has a valid queue id, 1..kMaxEnvelopeTargets
// targets, no CR, LF or NUL in any string, an exact envelope_wire_size,
// and re-encodes to the same bytes (file form: the input itself; wire
// form: the bytes the reader consumed).
#include "common/envelope.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace {

void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

bool inert(std::string_view s)
{
	return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

void check_envelope(const maild::Envelope &e)
{
	check(maild::is_valid_queue_id(e.qid));
	check(!e.targets.empty() && e.targets.size() <= maild::kMaxEnvelopeTargets);
	check(inert(e.sender) && inert(e.envid) && inert(e.auth_user) && inert(e.client_address) && inert(e.helo));
	for (const auto &t : e.targets)
		check(inert(t.address) && inert(t.rcpt) && inert(t.orcpt) && inert(t.last_error) && !t.address.empty());
	maild::MsgWriter w;
	maild::write_envelope(w, e);
	check(w.data().size() == maild::envelope_wire_size(e));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	std::string_view bytes(reinterpret_cast<const char *>(data), size);
	std::string error;
	if (auto e = maild::decode_envelope_file(bytes, error)) {
		check_envelope(*e);
		check(maild::encode_envelope_file(*e) == bytes);
	} else {
		check(!error.empty());
	}

	maild::MsgReader r{std::span<const uint8_t>(data, size)};
	if (auto e = maild::read_envelope(r, error)) {
		check_envelope(*e);
		maild::MsgWriter w;
		maild::write_envelope(w, *e);
		std::span<const uint8_t> wire = w.data();
		check(wire.size() <= size && std::equal(wire.begin(), wire.end(), data));
	}
	return 0;
}
