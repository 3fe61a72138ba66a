// pop3d's system calls beyond the common groups.
#include "common/role.h"

void maild::sandbox_policy(SeccompPolicy &policy)
{
	policy.add(SyscallGroup::Accept); // clients on the listeners maild passed
}
