// deliver: writes local recipients' copies into their Maildirs.
//
// Runs as the mail store owner (default _maildv), chrooted into the mail
// store: it can reach every mailbox and nothing else. Its one peer is the
// queue, and it takes from it only DeliverRequest: a message as a read-only
// descriptor (deliver never opens the spool) and an account that lookup
// resolved. Every field is still checked, and a malformed request is fatal
// (a bug or a compromised queue). No request can name a path: the account
// becomes a directory only through mailbox_path(), and common/maildir.cc
// walks the store without following symbolic links.
//
// Requests that arrive together are delivered together (group commit,
// DESIGN.md Storage): the first request of a batch arms a zero timeout, and
// by the time it fires the event loop has read whatever else the queue sent;
// the whole batch then costs two syncfs, not two flushes per copy.
#include "common/envelope.h"
#include "common/log.h"
#include "common/maildir.h"
#include "common/role.h"

#include <event2/event.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <string>
#include <vector>

namespace {

using namespace maild;

// Requests in one batch at most: while it is written each holds its message
// file and two directories open, and the queue may have 256 in flight.
constexpr std::size_t kMaxBatch = 64;

struct PendingDelivery {
	uint32_t id = 0;
	MaildirDelivery delivery;
	UniqueFd message;
};

struct DeliverState {
	RoleContext *ctx = nullptr;
	UniqueFd store; // the mail store's root
	std::vector<PendingDelivery> batch;
	event *batch_event = nullptr; // zero timeout: the batch is complete
};

// The envelope's rule for every string (common/envelope.h): no CR, LF or
// NUL, so a value stays inert in a header and in the log.
bool is_inert(std::string_view s)
{
	return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

std::string_view status_name(DeliveryStatus status)
{
	switch (status) {
	case DeliveryStatus::Ok:
		return "ok";
	case DeliveryStatus::TempFail:
		return "tempfail";
	case DeliveryStatus::PermFail:
		return "permfail";
	}
	panic("deliver: unknown delivery status %d", static_cast<int>(status));
}

void log_result(const PendingDelivery &p, const MaildirResult &r)
{
	const char *qid = p.delivery.qid.c_str();
	const char *to = p.delivery.account.c_str();
	if (r.status != DeliveryStatus::Ok)
		log_info("deliver: failed qid=%s to=%s status=%s error=%s", qid, to,
		    std::string(status_name(r.status)).c_str(), r.error.c_str());
	else if (r.duplicate)
		log_info("deliver: duplicate qid=%s to=%s file=%s", qid, to, r.filename.c_str());
	else
		log_info("deliver: delivered qid=%s to=%s file=%s", qid, to, r.filename.c_str());
}

void deliver_pending(DeliverState &state)
{
	std::vector<PendingDelivery> batch = std::move(state.batch);
	state.batch.clear();
	if (batch.empty())
		return;
	log_debug("deliver: batch of %zu", batch.size());
	std::vector<MaildirDelivery> deliveries;
	std::vector<int> fds;
	deliveries.reserve(batch.size());
	fds.reserve(batch.size());
	for (const PendingDelivery &p : batch) {
		deliveries.push_back(p.delivery);
		fds.push_back(p.message.get());
	}
	std::vector<MaildirResult> results = deliver_batch(state.store.get(), deliveries, fds);

	Channel *queue = state.ctx->peers[static_cast<std::size_t>(Role::Queue)].get();
	if (queue == nullptr)
		fatalx("deliver: no channel to queue");
	for (std::size_t i = 0; i < batch.size(); i++) {
		const MaildirResult &r = results[i];
		log_result(batch[i], r);
		MsgWriter w;
		w.u32(batch[i].id);
		w.u8(static_cast<uint8_t>(r.status));
		// The queue keeps the error in the envelope, bounded like every text there.
		w.str(std::string_view(r.error).substr(0, kMaxEnvelopeText));
		queue->send(MsgType::DeliverResult, w.data());
	}
}

void on_batch_due(evutil_socket_t, short, void *arg)
{
	deliver_pending(*static_cast<DeliverState *>(arg));
}

void on_deliver_request(DeliverState &state, Msg &&msg)
{
	MsgReader r{msg.payload};
	PendingDelivery p;
	p.id = r.u32();
	p.delivery.qid = r.str(kQueueIdLength);
	p.delivery.account = r.str(kMaxEnvelopeAddress);
	p.delivery.return_path = r.str(kMaxEnvelopeAddress);
	p.delivery.created = r.u64();
	uint8_t flags = r.u8();
	if (!r.end() || !is_valid_queue_id(p.delivery.qid) || !is_inert(p.delivery.account) ||
	    !is_inert(p.delivery.return_path) || (flags & ~kDeliverRetry) != 0)
		fatalx("deliver: malformed DeliverRequest from queue");
	p.message = std::move(msg.fds.at(0));
	struct stat st;
	int access = fcntl(p.message.get(), F_GETFL);
	if (fstat(p.message.get(), &st) < 0 || !S_ISREG(st.st_mode) || access < 0 || (access & O_ACCMODE) != O_RDONLY)
		fatalx("deliver: DeliverRequest from queue without a read-only message file");
	p.delivery.retry = (flags & kDeliverRetry) != 0;
	p.delivery.hostname = state.ctx->config.hostname;

	state.batch.push_back(std::move(p));
	if (state.batch.size() >= kMaxBatch) {
		evtimer_del(state.batch_event);
		deliver_pending(state);
	} else if (state.batch.size() == 1) {
		const timeval now{0, 0};
		evtimer_add(state.batch_event, &now);
	}
}

} // namespace

int main(int argc, char **argv)
{
	// Owned by main for the life of the process, as the role's state.
	static DeliverState state;
	RoleSpec spec{Role::Deliver, {}, {}, {}};
	spec.pre_jail = [](RoleContext &ctx) {
		state.ctx = &ctx;
		// Opened before the jail by its configured path, which also serves
		// the unprivileged mode (no chroot); inside the jail it is "/".
		std::string root = ctx.config.root_dir(Role::Deliver);
		state.store = UniqueFd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
		if (!state.store)
			fatal("deliver: open mail store %s", root.c_str());
	};
	spec.post_jail = [](RoleContext &ctx) {
		state.batch_event = evtimer_new(ctx.base, on_batch_due, &state);
		if (state.batch_event == nullptr)
			fatalx("deliver: cannot create the batch event");
	};
	spec.rules.push_back({MsgType::DeliverRequest, Role::Queue, RolePhase::Running, false,
	    [](RoleContext &, Channel &, Msg &&m) { on_deliver_request(state, std::move(m)); }});
	run_role(spec, argc, argv);
}
