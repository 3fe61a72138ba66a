// mta: sends queued mail to remote hosts.
//
// A network role: runs as the network user (default _maild), chrooted into
// the empty directory, reading nothing on disk. The queue passes it each
// message as a descriptor; lookup answers its DNS questions. Peers: queue
// and lookup.
//
// Today it starts, jails itself and waits: the outbound issue fills it in.
#include "common/role.h"

int main(int argc, char **argv)
{
	maild::RoleSpec spec{maild::Role::Mta, {}, {}, {}};
	maild::run_role(spec, argc, argv);
}
