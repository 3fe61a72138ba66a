// mailctl: the operator's command line. See mailctl(8).
//
// It runs with the caller's privileges: `config check` reads the file as
// maild would; `status` asks the control role over the control socket,
// which only root (or, in an unprivileged development run, maild's own
// user) may use.
#include "common/config.h"
#include "common/imsg.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace {

using namespace maild;

constexpr int kStatusTimeoutMs = 10'000;

struct Options {
	std::optional<std::string> config_path; // -f
	std::optional<std::string> socket_path; // -s
	std::vector<std::string> words;         // the command
};

[[noreturn]] void usage()
{
	std::fprintf(stderr, "usage: mailctl [-f file] [-s socket] command\n"
			     "commands:\n"
			     "  config check   check the configuration file\n"
			     "  status         show the processes of the running maild\n"
			     "  version        show the version\n");
	std::exit(1);
}

Options parse_args(int argc, char **argv)
{
	Options options;
	for (int i = 1; i < argc; i++) {
		std::string_view arg = argv[i];
		if (arg == "-f" || arg == "-s") {
			if (i + 1 >= argc)
				usage();
			(arg == "-f" ? options.config_path : options.socket_path) = argv[++i];
		} else if (arg.starts_with("-")) {
			usage();
		} else {
			options.words.emplace_back(arg);
		}
	}
	return options;
}

int config_check(const Options &options)
{
	std::string path = options.config_path.value_or(std::string(kDefaultConfigPath));
	ConfigResult result = load_config(path, geteuid() == 0);
	for (const auto &error : result.errors)
		std::fprintf(stderr, "%s\n", format_error(error).c_str());
	if (!result.ok())
		return 1;
	std::printf("%s: configuration OK\n", path.c_str());
	return 0;
}

// The control socket: -s, else the one the configuration names, else the
// default.
std::string control_socket_path(const Options &options)
{
	if (options.socket_path)
		return *options.socket_path;
	std::string path = options.config_path.value_or(std::string(kDefaultConfigPath));
	ConfigResult result = load_config(path, false);
	if (!result.config.control_socket.empty() && (result.ok() || options.config_path))
		return result.config.control_socket;
	return Config{}.control_socket;
}

int status(const Options &options)
{
	std::string path = control_socket_path(options);
	sockaddr_un sun{};
	sun.sun_family = AF_UNIX;
	if (path.size() >= sizeof(sun.sun_path)) {
		std::fprintf(stderr, "mailctl: %s: path too long\n", path.c_str());
		return 1;
	}
	std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
	UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (!fd || connect(fd.get(), reinterpret_cast<sockaddr *>(&sun), sizeof(sun)) < 0) {
		std::fprintf(stderr, "mailctl: cannot connect to %s: %s (is maild running?)\n", path.c_str(),
		    std::strerror(errno));
		return 1;
	}

	MsgWriter request;
	request.u32(kProtocolVersion);
	if (!send_msg_blocking(fd.get(), MsgType::ControlStatusRequest, request.data())) {
		std::fprintf(stderr, "mailctl: %s: %s\n", path.c_str(), std::strerror(errno));
		return 1;
	}
	const MsgType accepted[] = {MsgType::ControlStatusResult, MsgType::ControlError};
	MsgDecoder decoder(accepted);
	std::string error;
	auto reply = recv_msg_blocking(fd.get(), decoder, kStatusTimeoutMs, error);
	if (!reply) {
		std::fprintf(stderr, "mailctl: no answer from maild: %s\n", error.c_str());
		return 1;
	}
	MsgReader r{reply->payload};
	if (reply->type == MsgType::ControlError) {
		std::string_view message = r.str(1024);
		std::fprintf(stderr, "mailctl: maild: %.*s\n", static_cast<int>(message.size()), message.data());
		return 1;
	}

	struct Row {
		std::string role, user, state;
		int32_t pid;
	};
	std::vector<Row> rows;
	uint32_t count = r.u32();
	for (uint32_t i = 0; i < count && r.ok(); i++) {
		Row row;
		row.role = r.str(64);
		row.pid = r.i32();
		row.user = r.str(64);
		row.state = r.str(64);
		rows.push_back(std::move(row));
	}
	if (!r.end()) {
		std::fprintf(stderr, "mailctl: malformed answer from maild\n");
		return 1;
	}
	std::printf("%-10s %-8s %-12s %s\n", "ROLE", "PID", "USER", "STATE");
	for (const auto &row : rows)
		std::printf("%-10s %-8d %-12s %s\n", row.role.c_str(), row.pid, row.user.c_str(), row.state.c_str());
	return 0;
}

} // namespace

int main(int argc, char **argv)
{
	Options options = parse_args(argc, argv);
	const auto &w = options.words;
	if (w.size() == 1 && w[0] == "version") {
		std::printf("mailctl %s (protocol %u)\n", MAILD_VERSION, kProtocolVersion);
		return 0;
	}
	if (w.size() == 2 && w[0] == "config" && w[1] == "check")
		return config_check(options);
	if (w.size() == 1 && w[0] == "status")
		return status(options);
	usage();
}
