#include "queue/spool.h"

#include "common/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace maild {

namespace {

constexpr const char *kMessagesDir = "messages";
constexpr const char *kTmpDir = "tmp";
constexpr const char *kEnvelopesDir = "envelopes";
constexpr const char *kCorruptDir = "corrupt";

// The largest envelope file: header, the longest wire form, CRC.
constexpr std::size_t kMaxEnvelopeFile = 16 + kMaxEnvelopeWire + 4;

// Fixed error texts for smtpd's reply; the details go to the log.
constexpr const char *kCommitTempFail = "cannot store the message now";

UniqueFd open_subdir(int dir, const char *name, std::string &error_r)
{
	if (mkdirat(dir, name, 0700) < 0 && errno != EEXIST) {
		error_r = std::string("mkdir ") + name + ": " + std::strerror(errno);
		return {};
	}
	UniqueFd fd(openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
	if (!fd)
		error_r = std::string("open ") + name + ": " + std::strerror(errno);
	return fd;
}

// The names in a directory, without "." and "..".
std::optional<std::vector<std::string>> list_dir(int dir)
{
	int fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return std::nullopt;
	DIR *d = fdopendir(fd);
	if (d == nullptr) {
		close(fd);
		return std::nullopt;
	}
	std::vector<std::string> names;
	while (dirent *de = readdir(d)) {
		std::string_view name = de->d_name;
		if (name != "." && name != "..")
			names.emplace_back(name);
	}
	closedir(d);
	std::sort(names.begin(), names.end());
	return names;
}

bool read_file_at(int dir, const std::string &name, std::string &out, std::string &error_r)
{
	UniqueFd fd(openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
	if (!fd) {
		error_r = std::strerror(errno);
		return false;
	}
	out.clear();
	char buf[8192];
	for (;;) {
		ssize_t n = read(fd.get(), buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error_r = std::strerror(errno);
			return false;
		}
		if (n == 0)
			return true;
		out.append(buf, static_cast<std::size_t>(n));
		if (out.size() > kMaxEnvelopeFile) {
			error_r = "file too long";
			return false;
		}
	}
}

bool write_all(int fd, std::string_view bytes)
{
	while (!bytes.empty()) {
		ssize_t n = write(fd, bytes.data(), bytes.size());
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return false;
		bytes.remove_prefix(static_cast<std::size_t>(n));
	}
	return true;
}

std::string random_qid(uint64_t now)
{
	uint32_t rnd = 0;
	// getrandom without flags blocks only before the pool is initialised,
	// at boot; a short read of 4 bytes cannot happen.
	while (getrandom(&rnd, sizeof(rnd), 0) != static_cast<ssize_t>(sizeof(rnd)))
		if (errno != EINTR)
			fatal("queue: getrandom");
	char buf[kQueueIdLength + 1];
	std::snprintf(buf, sizeof(buf), "%08x%08x", static_cast<uint32_t>(now), rnd);
	return std::string(buf, kQueueIdLength);
}

bool has_pending_local(const Envelope &envelope)
{
	return std::any_of(envelope.targets.begin(), envelope.targets.end(), [](const EnvelopeTarget &t) {
		return t.kind == TargetKind::Local && t.state == TargetState::Pending;
	});
}

bool all_delivered(const Envelope &envelope)
{
	return std::all_of(envelope.targets.begin(), envelope.targets.end(),
	    [](const EnvelopeTarget &t) { return t.state == TargetState::Delivered; });
}

} // namespace

Spool::Spool(UniqueFd dir, UniqueFd messages, UniqueFd tmp, UniqueFd envelopes, UniqueFd corrupt,
    const SpoolLimits &limits)
    : dir_(std::move(dir)), messages_(std::move(messages)), tmp_(std::move(tmp)), envelopes_(std::move(envelopes)),
      corrupt_(std::move(corrupt)), limits_(limits)
{
}

std::unique_ptr<Spool> Spool::open(UniqueFd dir, const SpoolLimits &limits, std::string &error_r)
{
	UniqueFd messages = open_subdir(dir.get(), kMessagesDir, error_r);
	if (!messages)
		return nullptr;
	UniqueFd tmp = open_subdir(dir.get(), kTmpDir, error_r);
	if (!tmp)
		return nullptr;
	UniqueFd envelopes = open_subdir(dir.get(), kEnvelopesDir, error_r);
	if (!envelopes)
		return nullptr;
	UniqueFd corrupt = open_subdir(dir.get(), kCorruptDir, error_r);
	if (!corrupt)
		return nullptr;
	return std::unique_ptr<Spool>(new Spool(std::move(dir), std::move(messages), std::move(tmp),
	    std::move(envelopes), std::move(corrupt), limits));
}

RecoveryReport Spool::recover()
{
	RecoveryReport report;
	// Envelopes half-written when the queue stopped: never committed.
	if (auto names = list_dir(tmp_.get()))
		for (const std::string &name : *names)
			if (unlinkat(tmp_.get(), name.c_str(), 0) < 0)
				log_warn("queue: cannot remove tmp/%s", is_valid_queue_id(name) ? name.c_str() : "(bad name)");
	auto envelope_names = list_dir(envelopes_.get());
	if (!envelope_names)
		fatal("queue: cannot list envelopes/");
	for (const std::string &name : *envelope_names) {
		std::string bytes, error;
		std::optional<Envelope> envelope;
		struct stat st;
		if (!is_valid_queue_id(name))
			error = "not a queue id";
		else if (!read_file_at(envelopes_.get(), name, bytes, error))
			error = "unreadable: " + error;
		else if (!(envelope = decode_envelope_file(bytes, error)))
			; // error says why
		else if (envelope->qid != name)
			error = "queue id differs from the file name";
		else if (fstatat(messages_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			error = "its message file is missing";
		if (!error.empty()) {
			// Kept for a human to look at: it may hold the only record
			// of someone's mail.
			report.corrupt++;
			const char *shown = is_valid_queue_id(name) ? name.c_str() : "(bad name)";
			if (renameat(envelopes_.get(), name.c_str(), corrupt_.get(), name.c_str()) < 0)
				log_warn("queue: corrupt envelope qid=%s error=%s, cannot move it to corrupt/", shown,
				    error.c_str());
			else
				log_warnx("queue: corrupt envelope qid=%s error=%s, moved to corrupt/", shown, error.c_str());
			continue;
		}
		if (all_delivered(*envelope)) {
			remove_message(name);
			continue;
		}
		Entry entry;
		entry.envelope = std::move(*envelope);
		entry.recovered = true;
		for (EnvelopeTarget &t : entry.envelope.targets)
			if (t.state == TargetState::Pending)
				t.next_attempt = 0;
		entries_.emplace(name, std::move(entry));
		report.recovered++;
	}
	// Message files without an envelope were never committed: their
	// senders got no 250 and will send again.
	if (auto names = list_dir(messages_.get()))
		for (const std::string &name : *names)
			if (entries_.find(name) == entries_.end()) {
				if (unlinkat(messages_.get(), name.c_str(), 0) < 0)
					log_warn("queue: cannot remove uncommitted message %s",
					    is_valid_queue_id(name) ? name.c_str() : "(bad name)");
				else
					report.removed_uncommitted++;
			}
	return report;
}

std::optional<CreatedMessage> Spool::create(uint64_t now, std::string &error_r)
{
	// The random half makes a clash rare; O_EXCL makes it harmless.
	for (int tries = 0; tries < 8; tries++) {
		std::string qid = random_qid(now);
		if (entries_.count(qid) != 0 || open_.count(qid) != 0)
			continue;
		UniqueFd fd(openat(messages_.get(), qid.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
		if (!fd && errno == EEXIST)
			continue;
		if (!fd) {
			log_warn("queue: cannot create a message file");
			error_r = kCommitTempFail;
			return std::nullopt;
		}
		open_.insert(qid);
		return CreatedMessage{std::move(qid), std::move(fd)};
	}
	log_warnx("queue: cannot find a free queue id");
	error_r = kCommitTempFail;
	return std::nullopt;
}

bool Spool::abort(std::string_view qid)
{
	auto it = open_.find(qid);
	if (it == open_.end())
		return false;
	if (unlinkat(messages_.get(), it->c_str(), 0) < 0)
		log_warn("queue: cannot remove aborted message qid=%s", it->c_str());
	open_.erase(it);
	return true;
}

bool Spool::stage_commit(CommitRequest request, CommitOutcome &outcome_r)
{
	auto it = open_.find(request.envelope.qid);
	if (it == open_.end()) {
		outcome_r = {request.id, false, "no such transaction"};
		return false;
	}
	// From here the transaction is in the batch: a second commit or an
	// abort of it is refused.
	open_.erase(it);
	batch_.push_back(std::move(request));
	return true;
}

bool Spool::write_tmp_envelope(const Envelope &envelope, std::string &error_r)
{
	std::string bytes = encode_envelope_file(envelope);
	UniqueFd fd(openat(tmp_.get(), envelope.qid.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
	if (!fd || !write_all(fd.get(), bytes)) {
		error_r = std::strerror(errno);
		unlinkat(tmp_.get(), envelope.qid.c_str(), 0);
		return false;
	}
	return true;
}

std::vector<CommitOutcome> Spool::run_commits(uint64_t now)
{
	std::vector<CommitRequest> batch = std::move(batch_);
	batch_.clear();
	std::vector<CommitOutcome> outcomes;
	std::vector<bool> good(batch.size(), false);
	auto drop = [&](std::size_t i, bool committed_name) {
		const char *qid = batch[i].envelope.qid.c_str();
		unlinkat(committed_name ? envelopes_.get() : tmp_.get(), qid, 0);
		unlinkat(messages_.get(), qid, 0);
		good[i] = false;
	};

	// 1. Each envelope, complete with what the queue keeps, into tmp/.
	for (std::size_t i = 0; i < batch.size(); i++) {
		Envelope &e = batch[i].envelope;
		struct stat st;
		std::string error;
		if (fstatat(messages_.get(), e.qid.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
			log_warn("queue: commit failed qid=%s: message file", e.qid.c_str());
			unlinkat(messages_.get(), e.qid.c_str(), 0);
			continue;
		}
		e.created = now;
		e.size = static_cast<uint64_t>(st.st_size);
		e.flags &= kEnvelopeLocalSenderUnauthenticated; // smtpd cannot hold a message
		for (EnvelopeTarget &t : e.targets) {
			t.state = t.kind == TargetKind::Local ? TargetState::Pending : TargetState::WaitingOutbound;
			t.attempts = 0;
			t.next_attempt = 0;
			t.last_error.clear();
		}
		if (!write_tmp_envelope(e, error)) {
			log_warnx("queue: commit failed qid=%s: writing the envelope: %s", e.qid.c_str(), error.c_str());
			unlinkat(messages_.get(), e.qid.c_str(), 0);
			continue;
		}
		good[i] = true;
	}

	// 2. One flush of the whole file system makes every message file,
	// every tmp envelope and the directory entries created so far
	// durable: one disk flush for the batch instead of two per message.
	if (std::find(good.begin(), good.end(), true) != good.end() && syncfs(dir_.get()) < 0) {
		log_warn("queue: commit of %zu messages failed: syncfs", batch.size());
		for (std::size_t i = 0; i < batch.size(); i++)
			if (good[i])
				drop(i, false);
	}

	// 3. The commit point: each envelope appears under envelopes/.
	bool renamed_any = false;
	for (std::size_t i = 0; i < batch.size(); i++) {
		if (!good[i])
			continue;
		const char *qid = batch[i].envelope.qid.c_str();
		if (renameat(tmp_.get(), qid, envelopes_.get(), qid) < 0) {
			log_warn("queue: commit failed qid=%s: rename", qid);
			drop(i, false);
			continue;
		}
		renamed_any = true;
	}
	// 4. One fsync of envelopes/ makes the renames durable.
	if (renamed_any && fsync(envelopes_.get()) < 0) {
		log_warn("queue: commit of %zu messages failed: fsync of envelopes/", batch.size());
		for (std::size_t i = 0; i < batch.size(); i++)
			if (good[i])
				drop(i, true);
	}

	log_debug("queue: commit batch n=%zu", batch.size());
	for (std::size_t i = 0; i < batch.size(); i++) {
		CommitRequest &request = batch[i];
		if (!good[i]) {
			outcomes.push_back({request.id, false, kCommitTempFail});
			continue;
		}
		const Envelope &e = request.envelope;
		log_info("queue: committed qid=%s size=%llu nrcpt=%zu", e.qid.c_str(),
		    static_cast<unsigned long long>(e.size), e.targets.size());
		for (const EnvelopeTarget &t : e.targets)
			if (t.state == TargetState::WaitingOutbound)
				log_info("queue: waiting for outbound qid=%s to=%s", e.qid.c_str(), t.address.c_str());
		outcomes.push_back({request.id, true, ""});
		Entry entry;
		entry.envelope = std::move(request.envelope);
		std::string qid = entry.envelope.qid;
		entries_.emplace(std::move(qid), std::move(entry));
	}
	return outcomes;
}

std::vector<DeliveryJob> Spool::take_due(uint64_t now, std::size_t max)
{
	std::vector<DeliveryJob> jobs;
	for (auto &[qid, entry] : entries_) {
		Envelope &e = entry.envelope;
		if ((e.flags & kEnvelopeHeld) != 0)
			continue;
		for (std::size_t i = 0; i < e.targets.size(); i++) {
			if (jobs_.size() >= max)
				return jobs;
			EnvelopeTarget &t = e.targets[i];
			if (t.kind != TargetKind::Local || t.state != TargetState::Pending || t.next_attempt > now ||
			    entry.in_flight.count(i) != 0)
				continue;
			UniqueFd fd(openat(messages_.get(), qid.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
			if (!fd) {
				// Retried like any temporary failure, so a passing
				// problem (out of descriptors) does not lose mail.
				log_warn("queue: cannot open message qid=%s", qid.c_str());
				t.attempts++;
				t.next_attempt = now + limits_.retry_min;
				t.last_error = "the queue cannot open the message file";
				continue;
			}
			uint32_t id = next_job_id_++;
			if (next_job_id_ == 0)
				next_job_id_ = 1;
			uint8_t flags = (entry.recovered || t.attempts > 0) ? kDeliverRetry : 0;
			jobs_[id] = Job{qid, i};
			entry.in_flight.insert(i);
			jobs.push_back(DeliveryJob{id, qid, t.address, e.sender, e.created, flags, std::move(fd)});
		}
	}
	return jobs;
}

bool Spool::delivery_result(uint32_t job_id, DeliveryStatus status, std::string_view error, uint64_t now)
{
	auto job = jobs_.find(job_id);
	if (job == jobs_.end())
		return false;
	std::string qid = job->second.qid;
	std::size_t index = job->second.target;
	jobs_.erase(job);
	auto it = entries_.find(qid);
	if (it == entries_.end())
		return true; // removed by the operator while deliver worked on it
	Entry &entry = it->second;
	entry.in_flight.erase(index);
	EnvelopeTarget &t = entry.envelope.targets[index];
	switch (status) {
	case DeliveryStatus::Ok:
		t.state = TargetState::Delivered;
		t.last_error.clear();
		log_info("queue: delivered qid=%s to=%s", qid.c_str(), t.address.c_str());
		break;
	case DeliveryStatus::TempFail: {
		t.attempts++;
		// retry_min * 2^(attempts-1), capped; the shift is bounded so
		// that it cannot overflow however many attempts there were.
		uint64_t delay = limits_.retry_max;
		if (t.attempts - 1 < 32)
			delay = std::min<uint64_t>(uint64_t{limits_.retry_min} << (t.attempts - 1), limits_.retry_max);
		t.next_attempt = now + delay;
		t.last_error.assign(error);
		log_info("queue: deferred qid=%s to=%s attempts=%u retry_in=%llu error=%s", qid.c_str(),
		    t.address.c_str(), t.attempts, static_cast<unsigned long long>(delay), t.last_error.c_str());
		break;
	}
	case DeliveryStatus::PermFail:
		t.state = TargetState::Failed;
		t.attempts++;
		t.last_error.assign(error);
		log_info("queue: failed qid=%s to=%s error=%s", qid.c_str(), t.address.c_str(), t.last_error.c_str());
		break;
	}
	finish_target(entry);
	return true;
}

void Spool::finish_target(Entry &entry)
{
	if (all_delivered(entry.envelope)) {
		std::string qid = entry.envelope.qid;
		remove_message(qid);
		entries_.erase(qid);
		return;
	}
	// No fsync: a lost update only repeats an attempt, and a repeated
	// Maildir delivery finds its earlier copy by name (docs/QUEUE.md).
	rewrite_envelope(entry.envelope, false);
}

bool Spool::rewrite_envelope(const Envelope &envelope, bool durable)
{
	std::string error;
	const char *qid = envelope.qid.c_str();
	if (!write_tmp_envelope(envelope, error)) {
		log_warnx("queue: cannot update envelope qid=%s: %s", qid, error.c_str());
		return false;
	}
	if (durable) {
		UniqueFd fd(openat(tmp_.get(), qid, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
		if (!fd || fsync(fd.get()) < 0) {
			log_warn("queue: cannot update envelope qid=%s: fsync", qid);
			unlinkat(tmp_.get(), qid, 0);
			return false;
		}
	}
	if (renameat(tmp_.get(), qid, envelopes_.get(), qid) < 0) {
		log_warn("queue: cannot update envelope qid=%s: rename", qid);
		unlinkat(tmp_.get(), qid, 0);
		return false;
	}
	if (durable && fsync(envelopes_.get()) < 0) {
		log_warn("queue: cannot update envelope qid=%s: fsync of envelopes/", qid);
		return false;
	}
	return true;
}

void Spool::remove_message(std::string_view qid)
{
	std::string name(qid);
	// The envelope first: a crash between the two leaves a message file
	// without an envelope, which recovery removes.
	if (unlinkat(envelopes_.get(), name.c_str(), 0) < 0 && errno != ENOENT)
		log_warn("queue: cannot remove envelope qid=%s", name.c_str());
	if (unlinkat(messages_.get(), name.c_str(), 0) < 0 && errno != ENOENT)
		log_warn("queue: cannot remove message qid=%s", name.c_str());
}

std::optional<uint64_t> Spool::next_due() const
{
	std::optional<uint64_t> due;
	for (const auto &[qid, entry] : entries_) {
		if ((entry.envelope.flags & kEnvelopeHeld) != 0)
			continue;
		for (std::size_t i = 0; i < entry.envelope.targets.size(); i++) {
			const EnvelopeTarget &t = entry.envelope.targets[i];
			if (t.kind == TargetKind::Local && t.state == TargetState::Pending && entry.in_flight.count(i) == 0 &&
			    (!due || t.next_attempt < *due))
				due = t.next_attempt;
		}
	}
	return due;
}

std::vector<const Envelope *> Spool::list(std::size_t max_bytes, std::size_t &total_r) const
{
	std::vector<const Envelope *> all;
	for (const auto &[qid, entry] : entries_)
		all.push_back(&entry.envelope);
	std::sort(all.begin(), all.end(), [](const Envelope *a, const Envelope *b) {
		return a->created != b->created ? a->created < b->created : a->qid < b->qid;
	});
	total_r = all.size();
	std::vector<const Envelope *> shown;
	std::size_t used = 0;
	for (const Envelope *e : all) {
		std::size_t size = envelope_wire_size(*e);
		if (used + size > max_bytes)
			break;
		used += size;
		shown.push_back(e);
	}
	return shown;
}

ActionOutcome Spool::action(QueueAction action, std::string_view qid)
{
	if (qid.empty()) {
		if (action != QueueAction::Flush)
			return {false, "a queue id is required"};
		std::size_t flushed = 0;
		for (auto &[name, entry] : entries_) {
			if ((entry.envelope.flags & kEnvelopeHeld) != 0 || !has_pending_local(entry.envelope))
				continue;
			for (EnvelopeTarget &t : entry.envelope.targets)
				if (t.state == TargetState::Pending)
					t.next_attempt = 0;
			flushed++;
		}
		std::string text = "flushed " + std::to_string(flushed) + (flushed == 1 ? " message" : " messages");
		log_info("queue: %s", text.c_str());
		return {true, text};
	}
	auto it = entries_.find(qid);
	if (it == entries_.end())
		return {false, "no such message"};
	Entry &entry = it->second;
	std::string name = it->first;
	switch (action) {
	case QueueAction::Flush:
		for (EnvelopeTarget &t : entry.envelope.targets)
			if (t.state == TargetState::Pending)
				t.next_attempt = 0;
		log_info("queue: flushed qid=%s", name.c_str());
		return {true, "flushed " + name};
	case QueueAction::Remove:
		remove_message(name);
		entries_.erase(it);
		log_info("queue: removed qid=%s", name.c_str());
		return {true, "removed " + name};
	case QueueAction::Hold:
	case QueueAction::Release: {
		bool hold = action == QueueAction::Hold;
		uint8_t old_flags = entry.envelope.flags;
		if (hold)
			entry.envelope.flags |= kEnvelopeHeld;
		else
			entry.envelope.flags &= static_cast<uint8_t>(~kEnvelopeHeld);
		// The operator was told it is done: make it so across a crash.
		if (!rewrite_envelope(entry.envelope, true)) {
			entry.envelope.flags = old_flags;
			return {false, "cannot update the envelope"};
		}
		if (!hold)
			for (EnvelopeTarget &t : entry.envelope.targets)
				if (t.state == TargetState::Pending)
					t.next_attempt = 0;
		log_info("queue: %s qid=%s", hold ? "held" : "released", name.c_str());
		return {true, std::string(hold ? "held " : "released ") + name};
	}
	}
	return {false, "unknown action"};
}

const Envelope *Spool::find(std::string_view qid) const
{
	auto it = entries_.find(qid);
	return it == entries_.end() ? nullptr : &it->second.envelope;
}

} // namespace maild
