// Seccomp allowlists, built from small named groups of system calls.
//
// A role's policy file (e.g. smtpd/sandbox_policy.cc) adds the groups it
// needs and any extra call, each with a reason; everything else kills the
// process (SCMP_ACT_KILL_PROCESS). mmap and mprotect are allowed only
// without PROT_EXEC. A few calls that libc makes opportunistically (opening
// locale or timezone files, reconnecting syslog) fail with EACCES instead of
// killing: they are harmless when refused.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace maild {

enum class SyscallGroup : uint8_t {
	Base,       // exit, signals returns, memory, time, random: every process
	EventLoop,  // epoll, as libevent drives it
	FdIo,       // read/write/close on descriptors already open
	FdPassing,  // sendmsg/recvmsg with SCM_RIGHTS
	Accept,     // accepting connections on a listening socket handed in
	Syslog,     // writing to the syslog socket opened before the jail
	DatabaseFiles, // SQLite on files inside the jail, with record locks
};

class SeccompPolicy {
public:
	void add(SyscallGroup group);
	// Allows one system call by name; `why` documents it at the call site.
	void allow(const char *syscall_name, std::string_view why);
	// Installs the filter. Every failure is fatal: a role never runs
	// without its sandbox.
	void install() const;

private:
	std::vector<SyscallGroup> groups_;
	std::vector<const char *> extra_;
};

} // namespace maild
