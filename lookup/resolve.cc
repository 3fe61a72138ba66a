// Recipient resolution (see resolve.h): a depth-first walk over accounts,
// aliases and catch-alls. It keeps the current path, to report loops with
// the addresses that make them, and for each address already expanded the
// longest chain below it: an address reached by several paths is expanded
// once, yet every chain is still held to max_alias_depth.
#include "lookup/resolve.h"

#include "common/address.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

namespace maild {

namespace {

class Resolver {
public:
	Resolver(AccountDb &db, const AccountsPolicy &policy) : db_(db), policy_(policy) {}
	Resolution run(std::string_view address);

private:
	enum class Outcome {
		Matched, // an account (maybe disabled) or an alias took it
		Unknown,
		Failed, // error_ says why
	};

	Outcome resolve_address(const Mailbox &address, std::string_view shown, uint32_t depth, uint32_t &height_r);
	Outcome resolve_exact(std::string_view local, std::string_view domain, uint32_t depth, uint32_t &height_r);
	Outcome expand(std::string_view source, const std::vector<std::string> &targets, uint32_t depth,
	    uint32_t &height_r);
	Outcome fail(std::string error);
	bool db_failed();
	bool enter(const std::string &key, std::string_view shown);
	void leave();
	std::string key(std::string_view local, std::string_view domain) const;

	AccountDb &db_;
	const AccountsPolicy &policy_;
	// The addresses being resolved, outermost first: keys to find loops
	// by, the spelling to report them in.
	std::vector<std::string> path_keys_;
	std::vector<std::string> path_shown_;
	// Addresses resolved completely: the longest chain of hops below each.
	std::map<std::string, uint32_t> expanded_;
	std::set<std::string> seen_accounts_;
	std::set<std::string> seen_external_;
	bool disabled_ = false;
	std::string error_;
	Resolution result_;
};

// Local parts fold unless the policy says they are case sensitive;
// domains always fold. Rendered with to_string, so a quoted local part
// holding '@' cannot make two addresses share a key; "@domain" (a
// catch-all) cannot be a rendered mailbox either.
std::string Resolver::key(std::string_view local, std::string_view domain) const
{
	Mailbox mailbox;
	mailbox.local = policy_.local_part_case_sensitive ? std::string(local) : fold_local(local);
	mailbox.domain = canonical_domain(domain);
	return to_string(mailbox);
}

Resolver::Outcome Resolver::fail(std::string error)
{
	error_ = std::move(error);
	return Outcome::Failed;
}

// A lookup that returned no status failed if it left an error behind.
bool Resolver::db_failed()
{
	if (db_.last_error().empty())
		return false;
	error_ = "database error: " + db_.last_error();
	return true;
}

// Puts an address on the path, or fails if it is there already: a loop.
bool Resolver::enter(const std::string &key, std::string_view shown)
{
	if (std::find(path_keys_.begin(), path_keys_.end(), key) != path_keys_.end()) {
		error_ = "alias loop: ";
		for (const std::string &step : path_shown_)
			error_ += step + " -> ";
		error_ += shown;
		return false;
	}
	path_keys_.push_back(key);
	path_shown_.emplace_back(shown);
	return true;
}

void Resolver::leave()
{
	path_keys_.pop_back();
	path_shown_.pop_back();
}

// Steps 1 and 2 of resolve.h for one exact address. A disabled account
// still counts as an explicit match: the address goes to its alias if it
// has one (a forward left for a former user), and never falls through to
// the catch-all, which would hand a disabled user's mail to someone else.
Resolver::Outcome Resolver::resolve_exact(std::string_view local, std::string_view domain, uint32_t depth,
    uint32_t &height_r)
{
	Mailbox mailbox;
	mailbox.local = local;
	mailbox.domain = domain;
	std::string address = to_string(mailbox);
	std::optional<AccountRecord> account = db_.find_account(address, policy_);
	if (db_failed())
		return Outcome::Failed;
	height_r = 0;
	if (account && account->enabled) {
		if (seen_accounts_.insert(account->address).second)
			result_.local_accounts.push_back(account->address);
		return Outcome::Matched;
	}
	std::vector<std::string> targets = db_.alias_targets(address, policy_);
	if (db_failed())
		return Outcome::Failed;
	if (!targets.empty())
		return expand(address, targets, depth, height_r);
	if (account) {
		disabled_ = true;
		return Outcome::Matched;
	}
	return Outcome::Unknown;
}

// One address in a local domain, steps 1 to 4. A failure ends the whole
// resolution, so it returns without unwinding the path.
Resolver::Outcome Resolver::resolve_address(const Mailbox &address, std::string_view shown, uint32_t depth,
    uint32_t &height_r)
{
	std::string address_key = key(address.local, address.domain);
	if (!enter(address_key, shown))
		return Outcome::Failed;
	if (auto done = expanded_.find(address_key); done != expanded_.end()) {
		// Reached again by another path: nothing new to deliver to, but
		// the chain below it may now be too long.
		leave();
		height_r = done->second;
		if (depth + height_r > policy_.max_alias_depth)
			return fail("alias chain longer than " + std::to_string(policy_.max_alias_depth));
		return Outcome::Matched;
	}
	Outcome outcome = resolve_exact(address.local, address.domain, depth, height_r);
	if (outcome == Outcome::Unknown && policy_.subaddress_separator != '\0') {
		SubaddressSplit split = split_subaddress(address.local, policy_.subaddress_separator);
		if (split.has_detail) {
			Mailbox user = address;
			user.local = split.user;
			if (!enter(key(user.local, user.domain), to_string(user)))
				return Outcome::Failed;
			outcome = resolve_exact(user.local, user.domain, depth, height_r);
			leave();
		}
	}
	if (outcome == Outcome::Unknown) {
		std::string catchall = "@" + canonical_domain(address.domain);
		std::vector<std::string> targets = db_.alias_targets(catchall, policy_);
		if (db_failed())
			return Outcome::Failed;
		if (!targets.empty()) {
			if (!enter(catchall, catchall))
				return Outcome::Failed;
			outcome = expand(catchall, targets, depth, height_r);
			leave();
		}
	}
	leave();
	if (outcome == Outcome::Matched)
		expanded_.emplace(std::move(address_key), height_r);
	return outcome;
}

// Every target of `source`, one hop further. A target in a local domain
// that nobody takes is a dangling alias: a temporary failure, so the
// administrator can fix it before the sender gives up.
Resolver::Outcome Resolver::expand(std::string_view source, const std::vector<std::string> &targets, uint32_t depth,
    uint32_t &height_r)
{
	if (depth + 1 > policy_.max_alias_depth)
		return fail("alias chain longer than " + std::to_string(policy_.max_alias_depth));
	height_r = 0;
	for (const std::string &target : targets) {
		// Stored targets were checked when added, but the database is data.
		ParseOptions options;
		options.allow_utf8 = true;
		std::string error;
		std::optional<Mailbox> mailbox = parse_mailbox(target, options, error);
		if (!mailbox)
			return fail("alias " + std::string(source) + " has an invalid target: " + error);
		bool local = !mailbox->domain_is_literal && db_.is_local_domain(mailbox->domain);
		if (db_failed())
			return Outcome::Failed;
		uint32_t height = 0;
		if (!local) {
			if (seen_external_.insert(key(mailbox->local, mailbox->domain)).second)
				result_.external.push_back(target);
		} else {
			switch (resolve_address(*mailbox, target, depth + 1, height)) {
			case Outcome::Matched:
				break;
			case Outcome::Unknown:
				return fail("alias " + std::string(source) + " points to unknown local address " + target);
			case Outcome::Failed:
				return Outcome::Failed;
			}
		}
		height_r = std::max(height_r, height + 1);
	}
	return Outcome::Matched;
}

Resolution Resolver::run(std::string_view address)
{
	ParseOptions options;
	options.allow_utf8 = true;
	std::string error;
	std::optional<Mailbox> mailbox = parse_mailbox(address, options, error);
	if (!mailbox) {
		result_.kind = ResolveKind::UnknownUser;
		result_.error = "invalid address: " + error;
		return std::move(result_);
	}
	// Local domains are names: an address literal is never one of ours.
	bool local = !mailbox->domain_is_literal && db_.is_local_domain(mailbox->domain);
	Outcome outcome = Outcome::Failed;
	if (!db_failed()) {
		if (!local) {
			result_.kind = ResolveKind::NotLocalDomain;
			return std::move(result_);
		}
		uint32_t height = 0;
		outcome = resolve_address(*mailbox, to_string(*mailbox), 0, height);
	}
	switch (outcome) {
	case Outcome::Failed:
		result_ = {};
		result_.kind = ResolveKind::TempFail;
		result_.error = std::move(error_);
		break;
	case Outcome::Unknown:
		result_.kind = ResolveKind::UnknownUser;
		break;
	case Outcome::Matched:
		if (!result_.local_accounts.empty() || !result_.external.empty())
			result_.kind = ResolveKind::Deliver;
		else
			result_.kind = disabled_ ? ResolveKind::Disabled : ResolveKind::UnknownUser;
		break;
	}
	return std::move(result_);
}

} // namespace

std::string_view to_string(ResolveKind kind)
{
	switch (kind) {
	case ResolveKind::Deliver:
		return "deliver";
	case ResolveKind::UnknownUser:
		return "unknown user";
	case ResolveKind::Disabled:
		return "disabled";
	case ResolveKind::NotLocalDomain:
		return "not a local domain";
	case ResolveKind::TempFail:
		return "temporary failure";
	}
	return "?";
}

Resolution resolve_recipient(AccountDb &db, const AccountsPolicy &policy, std::string_view address)
{
	return Resolver(db, policy).run(address);
}

} // namespace maild
