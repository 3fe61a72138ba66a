#include "common/role.h"

#include "common/log.h"

#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <ctime>
#include <set>
#include <utility>

namespace maild {

namespace {

// The file descriptor on which maild hands each role its end of the socketpair.
constexpr int kParentFd = 3;

struct RoleRuntime {
	const RoleSpec &spec;
	RoleContext ctx;
	std::vector<MsgRule> rules; // common setup rules + the role's own
	std::set<std::pair<MsgType, Role>> seen_once;
	// Run-time messages from peers that arrived while this role was still
	// in setup: a peer that is already serving (smtpd with a client) may
	// speak first. They are dispatched, in order, once this role serves.
	struct EarlyMsg {
		Role from;
		Channel *channel;
		Msg msg;
	};
	std::vector<EarlyMsg> early;
};

const MsgRule *find_rule(const RoleRuntime &rt, MsgType type, Role from)
{
	for (const auto &rule : rt.rules)
		if (rule.type == type && rule.from == from)
			return &rule;
	return nullptr;
}

std::vector<MsgType> accepted_from(const RoleRuntime &rt, Role from)
{
	std::vector<MsgType> types;
	for (const auto &rule : rt.rules)
		if (rule.from == from)
			types.push_back(rule.type);
	return types;
}

void set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		fatal("fcntl O_NONBLOCK");
}

void dispatch(RoleRuntime &rt, Role from, Channel &channel, Msg &&msg)
{
	const MsgRule *rule = find_rule(rt, msg.type, from);
	// The channel's allowlist already refused other types; this is the
	// phase and once check.
	if (rule != nullptr && from != Role::Parent && rule->phase == RolePhase::Running &&
	    rt.ctx.phase == RolePhase::Setup) {
		rt.early.push_back({from, &channel, std::move(msg)});
		return;
	}
	if (rule == nullptr || rule->phase != rt.ctx.phase)
		fatalx("%s: message %s from %s not allowed now", std::string(to_string(rt.ctx.role)).c_str(),
		    std::string(to_string(msg.type)).c_str(), std::string(to_string(from)).c_str());
	if (rule->once && !rt.seen_once.insert({msg.type, from}).second)
		fatalx("%s: message %s from %s repeated", std::string(to_string(rt.ctx.role)).c_str(),
		    std::string(to_string(msg.type)).c_str(), std::string(to_string(from)).c_str());
	rule->handler(rt.ctx, channel, std::move(msg));
}

std::unique_ptr<Channel> open_channel(RoleRuntime &rt, Role peer, UniqueFd fd)
{
	set_nonblocking(fd.get());
	auto types = accepted_from(rt, peer);
	std::string name(to_string(peer));
	return std::make_unique<Channel>(
	    rt.ctx.base, std::move(fd), name, types,
	    [&rt, peer](Channel &ch, Msg &&msg) { dispatch(rt, peer, ch, std::move(msg)); },
	    [&rt, peer](Channel &ch, std::optional<MsgError> error, std::string_view detail) {
		    std::string role(to_string(rt.ctx.role));
		    if (error)
			    fatalx("%s: malformed message from %s: %s (%.*s)", role.c_str(), ch.peer_name().c_str(),
				std::string(to_string(*error)).c_str(), static_cast<int>(detail.size()), detail.data());
		    if (peer == Role::Parent) {
			    // The parent is gone: the family is shutting down.
			    log_debug("%s: parent closed the connection, exiting", role.c_str());
			    std::exit(0);
		    }
		    // A peer only goes away when it died, and then maild stops the
		    // whole family; exiting here would blur which role it was.
		    log_warnx("%s: peer %s closed the connection, waiting for maild to stop the family",
			role.c_str(), ch.peer_name().c_str());
	    });
}

void drop_privileges(const RoleContext &ctx)
{
	const std::string &user = ctx.config.user(ctx.role);
	const std::string root = ctx.config.root_dir(ctx.role);
	errno = 0;
	struct passwd *pw = getpwnam(user.c_str());
	if (pw == nullptr)
		fatalx("unknown user %s", user.c_str());
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	if (uid == 0)
		fatalx("role %s must not run as root (user %s)", std::string(to_string(ctx.role)).c_str(), user.c_str());

	if (chroot(root.c_str()) < 0)
		fatal("chroot %s", root.c_str());
	if (chdir("/") < 0)
		fatal("chdir / in %s", root.c_str());
	if (setgroups(1, &gid) < 0)
		fatal("setgroups");
	if (setresgid(gid, gid, gid) < 0)
		fatal("setresgid");
	if (setresuid(uid, uid, uid) < 0)
		fatal("setresuid");

	// Verify: root must be gone for good (Dovecot's restrict-access check).
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;
	if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0)
		fatal("getresuid");
	if (ruid != uid || euid != uid || suid != uid || rgid != gid || egid != gid || sgid != gid)
		fatalx("privileges were not dropped");
	if (setuid(0) == 0 || seteuid(0) == 0)
		fatalx("could regain root after dropping privileges");
}

void set_limits()
{
	// No role forks (maild does), and no role dumps memory that may hold
	// another user's mail or a password.
	const struct rlimit zero = {0, 0};
	if (setrlimit(RLIMIT_NPROC, &zero) < 0)
		fatal("setrlimit RLIMIT_NPROC");
	if (setrlimit(RLIMIT_CORE, &zero) < 0)
		fatal("setrlimit RLIMIT_CORE");
}

void jail(RoleRuntime &rt)
{
	RoleContext &ctx = rt.ctx;
	std::string name(to_string(ctx.role));
	if (rt.spec.pre_jail)
		rt.spec.pre_jail(ctx);
	tzset(); // the jail has no /etc/localtime

	if (ctx.unprivileged)
		log_warnx("%s: unprivileged mode: no chroot, no change of user", name.c_str());
	else
		drop_privileges(ctx);

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fatal("prctl PR_SET_NO_NEW_PRIVS");
	set_limits();

	SeccompPolicy policy;
	policy.add(SyscallGroup::Base);
	policy.add(SyscallGroup::FdIo);
	policy.add(SyscallGroup::EventLoop);
	policy.add(SyscallGroup::FdPassing);
	if (log_is_syslog())
		policy.add(SyscallGroup::Syslog);
	sandbox_policy(policy);
	policy.install();
	if (ctx.unprivileged)
		log_debug("%s: confined (seccomp only)", name.c_str());
	else
		log_debug("%s: jailed user=%s root=%s", name.c_str(), ctx.config.user(ctx.role).c_str(),
		    ctx.config.root_dir(ctx.role).c_str());
}

void on_setup_config(RoleRuntime &rt, Msg &&msg)
{
	MsgReader r{msg.payload};
	uint32_t version = r.u32();
	std::string path(r.str(4096));
	std::string text(r.str(kMaxMsgPayload));
	uint8_t flags = r.u8();
	if (!r.end())
		fatalx("malformed SetupConfig from parent");
	if (version != kProtocolVersion)
		fatalx("protocol version %u from parent, expected %u", version, kProtocolVersion);
	ConfigResult parsed = parse_config_text(text, path);
	if (!parsed.ok())
		fatalx("configuration from parent does not parse: %s", format_error(parsed.errors.front()).c_str());
	rt.ctx.config = std::move(parsed.config);
	rt.ctx.unprivileged = (flags & kSetupUnprivileged) != 0;
}

void on_setup_peer(RoleRuntime &rt, Msg &&msg)
{
	MsgReader r{msg.payload};
	uint8_t raw = r.u8();
	if (!r.end() || raw == 0 || raw >= kRoleCount || raw == static_cast<uint8_t>(rt.ctx.role))
		fatalx("malformed SetupPeer from parent");
	Role peer = static_cast<Role>(raw);
	if (rt.ctx.peers[raw])
		fatalx("SetupPeer: peer %s given twice", std::string(to_string(peer)).c_str());
	rt.ctx.peers[raw] = open_channel(rt, peer, std::move(msg.fds.at(0)));
}

void on_setup_listener(RoleRuntime &rt, Msg &&msg)
{
	MsgReader r{msg.payload};
	uint8_t kind = r.u8();
	std::string address(r.str(255));
	uint16_t port = r.u16();
	if (!r.end() || kind > static_cast<uint8_t>(ListenerKind::Pop3s))
		fatalx("malformed SetupListener from parent");
	set_nonblocking(msg.fds.at(0).get());
	rt.ctx.listeners.push_back({static_cast<ListenerKind>(kind), address, port, std::move(msg.fds.at(0))});
}

void on_config_reload(RoleRuntime &rt, Msg &&msg)
{
	MsgReader r{msg.payload};
	std::string text(r.str(kMaxMsgPayload));
	if (!r.end())
		fatalx("malformed ConfigReload from parent");
	ConfigResult parsed = parse_config_text(text, rt.ctx.config.path);
	if (!parsed.ok())
		fatalx("reloaded configuration does not parse: %s", format_error(parsed.errors.front()).c_str());
	rt.ctx.config = std::move(parsed.config);
	log_info("%s: configuration reloaded hostname=%s", std::string(to_string(rt.ctx.role)).c_str(),
	    rt.ctx.config.hostname.c_str());
}

void on_setup_done(RoleRuntime &rt)
{
	jail(rt);
	rt.ctx.phase = RolePhase::Running;
	if (rt.spec.post_jail)
		rt.spec.post_jail(rt.ctx);
	MsgWriter w;
	w.u32(kProtocolVersion);
	rt.ctx.parent->send(MsgType::RoleReady, w.data());
	for (auto &early : std::exchange(rt.early, {}))
		dispatch(rt, early.from, *early.channel, std::move(early.msg));
}

std::vector<MsgRule> setup_rules(RoleRuntime &rt)
{
	using P = RolePhase;
	std::vector<MsgRule> rules = {
	    {MsgType::SetupConfig, Role::Parent, P::Setup, true,
		[&rt](RoleContext &, Channel &, Msg &&m) { on_setup_config(rt, std::move(m)); }},
	    {MsgType::SetupPeer, Role::Parent, P::Setup, false,
		[&rt](RoleContext &, Channel &, Msg &&m) { on_setup_peer(rt, std::move(m)); }},
	    {MsgType::SetupListener, Role::Parent, P::Setup, false,
		[&rt](RoleContext &, Channel &, Msg &&m) { on_setup_listener(rt, std::move(m)); }},
	    {MsgType::SetupControl, Role::Parent, P::Setup, true,
		[](RoleContext &ctx, Channel &, Msg &&m) {
			set_nonblocking(m.fds.at(0).get());
			ctx.control_socket = std::move(m.fds.at(0));
		}},
	    {MsgType::SetupDone, Role::Parent, P::Setup, true,
		[&rt](RoleContext &, Channel &, Msg &&) { on_setup_done(rt); }},
	    {MsgType::ConfigReload, Role::Parent, P::Running, false,
		[&rt](RoleContext &, Channel &, Msg &&m) { on_config_reload(rt, std::move(m)); }},
#ifdef MAILD_TEST_HOOKS
	    {MsgType::TestForbiddenSyscall, Role::Parent, P::Running, false,
		[](RoleContext &ctx, Channel &, Msg &&) {
			log_info("%s: test hook: calling ptrace, which the sandbox forbids",
			    std::string(to_string(ctx.role)).c_str());
			syscall(SYS_ptrace, 0, 0, 0, 0);
			log_warnx("ptrace returned: the sandbox did not stop it");
		}},
#endif
	};
	return rules;
}

void parse_args(int argc, char **argv, bool &foreground, bool &verbose)
{
	int ch;
	while ((ch = getopt(argc, argv, "dv")) != -1) {
		switch (ch) {
		case 'd':
			foreground = true;
			break;
		case 'v':
			verbose = true;
			break;
		default:
			std::exit(1);
		}
	}
}

} // namespace

void run_role(const RoleSpec &spec, int argc, char **argv)
{
	bool foreground = false, verbose = false;
	parse_args(argc, argv, foreground, verbose);
	std::string name(to_string(spec.role));
	log_init(role_info(spec.role).name.data(), foreground ? LogTarget::Stderr : LogTarget::Syslog, verbose);

	// The parent controls our lifetime: Ctrl-C in a terminal reaches the
	// whole process group, but only maild decides how the family stops.
	std::signal(SIGINT, SIG_IGN);
	std::signal(SIGHUP, SIG_IGN);
	std::signal(SIGPIPE, SIG_IGN);

	struct stat st;
	if (fstat(kParentFd, &st) < 0 || !S_ISSOCK(st.st_mode))
		fatalx("%s: must be started by maild (no socket on fd %d)", name.c_str(), kParentFd);

	RoleRuntime rt{spec, {}, {}, {}};
	rt.ctx.role = spec.role;
	rt.ctx.base = event_base_new();
	if (rt.ctx.base == nullptr)
		fatalx("event_base_new failed");
	rt.rules = setup_rules(rt);
	rt.rules.insert(rt.rules.end(), spec.rules.begin(), spec.rules.end());
	rt.ctx.parent = open_channel(rt, Role::Parent, UniqueFd(kParentFd));

	event_base_dispatch(rt.ctx.base);
	fatalx("%s: event loop ended", name.c_str());
}

namespace {

struct RefuseState {
	RoleContext &ctx;
	std::string reply;
	std::vector<event *> events;
};

void refuse_cb(evutil_socket_t fd, short, void *arg)
{
	auto *state = static_cast<RefuseState *>(arg);
	for (;;) {
		UniqueFd client(accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
		if (!client)
			return; // EAGAIN, or an aborted connection: nothing to answer
		// One short line into an empty socket buffer: a failed or short
		// write only means the client is already gone.
		(void)!write(client.get(), state->reply.data(), state->reply.size());
	}
}

} // namespace

void refuse_connections(RoleContext &ctx, std::string reply)
{
	// Lives as long as the process: the listeners are served until exit.
	auto *state = new RefuseState{ctx, std::move(reply), {}};
	for (auto &listener : ctx.listeners) {
		event *ev = event_new(ctx.base, listener.fd.get(), EV_READ | EV_PERSIST, refuse_cb, state);
		if (ev == nullptr || event_add(ev, nullptr) < 0)
			fatalx("cannot watch listener %s:%u", listener.address.c_str(), listener.port);
		state->events.push_back(ev);
	}
}

} // namespace maild
