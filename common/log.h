// Logging for every process of the family.
//
// In the foreground (-d) lines go to stderr; as a daemon to syslog, facility
// mail, through a socket opened before the process jails itself. Lines carry
// key=value fields: log_info("smtp disconnected reason=%s", why).
//
// fatal*: the environment is broken (a file is missing, a peer went away);
// the process exits 1. panic: this program is broken; it aborts for a core.
#pragma once

#include <cstdarg>

namespace maild {

enum class LogTarget { Stderr, Syslog };

// Sets the name that prefixes each line and opens syslog when asked.
// Call before chroot: syslog's socket cannot be opened inside the jail.
void log_init(const char *process_name, LogTarget target, bool verbose);
void log_set_verbose(bool verbose);
bool log_is_syslog();

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// log_warn and fatal append ": strerror(errno)"; the x variants do not.
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

} // namespace maild
