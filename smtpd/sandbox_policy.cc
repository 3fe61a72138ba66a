// smtpd's system calls beyond the common groups.
//
// Nothing else is needed: TLS after the jail (libtls over OpenSSL) takes its
// randomness from getrandom (Base) and reads and writes the client socket
// through read/write (FdIo); the certificate and key are loaded before the
// jail; message files come from the queue already open and are written with
// write (FdIo) and closed. Checked by running the family through plain
// SMTP, STARTTLS, implicit TLS and AUTH with no audit record of a killed
// smtpd (dmesg | grep -i audit).
#include "common/role.h"

void maild::sandbox_policy(SeccompPolicy &policy)
{
	// Clients on the listeners maild passed: accept4, the peer's address,
	// and shutdown when closing after the last reply.
	policy.add(SyscallGroup::Accept);
}
