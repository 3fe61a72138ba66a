// control: serves mailctl on the control socket.
//
// Runs as the network user (default _maild), chrooted into the empty
// directory. maild opens the socket (mode 0600, owned by root) and passes
// it in; control accepts clients, checks each one's credentials
// (SO_PEERCRED), and relays their questions: process status to the parent,
// password checks and address resolution to lookup, queue listings and
// actions to the queue. A client is not trusted: a malformed request drops
// that client only. The parent, lookup and the queue are: a malformed answer
// from them is fatal. Peers: the parent, lookup and the queue.
#include "common/envelope.h"
#include "common/log.h"
#include "common/role.h"

#include <event2/event.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <vector>

namespace {

using namespace maild;

// A few operators at a time; more is a runaway script.
constexpr std::size_t kMaxClients = 16;
constexpr std::size_t kMaxPendingRequests = 64;

const MsgType kClientMessages[] = {MsgType::ControlStatusRequest, MsgType::ControlAuthTest, MsgType::ControlResolve,
    MsgType::ControlQueueShow, MsgType::ControlQueueAction};

struct ControlState {
	RoleContext *ctx = nullptr;
	std::map<uint64_t, std::unique_ptr<Channel>> clients;
	// request id -> client id, for questions to the parent, lookup and the
	// queue; a client that left meanwhile is simply gone from `clients`.
	std::map<uint32_t, uint64_t> pending;
	uint64_t next_client = 1;
	uint32_t next_request = 1;
	// Channels are never destroyed inside their own callbacks: closed ones
	// wait here for the next turn of the loop.
	std::vector<std::unique_ptr<Channel>> closed;
	event *accept_event = nullptr;
	event *reap_event = nullptr;
};

void send_error(Channel &client, std::string_view message)
{
	MsgWriter w;
	w.str(message);
	client.send(MsgType::ControlError, w.data());
}

void drop_client(ControlState &state, uint64_t id)
{
	auto it = state.clients.find(id);
	if (it == state.clients.end())
		return;
	state.closed.push_back(std::move(it->second));
	state.clients.erase(it);
	timeval now{0, 0};
	evtimer_add(state.reap_event, &now);
}

// Checks the version at the head of every request; false drops the client.
bool check_version(ControlState &state, uint64_t id, Channel &client, MsgReader &r)
{
	uint32_t version = r.u32();
	if (!r.ok()) {
		log_warnx("control: malformed request from client %llu, dropping it", static_cast<unsigned long long>(id));
		drop_client(state, id);
		return false;
	}
	if (version != kProtocolVersion) {
		send_error(client, "mailctl and maild are different versions: protocol " + std::to_string(version) +
		    " and " + std::to_string(kProtocolVersion));
		return false;
	}
	return true;
}

// A request id for a question on behalf of client `id`, or nullopt when
// too many are in flight (the client is told).
std::optional<uint32_t> new_request(ControlState &state, uint64_t id, Channel &client)
{
	if (state.pending.size() >= kMaxPendingRequests) {
		send_error(client, "busy: too many requests in progress");
		return std::nullopt;
	}
	uint32_t request = state.next_request++;
	state.pending[request] = id;
	return request;
}

// A malformed request is fatal for the queue, which trusts its peers, so a
// client's is caught here: a real action, and a queue id or, for a flush
// only, none (every message).
bool valid_queue_action(uint8_t action, std::string_view qid)
{
	switch (static_cast<QueueAction>(action)) {
	case QueueAction::Flush:
		return qid.empty() || is_valid_queue_id(qid);
	case QueueAction::Remove:
	case QueueAction::Hold:
	case QueueAction::Release:
		return is_valid_queue_id(qid);
	}
	return false;
}

void on_client_request(ControlState &state, uint64_t id, Channel &client, Msg &&msg)
{
	MsgReader r{msg.payload};
	if (!check_version(state, id, client, r))
		return;
	MsgWriter w;
	Channel *to = nullptr;
	MsgType type{};
	std::string client_address, user, password, address, qid;
	uint8_t action = 0;
	bool valid = true;
	Channel *lookup = state.ctx->peers[static_cast<std::size_t>(Role::Lookup)].get();
	Channel *queue = state.ctx->peers[static_cast<std::size_t>(Role::Queue)].get();
	// The channel's allowlist lets only these through.
	if (msg.type == MsgType::ControlStatusRequest) {
		to = state.ctx->parent.get();
		type = MsgType::ParentStatusRequest;
	} else if (msg.type == MsgType::ControlAuthTest) {
		client_address = r.str(64);
		user = r.str(1024);
		password = r.str(4096);
		to = lookup;
		type = MsgType::LookupAuthRequest;
	} else if (msg.type == MsgType::ControlResolve) {
		address = r.str(1024);
		to = lookup;
		type = MsgType::LookupResolveRequest;
	} else if (msg.type == MsgType::ControlQueueShow) {
		to = queue;
		type = MsgType::QueueShowRequest;
	} else {
		action = r.u8();
		qid = r.str(kQueueIdLength);
		valid = valid_queue_action(action, qid);
		to = queue;
		type = MsgType::QueueActionRequest;
	}
	if (!r.end() || !valid) {
		log_warnx("control: malformed %s from client %llu, dropping it", std::string(to_string(msg.type)).c_str(),
		    static_cast<unsigned long long>(id));
		drop_client(state, id);
		return;
	}
	auto request = new_request(state, id, client);
	if (!request)
		return;
	w.u32(*request);
	if (type == MsgType::LookupAuthRequest) {
		w.str(client_address);
		w.str(user);
		w.str(password);
		std::fill(password.begin(), password.end(), '\0');
	} else if (type == MsgType::LookupResolveRequest) {
		w.str(address);
	} else if (type == MsgType::QueueActionRequest) {
		w.u8(action);
		w.str(qid);
	}
	to->send(type, w.data());
}

// An answer from the parent, lookup or the queue: the request id, then what
// goes to the client as `reply`.
void on_answer(ControlState &state, MsgType reply, Msg &&msg)
{
	MsgReader r{msg.payload};
	uint32_t request = r.u32();
	auto it = state.pending.find(request);
	if (!r.ok() || it == state.pending.end())
		fatalx("control: %s for request %u that was never made", std::string(to_string(msg.type)).c_str(),
		    request);
	uint64_t id = it->second;
	state.pending.erase(it);
	auto client = state.clients.find(id);
	if (client == state.clients.end())
		return; // it went away while the answer was on its way
	std::span<const uint8_t> result(msg.payload);
	client->second->send(reply, result.subspan(4));
}

bool client_allowed(int fd)
{
	ucred cred{};
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	// The socket's mode already keeps out everyone but its owner; this is
	// the second lock on the door.
	return cred.uid == 0 || cred.uid == geteuid();
}

void on_accept(evutil_socket_t listen_fd, short, void *arg)
{
	auto &state = *static_cast<ControlState *>(arg);
	for (;;) {
		UniqueFd fd(accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
		if (!fd)
			return;
		if (state.clients.size() >= kMaxClients) {
			log_warnx("control: too many clients, refusing one");
			continue;
		}
		if (!client_allowed(fd.get())) {
			log_warnx("control: refusing a client that is neither root nor maild's user");
			continue;
		}
		uint64_t id = state.next_client++;
		auto channel = std::make_unique<Channel>(
		    state.ctx->base, std::move(fd), "mailctl", kClientMessages,
		    [&state, id](Channel &ch, Msg &&msg) { on_client_request(state, id, ch, std::move(msg)); },
		    [&state, id](Channel &, std::optional<MsgError> error, std::string_view detail) {
			    if (error)
				    log_warnx("control: client %llu sent a malformed message: %s (%.*s), dropping it",
					static_cast<unsigned long long>(id), std::string(to_string(*error)).c_str(),
					static_cast<int>(detail.size()), detail.data());
			    drop_client(state, id);
		    });
		state.clients.emplace(id, std::move(channel));
	}
}

void on_reap(evutil_socket_t, short, void *arg)
{
	static_cast<ControlState *>(arg)->closed.clear();
}

} // namespace

int main(int argc, char **argv)
{
	// Owned by main for the life of the process, as the role's state.
	static ControlState state;
	RoleSpec spec{Role::Control, {}, {}, {}};
	spec.post_jail = [](RoleContext &ctx) {
		if (!ctx.control_socket)
			fatalx("control: no control socket from the parent");
		state.ctx = &ctx;
		state.reap_event = evtimer_new(ctx.base, on_reap, &state);
		state.accept_event =
		    event_new(ctx.base, ctx.control_socket.get(), EV_READ | EV_PERSIST, on_accept, &state);
		if (state.reap_event == nullptr || state.accept_event == nullptr ||
		    event_add(state.accept_event, nullptr) < 0)
			fatalx("control: cannot watch the control socket");
	};
	spec.rules.push_back({MsgType::ParentStatusResult, Role::Parent, RolePhase::Running, false,
	    [](RoleContext &, Channel &, Msg &&msg) { on_answer(state, MsgType::ControlStatusResult, std::move(msg)); }});
	spec.rules.push_back({MsgType::LookupAuthResult, Role::Lookup, RolePhase::Running, false,
	    [](RoleContext &, Channel &, Msg &&msg) { on_answer(state, MsgType::ControlAuthResult, std::move(msg)); }});
	spec.rules.push_back({MsgType::LookupResolveResult, Role::Lookup, RolePhase::Running, false,
	    [](RoleContext &, Channel &, Msg &&msg) { on_answer(state, MsgType::ControlResolveResult, std::move(msg)); }});
	spec.rules.push_back({MsgType::QueueShowResult, Role::Queue, RolePhase::Running, false,
	    [](RoleContext &, Channel &, Msg &&msg) {
		    on_answer(state, MsgType::ControlQueueShowResult, std::move(msg));
	    }});
	spec.rules.push_back({MsgType::QueueActionResult, Role::Queue, RolePhase::Running, false,
	    [](RoleContext &, Channel &, Msg &&msg) {
		    on_answer(state, MsgType::ControlQueueActionResult, std::move(msg));
	    }});
	run_role(spec, argc, argv);
}
