#include "lookup/lookup_config.h"

namespace maild {

AccountsPolicy accounts_policy(const Config &config)
{
	return {config.local_part_case_sensitive, config.subaddress_separator, config.max_alias_depth};
}

Argon2Params argon2_params(const Config &config)
{
	return {static_cast<uint32_t>(config.argon2_memory / 1024), config.argon2_iterations,
	    config.argon2_parallelism};
}

} // namespace maild
