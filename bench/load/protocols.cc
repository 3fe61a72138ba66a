// The protocol modules the load generator knows, by name.
#include "bench/load/protocol.h"
#include "bench/load/smtp_client.h"

#include <array>

namespace maild::bench {

namespace {

constexpr std::array kProtocols = {
	Protocol{"smtp", make_smtp_session},
};

} // namespace

const Protocol *find_protocol(std::string_view name)
{
	for (const Protocol &protocol : kProtocols)
		if (protocol.name == name)
			return &protocol;
	return nullptr;
}

} // namespace maild::bench
