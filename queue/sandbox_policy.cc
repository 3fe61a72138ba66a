// queue's system calls beyond the common groups: none yet. Spool file
// handling will add its calls here, each with a reason.
#include "common/role.h"

void maild::sandbox_policy(SeccompPolicy &)
{
}
