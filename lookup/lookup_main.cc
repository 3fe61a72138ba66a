// lookup: the one role that knows who the users are.
//
// Runs as its own user (default _maildl), chrooted into the directory that
// holds the account database, which only it (and mailctl, as the same user)
// opens. It answers two questions over imsg:
//   - who gets mail for an address (smtpd, queue, mta, control), and
//   - is this password right (smtpd, imapd, pop3d, control).
// Its peers are untrusted: every request is validated, and password hashes
// never leave this process. Unknown users are checked against a dummy hash
// so that they cost what a wrong password costs and get the same answer.
// mailctl's changes are seen at once: every question reads the database,
// and the success cache is emptied whenever the database's data_version
// moves.
#include "common/log.h"
#include "common/role.h"
#include "lookup/auth_guard.h"
#include "lookup/auth_pool.h"
#include "lookup/db.h"
#include "lookup/lookup_config.h"
#include "lookup/resolve.h"

#include <event2/event.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <memory>

namespace {

using namespace maild;

// Checks waiting for a worker, per worker: beyond that a login fails
// temporarily instead of queueing memory.
constexpr std::size_t kQueuedPerWorker = 32;

// A login that waits for its password check (or for its delay).
struct PendingAuth {
	Role from{};
	uint32_t id = 0;
	std::string client;      // the client's address
	std::string user;        // as the client gave it
	std::string account_key; // what failures of this account count under
	std::string account;     // the stored address; empty if unknown
	std::string stored_hash; // of the account, or the dummy
	std::string password;    // kept for the cache; wiped once checked
	bool enabled = false;
	AuthResult result = AuthResult::Fail;
	event *delay = nullptr;
};

struct LookupState {
	RoleContext *ctx = nullptr;
	std::unique_ptr<AccountDb> db;
	std::string dummy_hash;
	std::unique_ptr<AuthPool> pool;
	std::unique_ptr<AuthGuard> guard;
	uint64_t data_version = 0;
	uint64_t next_token = 1;
	std::map<uint64_t, PendingAuth> pending;
	event *pool_event = nullptr;
};

AuthGuard::TimePoint now()
{
	return std::chrono::steady_clock::now();
}

AuthGuardLimits guard_limits(const Config &config)
{
	AuthGuardLimits limits;
	limits.address_failures = config.auth_address_failures;
	limits.address_window = config.auth_address_window;
	limits.account_failures = config.auth_account_failures;
	limits.account_window = config.auth_account_window;
	limits.cache_ttl = config.auth_cache_ttl;
	return limits;
}

// mailctl committed something: what was cached may be stale.
void notice_changes(LookupState &state)
{
	uint64_t version = state.db->data_version();
	if (version != state.data_version) {
		state.data_version = version;
		state.guard->cache_clear();
	}
}

void send_auth_result(LookupState &state, Role to, uint32_t id, AuthResult result, std::string_view user)
{
	Channel *peer = state.ctx->peers[static_cast<std::size_t>(to)].get();
	if (peer == nullptr)
		return;
	MsgWriter w;
	w.u32(id);
	w.u8(static_cast<uint8_t>(result));
	w.str(result == AuthResult::Ok ? user : "");
	peer->send(MsgType::LookupAuthResult, w.data());
}

void finish_auth(LookupState &state, uint64_t token)
{
	auto it = state.pending.find(token);
	PendingAuth &auth = it->second;
	if (auth.delay)
		event_free(auth.delay);
	send_auth_result(state, auth.from, auth.id, auth.result, auth.account);
	state.pending.erase(it);
}

void on_delay_over(evutil_socket_t, short, void *arg);

struct DelayArg {
	LookupState *state;
	uint64_t token;
};

void on_checked(LookupState &state, const AuthDone &done)
{
	auto it = state.pending.find(done.token);
	if (it == state.pending.end())
		panic("lookup: result for unknown password check %llu", static_cast<unsigned long long>(done.token));
	PendingAuth &auth = it->second;
	auto t = now();
	// Taken before the verdict counts: over the account's failure limit
	// every answer comes late, a right password's too, so that a quick
	// answer cannot tell a guesser that the guess was right.
	auto delay = state.guard->account_delay(auth.account_key, t);
	if (done.result == VerifyResult::BadHash) {
		log_warnx("lookup: stored password hash of %s is unusable", auth.account.c_str());
		auth.result = AuthResult::TempFail;
	} else if (done.result == VerifyResult::Match && !auth.account.empty() && auth.enabled) {
		auth.result = AuthResult::Ok;
		state.guard->record_success(auth.account_key);
		state.guard->cache_store(auth.account, auth.password, auth.stored_hash, t);
	} else {
		auth.result = AuthResult::Fail;
		state.guard->record_failure(auth.client, auth.account_key, t);
		log_info("lookup: authentication failed user=%s client=%s", auth.user.c_str(), auth.client.c_str());
	}
	wipe_secret(auth.password);
	// Guessing is slowed down, but the real user still gets in.
	if (delay.count() > 0) {
		auto *arg = new DelayArg{&state, done.token};
		auth.delay = evtimer_new(state.ctx->base, on_delay_over, arg);
		timeval tv{static_cast<time_t>(delay.count() / 1000), static_cast<suseconds_t>(delay.count() % 1000 * 1000)};
		evtimer_add(auth.delay, &tv);
		return;
	}
	finish_auth(state, done.token);
}

void on_delay_over(evutil_socket_t, short, void *arg)
{
	std::unique_ptr<DelayArg> delay(static_cast<DelayArg *>(arg));
	finish_auth(*delay->state, delay->token);
}

void on_pool_done(evutil_socket_t, short, void *arg)
{
	auto &state = *static_cast<LookupState *>(arg);
	for (const AuthDone &done : state.pool->take_done())
		on_checked(state, done);
}

void on_auth_request(LookupState &state, Role from, Msg &&msg)
{
	MsgReader r{msg.payload};
	uint32_t id = r.u32();
	std::string client(r.str(64));
	std::string user(r.str(1024));
	std::string password(r.str(kMaxPasswordBytes));
	if (!r.end())
		fatalx("lookup: malformed LookupAuthRequest from %s", std::string(to_string(from)).c_str());
	notice_changes(state);

	auto t = now();
	PendingAuth auth;
	auth.from = from;
	auth.id = id;
	auth.client = client;
	auth.user = user;
	if (state.guard->address_blocked(client, t)) {
		wipe_secret(password);
		log_info("lookup: authentication refused user=%s client=%s reason=too-many-failures", user.c_str(),
		    address_key(client).c_str());
		send_auth_result(state, from, id, AuthResult::TempFail, "");
		return;
	}
	if (auto account = state.db->find_account(user, accounts_policy(state.ctx->config))) {
		auth.account = account->address;
		auth.stored_hash = account->password_hash;
		auth.enabled = account->enabled;
	} else {
		auth.stored_hash = state.dummy_hash;
	}
	// One key per account however the client spells it; an unknown user's
	// failures count like a real one's.
	auth.account_key = auth.account.empty() ? user : auth.account;
	std::transform(auth.account_key.begin(), auth.account_key.end(), auth.account_key.begin(),
	    [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
	// Not while the account is being slowed down: an instant answer would
	// tell a guesser more than the delayed ones do.
	if (!auth.account.empty() && auth.enabled && state.guard->account_delay(auth.account_key, t).count() == 0 &&
	    state.guard->cache_hit(auth.account, password, auth.stored_hash, t)) {
		wipe_secret(password);
		state.guard->record_success(auth.account_key);
		send_auth_result(state, from, id, AuthResult::Ok, auth.account);
		return;
	}

	uint64_t token = state.next_token++;
	auth.password = password;
	AuthJob job{token, auth.stored_hash, std::move(password)};
	if (!state.pool->submit(std::move(job))) {
		wipe_secret(auth.password);
		log_warnx("lookup: too many password checks waiting, refusing one");
		send_auth_result(state, from, id, AuthResult::TempFail, "");
		return;
	}
	state.pending.emplace(token, std::move(auth));
}

void on_resolve_request(LookupState &state, Role from, Msg &&msg)
{
	MsgReader r{msg.payload};
	uint32_t id = r.u32();
	std::string address(r.str(1024));
	if (!r.end())
		fatalx("lookup: malformed LookupResolveRequest from %s", std::string(to_string(from)).c_str());
	notice_changes(state);
	Resolution res = resolve_recipient(*state.db, accounts_policy(state.ctx->config), address);
	if (res.kind == ResolveKind::TempFail)
		log_warnx("lookup: cannot resolve %s: %s", address.c_str(), res.error.c_str());

	MsgWriter w;
	w.u32(id);
	w.u8(static_cast<uint8_t>(res.kind));
	for (const auto *list : {&res.local_accounts, &res.external}) {
		w.u32(static_cast<uint32_t>(list->size()));
		for (const auto &target : *list)
			w.str(target);
	}
	w.str(res.error);
	state.ctx->peers[static_cast<std::size_t>(from)]->send(MsgType::LookupResolveResult, w.data());
}

} // namespace

int main(int argc, char **argv)
{
	// Owned by main for the life of the process, as the role's state.
	static LookupState state;
	RoleSpec spec{Role::Lookup, {}, {}, {}};
	spec.pre_jail = [](RoleContext &ctx) {
		// Threads cannot be started inside the jail.
		state.pool = std::make_unique<AuthPool>(ctx.config.auth_workers,
		    ctx.config.auth_workers * kQueuedPerWorker);
		// OpenSSL may read its configuration when the HMAC is set up.
		state.guard = std::make_unique<AuthGuard>(guard_limits(ctx.config));
	};
	spec.post_jail = [](RoleContext &ctx) {
		state.ctx = &ctx;
		// Inside the jail the database's directory is the root.
		std::string path = ctx.config.database;
		if (!ctx.unprivileged)
			path = path.substr(path.rfind('/'));
		std::string error;
		// The sandbox allows the files SQLite needs and nothing else.
		state.db = AccountDb::open(path, true, error);
		if (!state.db)
			fatalx("lookup: database %s: %s", ctx.config.database.c_str(), error.c_str());
		state.data_version = state.db->data_version();
		state.dummy_hash = make_dummy_hash(argon2_params(ctx.config));
		state.pool_event =
		    event_new(ctx.base, state.pool->notify_fd(), EV_READ | EV_PERSIST, on_pool_done, &state);
		if (state.pool_event == nullptr || event_add(state.pool_event, nullptr) < 0)
			fatalx("lookup: cannot watch the password workers");
	};
	for (Role from : {Role::Smtpd, Role::Imapd, Role::Pop3d, Role::Control})
		spec.rules.push_back({MsgType::LookupAuthRequest, from, RolePhase::Running, false,
		    [from](RoleContext &, Channel &, Msg &&msg) { on_auth_request(state, from, std::move(msg)); }});
	for (Role from : {Role::Smtpd, Role::Queue, Role::Mta, Role::Control})
		spec.rules.push_back({MsgType::LookupResolveRequest, from, RolePhase::Running, false,
		    [from](RoleContext &, Channel &, Msg &&msg) { on_resolve_request(state, from, std::move(msg)); }});
	run_role(spec, argc, argv);
}
