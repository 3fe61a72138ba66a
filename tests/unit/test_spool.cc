// The queue's spool (queue/spool.h) on a real directory: create, commit and
// abort; recovery after a stop at any point; delivery results, backoff and
// removal; and the operator's actions.
#include "queue/spool.h"

#include "temp_dir.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using maild::CommitOutcome;
using maild::CommitRequest;
using maild::DeliveryJob;
using maild::DeliveryStatus;
using maild::Envelope;
using maild::EnvelopeTarget;
using maild::QueueAction;
using maild::Spool;
using maild::SpoolLimits;
using maild::TargetKind;
using maild::TargetState;
using maild::UniqueFd;
using maild::test::TempDir;

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kNow = 1700000000;
const SpoolLimits kLimits{60, 3600};

std::unique_ptr<Spool> open_spool(const TempDir &dir)
{
	UniqueFd fd(open(dir.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	cr_assert(fd.valid(), "open spool directory");
	std::string error;
	auto spool = Spool::open(std::move(fd), kLimits, error);
	cr_assert(spool != nullptr, "Spool::open: %s", error.c_str());
	return spool;
}

std::string read_file(const std::string &path)
{
	std::ifstream in(path, std::ios::binary);
	std::stringstream ss;
	ss << in.rdbuf();
	return ss.str();
}

std::string read_fd(int fd)
{
	std::string out;
	char buf[4096];
	ssize_t n;
	while ((n = pread(fd, buf, sizeof(buf), static_cast<off_t>(out.size()))) > 0)
		out.append(buf, static_cast<std::size_t>(n));
	return out;
}

EnvelopeTarget target(TargetKind kind, std::string address)
{
	EnvelopeTarget t;
	t.kind = kind;
	t.address = address;
	t.rcpt = address;
	return t;
}

Envelope envelope_for(const std::string &qid, std::vector<EnvelopeTarget> targets)
{
	Envelope e;
	e.qid = qid;
	e.sender = "alice@example.org";
	e.client_address = "192.0.2.1";
	e.helo = "client.example.org";
	e.targets = std::move(targets);
	return e;
}

// Creates a message with `content`, as smtpd would write it.
std::string create_message(Spool &spool, const std::string &content, uint64_t now = kNow)
{
	std::string error;
	auto created = spool.create(now, error);
	cr_assert(created.has_value(), "create: %s", error.c_str());
	cr_assert(maild::is_valid_queue_id(created->qid), "qid %s", created->qid.c_str());
	cr_assert_eq(write(created->fd.get(), content.data(), content.size()), static_cast<ssize_t>(content.size()));
	return created->qid;
}

void commit(Spool &spool, const Envelope &e, uint64_t now = kNow)
{
	CommitOutcome refused;
	cr_assert(spool.stage_commit(CommitRequest{7, e}, refused), "stage_commit refused");
	auto outcomes = spool.run_commits(now);
	cr_assert_eq(outcomes.size(), 1u);
	cr_assert_eq(outcomes[0].id, 7u);
	cr_assert(outcomes[0].ok, "commit failed: %s", outcomes[0].error.c_str());
}

// One committed message with the given targets; returns its qid.
std::string committed(Spool &spool, std::vector<EnvelopeTarget> targets, const std::string &content = "Subject: x\r\n\r\nhi\r\n")
{
	std::string qid = create_message(spool, content);
	commit(spool, envelope_for(qid, std::move(targets)));
	return qid;
}

Envelope on_disk(const TempDir &dir, const std::string &qid)
{
	std::string error;
	auto e = maild::decode_envelope_file(read_file(dir / ("envelopes/" + qid)), error);
	cr_assert(e.has_value(), "envelope of %s on disk: %s", qid.c_str(), error.c_str());
	return *e;
}

std::size_t count_entries(const std::string &path)
{
	std::size_t n = 0;
	for ([[maybe_unused]] const auto &entry : fs::directory_iterator(path))
		n++;
	return n;
}

} // namespace

Test(spool, open_creates_the_layout)
{
	TempDir dir;
	auto spool = open_spool(dir);
	for (const char *sub : {"messages", "tmp", "envelopes", "corrupt"}) {
		struct stat st;
		cr_assert_eq(stat((dir / sub).c_str(), &st), 0, "%s missing", sub);
		cr_assert(S_ISDIR(st.st_mode));
		cr_assert_eq(st.st_mode & 07777, 0700u, "%s mode %o", sub, st.st_mode & 07777);
	}
}

Test(spool, create_then_commit_makes_the_envelope_durable)
{
	TempDir dir;
	auto spool = open_spool(dir);
	std::string content = "Subject: hello\r\n\r\nbody\r\n";
	std::string qid = create_message(*spool, content);
	struct stat st;
	cr_assert_eq(stat((dir / ("messages/" + qid)).c_str(), &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600u);
	cr_assert_not(fs::exists(dir / ("envelopes/" + qid)), "no envelope before the commit");

	Envelope e = envelope_for(qid, {target(TargetKind::Local, "bob@example.com"),
	                                   target(TargetKind::Remote, "carol@remote.example")});
	e.flags = maild::kEnvelopeHeld; // smtpd cannot hold a message
	e.targets[0].attempts = 5;      // nor choose what the queue keeps
	commit(*spool, e);

	Envelope disk = on_disk(dir, qid);
	cr_assert_eq(disk.qid, qid);
	cr_assert_eq(disk.created, kNow);
	cr_assert_eq(disk.size, content.size());
	cr_assert_eq(disk.sender, "alice@example.org");
	cr_assert_eq(disk.flags, 0);
	cr_assert_eq(disk.targets.size(), 2u);
	cr_assert_eq(disk.targets[0].state, TargetState::Pending);
	cr_assert_eq(disk.targets[0].attempts, 0u);
	cr_assert_eq(disk.targets[1].state, TargetState::WaitingOutbound);
	cr_assert_eq(read_file(dir / ("messages/" + qid)), content);
	cr_assert_eq(count_entries(dir / "tmp"), 0u, "tmp/ is empty after a commit");
	cr_assert_not_null(spool->find(qid));
}

Test(spool, many_commits_form_one_batch)
{
	TempDir dir;
	auto spool = open_spool(dir);
	std::vector<std::string> qids;
	for (uint32_t i = 0; i < 20; i++) {
		std::string qid = create_message(*spool, "m" + std::to_string(i));
		CommitOutcome refused;
		cr_assert(spool->stage_commit(CommitRequest{i, envelope_for(qid, {target(TargetKind::Local, "bob")})},
		    refused));
		qids.push_back(qid);
	}
	cr_assert(spool->commits_staged());
	auto outcomes = spool->run_commits(kNow);
	cr_assert_not(spool->commits_staged());
	cr_assert_eq(outcomes.size(), 20u);
	for (uint32_t i = 0; i < 20; i++) {
		cr_assert_eq(outcomes[i].id, i);
		cr_assert(outcomes[i].ok);
		cr_assert_eq(on_disk(dir, qids[i]).size, ("m" + std::to_string(i)).size());
	}
}

Test(spool, abort_removes_the_message_file)
{
	TempDir dir;
	auto spool = open_spool(dir);
	std::string qid = create_message(*spool, "partial");
	cr_assert(spool->abort(qid));
	cr_assert_not(fs::exists(dir / ("messages/" + qid)));
	cr_assert_not(spool->abort(qid), "a second abort is refused");
	CommitOutcome refused;
	cr_assert_not(spool->stage_commit(CommitRequest{1, envelope_for(qid, {target(TargetKind::Local, "bob")})},
	    refused), "an aborted transaction cannot be committed");
}

Test(spool, only_open_transactions_can_be_committed)
{
	TempDir dir;
	auto spool = open_spool(dir);
	CommitOutcome refused;
	cr_assert_not(spool->stage_commit(
	    CommitRequest{3, envelope_for("0123456789abcdef", {target(TargetKind::Local, "bob")})}, refused));
	cr_assert_eq(refused.id, 3u);
	cr_assert_not(refused.ok);
	cr_assert_not(refused.error.empty());

	std::string qid = committed(*spool, {target(TargetKind::Local, "bob")});
	cr_assert_not(spool->stage_commit(CommitRequest{4, envelope_for(qid, {target(TargetKind::Local, "eve")})},
	    refused), "a committed message cannot be committed again");
	cr_assert_not(spool->abort(qid), "nor aborted");
	cr_assert(fs::exists(dir / ("messages/" + qid)));
	cr_assert_eq(on_disk(dir, qid).targets[0].address, "bob");
}

Test(spool, recovery_keeps_committed_and_removes_leftovers)
{
	TempDir dir;
	std::string kept, uncommitted, corrupt, orphan;
	{
		auto spool = open_spool(dir);
		kept = committed(*spool, {target(TargetKind::Local, "bob"), target(TargetKind::Remote, "r@x.example")});
		uncommitted = create_message(*spool, "never committed");
		corrupt = committed(*spool, {target(TargetKind::Local, "carol")});
		orphan = committed(*spool, {target(TargetKind::Local, "dave")});
	}
	// A half-written envelope, a torn one and one whose message is gone.
	{
		std::ofstream(dir / "tmp/00000000aaaaaaaa") << "MAILDENV";
		std::string bytes = read_file(dir / ("envelopes/" + corrupt));
		std::ofstream(dir / ("envelopes/" + corrupt), std::ios::binary | std::ios::trunc)
		    << bytes.substr(0, bytes.size() - 1);
		fs::remove(dir / ("messages/" + orphan));
	}

	auto spool = open_spool(dir);
	maild::RecoveryReport report = spool->recover();
	cr_assert_eq(report.recovered, 1u);
	cr_assert_eq(report.removed_uncommitted, 1u + 1u, "the uncommitted message and the torn envelope's message");
	cr_assert_eq(report.corrupt, 2u);

	cr_assert_not_null(spool->find(kept));
	cr_assert(fs::exists(dir / ("messages/" + kept)));
	cr_assert(fs::exists(dir / ("envelopes/" + kept)));
	cr_assert_eq(spool->find(kept)->targets[1].state, TargetState::WaitingOutbound);
	cr_assert_not(fs::exists(dir / ("messages/" + uncommitted)));
	cr_assert_eq(count_entries(dir / "tmp"), 0u);
	cr_assert(fs::exists(dir / ("corrupt/" + corrupt)), "a corrupt envelope is kept in corrupt/");
	cr_assert(fs::exists(dir / ("corrupt/" + orphan)));
	cr_assert_not(fs::exists(dir / ("envelopes/" + corrupt)));
	cr_assert_null(spool->find(corrupt));

	// Recovered messages are due at once, flagged as possibly delivered.
	auto jobs = spool->take_due(kNow, 256);
	cr_assert_eq(jobs.size(), 1u, "only the local target of the recovered message");
	cr_assert_eq(jobs[0].qid, kept);
	cr_assert_eq(jobs[0].account, "bob");
	cr_assert_eq(jobs[0].flags, maild::kDeliverRetry);
}

Test(spool, deliveries_are_sent_with_the_message)
{
	TempDir dir;
	auto spool = open_spool(dir);
	std::string qid = committed(*spool, {target(TargetKind::Local, "bob"), target(TargetKind::Local, "carol"),
	                                        target(TargetKind::Remote, "r@x.example")},
	    "the content");
	auto jobs = spool->take_due(kNow, 256);
	cr_assert_eq(jobs.size(), 2u, "remote targets wait for outbound");
	cr_assert_eq(jobs[0].account, "bob");
	cr_assert_eq(jobs[1].account, "carol");
	for (const DeliveryJob &job : jobs) {
		cr_assert_eq(job.qid, qid);
		cr_assert_eq(job.return_path, "alice@example.org");
		cr_assert_eq(job.created, kNow);
		cr_assert_eq(job.flags, 0, "a first attempt");
		cr_assert_eq(read_fd(job.fd.get()), "the content");
		int mode = fcntl(job.fd.get(), F_GETFL);
		cr_assert_eq(mode & O_ACCMODE, O_RDONLY);
	}
	cr_assert_eq(spool->in_flight(), 2u);
	cr_assert(spool->take_due(kNow, 256).empty(), "nothing is sent twice while in flight");
	cr_assert_not(spool->next_due().has_value());
}

Test(spool, in_flight_deliveries_are_bounded)
{
	TempDir dir;
	auto spool = open_spool(dir);
	for (int i = 0; i < 5; i++)
		committed(*spool, {target(TargetKind::Local, "bob")});
	cr_assert_eq(spool->take_due(kNow, 3).size(), 3u);
	cr_assert_eq(spool->take_due(kNow, 3).size(), 0u);
	cr_assert_eq(spool->take_due(kNow, 5).size(), 2u);
}

Test(spool, temporary_failures_back_off)
{
	TempDir dir;
	auto spool = open_spool(dir);
	std::string qid = committed(*spool, {target(TargetKind::Local, "bob")});
	uint64_t t = kNow;
	uint64_t expected[] = {60, 120, 240, 480, 960, 1920, 3600, 3600};
	for (uint32_t attempt = 1; attempt <= 8; attempt++) {
		auto jobs = spool->take_due(t, 256);
		cr_assert_eq(jobs.size(), 1u, "attempt %u", attempt);
		cr_assert_eq(jobs[0].flags, attempt == 1 ? 0 : maild::kDeliverRetry);
		cr_assert(spool->delivery_result(jobs[0].id, DeliveryStatus::TempFail, "disk full", t));
		Envelope disk = on_disk(dir, qid);
		cr_assert_eq(disk.targets[0].state, TargetState::Pending);
		cr_assert_eq(disk.targets[0].attempts, attempt);
		cr_assert_eq(disk.targets[0].next_attempt, t + expected[attempt - 1], "attempt %u", attempt);
		cr_assert_eq(disk.targets[0].last_error, "disk full");
		cr_assert_eq(*spool->next_due(), t + expected[attempt - 1]);
		cr_assert(spool->take_due(t + expected[attempt - 1] - 1, 256).empty(), "not before its time");
		t += expected[attempt - 1];
	}
}

Test(spool, a_huge_attempt_count_does_not_overflow_the_backoff)
{
	TempDir dir;
	auto spool = open_spool(dir);
	std::string qid = committed(*spool, {target(TargetKind::Local, "bob")});
	uint64_t t = kNow;
	for (uint32_t attempt = 1; attempt <= 70; attempt++) {
		auto jobs = spool->take_due(t, 256);
		cr_assert_eq(jobs.size(), 1u);
		spool->delivery_result(jobs[0].id, DeliveryStatus::TempFail, "x", t);
		uint64_t next = on_disk(dir, qid).targets[0].next_attempt;
		if (attempt >= 7)
			cr_assert_eq(next, t + 3600, "attempt %u waits queue_retry_max", attempt);
		t = next;
	}
	cr_assert_eq(spool->find(qid)->targets[0].attempts, 70u);
}

Test(spool, all_delivered_removes_both_files)
{
	TempDir dir;
	auto spool = open_spool(dir);
	std::string qid = committed(*spool, {target(TargetKind::Local, "bob"), target(TargetKind::Local, "carol")});
	auto jobs = spool->take_due(kNow, 256);
	cr_assert_eq(jobs.size(), 2u);
	cr_assert(spool->delivery_result(jobs[0].id, DeliveryStatus::Ok, "", kNow));
	cr_assert_eq(on_disk(dir, qid).targets[0].state, TargetState::Delivered);
	cr_assert(fs::exists(dir / ("messages/" + qid)), "one recipient is still to come");
	cr_assert(spool->delivery_result(jobs[1].id, DeliveryStatus::Ok, "", kNow));
	cr_assert_not(fs::exists(dir / ("envelopes/" + qid)));
	cr_assert_not(fs::exists(dir / ("messages/" + qid)));
	cr_assert_null(spool->find(qid));
	cr_assert_eq(spool->in_flight(), 0u);
	cr_assert_not(spool->delivery_result(jobs[1].id, DeliveryStatus::Ok, "", kNow), "an answered id is unknown");
}

Test(spool, permanent_failure_is_kept_for_the_bounce)
{
	TempDir dir;
	auto spool = open_spool(dir);
	std::string qid = committed(*spool, {target(TargetKind::Local, "bad/name")});
	auto jobs = spool->take_due(kNow, 256);
	cr_assert(spool->delivery_result(jobs[0].id, DeliveryStatus::PermFail, "no such mailbox", kNow));
	Envelope disk = on_disk(dir, qid);
	cr_assert_eq(disk.targets[0].state, TargetState::Failed);
	cr_assert_eq(disk.targets[0].last_error, "no such mailbox");
	cr_assert(spool->take_due(kNow + 100000, 256).empty(), "never retried");
	cr_assert_not(spool->next_due().has_value());
}

Test(spool, unknown_delivery_result_is_refused)
{
	TempDir dir;
	auto spool = open_spool(dir);
	cr_assert_not(spool->delivery_result(12345, DeliveryStatus::Ok, "", kNow));
}

Test(spool, hold_and_release)
{
	TempDir dir;
	auto spool = open_spool(dir);
	std::string qid = committed(*spool, {target(TargetKind::Local, "bob")});
	auto outcome = spool->action(QueueAction::Hold, qid);
	cr_assert(outcome.ok);
	cr_assert_eq(outcome.message, "held " + qid);
	cr_assert_neq(on_disk(dir, qid).flags & maild::kEnvelopeHeld, 0, "hold is persisted");
	cr_assert(spool->take_due(kNow, 256).empty(), "a held message is not delivered");
	cr_assert_not(spool->next_due().has_value());

	// A restart keeps it held.
	{
		auto again = open_spool(dir);
		again->recover();
		cr_assert(again->take_due(kNow, 256).empty());
	}
	outcome = spool->action(QueueAction::Release, qid);
	cr_assert(outcome.ok);
	cr_assert_eq(outcome.message, "released " + qid);
	cr_assert_eq(on_disk(dir, qid).flags & maild::kEnvelopeHeld, 0);
	cr_assert_eq(spool->take_due(kNow, 256).size(), 1u);
}

Test(spool, remove_deletes_and_ignores_a_late_result)
{
	TempDir dir;
	auto spool = open_spool(dir);
	std::string qid = committed(*spool, {target(TargetKind::Local, "bob")});
	auto jobs = spool->take_due(kNow, 256);
	auto outcome = spool->action(QueueAction::Remove, qid);
	cr_assert(outcome.ok);
	cr_assert_eq(outcome.message, "removed " + qid);
	cr_assert_not(fs::exists(dir / ("envelopes/" + qid)));
	cr_assert_not(fs::exists(dir / ("messages/" + qid)));
	cr_assert(spool->delivery_result(jobs[0].id, DeliveryStatus::TempFail, "x", kNow));
	cr_assert_not(fs::exists(dir / ("envelopes/" + qid)), "a late result does not bring it back");
	outcome = spool->action(QueueAction::Remove, qid);
	cr_assert_not(outcome.ok);
	cr_assert_eq(outcome.message, "no such message");
	outcome = spool->action(QueueAction::Remove, "");
	cr_assert_not(outcome.ok, "removing everything at once is not offered");
}

Test(spool, flush_makes_waiting_messages_due)
{
	TempDir dir;
	auto spool = open_spool(dir);
	std::string a = committed(*spool, {target(TargetKind::Local, "bob")});
	std::string b = committed(*spool, {target(TargetKind::Local, "carol")});
	committed(*spool, {target(TargetKind::Remote, "r@x.example")});
	for (auto &job : spool->take_due(kNow, 256))
		spool->delivery_result(job.id, DeliveryStatus::TempFail, "busy", kNow);
	cr_assert(spool->take_due(kNow + 1, 256).empty());

	auto outcome = spool->action(QueueAction::Flush, a);
	cr_assert(outcome.ok);
	cr_assert_eq(outcome.message, "flushed " + a);
	auto jobs = spool->take_due(kNow + 1, 256);
	cr_assert_eq(jobs.size(), 1u);
	cr_assert_eq(jobs[0].qid, a);

	outcome = spool->action(QueueAction::Flush, "");
	cr_assert(outcome.ok);
	cr_assert_eq(outcome.message, "flushed 2 messages", "%s", outcome.message.c_str());
	jobs = spool->take_due(kNow + 1, 256);
	cr_assert_eq(jobs.size(), 1u, "b; a is still in flight");
	cr_assert_eq(jobs[0].qid, b);

	outcome = spool->action(QueueAction::Flush, "ffffffffffffffff");
	cr_assert_not(outcome.ok);
	cr_assert_eq(outcome.message, "no such message");
}

Test(spool, list_is_oldest_first_and_bounded)
{
	TempDir dir;
	auto spool = open_spool(dir);
	std::vector<std::string> qids;
	for (uint64_t i = 0; i < 4; i++) {
		std::string qid = create_message(*spool, "x", kNow - 100 * i);
		commit(*spool, envelope_for(qid, {target(TargetKind::Local, "bob")}), kNow - 100 * i);
		qids.push_back(qid);
	}
	std::size_t total = 0;
	auto all = spool->list(1 << 20, total);
	cr_assert_eq(total, 4u);
	cr_assert_eq(all.size(), 4u);
	for (std::size_t i = 0; i < 4; i++)
		cr_assert_eq(all[i]->qid, qids[3 - i], "oldest first");
	std::size_t one = maild::envelope_wire_size(*all[0]);
	auto some = spool->list(2 * one + one / 2, total);
	cr_assert_eq(total, 4u);
	cr_assert_eq(some.size(), 2u);
	cr_assert_eq(some[0]->qid, qids[3]);
}
