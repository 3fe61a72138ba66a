// deliver: writes messages into local Maildirs.
//
// Runs as the mail store owner (default _maildv), chrooted into the mail
// store. The queue hands it a message as a descriptor with a validated
// recipient; it never parses network input and never opens the spool.
//
// Today it starts, jails itself and waits: the SMTP-in issue fills it in.
#include "common/role.h"

int main(int argc, char **argv)
{
	maild::RoleSpec spec{maild::Role::Deliver, {}, {}, {}};
	maild::run_role(spec, argc, argv);
}
