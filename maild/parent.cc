// maild, the privileged parent: starts the family and watches it.
//
// It parses nothing but its own configuration file and the fixed-size
// messages of its roles. Its event loop handles signals (TERM/INT: stop,
// HUP: reload, CHLD: a role died, so the family stops), the roles' ready
// messages and status requests from control.
#include "maild/parent.h"

#include "common/log.h"

#include <event2/event.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

namespace maild {

namespace {

// Who may talk to whom: every other pair has no channel at all.
constexpr std::pair<Role, Role> kPeerLinks[] = {
    {Role::Smtpd, Role::Lookup}, {Role::Smtpd, Role::Queue}, {Role::Queue, Role::Lookup},
    {Role::Queue, Role::Deliver}, {Role::Queue, Role::Mta}, {Role::Mta, Role::Lookup},
    {Role::Imapd, Role::Lookup}, {Role::Pop3d, Role::Lookup}, {Role::Control, Role::Lookup}, {Role::Control, Role::Queue},
};

constexpr int kReadyTimeoutSeconds = 30;
// SIGTERM, then this long before SIGKILL: within the 5 s every process has
// to be gone after maild is told to stop.
constexpr int kKillTimeoutSeconds = 3;

Role listener_role(ListenerKind kind)
{
	switch (kind) {
	case ListenerKind::Smtp:
	case ListenerKind::Submission:
	case ListenerKind::Submissions:
		return Role::Smtpd;
	case ListenerKind::Imap:
	case ListenerKind::Imaps:
		return Role::Imapd;
	case ListenerKind::Pop3:
	case ListenerKind::Pop3s:
		return Role::Pop3d;
	}
	panic("unknown listener kind");
}

std::string_view state_name(ChildState state)
{
	switch (state) {
	case ChildState::Starting:
		return "starting";
	case ChildState::Ready:
		return "running";
	case ChildState::Exited:
		return "exited";
	}
	return "unknown";
}

std::string describe_exit(int status)
{
	if (WIFSIGNALED(status)) {
		const char *abbrev = sigabbrev_np(WTERMSIG(status));
		return "killed by signal " + (abbrev ? "SIG" + std::string(abbrev) : std::to_string(WTERMSIG(status)));
	}
	return "exited with status " + std::to_string(WEXITSTATUS(status));
}

void set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		fatal("fcntl O_NONBLOCK");
}

// Everything in the configuration that a running family cannot change:
// sockets are open, roles are jailed in their directories as their users.
std::string restart_only_change(const Config &old_config, const Config &new_config)
{
	auto same_listeners = [](const std::vector<Listener> &a, const std::vector<Listener> &b) {
		return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const Listener &x, const Listener &y) {
			return x.kind == y.kind && x.address == y.address && x.port == y.port;
		});
	};
	if (!same_listeners(old_config.listeners, new_config.listeners))
		return "listeners";
	if (old_config.tls_certificate != new_config.tls_certificate || old_config.tls_key != new_config.tls_key)
		return "tls-certificate/tls-key";
	if (old_config.database != new_config.database || old_config.spool != new_config.spool ||
	    old_config.mail_store != new_config.mail_store || old_config.empty_dir != new_config.empty_dir ||
	    old_config.control_socket != new_config.control_socket || old_config.pidfile != new_config.pidfile)
		return "paths";
	if (old_config.role_user != new_config.role_user)
		return "users";
	return {};
}

} // namespace

// libevent's C callbacks, with access to Parent's private members.
struct ParentCallbacks {
	static void on_signal(evutil_socket_t sig, short, void *arg)
	{
		auto *parent = static_cast<Parent *>(arg);
		switch (sig) {
		case SIGTERM:
		case SIGINT:
			if (!parent->shutting_down_)
				log_info("received %s, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
			parent->begin_shutdown(0);
			break;
		case SIGHUP:
			parent->reload();
			break;
		case SIGCHLD:
			parent->reap_children();
			break;
		default:
			break;
		}
	}
	static void on_ready_timeout(evutil_socket_t, short, void *arg)
	{
		auto *parent = static_cast<Parent *>(arg);
		for (const auto &child : parent->children_)
			if (child.pid > 0 && child.state == ChildState::Starting)
				log_warnx("role %s (pid %d) did not become ready within %d seconds",
				    std::string(to_string(child.role)).c_str(), static_cast<int>(child.pid),
				    kReadyTimeoutSeconds);
		parent->begin_shutdown(1);
	}
	static void on_kill_timeout(evutil_socket_t, short, void *arg)
	{
		auto *parent = static_cast<Parent *>(arg);
		for (const auto &child : parent->children_)
			if (child.pid > 0 && child.state != ChildState::Exited) {
				log_warnx("role %s (pid %d) did not stop, killing it",
				    std::string(to_string(child.role)).c_str(), static_cast<int>(child.pid));
				kill(child.pid, SIGKILL);
			}
	}
};

std::optional<LoadedConfig> load_parent_config(const std::string &path, bool privileged,
    std::vector<std::string> &errors_r)
{
	ConfigResult result = load_config(path, privileged);
	if (!result.ok()) {
		for (const auto &error : result.errors)
			errors_r.push_back(format_error(error));
		return std::nullopt;
	}
	// The roles get the text that was checked, not the file again: they
	// cannot open it from their jails, and it may have changed since.
	std::string text = std::move(result.text);
	ConfigResult again = parse_config_text(text, path);
	// load_config filled in what the file leaves to the system (hostname);
	// the roles must see the same, so it goes into the text they parse.
	if (again.config.hostname != result.config.hostname)
		text += "\nhostname " + result.config.hostname + "\n";
	return LoadedConfig{std::move(result.config), std::move(text)};
}

Parent::Parent(ParentOptions options, LoadedConfig loaded)
    : options_(std::move(options)), loaded_(std::move(loaded))
{
	for (std::size_t i = 0; i < kRoleCount; i++)
		children_[i].role = static_cast<Role>(i);
}

Parent::~Parent()
{
	for (auto &child : children_)
		child.channel.reset();
	for (event *ev : events_)
		event_free(ev);
	if (ready_timer_)
		event_free(ready_timer_);
	if (kill_timer_)
		event_free(kill_timer_);
	if (base_)
		event_base_free(base_);
	if (pidfile_)
		unlink(loaded_.config.pidfile.c_str());
}

std::string Parent::user_of(Role role) const
{
	if (options_.unprivileged) {
		// Every process runs as whoever started maild.
		const passwd *pw = getpwuid(geteuid());
		return pw ? pw->pw_name : std::to_string(geteuid());
	}
	return role == Role::Parent ? "root" : loaded_.config.user(role);
}

void Parent::prepare_directories()
{
	const Config &config = loaded_.config;
	// Unprivileged, everything belongs to whoever runs maild.
	auto owner = [this](Role role) { return options_.unprivileged ? std::string() : user_of(role); };
	create_directory(config.empty_dir, options_.unprivileged ? "" : "root", 0755);
	create_directory(config.root_dir(Role::Lookup), owner(Role::Lookup), 0700);
	create_directory(config.spool, owner(Role::Queue), 0700);
	create_directory(config.mail_store, owner(Role::Deliver), 0700);
}

void Parent::open_sockets()
{
	const Config &config = loaded_.config;
	std::string error;

	// The pidfile's lock says "a maild runs here": it is held for the
	// life of the process, and keeps a second maild from taking over the
	// control socket of the first.
	std::string piddir = config.pidfile.substr(0, config.pidfile.rfind('/'));
	if (!piddir.empty() && mkdir(piddir.c_str(), 0755) < 0 && errno != EEXIST)
		fatal("mkdir %s", piddir.c_str());
	UniqueFd pidfile(open(config.pidfile.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
	if (!pidfile)
		fatal("pidfile %s", config.pidfile.c_str());
	if (flock(pidfile.get(), LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			fatalx("another maild is running (pidfile %s is locked)", config.pidfile.c_str());
		fatal("flock %s", config.pidfile.c_str());
	}
	pidfile_ = std::move(pidfile);

	for (const auto &listener : config.listeners) {
		UniqueFd fd = open_listener(listener, error);
		if (!fd)
			fatalx("listen %s %s port %u: %s", std::string(to_string(listener.kind)).c_str(),
			    listener.address.c_str(), listener.port, error.c_str());
		listeners_.push_back({listener.kind, listener.address, listener.port, std::move(fd)});
	}
	control_socket_ = open_control_socket(config.control_socket, error);
	if (!control_socket_)
		fatalx("control socket %s: %s", config.control_socket.c_str(), error.c_str());
}

void Parent::spawn(Role role)
{
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
		fatal("socketpair");
	UniqueFd ours(pair[0]), theirs(pair[1]);
	Child &child = children_[static_cast<std::size_t>(role)];
	child.pid = exec_role(role_dir_, role, theirs.get(), options_);
	if (child.pid < 0)
		fatal("fork for role %s", std::string(to_string(role)).c_str());
	log_debug("started role %s pid=%d", std::string(to_string(role)).c_str(), static_cast<int>(child.pid));

	set_nonblocking(ours.get());
	std::vector<MsgType> accepted = {MsgType::RoleReady};
	if (role == Role::Control)
		accepted.push_back(MsgType::ParentStatusRequest);
	child.channel = std::make_unique<Channel>(
	    base_, std::move(ours), std::string(to_string(role)), accepted,
	    [this, &child](Channel &, Msg &&msg) { on_role_msg(child, std::move(msg)); },
	    [this, &child](Channel &, std::optional<MsgError> error, std::string_view detail) {
		    if (error) {
			    log_warnx("malformed message from role %s: %s (%.*s)",
				std::string(to_string(child.role)).c_str(), std::string(to_string(*error)).c_str(),
				static_cast<int>(detail.size()), detail.data());
			    kill(child.pid, SIGKILL);
			    begin_shutdown(1);
		    }
		    // A clean EOF means the role is exiting: SIGCHLD tells the rest.
	    });
}

void Parent::setup_role(Child &child)
{
	Channel &channel = *child.channel;
	MsgWriter config;
	config.u32(kProtocolVersion);
	config.str(loaded_.config.path);
	config.str(loaded_.text);
	config.u8(options_.unprivileged ? kSetupUnprivileged : 0);
	channel.send(MsgType::SetupConfig, config.data());

	for (auto &listener : listeners_) {
		if (listener_role(listener.kind) != child.role)
			continue;
		MsgWriter w;
		w.u8(static_cast<uint8_t>(listener.kind));
		w.str(listener.address);
		w.u16(listener.port);
		std::vector<UniqueFd> fds;
		fds.push_back(std::move(listener.fd));
		channel.send(MsgType::SetupListener, w.data(), std::move(fds));
	}
	if (child.role == Role::Control) {
		std::vector<UniqueFd> fds;
		fds.push_back(std::move(control_socket_));
		channel.send(MsgType::SetupControl, {}, std::move(fds));
	}
}

void Parent::setup_peers()
{
	for (auto [a, b] : kPeerLinks) {
		int pair[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
			fatal("socketpair");
		UniqueFd end_a(pair[0]), end_b(pair[1]);
		auto send_peer = [this](Role to, Role peer, UniqueFd fd) {
			MsgWriter w;
			w.u8(static_cast<uint8_t>(peer));
			std::vector<UniqueFd> fds;
			fds.push_back(std::move(fd));
			children_[static_cast<std::size_t>(to)].channel->send(MsgType::SetupPeer, w.data(), std::move(fds));
		};
		send_peer(a, b, std::move(end_a));
		send_peer(b, a, std::move(end_b));
	}
}

void Parent::start_roles()
{
	for (auto &child : children_)
		if (child.role != Role::Parent)
			spawn(child.role);
	for (auto &child : children_)
		if (child.role != Role::Parent)
			setup_role(child);
	setup_peers();
	for (auto &child : children_)
		if (child.role != Role::Parent)
			child.channel->send(MsgType::SetupDone);

	ready_timer_ = evtimer_new(base_, ParentCallbacks::on_ready_timeout, this);
	timeval tv{kReadyTimeoutSeconds, 0};
	evtimer_add(ready_timer_, &tv);
}

void Parent::on_role_msg(Child &child, Msg &&msg)
{
	if (shutting_down_)
		return;
	// The channel's allowlist lets nothing else through.
	if (msg.type == MsgType::RoleReady)
		return on_role_ready(child, std::move(msg));
	if (msg.type == MsgType::ParentStatusRequest)
		return on_status_request(child, std::move(msg));
	panic("role %s: unexpected %s", std::string(to_string(child.role)).c_str(),
	    std::string(to_string(msg.type)).c_str());
}

void Parent::on_role_ready(Child &child, Msg &&msg)
{
	MsgReader r{msg.payload};
	uint32_t version = r.u32();
	if (!r.end() || child.state != ChildState::Starting || version != kProtocolVersion) {
		log_warnx("role %s: bad RoleReady (version %u), stopping", std::string(to_string(child.role)).c_str(),
		    version);
		begin_shutdown(1);
		return;
	}
	child.state = ChildState::Ready;
	log_debug("role %s ready pid=%d", std::string(to_string(child.role)).c_str(), static_cast<int>(child.pid));
	for (const auto &c : children_)
		if (c.role != Role::Parent && c.state != ChildState::Ready)
			return;
	on_all_ready();
}

void Parent::on_status_request(Child &child, Msg &&msg)
{
	MsgReader r{msg.payload};
	uint32_t request_id = r.u32();
	if (!r.end() || child.state != ChildState::Ready) {
		log_warnx("role %s: bad ParentStatusRequest, stopping", std::string(to_string(child.role)).c_str());
		begin_shutdown(1);
		return;
	}
	MsgWriter w;
	w.u32(request_id);
	w.u32(static_cast<uint32_t>(children_.size()));
	for (const auto &c : children_) {
		w.str(to_string(c.role));
		w.i32(c.role == Role::Parent ? static_cast<int32_t>(getpid()) : static_cast<int32_t>(c.pid));
		w.str(user_of(c.role));
		w.str(c.role == Role::Parent ? "running" : state_name(c.state));
	}
	child.channel->send(MsgType::ParentStatusResult, w.data());
}

void Parent::on_all_ready()
{
	evtimer_del(ready_timer_);
	for (const auto &listener : loaded_.config.listeners)
		log_info("listening %s %s port %u", std::string(to_string(listener.kind)).c_str(),
		    listener.address.c_str(), listener.port);
	log_info("control socket %s", loaded_.config.control_socket.c_str());
	log_info("ready: %zu roles running%s", kRoleCount - 1,
	    options_.unprivileged ? " (unprivileged: no chroot, no change of user)" : "");
	if (!options_.test_hook.empty())
		run_test_hook();
}

void Parent::run_test_hook()
{
	Child &child = children_[static_cast<std::size_t>(*options_.test_hook_role)];
	log_info("test hook %s for role %s", options_.test_hook.c_str(), std::string(to_string(child.role)).c_str());
	if (options_.test_hook == "syscall") {
		child.channel->send(MsgType::TestForbiddenSyscall);
	} else {
		// A type value that no MsgType has: the role must refuse it.
		child.channel->send(static_cast<MsgType>(0x7fff), {});
	}
}

void Parent::reap_children()
{
	for (;;) {
		int status = 0;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			break;
		auto it = std::find_if(children_.begin(), children_.end(), [pid](const Child &c) { return c.pid == pid; });
		if (it == children_.end())
			continue;
		Child &child = *it;
		child.state = ChildState::Exited;
		std::string how = describe_exit(status);
		if (shutting_down_) {
			log_debug("role %s (pid %d) %s", std::string(to_string(child.role)).c_str(), static_cast<int>(pid),
			    how.c_str());
		} else {
			log_warnx("role %s (pid %d) %s: stopping the family", std::string(to_string(child.role)).c_str(),
			    static_cast<int>(pid), how.c_str());
			begin_shutdown(1);
		}
		// Outside the channel's callbacks, so it may go now.
		child.channel.reset();
	}
	if (shutting_down_ && std::all_of(children_.begin(), children_.end(), [](const Child &c) {
		    return c.role == Role::Parent || c.pid <= 0 || c.state == ChildState::Exited;
	    }))
		event_base_loopexit(base_, nullptr);
}

void Parent::reload()
{
	if (shutting_down_)
		return;
	log_info("received SIGHUP, reloading %s", options_.config_path.c_str());
	std::vector<std::string> errors;
	auto loaded = load_parent_config(options_.config_path, !options_.unprivileged, errors);
	if (!loaded) {
		for (const auto &error : errors)
			log_warnx("reload: %s", error.c_str());
		log_warnx("reload failed: keeping the running configuration");
		return;
	}
	std::string changed = restart_only_change(loaded_.config, loaded->config);
	if (!changed.empty()) {
		log_warnx("reload: %s changed, which takes a restart: keeping the running configuration",
		    changed.c_str());
		return;
	}
	loaded_ = std::move(*loaded);
	MsgWriter w;
	w.str(loaded_.text);
	for (auto &child : children_)
		if (child.channel && child.state == ChildState::Ready)
			child.channel->send(MsgType::ConfigReload, w.data());
	log_info("configuration reloaded");
}

void Parent::begin_shutdown(int status)
{
	exit_status_ = std::max(exit_status_, status);
	if (shutting_down_)
		return;
	shutting_down_ = true;
	if (ready_timer_)
		evtimer_del(ready_timer_);
	for (const auto &child : children_)
		if (child.pid > 0 && child.state != ChildState::Exited)
			kill(child.pid, SIGTERM);
	kill_timer_ = evtimer_new(base_, ParentCallbacks::on_kill_timeout, this);
	timeval tv{kKillTimeoutSeconds, 0};
	evtimer_add(kill_timer_, &tv);
	// Children that already exited are counted by the next reap.
	reap_children();
}

int Parent::run()
{
	base_ = event_base_new();
	if (base_ == nullptr)
		fatalx("event_base_new failed");
	role_dir_ = find_role_dir();
	prepare_directories();
	open_sockets();

	if (!options_.foreground && daemon(0, 0) < 0)
		fatal("daemon");
	std::string pid = std::to_string(getpid()) + "\n";
	if (ftruncate(pidfile_.get(), 0) < 0 || pwrite(pidfile_.get(), pid.data(), pid.size(), 0) < 0)
		fatal("write pidfile %s", loaded_.config.pidfile.c_str());

	for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) {
		event *ev = evsignal_new(base_, sig, ParentCallbacks::on_signal, this);
		if (ev == nullptr || event_add(ev, nullptr) < 0)
			fatalx("cannot watch signal %d", sig);
		events_.push_back(ev);
	}
	std::signal(SIGPIPE, SIG_IGN);

	log_info("starting %s (config %s)%s", MAILD_VERSION, loaded_.config.path.c_str(),
	    options_.unprivileged ? ", unprivileged" : "");
	start_roles();
	event_base_dispatch(base_);
	log_info("stopped");
	return exit_status_;
}

} // namespace maild
