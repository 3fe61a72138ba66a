// What the lookup role and mailctl take from maild.conf.
#pragma once

#include "common/config.h"
#include "lookup/db.h"
#include "lookup/password.h"

namespace maild {

AccountsPolicy accounts_policy(const Config &config);
Argon2Params argon2_params(const Config &config);

} // namespace maild
