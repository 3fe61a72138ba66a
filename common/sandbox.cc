#include "common/sandbox.h"

#include "common/log.h"

#include <fcntl.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <span>
#include <string_view>
#include <vector>

namespace maild {

namespace {

// Each list is alphabetised; a comment says why where it is not obvious.
constexpr const char *kBase[] = {
    "brk",
    "clock_gettime",
    "clock_nanosleep", // sleep() in libc
    "exit",
    "exit_group",
    "futex",           // libc locks
    "getpid",          // log lines carry the pid
    "getrandom",       // hash seeds, TLS
    "gettid",
    "gettimeofday",
    "madvise",         // malloc trimming
    "munmap",
    "mremap",
    "nanosleep",
    "restart_syscall",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_yield",     // libc lock back-off
    "time",
};
constexpr const char *kEventLoop[] = {
    "epoll_ctl",
    "epoll_pwait",
    "epoll_wait",
};
constexpr const char *kFdIo[] = {
    "close",
    "fstat",   // stdio's first write to stderr
    "newfstatat",
    "read",
    "readv",
    "write",
    "writev",
};
constexpr const char *kFdPassing[] = {
    "recvmsg",
    "sendmsg",
};
constexpr const char *kAccept[] = {
    "accept4",
    "getpeername",
    "getsockname",
    "setsockopt", // TCP_NODELAY on accepted connections (common/net_conn.cc)
    "shutdown",
};
constexpr const char *kSyslog[] = {
    "sendto", // syslog(3) on its connected socket
};
// SQLite on files inside the role's own jail (lookup's database).
constexpr const char *kDatabaseFiles[] = {
    "fdatasync",
    "fchown",    // SQLite running as root gives -wal/-shm the database's owner
    "fsync",
    "ftruncate",
    "getcwd",    // SQLite resolves the database's full name once
    "geteuid",   // SQLite checks whether it runs as root before fchown
    "lseek",
    "lstat",
    "newfstatat",
    "openat",
    "pread64",
    "pwrite64",
    "readlink",  // SQLite follows a symbolic link to the database
    "stat",
    "unlink",    // rollback journals, and the -wal/-shm of the last connection
};
// Opportunistic calls: refused with EACCES rather than killing.
constexpr const char *kSoftDeny[] = {
    "connect", // syslog(3) reconnecting after syslogd restarted
    "open",
    "openat",  // locale and timezone data, /etc files
    "socket",  // syslog(3) reconnecting
    "stat",
    "statx",
};
#ifdef MAILD_SANITIZE
// Sanitizer builds only (make check SANITIZE=1): what ASan and UBSan call
// in a jail on the way out and to print a report, so that a role exits as
// it would without them and a report reaches the log instead of the role
// dying of SIGSYS halfway through it. The normal build's filter is
// unchanged. (Leak checking, which needs clone and ptrace, is off in the
// roles: see exec_role.)
constexpr const char *kSanitizer[] = {
    "pipe2",       // a thread that exits (lookup's workers) checks memory is readable by writing it to a pipe
    "readlink",    // the name of the running program (/proc/self/exe) for the stack frames
    "sigaltstack", // asked before every call that does not return (exit, fatal errors);
                   // and an exiting thread takes its signal stack down
};
#endif

std::span<const char *const> group_calls(SyscallGroup group)
{
	switch (group) {
	case SyscallGroup::Base:
		return kBase;
	case SyscallGroup::EventLoop:
		return kEventLoop;
	case SyscallGroup::FdIo:
		return kFdIo;
	case SyscallGroup::FdPassing:
		return kFdPassing;
	case SyscallGroup::Accept:
		return kAccept;
	case SyscallGroup::Syslog:
		return kSyslog;
	case SyscallGroup::DatabaseFiles:
		return kDatabaseFiles;
	}
	panic("unknown syscall group");
}

int resolve(const char *name)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		fatalx("seccomp: unknown system call %s", name);
	return nr;
}

void add_rule(scmp_filter_ctx ctx, uint32_t action, const char *name)
{
	int rc = seccomp_rule_add(ctx, action, resolve(name), 0);
	if (rc < 0)
		fatalx("seccomp: cannot add rule for %s: error %d", name, -rc);
}

// mmap and mprotect are allowed only when PROT_EXEC is clear: no role
// creates executable memory, so an exploit cannot make any either.
void add_no_exec_rule(scmp_filter_ctx ctx, const char *name)
{
	int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, resolve(name), 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (rc < 0)
		fatalx("seccomp: cannot add rule for %s: error %d", name, -rc);
}

// fcntl only reads and sets descriptor and status flags, and with
// database files takes the POSIX record locks SQLite uses.
void add_fcntl_rules(scmp_filter_ctx ctx, bool locks)
{
	std::vector<scmp_datum_t> cmds = {F_GETFD, F_SETFD, F_GETFL, F_SETFL};
	if (locks)
		cmds.insert(cmds.end(), {F_GETLK, F_SETLK, F_SETLKW});
	for (scmp_datum_t cmd : cmds) {
		int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, resolve("fcntl"), 1, SCMP_A1(SCMP_CMP_EQ, cmd));
		if (rc < 0)
			fatalx("seccomp: cannot add rule for fcntl: error %d", -rc);
	}
}

} // namespace

void SeccompPolicy::add(SyscallGroup group)
{
	if (std::find(groups_.begin(), groups_.end(), group) == groups_.end())
		groups_.push_back(group);
}

void SeccompPolicy::allow(const char *syscall_name, std::string_view)
{
	extra_.push_back(syscall_name);
}

void SeccompPolicy::install() const
{
#ifdef MAILD_SECCOMP_LOG
	// Debug builds: log forbidden calls to the audit log instead of killing.
	const uint32_t default_action = SCMP_ACT_LOG;
#else
	const uint32_t default_action = SCMP_ACT_KILL_PROCESS;
#endif
	scmp_filter_ctx ctx = seccomp_init(default_action);
	if (ctx == nullptr)
		fatalx("seccomp: cannot initialise the filter");
	// Threads started before the jail (lookup's password workers) get the
	// same filter, and no-new-privs with it.
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) < 0)
		fatalx("seccomp: cannot synchronise threads");
	std::vector<std::string_view> allowed;
	auto allow_once = [&](const char *name) {
		if (std::find(allowed.begin(), allowed.end(), name) != allowed.end())
			return;
		allowed.push_back(name);
		add_rule(ctx, SCMP_ACT_ALLOW, name);
	};
	for (SyscallGroup group : groups_)
		for (const char *name : group_calls(group))
			allow_once(name);
	for (const char *name : extra_)
		allow_once(name);
#ifdef MAILD_SANITIZE
	for (const char *name : kSanitizer)
		allow_once(name);
	// isatty(stderr): the report is in colour on a terminal.
	if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, resolve("ioctl"), 1, SCMP_A1(SCMP_CMP_EQ, TCGETS)) < 0)
		fatalx("seccomp: cannot add rule for ioctl");
#endif
	add_no_exec_rule(ctx, "mmap");
	add_no_exec_rule(ctx, "mprotect");
	add_fcntl_rules(ctx, std::find(groups_.begin(), groups_.end(), SyscallGroup::DatabaseFiles) != groups_.end());
	for (const char *name : kSoftDeny)
		if (std::find(allowed.begin(), allowed.end(), name) == allowed.end())
			add_rule(ctx, SCMP_ACT_ERRNO(EACCES), name);
	// libseccomp checks the architecture first and kills on a mismatch:
	// a 32-bit call table cannot be used to get around the filter.
	int rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0)
		fatalx("seccomp: cannot load the filter: error %d", -rc);
}

} // namespace maild
