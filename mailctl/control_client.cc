// The commands that ask the running maild, over its control socket:
// status, auth test and resolve, and the exchange with control that the
// queue commands (queue.cc) share. The control role relays auth test and
// resolve to lookup, so they show what smtpd, imapd and pop3d would be told.
#include "mailctl/mailctl.h"

#include "common/address.h"
#include "common/config.h"
#include "common/imsg.h"
#include "lookup/password.h"
#include "lookup/resolve.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace maild {

namespace {

constexpr int kStatusTimeoutMs = 10'000;
// A password check may wait for a free worker and, after failures, for
// lookup's deliberate delay.
constexpr int kLookupTimeoutMs = 30'000;
// String limits of the replies (imsg_types.h).
constexpr std::size_t kMaxReplyString = 1024;
// And of the requests: ControlAuthTest's client address.
constexpr std::size_t kMaxClientAddress = 64;

// The control socket: -s, else the one the configuration names, else the
// default.
std::string control_socket_path(const Options &options)
{
	if (options.socket_path)
		return *options.socket_path;
	ConfigResult result = load_config(options.config_file(), false);
	if (!result.config.control_socket.empty() && (result.ok() || options.config_path))
		return result.config.control_socket;
	return Config{}.control_socket;
}

// Connects, printing why not.
UniqueFd connect_control(const std::string &path)
{
	sockaddr_un sun{};
	sun.sun_family = AF_UNIX;
	if (path.size() >= sizeof(sun.sun_path)) {
		print_error("%s: path too long", path.c_str());
		return {};
	}
	std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
	UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
	if (!fd || connect(fd.get(), reinterpret_cast<sockaddr *>(&sun), sizeof(sun)) < 0) {
		print_error("cannot connect to %s: %s (is maild running?)", path.c_str(), std::strerror(errno));
		return {};
	}
	return fd;
}

} // namespace

std::optional<Msg> ask(const Options &options, MsgType type, std::span<const uint8_t> payload, MsgType answer,
    int timeout_ms, int &exit_r)
{
	exit_r = kExitSystem;
	std::string path = control_socket_path(options);
	UniqueFd fd = connect_control(path);
	if (!fd)
		return std::nullopt;
	if (!send_msg_blocking(fd.get(), type, payload)) {
		print_error("%s: %s", path.c_str(), std::strerror(errno));
		return std::nullopt;
	}
	const MsgType accepted[] = {answer, MsgType::ControlError};
	MsgDecoder decoder(accepted);
	std::string error;
	std::optional<Msg> reply = recv_msg_blocking(fd.get(), decoder, timeout_ms, error);
	if (!reply) {
		print_error("no answer from maild: %s", error.c_str());
		return std::nullopt;
	}
	if (reply->type == MsgType::ControlError) {
		MsgReader r{reply->payload};
		std::string_view message = r.str(kMaxReplyString);
		print_error("maild: %s", printable(message).c_str());
		exit_r = kExitFailed;
		return std::nullopt;
	}
	return reply;
}

int malformed_answer()
{
	print_error("malformed answer from maild");
	return kExitSystem;
}

namespace {

bool valid_client_address(const std::string &address)
{
	unsigned char buf[sizeof(in6_addr)];
	return inet_pton(AF_INET, address.c_str(), buf) == 1 || inet_pton(AF_INET6, address.c_str(), buf) == 1;
}

// An address to ask about: any syntactically valid mailbox, local or not.
bool check_query_address(const std::string &text)
{
	std::string error;
	ParseOptions parse_options;
	parse_options.allow_utf8 = true;
	if (!parse_mailbox(text, parse_options, error)) {
		print_error("invalid address %s: %s", printable(text).c_str(), error.c_str());
		return false;
	}
	return true;
}

} // namespace

// Exit 1, not 3, when maild cannot be reached: what it always did.
int status(const Options &options, Operands)
{
	MsgWriter request;
	request.u32(kProtocolVersion);
	int exit_status = kExitOk;
	std::optional<Msg> reply = ask(options, MsgType::ControlStatusRequest, request.data(),
	    MsgType::ControlStatusResult, kStatusTimeoutMs, exit_status);
	if (!reply)
		return kExitFailed;

	struct Row {
		std::string role, user, state;
		int32_t pid;
	};
	std::vector<Row> rows;
	MsgReader r{reply->payload};
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
		print_error("malformed answer from maild");
		return kExitFailed;
	}
	std::printf("%-10s %-8s %-12s %s\n", "ROLE", "PID", "USER", "STATE");
	for (const auto &row : rows)
		std::printf("%-10s %-8d %-12s %s\n", row.role.c_str(), row.pid, row.user.c_str(), row.state.c_str());
	return kExitOk;
}

int auth_test(const Options &options, Operands operands)
{
	const std::string &user = operands[0];
	std::string client = (options.given & kOptClient) != 0 ? options.client : "127.0.0.1";
	if (client.size() > kMaxClientAddress || !valid_client_address(client)) {
		print_error("invalid client address %s: not a numeric IPv4 or IPv6 address", printable(client).c_str());
		return kExitFailed;
	}
	if (!check_query_address(user))
		return kExitFailed;

	std::string password, error;
	if (!read_password(options.password_stdin(), false, password, error)) {
		wipe_secret(password);
		print_error("%s", error.c_str());
		return kExitFailed;
	}
	// No minimum length: an account's password may predate mailctl's.
	if (password.empty() || password.size() > kMaxPasswordBytes) {
		if (password.empty())
			print_error("empty password");
		else
			print_error("password too long (at most %zu bytes)", kMaxPasswordBytes);
		wipe_secret(password);
		return kExitFailed;
	}
	MsgWriter request;
	request.u32(kProtocolVersion).str(client).str(user).str(password);
	wipe_secret(password);
	std::vector<uint8_t> payload = request.take();
	int exit_status = kExitOk;
	std::optional<Msg> reply =
	    ask(options, MsgType::ControlAuthTest, payload, MsgType::ControlAuthResult, kLookupTimeoutMs, exit_status);
	explicit_bzero(payload.data(), payload.size());
	if (!reply)
		return exit_status;

	MsgReader r{reply->payload};
	uint8_t result = r.u8();
	std::string_view canonical = r.str(kMaxReplyString);
	if (!r.end())
		return malformed_answer();
	switch (static_cast<AuthResult>(result)) {
	case AuthResult::Ok:
		std::printf("ok %s\n", printable(canonical).c_str());
		return kExitOk;
	case AuthResult::Fail:
		std::printf("failed\n");
		return kExitFailed;
	case AuthResult::TempFail:
		std::printf("temporary failure\n");
		return kExitFailed;
	}
	return malformed_answer();
}

int resolve(const Options &options, Operands operands)
{
	const std::string &address = operands[0];
	if (!check_query_address(address))
		return kExitFailed;
	MsgWriter request;
	request.u32(kProtocolVersion).str(address);
	int exit_status = kExitOk;
	std::optional<Msg> reply = ask(options, MsgType::ControlResolve, request.data(), MsgType::ControlResolveResult,
	    kLookupTimeoutMs, exit_status);
	if (!reply)
		return exit_status;

	MsgReader r{reply->payload};
	uint8_t kind = r.u8();
	std::vector<std::string> local, external;
	for (auto *list : {&local, &external}) {
		uint32_t count = r.u32();
		for (uint32_t i = 0; i < count && r.ok(); i++)
			list->emplace_back(r.str(kMaxReplyString));
	}
	std::string_view error = r.str(kMaxReplyString);
	if (!r.end())
		return malformed_answer();
	switch (static_cast<ResolveKind>(kind)) {
	case ResolveKind::Deliver:
		for (const auto &account : local)
			std::printf("deliver local %s\n", printable(account).c_str());
		for (const auto &target : external)
			std::printf("deliver external %s\n", printable(target).c_str());
		return kExitOk;
	case ResolveKind::UnknownUser:
		std::printf("unknown user\n");
		return kExitFailed;
	case ResolveKind::Disabled:
		std::printf("disabled\n");
		return kExitFailed;
	case ResolveKind::NotLocalDomain:
		std::printf("not a local domain\n");
		return kExitFailed;
	case ResolveKind::TempFail:
		std::printf("temporary failure: %s\n", printable(error).c_str());
		return kExitFailed;
	}
	return malformed_answer();
}

} // namespace maild
