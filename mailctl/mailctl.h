// What the parts of mailctl share: the parsed command line, the exit
// statuses mailctl(8) documents, and each command's entry point.
#pragma once

#include "common/imsg.h"

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace maild {

// The exit statuses of mailctl(8), EXIT STATUS.
enum ExitStatus : int {
	kExitOk = 0,
	kExitFailed = 1, // the request failed: bad input, not found, duplicate, auth failed
	kExitUsage = 2,  // the command line is wrong
	kExitSystem = 3, // the database, the configuration, maild or the system failed
};

// The options a command may take, beyond -f and -s.
enum CommandOption : unsigned {
	kOptPasswordStdin = 1u << 0, // --password-stdin
	kOptForce = 1u << 1,         // --force
	kOptClient = 1u << 2,        // --client ADDRESS
};

struct Options {
	std::optional<std::string> config_path; // -f
	std::optional<std::string> socket_path; // -s
	unsigned given = 0;                     // CommandOption bits seen
	std::string client;                     // --client
	std::vector<std::string> words;         // the command and its operands
	bool password_stdin() const { return (given & kOptPasswordStdin) != 0; }
	bool force() const { return (given & kOptForce) != 0; }
	std::string config_file() const;
};

using Operands = std::span<const std::string>;

// "mailctl: " + message on stderr.
void print_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Text from the command line or a peer, with control bytes as \xNN, so
// that an error message cannot drive the terminal.
std::string printable(std::string_view text);

// accounts.cc: the database, opened directly (as lookup's user).
int domain_add(const Options &options, Operands operands);
int domain_del(const Options &options, Operands operands);
int domain_list(const Options &options, Operands operands);
int user_add(const Options &options, Operands operands);
int user_del(const Options &options, Operands operands);
int user_passwd(const Options &options, Operands operands);
int user_list(const Options &options, Operands operands);
int user_disable(const Options &options, Operands operands);
int user_enable(const Options &options, Operands operands);
int alias_add(const Options &options, Operands operands);
int alias_del(const Options &options, Operands operands);
int alias_list(const Options &options, Operands operands);
int alias_check(const Options &options, Operands operands);

// control_client.cc: questions to the running maild.
int status(const Options &options, Operands operands);
int auth_test(const Options &options, Operands operands);
int resolve(const Options &options, Operands operands);
// Sends one request over the control socket and waits for its answer,
// which must be of type `answer` or a ControlError. Prints what went wrong
// and returns nullopt on failure; exit_r says which status that is.
std::optional<Msg> ask(const Options &options, MsgType type, std::span<const uint8_t> payload, MsgType answer,
    int timeout_ms, int &exit_r);
// Says the answer was malformed; returns the exit status for that.
int malformed_answer();

// queue.cc: the queue role's view of the spool, through control.
int queue_show(const Options &options, Operands operands);
int queue_flush(const Options &options, Operands operands);
int queue_remove(const Options &options, Operands operands);
int queue_hold(const Options &options, Operands operands);
int queue_release(const Options &options, Operands operands);

// password_prompt.cc. Reads a password from one line of standard input
// (from_stdin) or from the terminal with echo off; confirm asks twice on
// the terminal. Checks only that it was read; the caller checks its
// length. False with error_r on failure.
bool read_password(bool from_stdin, bool confirm, std::string &password_r, std::string &error_r);

} // namespace maild
