// The spool: the queue role's files and what it knows about each message,
// without any imsg, so that the unit tests drive it directly. Every file
// operation is an *at() call relative to the spool's directory descriptor
// (inside the queue's jail the spool is "/"). docs/QUEUE.md describes the
// layout, the envelope files, the commit protocol and recovery.
//
// Time is passed in as unix seconds, so the tests choose it.
#pragma once

#include "common/envelope.h"
#include "common/imsg_types.h"
#include "common/unique_fd.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace maild {

struct SpoolLimits {
	uint32_t retry_min = 60;   // seconds before the first retry
	uint32_t retry_max = 3600; // the longest wait between retries
};

struct RecoveryReport {
	std::size_t recovered = 0;           // committed messages loaded
	std::size_t removed_uncommitted = 0; // message files without an envelope
	std::size_t corrupt = 0;             // envelopes moved to corrupt/
};

struct CreatedMessage {
	std::string qid;
	UniqueFd fd; // messages/<qid>, new and empty, open for writing
};

// One commit waiting for the next batch.
struct CommitRequest {
	uint32_t id = 0; // the requester's, handed back in the outcome
	Envelope envelope;
};

struct CommitOutcome {
	uint32_t id = 0;
	bool ok = false;
	std::string error; // a fixed text for the client when !ok
};

// One local recipient's copy for the deliver role.
struct DeliveryJob {
	uint32_t id = 0;
	std::string qid;
	std::string account;
	std::string return_path;
	uint64_t created = 0;
	uint8_t flags = 0; // kDeliverRetry
	UniqueFd fd;       // messages/<qid>, read-only
};

struct ActionOutcome {
	bool ok = false;
	std::string message;
};

class Spool {
public:
	// Takes the spool directory, creates the subdirectories it lacks and
	// opens them. nullopt (error_r set) if that fails.
	static std::unique_ptr<Spool> open(UniqueFd dir, const SpoolLimits &limits, std::string &error_r);

	// Before serving: clears tmp/, removes uncommitted message files,
	// loads the committed envelopes (moving undecodable ones to corrupt/)
	// and makes their pending local targets due now.
	RecoveryReport recover();

	void set_limits(const SpoolLimits &limits) { limits_ = limits; }

	// A new message file for one transaction, or nullopt (error_r set).
	std::optional<CreatedMessage> create(uint64_t now, std::string &error_r);
	// The transaction ended without a commit. False for a qid that is not
	// an open transaction (nothing is touched then).
	bool abort(std::string_view qid);

	// Adds a commit to the next batch. False (with the answer in
	// outcome_r) when the qid is not an open, uncommitted transaction.
	bool stage_commit(CommitRequest request, CommitOutcome &outcome_r);
	bool commits_staged() const { return !batch_.empty(); }
	// Makes every staged message durable in one step and answers each.
	std::vector<CommitOutcome> run_commits(uint64_t now);

	// Deliveries that are due, each marked in flight, until `max` are in
	// flight in all.
	std::vector<DeliveryJob> take_due(uint64_t now, std::size_t max);
	std::size_t in_flight() const { return jobs_.size(); }
	// The deliver role's answer for one job. False for an unknown id.
	bool delivery_result(uint32_t job_id, DeliveryStatus status, std::string_view error, uint64_t now);
	// When the next retry is due (unix seconds), if any waits.
	std::optional<uint64_t> next_due() const;

	// The operator's view: envelopes oldest first, as many as fit in
	// max_bytes of wire form; total_r counts them all.
	std::vector<const Envelope *> list(std::size_t max_bytes, std::size_t &total_r) const;
	// mailctl queue flush/remove/hold/release; an empty qid means every
	// message, for Flush only.
	ActionOutcome action(QueueAction action, std::string_view qid);

	// For the tests: the envelope of a committed message.
	const Envelope *find(std::string_view qid) const;

private:
	struct Entry {
		Envelope envelope;
		bool recovered = false; // loaded at start: an earlier attempt may have left copies
		std::set<std::size_t> in_flight; // target indexes sent to deliver
	};
	struct Job {
		std::string qid;
		std::size_t target = 0;
	};

	Spool(UniqueFd dir, UniqueFd messages, UniqueFd tmp, UniqueFd envelopes, UniqueFd corrupt,
	    const SpoolLimits &limits);

	bool write_tmp_envelope(const Envelope &envelope, std::string &error_r);
	bool rewrite_envelope(const Envelope &envelope, bool durable);
	void remove_message(std::string_view qid);
	void finish_target(Entry &entry);

	UniqueFd dir_;
	UniqueFd messages_;
	UniqueFd tmp_;
	UniqueFd envelopes_;
	UniqueFd corrupt_;
	SpoolLimits limits_;
	std::set<std::string, std::less<>> open_;     // created, not yet committed or aborted
	std::vector<CommitRequest> batch_;            // staged for the next commit batch
	std::map<std::string, Entry, std::less<>> entries_;
	std::map<uint32_t, Job> jobs_;
	uint32_t next_job_id_ = 1;
};

} // namespace maild
