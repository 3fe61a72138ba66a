#include "common/log.h"

#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace maild {

namespace {

// Set once by log_init in each process's main, before any thread or jail.
struct LogState {
	const char *name = "maild";
	LogTarget target = LogTarget::Stderr;
	bool verbose = false;
};
LogState g_log;

void vlog(int priority, const char *fmt, va_list ap, const char *suffix)
{
	char msg[2048];
	std::vsnprintf(msg, sizeof(msg), fmt, ap);
	if (g_log.target == LogTarget::Syslog) {
		if (suffix)
			syslog(priority, "%s: %s", msg, suffix);
		else
			syslog(priority, "%s", msg);
		return;
	}
	if (suffix)
		std::fprintf(stderr, "%s[%d]: %s: %s\n", g_log.name, static_cast<int>(getpid()), msg, suffix);
	else
		std::fprintf(stderr, "%s[%d]: %s\n", g_log.name, static_cast<int>(getpid()), msg);
}

} // namespace

void log_init(const char *process_name, LogTarget target, bool verbose)
{
	g_log.name = process_name;
	g_log.target = target;
	g_log.verbose = verbose;
	if (target == LogTarget::Syslog) {
		// Load the timezone and connect now: neither is possible in the jail.
		tzset();
		openlog(process_name, LOG_PID | LOG_NDELAY, LOG_MAIL);
	}
}

void log_set_verbose(bool verbose) { g_log.verbose = verbose; }
bool log_is_syslog() { return g_log.target == LogTarget::Syslog; }

#define MAILD_LOG_BODY(priority, suffix)                                                                   \
	va_list ap;                                                                                        \
	va_start(ap, fmt);                                                                                 \
	vlog(priority, fmt, ap, suffix);                                                                   \
	va_end(ap)

void log_debug(const char *fmt, ...)
{
	if (!g_log.verbose)
		return;
	MAILD_LOG_BODY(LOG_DEBUG, nullptr);
}

void log_info(const char *fmt, ...) { MAILD_LOG_BODY(LOG_INFO, nullptr); }

void log_warnx(const char *fmt, ...) { MAILD_LOG_BODY(LOG_WARNING, nullptr); }

void log_warn(const char *fmt, ...)
{
	const char *err = std::strerror(errno);
	MAILD_LOG_BODY(LOG_WARNING, err);
}

void fatal(const char *fmt, ...)
{
	const char *err = std::strerror(errno);
	MAILD_LOG_BODY(LOG_CRIT, err);
	std::exit(1);
}

void fatalx(const char *fmt, ...)
{
	MAILD_LOG_BODY(LOG_CRIT, nullptr);
	std::exit(1);
}

void panic(const char *fmt, ...)
{
	MAILD_LOG_BODY(LOG_CRIT, nullptr);
	std::abort();
}

} // namespace maild
