// What the parent does with the system before and while starting the family:
// listening sockets, the control socket, and fork+exec of each role.
#include "maild/parent.h"

#include "common/log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <vector>

namespace maild {

namespace {

std::string errno_text(std::string_view what)
{
	return std::string(what) + ": " + std::strerror(errno);
}

} // namespace

UniqueFd open_listener(const Listener &listener, std::string &error_r)
{
	sockaddr_storage ss{};
	socklen_t len = 0;
	int family = AF_INET;
	auto *sin = reinterpret_cast<sockaddr_in *>(&ss);
	auto *sin6 = reinterpret_cast<sockaddr_in6 *>(&ss);
	if (inet_pton(AF_INET, listener.address.c_str(), &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(listener.port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, listener.address.c_str(), &sin6->sin6_addr) == 1) {
		family = AF_INET6;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(listener.port);
		len = sizeof(*sin6);
	} else {
		error_r = "not a numeric address";
		return {};
	}

	UniqueFd fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
	if (!fd) {
		error_r = errno_text("socket");
		return {};
	}
	int on = 1;
	// SO_REUSEADDR: a restart must not wait for TIME_WAIT connections.
	// IPV6_V6ONLY: "::" means IPv6 only; IPv4 is a listener of its own.
	if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    (family == AF_INET6 && setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0)) {
		error_r = errno_text("setsockopt");
		return {};
	}
	if (bind(fd.get(), reinterpret_cast<sockaddr *>(&ss), len) < 0) {
		error_r = errno_text("bind");
		return {};
	}
	if (listen(fd.get(), SOMAXCONN) < 0) {
		error_r = errno_text("listen");
		return {};
	}
	return fd;
}

void create_directory(const std::string &path, const std::string &owner, mode_t mode)
{
	struct stat st;
	if (stat(path.c_str(), &st) == 0)
		return;
	for (std::size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
		std::string parent = path.substr(0, slash);
		if (mkdir(parent.c_str(), 0755) < 0 && errno != EEXIST)
			fatal("mkdir %s", parent.c_str());
	}
	if (mkdir(path.c_str(), mode) < 0)
		fatal("mkdir %s", path.c_str());
	if (!owner.empty()) {
		const passwd *pw = getpwnam(owner.c_str());
		if (pw == nullptr)
			fatalx("mkdir %s: no user %s", path.c_str(), owner.c_str());
		if (chown(path.c_str(), pw->pw_uid, pw->pw_gid) < 0)
			fatal("chown %s", path.c_str());
	}
	if (chmod(path.c_str(), mode) < 0)
		fatal("chmod %s", path.c_str());
	log_info("created %s (owner %s, mode %04o)", path.c_str(), owner.empty() ? "unchanged" : owner.c_str(),
	    static_cast<unsigned>(mode));
}

UniqueFd open_control_socket(const std::string &path, std::string &error_r)
{
	sockaddr_un sun{};
	sun.sun_family = AF_UNIX;
	if (path.size() >= sizeof(sun.sun_path)) {
		error_r = "path too long for a socket";
		return {};
	}
	std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);

	// The directory is ours to create (/run/maild is on a tmpfs).
	std::string dir = path.substr(0, path.rfind('/'));
	if (!dir.empty() && mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) {
		error_r = errno_text("mkdir " + dir);
		return {};
	}

	UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
	if (!fd) {
		error_r = errno_text("socket");
		return {};
	}
	// The pidfile lock is held, so a socket left here belongs to a maild
	// that is gone.
	struct stat st;
	if (lstat(path.c_str(), &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			error_r = "exists and is not a socket";
			return {};
		}
		unlink(path.c_str());
	}
	// Created 0600 (no window in which others may connect), owned by the
	// user maild runs as: only root talks to a privileged maild.
	mode_t old_umask = umask(0177);
	int rc = bind(fd.get(), reinterpret_cast<sockaddr *>(&sun), sizeof(sun));
	umask(old_umask);
	if (rc < 0) {
		error_r = errno_text("bind");
		return {};
	}
	if (chmod(path.c_str(), 0600) < 0) {
		error_r = errno_text("chmod");
		return {};
	}
	if (listen(fd.get(), 16) < 0) {
		error_r = errno_text("listen");
		return {};
	}
	return fd;
}

std::string find_role_dir()
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		fatal("readlink /proc/self/exe");
	std::string path(exe, static_cast<std::size_t>(n));
	std::string bindir = path.substr(0, path.rfind('/'));
	std::string prefix = bindir.substr(0, bindir.rfind('/'));
	return prefix + "/libexec/maild";
}

pid_t exec_role(const std::string &role_dir, Role role, int channel_fd, const ParentOptions &options)
{
	std::string program = role_dir + "/" + std::string(to_string(role));

	// A clean environment: nothing of the caller's reaches a role, except
	// the sanitizer settings of a test run.
	std::vector<std::string> env_strings = {"PATH=/usr/bin:/bin"};
	for (const char *name : {"UBSAN_OPTIONS", "LSAN_OPTIONS", "MAILD_SECCOMP_LOG"})
		if (const char *value = getenv(name))
			env_strings.push_back(std::string(name) + "=" + value);
	const char *asan_options = getenv("ASAN_OPTIONS");
	std::string asan = asan_options ? asan_options : "";
#ifdef MAILD_SANITIZE
	// LeakSanitizer's check at exit stops the world with clone and ptrace,
	// which a jailed role may not call: its seccomp filter would kill it.
	// Later options win, so this holds whatever the caller set.
	asan += asan.empty() ? "detect_leaks=0" : ":detect_leaks=0";
#endif
	if (!asan.empty())
		env_strings.push_back("ASAN_OPTIONS=" + asan);
	std::vector<char *> envp;
	for (auto &s : env_strings)
		envp.push_back(s.data());
	envp.push_back(nullptr);

	std::string argv0(to_string(role));
	std::vector<char *> argv = {argv0.data()};
	std::string dflag = "-d", vflag = "-v";
	if (options.foreground)
		argv.push_back(dflag.data());
	if (options.verbose)
		argv.push_back(vflag.data());
	argv.push_back(nullptr);

	pid_t pid = fork();
	if (pid != 0)
		return pid; // the parent, or -1 with errno

	// The child: fd 3 is the channel, every other descriptor but stdio is
	// closed, signals are as a fresh process has them.
	if (channel_fd == 3) {
		if (fcntl(3, F_SETFD, 0) < 0)
			_exit(127);
	} else if (dup2(channel_fd, 3) < 0) {
		_exit(127);
	}
	closefrom(4);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, nullptr);
	for (int sig : {SIGINT, SIGHUP, SIGPIPE, SIGTERM, SIGCHLD})
		std::signal(sig, SIG_DFL);
	execve(program.c_str(), argv.data(), envp.data());
	std::fprintf(stderr, "maild: exec %s: %s\n", program.c_str(), std::strerror(errno));
	_exit(127);
}

} // namespace maild
