// lookup's system calls beyond the common groups: none yet. The database
// work will add file access inside its chroot here, each call with a reason.
#include "common/role.h"

void maild::sandbox_policy(SeccompPolicy &)
{
}
