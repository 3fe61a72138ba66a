// Recipient resolution: what lookup answers when smtpd (and later the
// queue) asks "who gets mail for this address?".
#pragma once

#include "common/imsg_types.h"
#include "lookup/db.h"

#include <string>
#include <string_view>
#include <vector>

namespace maild {

std::string_view to_string(ResolveKind kind);

struct Resolution {
	ResolveKind kind = ResolveKind::UnknownUser;
	std::vector<std::string> local_accounts; // account addresses, each once, in order found
	std::vector<std::string> external;       // forward targets outside local domains, each once
	std::string error;                       // for TempFail: what, e.g. "alias loop: a -> b -> a"
};

// Resolves one address, in this order for local@domain in a local domain:
//   1. an enabled account with that address
//   2. an alias with that source (its targets resolved in turn)
//   3. with subaddressing, the address without its +detail, again 1-2
//   4. the domain's catch-all (@domain)
// An explicit account or alias always wins over the catch-all. A disabled
// account receives nothing, but it is explicit all the same: an alias with
// its address still applies (a forward left for a former user), while
// steps 3 and 4 do not (the catch-all must not get a disabled user's
// mail); if nothing but disabled accounts is found, the answer is Disabled.
// Targets in local domains are resolved recursively, with the same steps,
// up to policy.max_alias_depth hops, with loop detection; a local target
// that resolves to nobody is a dangling alias (TempFail, never a drop).
// An account or external target reached twice is listed once (domains
// compared ignoring case, local parts as the policy says).
// An unparseable address is UnknownUser with `error` set (smtpd checks the
// syntax first, so this is only a defence).
Resolution resolve_recipient(AccountDb &db, const AccountsPolicy &policy, std::string_view address);

} // namespace maild
