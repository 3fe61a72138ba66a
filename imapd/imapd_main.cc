// imapd: the IMAP front on the imap and imaps listeners.
//
// A network role: runs as the network user (default _maild), chrooted into
// the empty directory, reading nothing on disk. It will speak IMAP up to
// authentication (through lookup) and then relay the session to the user's
// own mailbox process. Peers: lookup.
//
// Until the IMAP issue lands it greets every connection with BYE
// (RFC 9051 section 7.1.5).
#include "common/role.h"

int main(int argc, char **argv)
{
	maild::RoleSpec spec{maild::Role::Imapd, {}, {}, {}};
	spec.post_jail = [](maild::RoleContext &ctx) {
		maild::refuse_connections(ctx, "* BYE maild: IMAP service not implemented yet\r\n");
	};
	maild::run_role(spec, argc, argv);
}
