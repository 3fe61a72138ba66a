// queue's system calls beyond the common groups: the spool's files, always
// relative to the directory descriptors the queue holds.
#include "common/role.h"

void maild::sandbox_policy(SeccompPolicy &policy)
{
	policy.allow("fsync", "the directory envelopes/ after a batch of commits, and envelopes the operator changed");
	policy.allow("getdents64", "recovery lists the spool's directories");
	policy.allow("mkdirat", "the spool's subdirectories are created at the first start");
	policy.allow("openat", "message files (created for smtpd, opened read-only for deliver), envelopes, directories");
	policy.allow("renameat", "tmp/ -> envelopes/, the commit point; corrupt envelopes to corrupt/");
	policy.allow("renameat2", "libc's renameat on architectures without renameat (aarch64)");
	policy.allow("syncfs", "one flush of the spool's file system per batch of commits (group commit)");
	policy.allow("unlinkat", "delivered, removed and uncommitted messages and their envelopes");
}
