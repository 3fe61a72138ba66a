// Maildir++ delivery (common/maildir.h): the order of writes, renames and
// flushes that makes a copy durable, and the name that makes it exactly once.
//
// Every path is walked one component at a time with O_NOFOLLOW from the
// store's root, and every later call is relative to a directory opened that
// way: a symbolic link planted in a mailbox (users' sessions write there)
// cannot send a copy into another user's mailbox.
#include "common/maildir.h"

#include "common/log.h"
#include "common/unique_fd.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <map>
#include <memory>
#include <vector>

namespace maild {

namespace {

// Read size of the streaming conversion: a message is never held whole.
constexpr std::size_t kChunk = 64 * 1024;

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

bool is_plain_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
	    c == '_' || c == '+' || c == '=' || c == '.';
}

std::string encode_component(std::string_view part)
{
	static constexpr char kHex[] = "0123456789ABCDEF";
	std::string out;
	for (std::size_t i = 0; i < part.size(); i++) {
		auto c = static_cast<unsigned char>(part[i]);
		if (is_plain_byte(c) && !(i == 0 && c == '.')) {
			out += static_cast<char>(c);
		} else {
			out += '%';
			out += kHex[c >> 4];
			out += kHex[c & 0xf];
		}
	}
	return out;
}

// FNV-1a, 64 bits: a stable, short stand-in for the account in the name.
uint64_t fnv1a64(std::string_view s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (unsigned char c : s) {
		h ^= c;
		h *= 0x100000001b3ull;
	}
	return h;
}

std::string hex64(uint64_t v)
{
	static constexpr char kHex[] = "0123456789abcdef";
	std::string out(16, '0');
	for (int i = 15; i >= 0; i--, v >>= 4)
		out[static_cast<std::size_t>(i)] = kHex[v & 0xf];
	return out;
}

// The Maildir convention for the host part: "/" and ":" would split the
// name (a path, the ":2," info), so they are written as octal escapes.
std::string escape_hostname(std::string_view host)
{
	std::string out;
	for (char c : host) {
		if (c == '/')
			out += "\\057";
		else if (c == ':')
			out += "\\072";
		else
			out += c;
	}
	return out;
}

// The qid goes into a file name as it is: only letters and digits may.
bool is_name_safe_qid(std::string_view qid)
{
	if (qid.empty())
		return false;
	for (unsigned char c : qid)
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return false;
	return true;
}

// CR, LF or NUL in a header value would end the header or start another.
bool is_header_safe(std::string_view value)
{
	return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

std::string errno_text(std::string_view what, int err)
{
	std::string text(what);
	text += ": ";
	text += std::strerror(err);
	return text;
}

struct Sizes {
	uint64_t bytes = 0; // as written, with LF line ends (S=)
	uint64_t lines = 0; // LFs written: bytes + lines is the size with CRLF (W=)

	void add(std::string_view chunk)
	{
		bytes += chunk.size();
		for (char c : chunk)
			lines += c == '\n';
	}
	bool operator==(const Sizes &) const = default;
};

// Streams the message from offset 0 to `sink` with each CRLF turned into
// LF; a CR not followed by LF is kept. Returns 0 when the whole message
// went through, the errno of a failed read, or -1 when the sink refused a
// chunk (it keeps its own errno).
template <typename Sink>
int stream_lf(int message_fd, Sizes &sizes, Sink &&sink)
{
	std::vector<char> in(kChunk);
	std::string out;
	out.reserve(kChunk + 1);
	bool pending_cr = false; // a CR ended the last chunk: is it half of a CRLF?
	off_t offset = 0;
	for (;;) {
		ssize_t n = pread(message_fd, in.data(), in.size(), offset);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		out.clear();
		for (ssize_t i = 0; i < n; i++) {
			char c = in[static_cast<std::size_t>(i)];
			if (pending_cr && c != '\n')
				out += '\r';
			pending_cr = c == '\r';
			if (!pending_cr)
				out += c;
		}
		if (n == 0 && pending_cr)
			out += '\r';
		if (!out.empty()) {
			sizes.add(out);
			if (!sink(std::string_view(out)))
				return -1;
		}
		if (n == 0)
			return 0;
		offset += n;
	}
}

// 0, or the errno of the failed write.
int write_all(int fd, std::string_view data)
{
	while (!data.empty()) {
		ssize_t n = write(fd, data.data(), data.size());
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			return EIO;
		data.remove_prefix(static_cast<std::size_t>(n));
	}
	return 0;
}

// Opens the directory `name` under `parent`, creating it (0700) if it is
// missing. On failure returns an invalid fd with errno set and `op` naming
// the call that failed.
UniqueFd open_or_create_dir(int parent, const char *name, bool &created, const char *&op)
{
	op = "open";
	UniqueFd fd(openat(parent, name, kDirFlags));
	if (fd || errno != ENOENT)
		return fd;
	op = "mkdir";
	if (mkdirat(parent, name, 0700) == 0)
		created = true;
	else if (errno != EEXIST)
		return UniqueFd();
	op = "open";
	return UniqueFd(openat(parent, name, kDirFlags));
}

enum class Step {
	Failed,    // result holds the failure
	Duplicate, // an earlier copy exists: only the final flush remains
	Written,   // tmp/NAME is complete: flush, rename, flush
	Renamed,   // new/NAME is in place: the final flush remains
};

// One delivery on its way through the batch.
struct Attempt {
	Step step = Step::Failed;
	MaildirResult result;
	std::string where; // "<domain>/<local>", encoded: all an error text names
	UniqueFd tmp_dir;
	UniqueFd new_dir;
	dev_t dev = 0; // the file system that holds new/, for syncfs

	void fail(DeliveryStatus status, std::string error)
	{
		step = Step::Failed;
		result.status = status;
		result.error = std::move(error);
		result.filename.clear();
		result.duplicate = false;
	}
	void fail_errno(std::string_view what, int err) { fail(DeliveryStatus::TempFail, errno_text(what, err)); }
	// Removes tmp/NAME after a failure; a leftover would only be overwritten
	// by the retry, so an error here changes nothing.
	void remove_tmp() const { unlinkat(tmp_dir.get(), result.filename.c_str(), 0); }
};

// The account's Maildir: <domain>/<local>/{cur,new,tmp}, created as needed,
// each creation made durable by an fsync of the directory that gained the
// entry. Leaves tmp/ and new/ open in the attempt and cur/ in cur_dir (for
// a retry's search); false after failing the attempt.
bool open_maildir(int store_dirfd, const std::string &path, Attempt &a, UniqueFd &cur_dir)
{
	std::string domain = path.substr(0, path.find('/'));
	std::string local = path.substr(path.find('/') + 1);
	const char *op = "";

	bool domain_created = false;
	UniqueFd domain_dir = open_or_create_dir(store_dirfd, domain.c_str(), domain_created, op);
	if (!domain_dir) {
		int err = errno;
		a.fail_errno(std::string(op) + " " + domain, err);
		return false;
	}
	if (domain_created && fsync(store_dirfd) < 0) {
		int err = errno;
		a.fail_errno("fsync mail store", err);
		return false;
	}

	bool account_created = false;
	UniqueFd account_dir = open_or_create_dir(domain_dir.get(), local.c_str(), account_created, op);
	if (!account_dir) {
		int err = errno;
		a.fail_errno(std::string(op) + " " + path, err);
		return false;
	}
	if (account_created && fsync(domain_dir.get()) < 0) {
		int err = errno;
		a.fail_errno("fsync " + domain, err);
		return false;
	}

	bool sub_created = false;
	UniqueFd sub[3];
	const char *names[3] = {"cur", "new", "tmp"};
	for (int i = 0; i < 3; i++) {
		sub[i] = open_or_create_dir(account_dir.get(), names[i], sub_created, op);
		if (!sub[i]) {
			int err = errno;
			a.fail_errno(std::string(op) + " " + path + "/" + names[i], err);
			return false;
		}
	}
	if (sub_created && fsync(account_dir.get()) < 0) {
		int err = errno;
		a.fail_errno("fsync " + path, err);
		return false;
	}
	struct stat st;
	if (fstat(sub[1].get(), &st) < 0) {
		int err = errno;
		a.fail_errno("stat " + path + "/new", err);
		return false;
	}
	a.dev = st.st_dev;
	a.new_dir = std::move(sub[1]);
	a.tmp_dir = std::move(sub[2]);
	cur_dir = std::move(sub[0]);
	return true;
}

// Whether cur/ holds NAME, or NAME with a client's ":2,flags" suffix.
// Sets err (and returns false) if the directory cannot be read.
bool found_in_cur(UniqueFd cur_dir, const std::string &name, int &err)
{
	err = 0;
	std::unique_ptr<DIR, int (*)(DIR *)> dir(fdopendir(cur_dir.get()), closedir);
	if (!dir) {
		err = errno;
		return false;
	}
	cur_dir.release(); // closedir closes it now
	for (;;) {
		errno = 0;
		const dirent *entry = readdir(dir.get());
		if (entry == nullptr) {
			err = errno;
			return false;
		}
		std::string_view entry_name(entry->d_name);
		if (entry_name.starts_with(name) &&
		    (entry_name.size() == name.size() || entry_name[name.size()] == ':'))
			return true;
	}
}

// Phase 1 for one delivery: check, find the name, create the Maildir, look
// for an earlier copy, and write tmp/NAME. Nothing is flushed yet.
void prepare(int store_dirfd, const MaildirDelivery &d, int message_fd, Attempt &a)
{
	std::optional<std::string> path = mailbox_path(d.account);
	if (!path || !is_header_safe(d.account)) {
		a.fail(DeliveryStatus::PermFail, "invalid account name");
		return;
	}
	if (!is_header_safe(d.return_path)) {
		a.fail(DeliveryStatus::PermFail, "invalid return path");
		return;
	}
	if (!is_name_safe_qid(d.qid)) {
		a.fail(DeliveryStatus::PermFail, "invalid queue id");
		return;
	}
	a.where = *path;

	std::string header = "Return-Path: <" + d.return_path + ">\nDelivered-To: " + d.account + "\n";
	// The name holds the sizes, so the content is measured before anything
	// is written: the same delivery always gets the same name, and an
	// earlier copy is found before a second one is written.
	Sizes expected;
	expected.add(header);
	int err = stream_lf(message_fd, expected, [](std::string_view) { return true; });
	if (err != 0) {
		a.fail_errno("read message", err);
		return;
	}
	std::string name = std::to_string(d.created) + ".M" + d.qid + "_" + hex64(fnv1a64(d.account)) + "." +
	    escape_hostname(d.hostname) + ",S=" + std::to_string(expected.bytes) +
	    ",W=" + std::to_string(expected.bytes + expected.lines);

	UniqueFd cur_dir;
	if (!open_maildir(store_dirfd, *path, a, cur_dir))
		return;
	a.result.filename = name;

	struct stat st;
	if (fstatat(a.new_dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
		a.step = Step::Duplicate;
		return;
	}
	if (errno != ENOENT) {
		err = errno;
		a.fail_errno("stat " + a.where + "/new/" + name, err);
		return;
	}
	if (d.retry) {
		bool found = found_in_cur(std::move(cur_dir), name, err);
		if (err != 0) {
			a.fail_errno("read " + a.where + "/cur", err);
			return;
		}
		if (found) {
			a.step = Step::Duplicate;
			return;
		}
	}

	// A leftover of an attempt that crashed has this name too: it is
	// overwritten, never appended to.
	std::string tmp_name = a.where + "/tmp/" + name;
	UniqueFd file(openat(a.tmp_dir.get(), name.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
	    0600));
	if (!file) {
		err = errno;
		a.fail_errno("open " + tmp_name, err);
		return;
	}
	Sizes written;
	written.add(header);
	int write_err = write_all(file.get(), header);
	if (write_err == 0) {
		err = stream_lf(message_fd, written, [&](std::string_view chunk) {
			write_err = write_all(file.get(), chunk);
			return write_err == 0;
		});
	}
	if (write_err != 0 || err != 0) {
		a.remove_tmp();
		a.fail_errno((write_err != 0 ? "write " : "read message for ") + tmp_name,
		    write_err != 0 ? write_err : err);
		return;
	}
	if (written != expected) {
		a.remove_tmp();
		a.fail(DeliveryStatus::TempFail, "message changed while being delivered");
		return;
	}
	// close() is where some file systems (NFS) report a failed write.
	if (close(file.release()) < 0) {
		err = errno;
		a.remove_tmp();
		a.fail_errno("close " + tmp_name, err);
		return;
	}
	a.step = Step::Written;
}

// One syncfs(2) per file system that holds an attempt in one of `steps`
// (almost always one: the store's); the attempts whose file system failed
// to flush fail with `what`, after on_failure has seen them.
template <typename OnFailure>
void flush_file_systems(std::vector<Attempt> &attempts, std::initializer_list<Step> steps, const char *what,
    OnFailure &&on_failure)
{
	auto selected = [&](const Attempt &a) {
		return std::find(steps.begin(), steps.end(), a.step) != steps.end();
	};
	std::map<dev_t, int> flush_fd;
	for (const Attempt &a : attempts)
		if (selected(a))
			flush_fd.emplace(a.dev, a.new_dir.get());
	std::map<dev_t, int> failed; // dev -> errno
	for (const auto &[dev, fd] : flush_fd) {
		if (syncfs(fd) < 0) {
			int err = errno; // read before emplace allocates
			failed.emplace(dev, err);
		}
	}
	if (failed.empty())
		return;
	for (Attempt &a : attempts) {
		if (!selected(a))
			continue;
		auto it = failed.find(a.dev);
		if (it == failed.end())
			continue;
		on_failure(a);
		a.fail_errno(what, it->second);
	}
}

} // namespace

std::optional<std::string> mailbox_path(std::string_view account)
{
	std::size_t at = account.find('@');
	if (at == std::string_view::npos || account.find('@', at + 1) != std::string_view::npos || at == 0 ||
	    at + 1 == account.size())
		return std::nullopt;
	return encode_component(account.substr(at + 1)) + "/" + encode_component(account.substr(0, at));
}

MaildirResult deliver_to_maildir(int store_dirfd, const MaildirDelivery &delivery, int message_fd)
{
	return deliver_batch(store_dirfd, std::span(&delivery, 1), std::span(&message_fd, 1)).front();
}

std::vector<MaildirResult> deliver_batch(int store_dirfd, std::span<const MaildirDelivery> deliveries,
    std::span<const int> message_fds)
{
	if (deliveries.size() != message_fds.size())
		panic("deliver_batch: %zu deliveries but %zu message files", deliveries.size(), message_fds.size());
	std::vector<Attempt> attempts(deliveries.size());

	// Phase 1: every copy into tmp/ (or found from an earlier attempt).
	for (std::size_t i = 0; i < deliveries.size(); i++)
		prepare(store_dirfd, deliveries[i], message_fds[i], attempts[i]);

	// Phase 2: the copies' bytes are on disk before any name in new/ points
	// at them (a crash must never leave a short file in new/).
	flush_file_systems(attempts, {Step::Written}, "syncfs before rename",
	    [](const Attempt &a) { a.remove_tmp(); });

	// Phase 3: the renames that publish the copies.
	for (Attempt &a : attempts) {
		if (a.step != Step::Written)
			continue;
		if (renameat(a.tmp_dir.get(), a.result.filename.c_str(), a.new_dir.get(), a.result.filename.c_str()) <
		    0) {
			int err = errno;
			a.remove_tmp();
			a.fail_errno("rename " + a.where + "/tmp/" + a.result.filename + " to new/", err);
			continue;
		}
		a.step = Step::Renamed;
	}

	// Phase 4: the renames on disk. An earlier copy is flushed too: the
	// attempt that wrote it may have died before its own flush. A failure
	// here leaves the copy in new/, where the retry finds it.
	flush_file_systems(attempts, {Step::Renamed, Step::Duplicate}, "syncfs after rename", [](const Attempt &) {});

	std::vector<MaildirResult> results;
	results.reserve(attempts.size());
	for (Attempt &a : attempts) {
		if (a.step != Step::Failed) {
			a.result.status = DeliveryStatus::Ok;
			a.result.error.clear();
			a.result.duplicate = a.step == Step::Duplicate;
		}
		results.push_back(std::move(a.result));
	}
	return results;
}

} // namespace maild
