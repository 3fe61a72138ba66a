// The ritual every role follows, written once (Postfix's single_server
// skeleton, OpenSMTPD's role entry functions):
//
//   exec'd by maild with its socketpair to the parent on fd 3
//   -> receive SetupConfig, SetupPeer, SetupListener/SetupControl, SetupDone
//   -> pre_jail hook (open what must be opened from outside the jail)
//   -> chroot to its directory, chdir /
//   -> setgroups, setresgid, setresuid to its user; verify root is gone
//   -> PR_SET_NO_NEW_PRIVS, rlimits
//   -> seccomp allowlist (default: kill the process)
//   -> post_jail hook, RoleReady to the parent, event loop
//
// A role never calls setresuid or chroot itself. Messages are dispatched from
// a table of rules {type, from, phase, once, handler}: a message of a type,
// peer or phase no rule allows is fatal, and the log names peer and type.
#pragma once

#include "common/config.h"
#include "common/imsg.h"
#include "common/roles.h"
#include "common/sandbox.h"
#include "common/unique_fd.h"

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

struct event_base;

namespace maild {

// Flags in SetupConfig.
inline constexpr uint8_t kSetupUnprivileged = 1 << 0;

enum class RolePhase : uint8_t { Setup, Running };

struct ListenerSocket {
	ListenerKind kind{};
	std::string address;
	uint16_t port = 0;
	UniqueFd fd;
};

struct RoleContext {
	Role role{};
	event_base *base = nullptr;
	Config config;
	bool unprivileged = false;
	RolePhase phase = RolePhase::Setup;
	std::unique_ptr<Channel> parent;
	std::array<std::unique_ptr<Channel>, kRoleCount> peers; // indexed by Role
	std::vector<ListenerSocket> listeners;
	UniqueFd control_socket;
};

using RoleMsgHandler = std::function<void(RoleContext &, Channel &, Msg &&)>;

struct MsgRule {
	MsgType type;
	Role from;
	RolePhase phase;
	bool once;
	RoleMsgHandler handler;
};

struct RoleSpec {
	Role role;
	std::function<void(RoleContext &)> pre_jail;  // may be empty
	std::function<void(RoleContext &)> post_jail; // may be empty
	std::vector<MsgRule> rules;                   // beyond the common setup rules
};

// Each role program defines its seccomp additions beside its main (the
// file named *policy.cc in its folder); run_role adds them to the common
// groups (Base, FdIo, EventLoop, FdPassing, and Syslog when logging there).
void sandbox_policy(SeccompPolicy &policy);

// Runs the role to the end; never returns.
[[noreturn]] void run_role(const RoleSpec &spec, int argc, char **argv);

// Sends `reply` then closes each connection accepted on the role's
// listeners: what a network role whose protocol does not exist yet answers,
// so that a client is told instead of left hanging.
void refuse_connections(RoleContext &ctx, std::string reply);

} // namespace maild
