// Maildir++ delivery: the mailbox path of an account, the file a delivery
// leaves in new/ (headers, LF line ends, S= and W= in its name), exactly
// once across retries, batches whose items fail alone, and a message that
// Python's stock mailbox module reads back.
#include "common/maildir.h"
#include "common/unique_fd.h"
#include "tests/unit/temp_dir.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

using namespace std::literals;
using maild::DeliveryStatus;
using maild::MaildirDelivery;
using maild::MaildirResult;
using maild::UniqueFd;
using maild::test::TempDir;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kMessage = "From: Bob <bob@example.org>\r\n"
				      "To: alice@example.com\r\n"
				      "Subject: Hello there\r\n"
				      "\r\n"
				      "First line\r\n"
				      "\r\n"
				      "Last line\r\n";

std::string lf_of(std::string_view crlf)
{
	std::string out;
	for (std::size_t i = 0; i < crlf.size(); i++) {
		if (crlf[i] == '\r' && i + 1 < crlf.size() && crlf[i + 1] == '\n')
			continue;
		out += crlf[i];
	}
	return out;
}

std::string read_file(const fs::path &path)
{
	std::ifstream in(path, std::ios::binary);
	cr_assert(in.good(), "cannot read %s", path.c_str());
	std::ostringstream ss;
	ss << in.rdbuf();
	return ss.str();
}

void write_file(const fs::path &path, std::string_view content)
{
	std::ofstream out(path, std::ios::binary | std::ios::trunc);
	out.write(content.data(), static_cast<std::streamsize>(content.size()));
	cr_assert(out.good(), "cannot write %s", path.c_str());
}

std::vector<std::string> entries(const fs::path &dir)
{
	std::vector<std::string> names;
	for (const auto &e : fs::directory_iterator(dir))
		names.push_back(e.path().filename().string());
	std::sort(names.begin(), names.end());
	return names;
}

// A store (the delivery root) and a place for message files beside it.
struct Fixture {
	TempDir dir;
	fs::path store = dir.path / "store";
	fs::path spool = dir.path / "spool";
	UniqueFd store_fd;
	int next_message = 0;

	Fixture()
	{
		fs::create_directory(store);
		fs::create_directory(spool);
		store_fd = UniqueFd(open(store.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
		cr_assert(store_fd.valid());
	}

	// A queued message file, open read-only as the queue hands it over.
	UniqueFd message(std::string_view content)
	{
		fs::path path = spool / ("msg" + std::to_string(next_message++));
		write_file(path, content);
		UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
		cr_assert(fd.valid());
		return fd;
	}

	fs::path maildir(std::string_view domain, std::string_view local) const { return store / domain / local; }

	MaildirResult deliver(const MaildirDelivery &d, int message_fd)
	{
		return maild::deliver_to_maildir(store_fd.get(), d, message_fd);
	}
};

constexpr const char *kQid = "0123456789abcdef";

MaildirDelivery delivery(std::string qid, std::string account)
{
	MaildirDelivery d;
	d.qid = std::move(qid);
	d.account = std::move(account);
	d.return_path = "bob@example.org";
	d.created = 1764680000;
	d.hostname = "mx.example.com";
	return d;
}

uint64_t field(std::string_view name, std::string_view key)
{
	auto pos = name.find(key);
	cr_assert(pos != std::string_view::npos, "no %.*s in %.*s", static_cast<int>(key.size()), key.data(),
	    static_cast<int>(name.size()), name.data());
	return std::stoull(std::string(name.substr(pos + key.size())));
}

// The file is what the header promises: the two headers, the message with
// LF line ends, and S= (its size) and W= (its size with CRLF) in the name.
void check_delivered(const Fixture &f, const MaildirResult &r, std::string_view account, std::string_view message,
    std::string_view return_path = "bob@example.org")
{
	fs::path maildir = f.store / *maild::mailbox_path(account);
	cr_assert_eq(r.status, DeliveryStatus::Ok, "status %d error %s", static_cast<int>(r.status), r.error.c_str());
	cr_assert(r.error.empty());
	std::string content = read_file(maildir / "new" / r.filename);
	std::string want = "Return-Path: <" + std::string(return_path) + ">\nDelivered-To: " + std::string(account) +
	    "\n" + lf_of(message);
	cr_assert(content == want, "content differs (%zu bytes, want %zu)", content.size(), want.size());
	cr_assert_eq(field(r.filename, ",S="), content.size());
	auto lines = static_cast<uint64_t>(std::count(content.begin(), content.end(), '\n'));
	cr_assert_eq(field(r.filename, ",W="), content.size() + lines);
}

} // namespace

Test(maildir, mailbox_path_encodes_components)
{
	struct Case {
		std::string_view account;
		std::string_view want;
	};
	const Case cases[] = {
	    {"alice@example.com", "example.com/alice"},
	    {"Alice.B@Example.COM", "Example.COM/Alice.B"},
	    {"user+tag=x_y-z@d", "d/user+tag=x_y-z"},
	    {"a/b@example.com", "example.com/a%2Fb"},
	    {"..@example.com", "example.com/%2E."},
	    {".@example.com", "example.com/%2E"},
	    {".hidden@example.com", "example.com/%2Ehidden"},
	    {"a.b.@example.com", "example.com/a.b."},
	    {"x@..", "%2E./x"},
	    {"x@.example", "%2Eexample/x"},
	    {"100%@example.com", "example.com/100%25"},
	    {"%2F@example.com", "example.com/%252F"},
	    {"a b\t\x01\x7f@d", "d/a%20b%09%01%7F"},
	    {"j\xc3\xb6rg@b\xc3\xbc" "cher.de", "b%C3%BCcher.de/j%C3%B6rg"},
	    {"\"quoted\\\"\"@d", "d/%22quoted%5C%22%22"},
	};
	for (const auto &c : cases) {
		auto got = maild::mailbox_path(c.account);
		cr_assert(got.has_value(), "refused %s", std::string(c.account).c_str());
		cr_assert(*got == c.want, "mailbox_path(%s) = %s, want %s", std::string(c.account).c_str(),
		    got->c_str(), std::string(c.want).c_str());
		// Exactly two safe components whatever the input.
		auto slash = got->find('/');
		cr_assert(slash != std::string::npos && got->find('/', slash + 1) == std::string::npos);
		std::string_view path = *got;
		for (std::string_view part : {path.substr(0, slash), path.substr(slash + 1)})
			cr_assert(!part.empty() && part != "." && part != ".." && part[0] != '.');
	}
}

Test(maildir, mailbox_path_refuses_addresses_without_one_at)
{
	for (std::string_view bad : {""sv, "alice"sv, "@example.com"sv, "alice@"sv, "@"sv, "a@b@c"sv, "a@@b"sv})
		cr_assert(!maild::mailbox_path(bad).has_value(), "accepted \"%s\"", std::string(bad).c_str());
}

Test(maildir, mailbox_path_keeps_distinct_accounts_apart)
{
	// Encoding is injective: what "%" could have confused stays apart.
	cr_assert(*maild::mailbox_path("a%2Fb@d") != *maild::mailbox_path("a/b@d"));
	cr_assert(*maild::mailbox_path("%2E@d") != *maild::mailbox_path(".@d"));
}

Test(maildir, delivery_creates_maildir_and_file)
{
	Fixture f;
	auto msg = f.message(kMessage);
	MaildirResult r = f.deliver(delivery(kQid, "alice@example.com"), msg.get());
	fs::path md = f.maildir("example.com", "alice");
	check_delivered(f, r, "alice@example.com", kMessage);
	cr_assert(!r.duplicate);
	// <created>.M<qid>_<16 hex digits>.<host>,S=<n>,W=<n>
	std::string_view name = r.filename;
	std::string_view prefix = "1764680000.M0123456789abcdef_";
	cr_assert(name.starts_with(prefix), "name %s", r.filename.c_str());
	std::string_view hash = name.substr(prefix.size(), 16);
	cr_assert(hash.find_first_not_of("0123456789abcdef") == std::string_view::npos, "name %s", r.filename.c_str());
	cr_assert(name.substr(prefix.size() + 16).starts_with(".mx.example.com,S="), "name %s", r.filename.c_str());
	for (const char *sub : {"cur", "new", "tmp"}) {
		struct stat st;
		cr_assert_eq(stat((md / sub).c_str(), &st), 0, "no %s", sub);
		cr_assert(S_ISDIR(st.st_mode));
		cr_assert_eq(st.st_mode & 07777, 0700u, "%s mode %o", sub, st.st_mode & 07777);
	}
	cr_assert_eq(entries(md / "new").size(), 1u);
	cr_assert(entries(md / "tmp").empty(), "tmp/ not emptied");
	cr_assert(entries(md / "cur").empty());
	struct stat st;
	cr_assert_eq(stat((md / "new" / r.filename).c_str(), &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600u);
}

Test(maildir, only_crlf_becomes_lf)
{
	// smtpd lets no bare CR or LF into the spool, but whatever is there is
	// copied as it is: only a CR that ends a line goes, wherever the reads
	// split the file.
	Fixture f;
	std::string_view message = "Subject: odd\r\n\r\na\rb\r\r\nbare LF\nend\r";
	auto msg = f.message(message);
	MaildirResult r = f.deliver(delivery(kQid, "alice@example.com"), msg.get());
	check_delivered(f, r, "alice@example.com", message);
	std::string content = read_file(f.maildir("example.com", "alice") / "new" / r.filename);
	cr_assert(content.ends_with("\n\na\rb\r\nbare LF\nend\r"), "content %s", content.c_str());
}

Test(maildir, null_sender_and_escaped_hostname)
{
	Fixture f;
	auto msg = f.message(kMessage);
	MaildirDelivery d = delivery("00000000000000aa", "alice@example.com");
	d.return_path = "";
	d.hostname = "mx:2525/a";
	MaildirResult r = f.deliver(d, msg.get());
	check_delivered(f, r, "alice@example.com", kMessage, "");
	cr_assert(r.filename.find(".mx\\0722525\\057a,S=") != std::string::npos, "name %s", r.filename.c_str());
}

Test(maildir, second_delivery_is_a_duplicate)
{
	Fixture f;
	auto msg = f.message(kMessage);
	auto d = delivery(kQid, "alice@example.com");
	MaildirResult first = f.deliver(d, msg.get());
	cr_assert_eq(first.status, DeliveryStatus::Ok);
	MaildirResult second = f.deliver(d, msg.get());
	cr_assert_eq(second.status, DeliveryStatus::Ok, "%s", second.error.c_str());
	cr_assert(second.duplicate);
	cr_assert(!first.duplicate);
	cr_assert(second.filename == first.filename);
	fs::path md = f.maildir("example.com", "alice");
	cr_assert_eq(entries(md / "new").size(), 1u);
	cr_assert(entries(md / "tmp").empty());
}

Test(maildir, copy_moved_to_cur_is_found_only_on_retry)
{
	Fixture f;
	auto msg = f.message(kMessage);
	auto d = delivery(kQid, "alice@example.com");
	MaildirResult first = f.deliver(d, msg.get());
	cr_assert_eq(first.status, DeliveryStatus::Ok);
	fs::path md = f.maildir("example.com", "alice");
	// A client saw it and marked it read.
	fs::rename(md / "new" / first.filename, md / "cur" / (first.filename + ":2,S"));

	d.retry = true;
	MaildirResult retried = f.deliver(d, msg.get());
	cr_assert_eq(retried.status, DeliveryStatus::Ok, "%s", retried.error.c_str());
	cr_assert(retried.duplicate);
	cr_assert(entries(md / "new").empty(), "a second copy was written");

	d.retry = false;
	MaildirResult plain = f.deliver(d, msg.get());
	cr_assert_eq(plain.status, DeliveryStatus::Ok);
	cr_assert(!plain.duplicate, "without retry cur/ is not searched");
	cr_assert_eq(entries(md / "new").size(), 1u);
}

Test(maildir, copy_still_in_cur_without_flags_is_found_on_retry)
{
	Fixture f;
	auto msg = f.message(kMessage);
	auto d = delivery(kQid, "alice@example.com");
	MaildirResult first = f.deliver(d, msg.get());
	fs::path md = f.maildir("example.com", "alice");
	fs::rename(md / "new" / first.filename, md / "cur" / first.filename);
	d.retry = true;
	MaildirResult retried = f.deliver(d, msg.get());
	cr_assert(retried.status == DeliveryStatus::Ok && retried.duplicate);
	cr_assert(entries(md / "new").empty());
}

Test(maildir, name_that_merely_starts_alike_is_no_copy)
{
	Fixture f;
	auto msg = f.message(kMessage);
	auto d = delivery(kQid, "alice@example.com");
	MaildirResult first = f.deliver(d, msg.get());
	fs::path md = f.maildir("example.com", "alice");
	fs::rename(md / "new" / first.filename, md / "cur" / (first.filename + "0:2,S"));
	d.retry = true;
	MaildirResult retried = f.deliver(d, msg.get());
	cr_assert(retried.status == DeliveryStatus::Ok && !retried.duplicate);
	cr_assert_eq(entries(md / "new").size(), 1u);
}

Test(maildir, two_accounts_get_two_files)
{
	Fixture f;
	auto msg = f.message(kMessage);
	MaildirDelivery ds[] = {delivery(kQid, "alice@example.com"),
	    delivery(kQid, "carol@example.net")};
	int fds[] = {msg.get(), msg.get()};
	auto results = maild::deliver_batch(f.store_fd.get(), ds, fds);
	cr_assert_eq(results.size(), 2u);
	check_delivered(f, results[0], "alice@example.com", kMessage);
	check_delivered(f, results[1], "carol@example.net", kMessage);
	cr_assert(results[0].filename != results[1].filename);
}

Test(maildir, batch_delivers_everything)
{
	Fixture f;
	constexpr int kCount = 60;
	std::vector<UniqueFd> messages;
	std::vector<MaildirDelivery> ds;
	std::vector<int> fds;
	for (int i = 0; i < kCount; i++) {
		std::string body = "Subject: number " + std::to_string(i) + "\r\n\r\n" +
		    std::string(static_cast<std::size_t>(i) * 37, 'x') + "\r\n";
		messages.push_back(f.message(body));
		char qid[17];
		std::snprintf(qid, sizeof qid, "%016x", i + 1);
		ds.push_back(delivery(qid, "user" + std::to_string(i % 7) + "@example.com"));
		fds.push_back(messages.back().get());
	}
	auto results = maild::deliver_batch(f.store_fd.get(), ds, fds);
	cr_assert_eq(results.size(), static_cast<std::size_t>(kCount));
	std::size_t files = 0;
	for (int i = 0; i < kCount; i++) {
		cr_assert_eq(results[static_cast<std::size_t>(i)].status, DeliveryStatus::Ok, "item %d: %s", i,
		    results[static_cast<std::size_t>(i)].error.c_str());
		std::string content = read_file(f.maildir("example.com", "user" + std::to_string(i % 7)) / "new" /
		    results[static_cast<std::size_t>(i)].filename);
		cr_assert(content.find("Subject: number " + std::to_string(i) + "\n") != std::string::npos);
	}
	for (int u = 0; u < 7; u++)
		files += entries(f.maildir("example.com", "user" + std::to_string(u)) / "new").size();
	cr_assert_eq(files, static_cast<std::size_t>(kCount));
}

Test(maildir, failing_item_fails_alone)
{
	Fixture f;
	fs::create_directory(f.store / "example.com");
	// A regular file where blocked's Maildir would go (root ignores
	// permission bits, so this is how a directory is made unusable).
	write_file(f.store / "example.com" / "blocked", "not a directory");
	auto msg = f.message(kMessage);
	MaildirDelivery ds[] = {delivery(kQid, "alice@example.com"),
	    delivery(kQid, "blocked@example.com"), delivery(kQid, "no-at-sign"),
	    delivery(kQid, "dave@example.com")};
	int fds[] = {msg.get(), msg.get(), msg.get(), msg.get()};
	auto results = maild::deliver_batch(f.store_fd.get(), ds, fds);
	check_delivered(f, results[0], "alice@example.com", kMessage);
	cr_assert_eq(results[1].status, DeliveryStatus::TempFail);
	const std::string &error = results[1].error;
	cr_assert(error.find("example.com/blocked") != std::string::npos, "error %s", error.c_str());
	cr_assert(error.find("Not a directory") != std::string::npos, "error %s", error.c_str());
	cr_assert(results[1].filename.empty());
	cr_assert_eq(results[2].status, DeliveryStatus::PermFail);
	cr_assert(!results[2].error.empty());
	check_delivered(f, results[3], "dave@example.com", kMessage);
	for (const auto &r : results)
		for (unsigned char c : r.error)
			cr_assert(c >= 0x20 && c != 0x7f, "control character in error %s", r.error.c_str());
}

Test(maildir, symbolic_link_in_store_is_not_followed)
{
	Fixture f;
	fs::create_directories(f.store / "example.com");
	fs::create_directories(f.store / "example.org" / "victim");
	fs::create_directory_symlink("../example.org/victim", f.store / "example.com" / "mallory");
	auto msg = f.message(kMessage);
	MaildirResult r = f.deliver(delivery(kQid, "mallory@example.com"), msg.get());
	cr_assert_eq(r.status, DeliveryStatus::TempFail);
	cr_assert(entries(f.store / "example.org" / "victim").empty(), "wrote through the link");
}

Test(maildir, header_injection_is_refused)
{
	Fixture f;
	auto msg = f.message(kMessage);
	auto d = delivery(kQid, "alice@example.com");
	d.return_path = "bob@example.org>\nX-Evil: 1";
	MaildirResult r = f.deliver(d, msg.get());
	cr_assert_eq(r.status, DeliveryStatus::PermFail);
	cr_assert(!fs::exists(f.maildir("example.com", "alice")));
}

Test(maildir, leftover_tmp_file_is_overwritten)
{
	Fixture f;
	auto msg = f.message(kMessage);
	auto d = delivery(kQid, "alice@example.com");
	// Learn the name in a scratch store, then leave a longer stale file
	// under it in tmp/, as a crash in the middle of a write would.
	std::string name;
	{
		Fixture g;
		name = g.deliver(d, msg.get()).filename;
	}
	fs::path md = f.maildir("example.com", "alice");
	fs::create_directories(md / "tmp");
	write_file(md / "tmp" / name, std::string(10000, 'j'));
	MaildirResult r = f.deliver(d, msg.get());
	cr_assert(r.filename == name);
	check_delivered(f, r, "alice@example.com", kMessage);
	cr_assert(entries(md / "tmp").empty());
}

Test(maildir, large_message_is_streamed)
{
	Fixture f;
	// About 4 MiB of lines of every length from 0 to 997, with a CRLF
	// split across the 64 KiB read boundary.
	std::string message = "Subject: big\r\n\r\n";
	message += std::string(65535 - message.size(), 'p');
	message += "\r\n";
	for (std::size_t i = 0; message.size() < 4u * 1024 * 1024; i++)
		message += std::string(i % 998, static_cast<char>('a' + i % 26)) + "\r\n";
	cr_assert_eq(message[65535], '\r');
	auto msg = f.message(message);
	MaildirResult r = f.deliver(delivery(kQid, "alice@example.com"), msg.get());
	check_delivered(f, r, "alice@example.com", message);
}

Test(maildir, python_mailbox_reads_the_result)
{
	Fixture f;
	auto msg = f.message(kMessage);
	MaildirResult r = f.deliver(delivery(kQid, "alice@example.com"), msg.get());
	cr_assert_eq(r.status, DeliveryStatus::Ok);
	std::string cmd = "/usr/bin/python3 -c 'import mailbox, sys\n"
			  "md = mailbox.Maildir(sys.argv[1], factory=None, create=False)\n"
			  "for key, m in md.items():\n"
			  "    print(key)\n"
			  "    for h in (\"Return-Path\", \"Delivered-To\", \"Subject\", \"From\"):\n"
			  "        print(h + \"=\" + str(m[h]))\n"
			  "    print(\"body=\" + repr(m.get_payload()))\n"
			  "' " + f.maildir("example.com", "alice").string();
	FILE *p = popen(cmd.c_str(), "r");
	cr_assert(p != nullptr);
	std::string out;
	char buf[4096];
	std::size_t n;
	while ((n = fread(buf, 1, sizeof buf, p)) > 0)
		out.append(buf, n);
	cr_assert_eq(pclose(p), 0, "python failed: %s", out.c_str());
	std::string want = r.filename + "\n"
				       "Return-Path=<bob@example.org>\n"
				       "Delivered-To=alice@example.com\n"
				       "Subject=Hello there\n"
				       "From=Bob <bob@example.org>\n"
				       "body='First line\\n\\nLast line\\n'\n";
	cr_assert(out == want, "python read:\n%s\nwant:\n%s", out.c_str(), want.c_str());
}
