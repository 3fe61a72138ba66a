// pop3d: the POP3 front on the pop3 and pop3s listeners.
//
// A network role: runs as the network user (default _maild), chrooted into
// the empty directory, reading nothing on disk. It will speak POP3 up to
// authentication (through lookup) and then relay the session to the user's
// own mailbox process. Peers: lookup.
//
// Until the POP3 issue lands it greets every connection with -ERR
// (RFC 1939 section 4; the SYS/TEMP code of RFC 3206 says "try later").
#include "common/role.h"

int main(int argc, char **argv)
{
	maild::RoleSpec spec{maild::Role::Pop3d, {}, {}, {}};
	spec.post_jail = [](maild::RoleContext &ctx) {
		maild::refuse_connections(ctx, "-ERR [SYS/TEMP] maild: POP3 service not implemented yet\r\n");
	};
	maild::run_role(spec, argc, argv);
}
