// deliver's system calls beyond the common groups: Maildir files and
// directories, always relative to the store's root descriptor or to
// directories opened from it (common/maildir.cc).
#include "common/role.h"

void maild::sandbox_policy(SeccompPolicy &policy)
{
	policy.allow("fsync", "the directories that gain an account's Maildir, at its first delivery");
	policy.allow("getdents64", "a retried delivery looks for its earlier copy in cur/");
	policy.allow("mkdirat", "an account's Maildir (<domain>/<local>/{cur,new,tmp}) at its first delivery");
	policy.allow("openat", "the Maildir's directories, and the copy written into tmp/");
	policy.allow("pread64", "the message is read from offset 0 of a descriptor the queue shares");
	policy.allow("renameat", "tmp/NAME -> new/NAME, the delivery's commit point");
	policy.allow("renameat2", "what libc's renameat calls on newer kernels and architectures");
	policy.allow("syncfs", "one flush of the store's file system before and one after a batch's renames");
	policy.allow("unlinkat", "the copy in tmp/ of a delivery that failed before its rename");
}
