// queue: owns the spool and decides what happens to each message.
//
// Runs as its own user (default _maildq), chrooted into the spool, the only
// process that opens it. Its peers, and what it takes from each:
//   - smtpd: QueueCreate (the queue creates the message file and passes
//     its descriptor; smtpd writes the content), QueueCommit (the envelope;
//     only a qid this queue created for smtpd and that is still open may be
//     committed), QueueAbort. smtpd never names a path.
//   - deliver: DeliverResult for a DeliverRequest the queue sent; an
//     unknown request id is a protocol error.
//   - control: QueueShowRequest and QueueActionRequest for mailctl queue.
// Commits that arrive together are made durable together (group commit,
// docs/QUEUE.md): one syncfs and one directory fsync per batch.
#include "common/log.h"
#include "common/role.h"
#include "queue/spool.h"

#include <event2/event.h>
#include <fcntl.h>

#include <algorithm>
#include <ctime>
#include <memory>

namespace {

using namespace maild;

// Deliveries sent to deliver and not yet answered: enough to keep it busy
// (it batches what arrives together), few enough to bound descriptors.
constexpr std::size_t kMaxInFlight = 256;

struct QueueState {
	RoleContext *ctx = nullptr;
	std::unique_ptr<Spool> spool;
	event *commit_event = nullptr; // runs the staged commits as one batch
	event *retry_timer = nullptr;  // wakes the scheduler for the next retry
};

uint64_t now()
{
	return static_cast<uint64_t>(std::time(nullptr));
}

Channel &peer(QueueState &state, Role role)
{
	Channel *channel = state.ctx->peers[static_cast<std::size_t>(role)].get();
	if (channel == nullptr)
		fatalx("queue: no channel to %s", std::string(to_string(role)).c_str());
	return *channel;
}

SpoolLimits spool_limits(const Config &config)
{
	return SpoolLimits{config.queue_retry_min, config.queue_retry_max};
}

// Sends what is due and sets the timer for what comes later.
void schedule(QueueState &state)
{
	uint64_t t = now();
	// A reload may have changed the retry intervals.
	state.spool->set_limits(spool_limits(state.ctx->config));
	for (DeliveryJob &job : state.spool->take_due(t, kMaxInFlight)) {
		MsgWriter w;
		w.u32(job.id);
		w.str(job.qid);
		w.str(job.account);
		w.str(job.return_path);
		w.u64(job.created);
		w.u8(job.flags);
		std::vector<UniqueFd> fds;
		fds.push_back(std::move(job.fd));
		peer(state, Role::Deliver).send(MsgType::DeliverRequest, w.data(), std::move(fds));
	}
	evtimer_del(state.retry_timer);
	if (auto due = state.spool->next_due(); due && state.spool->in_flight() < kMaxInFlight) {
		uint64_t wait = *due > t ? *due - t : 0;
		timeval tv{static_cast<time_t>(wait), 0};
		evtimer_add(state.retry_timer, &tv);
	}
}

void on_retry_timer(evutil_socket_t, short, void *arg)
{
	schedule(*static_cast<QueueState *>(arg));
}

// The end of an event-loop iteration: every commit read so far goes into
// one batch. Commits that arrive while it blocks in syncfs wait in the
// socket and form the next batch, so the batch grows with the load.
void on_commit_batch(evutil_socket_t, short, void *arg)
{
	auto &state = *static_cast<QueueState *>(arg);
	for (const CommitOutcome &outcome : state.spool->run_commits(now())) {
		MsgWriter w;
		w.u32(outcome.id);
		w.u8(outcome.ok ? 1 : 0);
		w.str(outcome.error);
		peer(state, Role::Smtpd).send(MsgType::QueueCommitResult, w.data());
	}
	schedule(state);
}

void on_queue_create(QueueState &state, Msg &&msg)
{
	MsgReader r{msg.payload};
	uint32_t id = r.u32();
	if (!r.end())
		fatalx("queue: malformed QueueCreate from smtpd");
	std::string error;
	auto created = state.spool->create(now(), error);
	MsgWriter w;
	w.u32(id);
	if (!created) {
		w.str(error);
		peer(state, Role::Smtpd).send(MsgType::QueueCreateFailed, w.data());
		return;
	}
	w.str(created->qid);
	std::vector<UniqueFd> fds;
	fds.push_back(std::move(created->fd));
	peer(state, Role::Smtpd).send(MsgType::QueueCreated, w.data(), std::move(fds));
}

void on_queue_commit(QueueState &state, Msg &&msg)
{
	MsgReader r{msg.payload};
	CommitRequest request;
	request.id = r.u32();
	std::string error;
	auto envelope = read_envelope(r, error);
	if (!envelope || !r.end())
		fatalx("queue: malformed QueueCommit from smtpd: %s", envelope ? "trailing bytes" : error.c_str());
	request.envelope = std::move(*envelope);
	CommitOutcome refused;
	if (!state.spool->stage_commit(std::move(request), refused)) {
		log_warnx("queue: commit refused: not an open transaction");
		MsgWriter w;
		w.u32(refused.id);
		w.u8(0);
		w.str(refused.error);
		peer(state, Role::Smtpd).send(MsgType::QueueCommitResult, w.data());
		return;
	}
	event_active(state.commit_event, 0, 0);
}

void on_queue_abort(QueueState &state, Msg &&msg)
{
	MsgReader r{msg.payload};
	std::string qid(r.str(kQueueIdLength));
	if (!r.end() || !is_valid_queue_id(qid))
		fatalx("queue: malformed QueueAbort from smtpd");
	if (state.spool->abort(qid))
		log_debug("queue: aborted qid=%s", qid.c_str());
	else
		log_warnx("queue: abort of qid=%s refused: not an open transaction", qid.c_str());
}

void on_deliver_result(QueueState &state, Msg &&msg)
{
	MsgReader r{msg.payload};
	uint32_t id = r.u32();
	uint8_t status = r.u8();
	std::string error(r.str(kMaxEnvelopeText));
	if (!r.end() || status > static_cast<uint8_t>(DeliveryStatus::PermFail) ||
	    error.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
		fatalx("queue: malformed DeliverResult from deliver");
	if (!state.spool->delivery_result(id, static_cast<DeliveryStatus>(status), error, now()))
		fatalx("queue: DeliverResult from deliver for unknown request %u", id);
	schedule(state);
}

void on_show_request(QueueState &state, Msg &&msg)
{
	MsgReader r{msg.payload};
	uint32_t request = r.u32();
	if (!r.end())
		fatalx("queue: malformed QueueShowRequest from control");
	// request id, total, n, then the envelopes: all within one message.
	constexpr std::size_t kHeader = 4 + 4 + 4;
	std::size_t total = 0;
	auto shown = state.spool->list(kMaxMsgPayload - kHeader, total);
	MsgWriter w;
	w.u32(request);
	w.u32(static_cast<uint32_t>(total));
	w.u32(static_cast<uint32_t>(shown.size()));
	for (const Envelope *e : shown)
		write_envelope(w, *e);
	peer(state, Role::Control).send(MsgType::QueueShowResult, w.data());
}

void on_action_request(QueueState &state, Msg &&msg)
{
	MsgReader r{msg.payload};
	uint32_t request = r.u32();
	uint8_t action = r.u8();
	std::string qid(r.str(64));
	if (!r.end() || action > static_cast<uint8_t>(QueueAction::Release))
		fatalx("queue: malformed QueueActionRequest from control");
	ActionOutcome outcome;
	// mailctl typed the id: a malformed one is an answer, not a fault.
	if (!qid.empty() && !is_valid_queue_id(qid))
		outcome = {false, "no such message"};
	else
		outcome = state.spool->action(static_cast<QueueAction>(action), qid);
	MsgWriter w;
	w.u32(request);
	w.u8(outcome.ok ? 1 : 0);
	w.str(outcome.message);
	peer(state, Role::Control).send(MsgType::QueueActionResult, w.data());
	schedule(state);
}

void start(QueueState &state, RoleContext &ctx)
{
	state.ctx = &ctx;
	// Inside the jail the spool is the root.
	std::string path = ctx.unprivileged ? ctx.config.spool : "/";
	UniqueFd dir(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (!dir)
		fatal("queue: cannot open the spool %s", ctx.config.spool.c_str());
	std::string error;
	state.spool = Spool::open(std::move(dir), spool_limits(ctx.config), error);
	if (!state.spool)
		fatalx("queue: spool %s: %s", ctx.config.spool.c_str(), error.c_str());
	RecoveryReport report = state.spool->recover();
	log_info("queue: recovered %zu messages, removed %zu uncommitted, %zu corrupt", report.recovered,
	    report.removed_uncommitted, report.corrupt);
	state.commit_event = event_new(ctx.base, -1, 0, on_commit_batch, &state);
	state.retry_timer = evtimer_new(ctx.base, on_retry_timer, &state);
	if (state.commit_event == nullptr || state.retry_timer == nullptr)
		fatalx("queue: cannot create events");
	schedule(state);
}

} // namespace

int main(int argc, char **argv)
{
	// Owned by main for the life of the process, as the role's state.
	static QueueState state;
	RoleSpec spec{Role::Queue, {}, {}, {}};
	spec.post_jail = [](RoleContext &ctx) { start(state, ctx); };
	auto rule = [](MsgType type, Role from, void (*handler)(QueueState &, Msg &&)) {
		return MsgRule{type, from, RolePhase::Running, false,
		    [handler](RoleContext &, Channel &, Msg &&msg) { handler(state, std::move(msg)); }};
	};
	spec.rules = {
	    rule(MsgType::QueueCreate, Role::Smtpd, on_queue_create),
	    rule(MsgType::QueueCommit, Role::Smtpd, on_queue_commit),
	    rule(MsgType::QueueAbort, Role::Smtpd, on_queue_abort),
	    rule(MsgType::DeliverResult, Role::Deliver, on_deliver_result),
	    rule(MsgType::QueueShowRequest, Role::Control, on_show_request),
	    rule(MsgType::QueueActionRequest, Role::Control, on_action_request),
	};
	run_role(spec, argc, argv);
}
