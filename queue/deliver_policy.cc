// deliver's system calls beyond the common groups: none yet. Maildir
// writing (openat, fsync, rename) will be added here, each with a reason.
#include "common/role.h"

void maild::sandbox_policy(SeccompPolicy &)
{
}
