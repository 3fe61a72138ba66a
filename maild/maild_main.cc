// maild: the parent of the family. See maild(8).
#include "maild/parent.h"

#include "common/log.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

[[noreturn]] void usage()
{
#ifdef MAILD_TEST_HOOKS
	std::fprintf(stderr, "usage: maild [-dnuv] [-f file] [-T hook:role]\n");
#else
	std::fprintf(stderr, "usage: maild [-dnuv] [-f file]\n");
#endif
	std::exit(1);
}

#ifdef MAILD_TEST_HOOKS
// -T syscall:ROLE makes ROLE call a system call its sandbox forbids;
// -T imsg:ROLE sends ROLE a message it must refuse. Test builds only.
void parse_test_hook(const std::string &arg, maild::ParentOptions &options)
{
	auto colon = arg.find(':');
	if (colon == std::string::npos)
		usage();
	options.test_hook = arg.substr(0, colon);
	options.test_hook_role = maild::role_from_name(arg.substr(colon + 1));
	if ((options.test_hook != "syscall" && options.test_hook != "imsg") || !options.test_hook_role ||
	    *options.test_hook_role == maild::Role::Parent) {
		std::fprintf(stderr, "maild: -T: expected syscall:ROLE or imsg:ROLE\n");
		std::exit(1);
	}
}
#endif

} // namespace

int main(int argc, char **argv)
{
	maild::ParentOptions options;
	int ch;
	while ((ch = getopt(argc, argv, "df:nT:uv")) != -1) {
		switch (ch) {
		case 'd':
			options.foreground = true;
			break;
		case 'f':
			options.config_path = optarg;
			break;
		case 'n':
			options.check_only = true;
			break;
#ifdef MAILD_TEST_HOOKS
		case 'T':
			parse_test_hook(optarg, options);
			break;
#endif
		case 'u':
			options.unprivileged = true;
			break;
		case 'v':
			options.verbose = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	bool root = geteuid() == 0;
	// -n checks what this caller could check: the users and directory
	// owners only matter for (and can only be verified by) a root maild.
	bool privileged = root && !options.unprivileged;
	std::vector<std::string> errors;
	auto loaded = maild::load_parent_config(options.config_path, privileged, errors);
	if (!loaded) {
		for (const auto &error : errors)
			std::fprintf(stderr, "%s\n", error.c_str());
		return 1;
	}
	if (options.check_only) {
		std::printf("%s: configuration OK\n", options.config_path.c_str());
		return 0;
	}
	if (!root && !options.unprivileged) {
		std::fprintf(stderr, "maild: must be started as root; -u starts an unprivileged development "
				     "family (no chroot, no change of user)\n");
		return 1;
	}

	maild::log_init("maild", options.foreground ? maild::LogTarget::Stderr : maild::LogTarget::Syslog,
	    options.verbose);
	if (options.unprivileged)
		maild::log_warnx("unprivileged mode: the roles cannot chroot or change user; "
				 "do not use this for real mail");
	maild::Parent parent(std::move(options), std::move(*loaded));
	return parent.run();
}
