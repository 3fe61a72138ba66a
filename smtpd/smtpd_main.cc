// smtpd: the SMTP server on the smtp, submission and submissions listeners.
//
// A network role: runs as the network user (default _maild), chrooted into
// the empty directory, reading nothing on disk. Everything it receives from
// the network is hostile. It asks lookup about recipients and credentials
// and hands message bodies to the queue through descriptors the queue
// opens. Peers: lookup and queue.
//
// Until the SMTP-in issue lands it answers every connection with a 421
// (RFC 5321 section 3.8: the client keeps its mail and retries later).
#include "common/role.h"

int main(int argc, char **argv)
{
	maild::RoleSpec spec{maild::Role::Smtpd, {}, {}, {}};
	spec.post_jail = [](maild::RoleContext &ctx) {
		maild::refuse_connections(ctx, "421 4.3.2 " + ctx.config.hostname +
		    " maild: SMTP service not implemented yet, try again later\r\n");
	};
	maild::run_role(spec, argc, argv);
}
