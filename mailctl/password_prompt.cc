// Reading a password: never from the command line (other users see argv in
// /proc), but from one line of standard input or from the terminal with
// echo off. The terminal is restored on every path, also when a signal ends
// mailctl in the middle of the prompt.
#include "mailctl/mailctl.h"

#include "common/unique_fd.h"
#include "lookup/password.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>

namespace maild {

namespace {

// What the signal handler restores. A handler can reach nothing but file
// scope, so this is the one piece of global state: set before the handlers
// are installed, cleared after they are removed.
volatile sig_atomic_t g_tty_fd = -1;
termios g_tty_saved;

extern "C" void restore_tty_and_reraise(int sig)
{
	if (g_tty_fd >= 0)
		tcsetattr(g_tty_fd, TCSAFLUSH, &g_tty_saved);
	// The default action runs when the handler returns and unblocks sig.
	signal(sig, SIG_DFL);
	raise(sig);
}

constexpr std::array kFatalSignals = {SIGHUP, SIGINT, SIGQUIT, SIGTERM};

// Echo off for its lifetime. Suspending (^Z) is ignored meanwhile: a shell
// resumed with echo off would show nothing the user types.
class EchoOff {
public:
	explicit EchoOff(int fd) : fd_(fd)
	{
		if (tcgetattr(fd, &g_tty_saved) < 0)
			return;
		g_tty_fd = fd;
		struct sigaction sa{};
		sa.sa_handler = restore_tty_and_reraise;
		sigemptyset(&sa.sa_mask);
		for (std::size_t i = 0; i < kFatalSignals.size(); i++)
			sigaction(kFatalSignals[i], &sa, &old_actions_[i]);
		struct sigaction ignore{};
		ignore.sa_handler = SIG_IGN;
		sigemptyset(&ignore.sa_mask);
		sigaction(SIGTSTP, &ignore, &old_tstp_);
		termios quiet = g_tty_saved;
		quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHOE | ECHOK | ECHONL);
		active_ = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
		if (!active_)
			restore_handlers();
	}
	~EchoOff()
	{
		if (!active_)
			return;
		tcsetattr(fd_, TCSAFLUSH, &g_tty_saved);
		restore_handlers();
	}
	EchoOff(const EchoOff &) = delete;
	EchoOff &operator=(const EchoOff &) = delete;
	bool active() const { return active_; }

private:
	void restore_handlers()
	{
		for (std::size_t i = 0; i < kFatalSignals.size(); i++)
			sigaction(kFatalSignals[i], &old_actions_[i], nullptr);
		sigaction(SIGTSTP, &old_tstp_, nullptr);
		g_tty_fd = -1;
	}

	int fd_;
	bool active_ = false;
	std::array<struct sigaction, kFatalSignals.size()> old_actions_{};
	struct sigaction old_tstp_{};
};

bool write_all(int fd, std::string_view text)
{
	while (!text.empty()) {
		ssize_t n = write(fd, text.data(), text.size());
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		text.remove_prefix(static_cast<std::size_t>(n));
	}
	return true;
}

// One line from fd, a byte at a time so that nothing after it is consumed.
// Strips the newline and a CR before it. Keeps at most kMaxPasswordBytes + 1
// bytes (enough for the caller to see it is too long) in storage reserved
// up front, so that no reallocation leaves a copy behind.
bool read_line(int fd, std::string &line_r, std::string &error_r)
{
	line_r.clear();
	line_r.reserve(kMaxPasswordBytes + 1);
	bool overflow = false;
	for (;;) {
		char c;
		ssize_t n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			error_r = std::string("cannot read the password: ") + std::strerror(errno);
			return false;
		}
		if (n == 0)
			return true;
		if (c == '\n')
			break;
		if (line_r.size() <= kMaxPasswordBytes)
			line_r.push_back(c);
		else
			overflow = true;
	}
	if (!overflow && !line_r.empty() && line_r.back() == '\r')
		line_r.pop_back();
	return true;
}

// Echo goes off before the prompt shows (and discards what was typed
// ahead), so that nothing typed after the prompt is echoed.
bool prompt(int tty, std::string_view text, std::string &password_r, std::string &error_r)
{
	bool ok;
	{
		EchoOff echo_off(tty);
		if (!echo_off.active()) {
			error_r = std::string("cannot turn off echo on the terminal: ") + std::strerror(errno);
			return false;
		}
		if (!write_all(tty, text)) {
			error_r = std::string("cannot write to the terminal: ") + std::strerror(errno);
			return false;
		}
		ok = read_line(tty, password_r, error_r);
	}
	write_all(tty, "\n"); // the user's newline was not echoed
	return ok;
}

} // namespace

bool read_password(bool from_stdin, bool confirm, std::string &password_r, std::string &error_r)
{
	if (from_stdin)
		return read_line(STDIN_FILENO, password_r, error_r);

	UniqueFd tty(open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC));
	if (!tty) {
		error_r = std::string("cannot open the terminal to ask for the password: ") + std::strerror(errno) +
			  " (use --password-stdin)";
		return false;
	}
	if (!prompt(tty.get(), "Password: ", password_r, error_r))
		return false;
	if (!confirm)
		return true;
	std::string again;
	bool ok = prompt(tty.get(), "Retype password: ", again, error_r);
	if (ok && again != password_r) {
		error_r = "passwords do not match";
		ok = false;
	}
	wipe_secret(again);
	return ok;
}

} // namespace maild
