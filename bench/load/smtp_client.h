// The SMTP protocol module: a sending MTA's side of RFC 5321 on one
// connection, over plain TCP. EHLO once (HELO if EHLO is refused), then
// MAIL, RCPT, DATA, the message, repeated for as long as the workload asks,
// then QUIT. With PIPELINING offered (RFC 2920) MAIL, RCPT and DATA go out
// in one write, as Postfix and OpenSMTPD send them.
#pragma once

#include "bench/load/protocol.h"

namespace maild::bench {

std::unique_ptr<Session> make_smtp_session(const SessionContext &context);

} // namespace maild::bench
