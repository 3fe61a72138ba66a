// lookup: the one role that knows who the users are.
//
// Runs as its own user (default _maildl), chrooted into the directory that
// holds the account database. It answers smtpd, queue, mta, imapd and pop3d
// over imsg (recipient resolution, password checks, and later DNS); none of
// them may open the database. Its peers are untrusted: every request is
// validated, and only lookup ever sees a password hash.
//
// Today it starts, jails itself and waits: the accounts issue fills it in.
#include "common/role.h"

int main(int argc, char **argv)
{
	maild::RoleSpec spec{maild::Role::Lookup, {}, {}, {}};
	maild::run_role(spec, argc, argv);
}
