// Fuzzes the PHC string parser of lookup/password.cc through needs_rehash,
// which parses a stored hash without running argon2: the input is what a
// database row holds in accounts.password.
//
// Invariant: a string is accepted as made with given parameters only if
// it is exactly the canonical form hash_password writes for them:
// "$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$" then 22 base64
// characters (16 bytes of salt), "$" and 43 (a 32-byte tag), nothing else.
#include "lookup/password.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

bool is_base64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

bool all_base64(std::string_view s)
{
	for (char c : s)
		if (!is_base64_char(c))
			return false;
	return true;
}

void check_canonical(std::string_view phc, const maild::Argon2Params &p)
{
	std::string prefix = "$argon2id$v=19$m=" + std::to_string(p.memory_kib) + ",t=" + std::to_string(p.iterations) +
	    ",p=" + std::to_string(p.parallelism) + "$";
	if (!phc.starts_with(prefix) || phc.size() != prefix.size() + 22 + 1 + 43)
		__builtin_trap();
	std::string_view rest = phc.substr(prefix.size());
	if (!all_base64(rest.substr(0, 22)) || rest[22] != '$' || !all_base64(rest.substr(23)))
		__builtin_trap();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	std::string_view phc(reinterpret_cast<const char *>(data), size);
	const maild::Argon2Params choices[] = {{65536, 3, 1}, {8192, 1, 1}, {8192, 1, 4}};
	for (const auto &p : choices)
		if (!maild::needs_rehash(phc, p))
			check_canonical(phc, p);
	return 0;
}
