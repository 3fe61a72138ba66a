// mta's system calls beyond the common groups: none yet. Outgoing
// connections (socket, connect) will be added here with the SMTP client.
#include "common/role.h"

void maild::sandbox_policy(SeccompPolicy &)
{
}
