// lookup's system calls beyond the common groups.
#include "common/role.h"

void maild::sandbox_policy(SeccompPolicy &policy)
{
	// The account database, the only files in lookup's jail. SQLite's WAL
	// index (-shm) is a shared mapping: mmap without PROT_EXEC, as for all.
	policy.add(SyscallGroup::DatabaseFiles);
}
