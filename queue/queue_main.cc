// queue: owns the spool and decides what happens to each message.
//
// Runs as its own user (default _maildq), chrooted into the spool. It opens
// spool files and passes their descriptors to smtpd (which writes message
// bodies into them), commits envelopes durably, and schedules deliveries to
// deliver (local Maildirs) and mta (remote hosts). Peers: smtpd, lookup,
// deliver, mta; none of them may name a path in the spool.
//
// Today it starts, jails itself and waits: the SMTP-in issue fills it in.
#include "common/role.h"

int main(int argc, char **argv)
{
	maild::RoleSpec spec{maild::Role::Queue, {}, {}, {}};
	maild::run_role(spec, argc, argv);
}
