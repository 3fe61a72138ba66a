// control's system calls beyond the common groups.
#include "common/role.h"

void maild::sandbox_policy(SeccompPolicy &policy)
{
	policy.add(SyscallGroup::Accept); // mailctl clients on the control socket
	policy.allow("getsockopt", "SO_PEERCRED: who the client is");
	policy.allow("geteuid", "a client running as maild's own user is allowed");
}
