// maild, the privileged parent: state and entry points shared by its files.
#pragma once

#include "common/config.h"
#include "common/imsg.h"
#include "common/role.h"
#include "common/roles.h"
#include "common/unique_fd.h"

#include <sys/types.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct event_base;
struct event;

namespace maild {

struct ParentOptions {
	std::string config_path{kDefaultConfigPath};
	bool foreground = false;   // -d
	bool verbose = false;      // -v
	bool check_only = false;   // -n
	bool unprivileged = false; // -u
	// -T hook:ROLE, test builds only: "syscall" or "imsg".
	std::string test_hook;
	std::optional<Role> test_hook_role;
};

enum class ChildState : uint8_t { Starting, Ready, Exited };

struct Child {
	Role role{};
	pid_t pid = -1;
	ChildState state = ChildState::Starting;
	std::unique_ptr<Channel> channel;
};

struct LoadedConfig {
	Config config;
	std::string text;
};

// Reads, parses and checks the configuration; prints nothing. On failure
// the errors are returned ready to print, one per line.
std::optional<LoadedConfig> load_parent_config(const std::string &path, bool privileged,
    std::vector<std::string> &errors_r);

class Parent {
public:
	Parent(ParentOptions options, LoadedConfig loaded);
	~Parent();
	// Opens listeners and the control socket, starts every role and runs
	// until the family stops. Returns the exit status.
	int run();

private:
	friend struct ParentCallbacks;
	void prepare_directories();
	void open_sockets();
	void start_roles();
	void spawn(Role role);
	void setup_role(Child &child);
	void setup_peers();
	void on_role_msg(Child &child, Msg &&msg);
	void on_role_ready(Child &child, Msg &&msg);
	void on_status_request(Child &child, Msg &&msg);
	void on_all_ready();
	void run_test_hook();
	void reap_children();
	void reload();
	void begin_shutdown(int status);
	std::string user_of(Role role) const;

	ParentOptions options_;
	LoadedConfig loaded_;
	event_base *base_ = nullptr;
	std::string role_dir_; // where the role programs are
	std::array<Child, kRoleCount> children_{};
	std::vector<ListenerSocket> listeners_;
	UniqueFd control_socket_;
	UniqueFd pidfile_;
	std::vector<event *> events_;
	event *ready_timer_ = nullptr;
	event *kill_timer_ = nullptr;
	bool shutting_down_ = false;
	int exit_status_ = 0;
};

// spawn.cc
// Creates `path` and missing parents (mode 0755, root's) and gives the
// last component `owner` and `mode`. An existing directory is left as it is:
// the configuration check has vetted it.
void create_directory(const std::string &path, const std::string &owner, mode_t mode);
UniqueFd open_listener(const Listener &listener, std::string &error_r);
UniqueFd open_control_socket(const std::string &path, std::string &error_r);
// The directory holding the role programs: libexec/maild beside the
// directory of the running maild (sbin/../libexec/maild), in an
// installation as in the build tree.
std::string find_role_dir();
// Forks and execs one role with `channel_fd` as its fd 3.
pid_t exec_role(const std::string &role_dir, Role role, int channel_fd, const ParentOptions &options);

} // namespace maild
