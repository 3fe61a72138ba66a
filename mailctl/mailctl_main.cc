// mailctl: the operator's command line. See mailctl(8).
//
// It runs with the caller's privileges, except for the account commands:
// run as root, they become the lookup role's user before they open the
// database (accounts.cc), so that every file of it stays that user's.
// `config check` reads the file as maild would; `status`, `auth test`,
// `resolve` and the `queue` commands ask the running maild over the control
// socket, which only root (or, in an unprivileged development run, maild's
// own user) may use.
#include "mailctl/mailctl.h"

#include "common/config.h"
#include "common/imsg.h"

#include <unistd.h>

#include <array>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace maild {

std::string Options::config_file() const
{
	return config_path.value_or(std::string(kDefaultConfigPath));
}

void print_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	std::fputs("mailctl: ", stderr);
	std::vfprintf(stderr, fmt, ap);
	std::fputc('\n', stderr);
	va_end(ap);
}

std::string printable(std::string_view text)
{
	static constexpr char kHex[] = "0123456789abcdef";
	std::string out;
	for (unsigned char c : text) {
		if (c < 0x20 || c == 0x7f) {
			out += "\\x";
			out += kHex[c >> 4];
			out += kHex[c & 0xf];
		} else {
			out += static_cast<char>(c);
		}
	}
	return out;
}

} // namespace maild

namespace {

using namespace maild;

int version(const Options &, Operands)
{
	std::printf("mailctl %s (protocol %u)\n", MAILD_VERSION, kProtocolVersion);
	return kExitOk;
}

int config_check(const Options &options, Operands)
{
	std::string path = options.config_file();
	ConfigResult result = load_config(path, geteuid() == 0);
	for (const auto &error : result.errors)
		std::fprintf(stderr, "%s\n", format_error(error).c_str());
	if (!result.ok())
		return kExitFailed;
	std::printf("%s: configuration OK\n", path.c_str());
	return kExitOk;
}

struct Command {
	std::string_view name;     // one or two words
	std::string_view synopsis; // operands and options, for usage
	std::size_t min_operands;
	std::size_t max_operands;
	unsigned options; // the CommandOption bits it accepts
	int (*run)(const Options &, Operands);
};

constexpr std::array kCommands = {
    Command{"alias add", "SOURCE TARGET", 2, 2, 0, alias_add},
    Command{"alias check", "", 0, 0, 0, alias_check},
    Command{"alias del", "SOURCE [TARGET]", 1, 2, 0, alias_del},
    Command{"alias list", "[DOMAIN]", 0, 1, 0, alias_list},
    Command{"auth test", "[--client ADDRESS] [--password-stdin] ADDRESS", 1, 1, kOptClient | kOptPasswordStdin,
	auth_test},
    Command{"config check", "", 0, 0, 0, config_check},
    Command{"domain add", "DOMAIN", 1, 1, 0, domain_add},
    Command{"domain del", "[--force] DOMAIN", 1, 1, kOptForce, domain_del},
    Command{"domain list", "", 0, 0, 0, domain_list},
    Command{"queue flush", "[ID]", 0, 1, 0, queue_flush},
    Command{"queue hold", "ID", 1, 1, 0, queue_hold},
    Command{"queue release", "ID", 1, 1, 0, queue_release},
    Command{"queue remove", "ID", 1, 1, 0, queue_remove},
    Command{"queue show", "", 0, 0, 0, queue_show},
    Command{"resolve", "ADDRESS", 1, 1, 0, resolve},
    Command{"status", "", 0, 0, 0, status},
    Command{"user add", "[--password-stdin] ADDRESS", 1, 1, kOptPasswordStdin, user_add},
    Command{"user del", "ADDRESS", 1, 1, 0, user_del},
    Command{"user disable", "ADDRESS", 1, 1, 0, user_disable},
    Command{"user enable", "ADDRESS", 1, 1, 0, user_enable},
    Command{"user list", "[DOMAIN]", 0, 1, 0, user_list},
    Command{"user passwd", "[--password-stdin] ADDRESS", 1, 1, kOptPasswordStdin, user_passwd},
    Command{"version", "", 0, 0, 0, version},
};

void print_synopsis(const Command &command)
{
	std::fprintf(stderr, "       mailctl [-f file] [-s socket] %.*s%s%.*s\n", static_cast<int>(command.name.size()),
	    command.name.data(), command.synopsis.empty() ? "" : " ", static_cast<int>(command.synopsis.size()),
	    command.synopsis.data());
}

[[noreturn]] void usage(const Command *command = nullptr)
{
	std::fprintf(stderr, "usage:\n");
	if (command != nullptr) {
		print_synopsis(*command);
	} else {
		for (const auto &c : kCommands)
			print_synopsis(c);
	}
	std::exit(kExitUsage);
}

// Options may come before or after the command; "--" ends them, so that an
// operand may start with '-' (a local part may).
Options parse_args(int argc, char **argv)
{
	Options options;
	bool operands_only = false;
	for (int i = 1; i < argc; i++) {
		std::string_view arg = argv[i];
		if (operands_only || !arg.starts_with("-")) {
			options.words.emplace_back(arg);
		} else if (arg == "--") {
			operands_only = true;
		} else if (arg == "-f" || arg == "-s") {
			if (i + 1 >= argc)
				usage();
			(arg == "-f" ? options.config_path : options.socket_path) = argv[++i];
		} else if (arg == "--password-stdin") {
			options.given |= kOptPasswordStdin;
		} else if (arg == "--force") {
			options.given |= kOptForce;
		} else if (arg == "--client") {
			if (i + 1 >= argc)
				usage();
			options.given |= kOptClient;
			options.client = argv[++i];
		} else {
			print_error("unknown option %s", printable(arg).c_str());
			usage();
		}
	}
	return options;
}

// The command whose name starts the words, and how many words it took.
const Command *find_command(const std::vector<std::string> &words, std::size_t &name_words_r)
{
	for (const auto &command : kCommands) {
		std::string_view name = command.name;
		std::size_t space = name.find(' ');
		std::size_t n = space == std::string_view::npos ? 1 : 2;
		if (words.size() < n || words[0] != name.substr(0, space))
			continue;
		if (n == 2 && words[1] != name.substr(space + 1))
			continue;
		name_words_r = n;
		return &command;
	}
	return nullptr;
}

} // namespace

int main(int argc, char **argv)
{
	Options options = parse_args(argc, argv);
	std::size_t name_words = 0;
	const Command *command = find_command(options.words, name_words);
	if (command == nullptr)
		usage();
	Operands operands = std::span(options.words).subspan(name_words);
	if (operands.size() < command->min_operands || operands.size() > command->max_operands ||
	    (options.given & ~command->options) != 0)
		usage(command);
	return command->run(options, operands);
}
