// Maildir++ delivery: one local recipient's copy of a queued message,
// written exactly once, durably (DESIGN.md, Storage).
//
// Layout under the mail store: <domain>/<local part>/{cur,new,tmp}, the
// account's INBOX, as Dovecot and Courier keep it; folders are ".Name"
// beside cur/new/tmp (the IMAP issue). Both path components come from
// mailbox_path(), which makes any account name a safe single directory name.
//
// Exactly once: the file name is derived from the queue id, the account and
// the content (the same delivery always produces the same name and bytes),
// so a delivery retried after a crash or a failure finds its earlier copy,
// in new/ or, moved there by a client, in cur/ with a ":2,flags" suffix, and
// does not write a second one.
#pragma once

#include "common/imsg_types.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace maild {

// "<domain>/<local part>" relative to the mail store, for an account address
// "local@domain" (as lookup returns it: canonical case). Bytes other than
// ASCII letters, digits and "-_+=." are written as "%XX" (upper-case hex),
// and so is a leading ".", so a component is never "", ".", "..", never holds
// "/" and never starts with "." (a Maildir++ folder). nullopt for an address
// without exactly one "@" splitting two non-empty parts.
std::optional<std::string> mailbox_path(std::string_view account);

struct MaildirDelivery {
	std::string qid;         // the queue id (common/envelope.h)
	std::string account;     // the local account, as lookup returns it
	std::string return_path; // the envelope sender's mailbox; empty for <>
	uint64_t created = 0;    // when the message was queued (unix seconds): the name's time part
	std::string hostname;    // this host's name, for the file name
	bool retry = false;      // kDeliverRetry: also look for an earlier copy in cur/
};

struct MaildirResult {
	DeliveryStatus status = DeliveryStatus::TempFail;
	std::string error;    // for the log and mailctl queue show; empty on Ok
	std::string filename; // the file's name in new/ (on Ok)
	bool duplicate = false; // Ok because an earlier copy was found; nothing written
};

// Writes "Return-Path: <return_path>" and "Delivered-To: account" and then the
// message read from message_fd (from offset 0; CRLF line ends as queued) with
// LF line ends, as Maildir readers expect, to
//     tmp/NAME -> fsync -> rename to new/NAME -> fsync new/
// (a batch of one: see deliver_batch)
// where NAME is "<created>.M<qid>_<fnv64 of account in hex>.<hostname>,S=<bytes
// written>,W=<bytes with CRLF line ends>". Creates the account's
// directories (0700) on first delivery and fsyncs each parent it changes.
// store_dirfd is the mail store's root. ENOSPC, EDQUOT, EACCES, EIO and the
// like are TempFail; an account mailbox_path() refuses is PermFail.
MaildirResult deliver_to_maildir(int store_dirfd, const MaildirDelivery &delivery, int message_fd);

// The same for many deliveries at once, with one durability barrier for all
// (group commit, as the queue does): every copy is written to tmp/, then
// one syncfs(2) of the store, then every rename into new/, then one more
// syncfs(2), so that N deliveries cost two flushes, not 2N fsyncs. The
// results are in the order of `deliveries`; message_fds[i] belongs to
// deliveries[i].
std::vector<MaildirResult> deliver_batch(int store_dirfd, std::span<const MaildirDelivery> deliveries,
    std::span<const int> message_fds);

} // namespace maild
