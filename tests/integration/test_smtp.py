"""SMTP in, on port 25 and on submission before authentication: the replies
a real client sees, what reaches the mailboxes, and what must not."""

import os
import re
import smtplib
import time

from maildtest import (HOSTNAME, QID, MailTestCase, Session, SmtpConn, dot_stuff, main, message,
                       received_headers_end, send, wire_lf)

ALICE = "alice@example.org"
BOB = "bob@example.org"
CAROL = "carol@example.org"  # disabled
JOSE = "jösé@example.org"
# Ten accounts, each addressed five times in one message (plain and with
# four subaddresses): fifty recipients.
MANY = [f"u{i}@example.org" for i in range(10)]


class SmtpTest(MailTestCase):
    family_args = {"tls": True, "accounts": (ALICE, BOB, CAROL, JOSE, *MANY)}

    @classmethod
    def prepare(cls, family):
        family.ok("user", "disable", CAROL)
        family.ok("alias", "add", "postmaster@example.org", ALICE)
        family.ok("alias", "add", "abuse@example.org", ALICE)

    def test_greeting_and_extensions_before_tls(self):
        family = self.family
        for kind in ("smtp", "submission"):
            with self.subTest(kind=kind), Session(self, family.ports[kind]) as s:
                s.send(b"EHLO client.example.net\r\n")
                code, lines = s.reply()
                self.assertEqual(code, 250)
                self.assertTrue(lines[0].startswith(HOSTNAME), lines)
                keywords = [line.upper() for line in lines[1:]]
                for want in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "STARTTLS", "CHUNKING",
                             "SMTPUTF8", "DSN"):
                    self.assertIn(want, keywords)
                self.assertIn(f"SIZE {35 * 1024 * 1024}", keywords)
                # No AUTH in cleartext, and never on port 25.
                self.assertFalse([k for k in keywords if k.startswith("AUTH")], keywords)

    def test_a_transaction_and_every_plain_reply(self):
        family = self.family
        data = message("plain replies", "First line.\r\n.leading dot\r\nLast line.\r\n")
        with Session(self, family.ports["smtp"]) as s:
            self.assertEqual(s.cmd("MAIL FROM:<x@example.net>"), "503 5.5.1 Bad sequence of commands")
            s.ehlo()
            self.assertEqual(s.cmd("RCPT TO:<alice@example.org>"), "503 5.5.1 Bad sequence of commands")
            self.assertEqual(s.cmd("DATA"), "503 5.5.1 Bad sequence of commands")
            self.assertEqual(s.cmd("FROB nicate"), "500 5.5.1 Command unrecognized")
            self.assertRegex(s.cmd("VRFY alice"), r"^252 2\.5\.0 ")
            self.assertRegex(s.cmd("NOOP"), r"^250 2\.0\.0")
            self.assertEqual(s.cmd("MAIL FROM:<sender@example.net>"), "250 2.1.0 Ok")
            self.assertEqual(s.cmd("MAIL FROM:<sender@example.net>"), "503 5.5.1 Bad sequence of commands")
            self.assertEqual(s.cmd("RSET"), "250 2.0.0 Ok")
            qid = s.transaction("sender@example.net", [ALICE], data)
            self.assertEqual(s.cmd("QUIT"), "221 2.0.0 Bye")
            self.assertTrue(s.closed_after())

        (delivered,) = family.wait_delivered(ALICE, 1)
        received, rest = received_headers_end(self, delivered, "sender@example.net", ALICE)
        self.assertEqual(rest, wire_lf(data))  # dot-unstuffed, LF line ends
        self.assertIn(b"from client.example.net", received)
        self.assertIn(f"by {HOSTNAME}".encode(), received)
        self.assertIn(qid.encode(), received)
        self.assertIn(b"127.0.0.1", received)
        # A stock Maildir reader reads it.
        (msg,) = family.read_maildir(ALICE)
        self.assertEqual(msg["Subject"], "plain replies")
        self.assertEqual(msg["Delivered-To"], ALICE)
        family.wait_queue_empty()
        self.assertEqual(family.messages(BOB), [])

    def test_port_25_refusals(self):
        family = self.family
        with Session(self, family.ports["smtp"]) as s:
            s.ehlo()
            self.assertEqual(s.cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHg="), "503 5.5.1 AUTH not available")
            self.assertEqual(s.cmd("MAIL FROM:<sender@example.net>"), "250 2.1.0 Ok")
            self.assertEqual(s.cmd("RCPT TO:<nobody@example.org>"), "550 5.1.1 User unknown")
            self.assertEqual(s.cmd("RCPT TO:<bob@example.net>"), "550 5.7.1 Relaying denied")
            self.assertEqual(s.cmd("RCPT TO:<carol@example.org>"), "550 5.2.1 Mailbox disabled")
            # With no recipient accepted there is nothing to send.
            self.assertRegex(s.cmd("DATA"), r"^5(03|54) 5\.5\.\d ")
            self.assertEqual(s.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
            self.assertEqual(s.cmd("QUIT"), "221 2.0.0 Bye")
        self.assertEqual(family.messages(ALICE), [])
        self.assertTrue(family.queue_empty())

    def test_submission_wants_authentication_and_tls_first(self):
        family = self.family
        with Session(self, family.ports["submission"]) as s:
            s.ehlo()
            self.assertEqual(s.cmd("MAIL FROM:<alice@example.org>"), "530 5.7.0 Authentication required")
            self.assertEqual(s.cmd("AUTH PLAIN AGFsaWNlQGV4YW1wbGUub3JnAHB3LWFsaWNlLXNlY3JldA=="),
                             "530 5.7.0 Must issue a STARTTLS command first")
            self.assertEqual(s.cmd("QUIT"), "221 2.0.0 Bye")
        self.assertTrue(family.queue_empty())

    def test_helo_lower_case_commands_and_the_null_sender(self):
        family = self.family
        data = message("bounce")
        with Session(self, family.ports["smtp"]) as s:
            self.assertEqual(s.cmd("helo client.example.net"), f"250 {HOSTNAME}")
            self.assertEqual(s.cmd("mail from:<>"), "250 2.1.0 Ok")
            self.assertEqual(s.cmd("rcpt to:<alice@example.org>"), "250 2.1.5 Ok")
            self.assertRegex(s.cmd("data"), r"^354 ")
            s.send(data + b".\r\n")
            self.assertRegex(s.reply_line(), rf"^250 2\.0\.0 Ok: queued as {QID}$")
            self.assertEqual(s.cmd("quit"), "221 2.0.0 Bye")
        (delivered,) = family.wait_delivered(ALICE, 1)
        received, rest = received_headers_end(self, delivered, "", ALICE)
        self.assertIn(b" with SMTP ", b" ".join(received.split()) + b" ")
        self.assertEqual(rest, wire_lf(data))

    def test_too_many_errors_end_the_session(self):
        family = self.family
        with Session(self, family.ports["smtp"]) as s:
            s.ehlo()
            for _ in range(9):
                self.assertEqual(s.cmd("FROB"), "500 5.5.1 Command unrecognized")
            s.send(b"FROB\r\n")
            self.assertEqual(s.reply_line(), "500 5.5.1 Command unrecognized")
            self.assertEqual(s.reply_line(), f"421 4.7.0 {HOSTNAME} Too many errors, closing connection")
            self.assertTrue(s.closed_after())

    def test_xtext_that_decodes_to_control_characters_is_refused(self):
        family = self.family
        with Session(self, family.ports["smtp"]) as s:
            self.assertIn("DSN", s.ehlo())
            self.assertRegex(s.cmd("MAIL FROM:<a@example.net> ENVID=a+0Db"), r"^501 ")
            self.assertEqual(s.cmd("MAIL FROM:<a@example.net> ENVID=a+2Bb"), "250 2.1.0 Ok")
            self.assertRegex(s.cmd("RCPT TO:<alice@example.org> ORCPT=rfc822;a+0Ab@x.example"), r"^501 ")
            self.assertEqual(s.cmd("RCPT TO:<alice@example.org> ORCPT=rfc822;alice@example.org"),
                             "250 2.1.5 Ok")

    def test_8bit_body_is_delivered_byte_exact(self):
        family = self.family
        body = ("Grüße aus Köln — ½ € ✓\r\n".encode() + b"Latin-1 \xe9\xe8 and \x7f DEL, \x01 SOH\r\n"
                + b".starts with a dot\r\n..two dots\r\n.\tdot tab\r\nend\r\n")
        data = message("8bit", "") + body
        with Session(self, family.ports["smtp"]) as s:
            self.assertIn("8BITMIME", s.ehlo())
            s.transaction("sender@example.net", [ALICE], data, mail_params=" BODY=8BITMIME")
        (delivered,) = family.wait_delivered(ALICE, 1)
        _, rest = received_headers_end(self, delivered, "sender@example.net", ALICE)
        self.assertEqual(rest, wire_lf(data))

    def test_utf8_addresses_with_smtputf8(self):
        family = self.family
        data = ("From: <sénder@exämple.net>\r\nTo: <jösé@example.org>\r\nSubject: ünïcode\r\n\r\n"
                "Olá\r\n").encode()
        with smtplib.SMTP("127.0.0.1", family.ports["smtp"], timeout=30) as smtp:
            smtp.ehlo()
            self.assertTrue(smtp.has_extn("smtputf8"))
            refused = smtp.sendmail("sénder@exämple.net", [JOSE], data, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
            self.assertEqual(refused, {})
        (delivered,) = family.wait_delivered(JOSE, 1)
        self.assertTrue(delivered.startswith("Return-Path: <sénder@exämple.net>\n".encode()), delivered[:200])
        self.assertTrue(delivered.endswith(wire_lf(data)))
        self.assertEqual(os.path.basename(family.maildir(JOSE)), "j%C3%B6s%C3%A9")
        # Without SMTPUTF8 the same address is refused.
        with Session(self, family.ports["smtp"]) as s:
            s.ehlo()
            self.assertEqual(s.cmd("MAIL FROM:<sender@example.net>"), "250 2.1.0 Ok")
            s.send("RCPT TO:<jösé@example.org>\r\n".encode())
            self.assertRegex(s.reply_line(), r"^5\d\d ")

    def test_rset_discards_the_transaction(self):
        family = self.family
        with Session(self, family.ports["smtp"]) as s:
            s.ehlo()
            self.assertEqual(s.cmd("MAIL FROM:<first@example.net>"), "250 2.1.0 Ok")
            self.assertEqual(s.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
            self.assertEqual(s.cmd("RCPT TO:<bob@example.org>"), "250 2.1.5 Ok")
            self.assertEqual(s.cmd("RSET"), "250 2.0.0 Ok")
            # RCPT needs a new MAIL after RSET.
            self.assertEqual(s.cmd("RCPT TO:<alice@example.org>"), "503 5.5.1 Bad sequence of commands")
            s.transaction("second@example.net", [ALICE], message("second"))
            s.cmd("QUIT")
        (delivered,) = family.wait_delivered(ALICE, 1)
        family.wait_queue_empty()
        self.assertTrue(delivered.startswith(b"Return-Path: <second@example.net>\n"))
        self.assertEqual(family.messages(ALICE), [delivered])
        self.assertEqual(family.messages(BOB), [])

    def test_many_recipients_one_copy_each(self):
        family = self.family
        rcpts = [u.replace("@", tag + "@") for u in MANY for tag in ("", "+a", "+b", "+c", "+d")]
        self.assertEqual(len(rcpts), 50)
        qid = send(self, family, rcpts, message("to fifty"))
        for user in MANY:
            family.wait_delivered(user, 1)
        # An empty queue: every copy there will be is written.
        family.wait_queue_empty()
        for user in MANY:
            with self.subTest(user=user):
                (delivered,) = family.messages(user)
                self.assertIn(qid.encode(), delivered)
                self.assertIn(f"Delivered-To: {user}\n".encode(), delivered)

    def test_two_aliases_of_one_account_give_one_copy(self):
        family = self.family
        send(self, family, ["postmaster@example.org", "abuse@example.org"], message("two aliases"))
        family.wait_delivered(ALICE, 1)
        family.wait_queue_empty()
        self.assertEqual(len(family.messages(ALICE)), 1)

    def bdat(self, family, chunks):
        with Session(self, family.ports["smtp"]) as s:
            self.assertIn("CHUNKING", s.ehlo())
            self.assertEqual(s.cmd("MAIL FROM:<sender@example.net>"), "250 2.1.0 Ok")
            self.assertEqual(s.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
            for chunk in chunks:
                s.send(f"BDAT {len(chunk)}\r\n".encode() + chunk)
                self.assertRegex(s.reply_line(), rf"^250 2\.0\.0 .*{len(chunk)} octets received")
            s.send(b"BDAT 0 LAST\r\n")
            self.assertRegex(s.reply_line(), rf"^250 2\.0\.0 Ok: queued as {QID}$")
            self.assertEqual(s.cmd("QUIT"), "221 2.0.0 Bye")
        (delivered,) = family.wait_delivered(ALICE, 1)
        _, rest = received_headers_end(self, delivered, "sender@example.net", ALICE)
        return rest

    def test_bdat(self):
        family = self.family
        data = message("chunked", ".not stuffed\r\nsecond line\r\n")
        rest = self.bdat(family, [data[:10], data[10:]])
        self.assertEqual(rest, wire_lf(data))

    def test_bdat_with_a_crlf_split_between_chunks(self):
        family = self.family
        data = message("split", "line one\r\nline two\r\n")
        cut = data.index(b"line one\r\n") + len(b"line one\r")
        rest = self.bdat(family, [data[:cut], data[cut:]])
        self.assertEqual(rest, wire_lf(data))

    def test_session_and_queue_ids_in_the_log(self):
        family = self.family
        qid = send(self, family, [ALICE], message("logged"))
        family.wait_delivered(ALICE, 1)
        family.wait_queue_empty()
        log = family.log_text().splitlines()
        accepted = [line for line in log if "accepted" in line and f"qid={qid}" in line]
        self.assertEqual(len(accepted), 1, "\n".join(log[-40:]))
        session = re.search(r"\bsession=([0-9a-f]{16})\b", accepted[0])
        self.assertIsNotNone(session, accepted[0])
        # The connect line names the client, so the log ties a message to it.
        connect = [line for line in log
                   if re.search(rf"\bsession={session.group(1)} connect\b.*\b127\.0\.0\.1\b", line)]
        self.assertEqual(len(connect), 1, f"no connect line for the session of {accepted[0]!r}")
        delivered = [line for line in log if re.search(rf"\bdelivered qid={qid} to={ALICE}\b", line)]
        self.assertTrue(delivered, f"no delivery line for {qid}:\n" + "\n".join(log[-40:]))


class LimitTest(MailTestCase):
    """A family with small limits, and without TLS."""
    family_args = {"extra": "max-message-size 10K\nmax-recipients 3\nmax-connections-per-address 3\n",
                   "accounts": (ALICE, BOB, "carol@example.org", "dave@example.org")}

    def test_extensions_without_tls_configured(self):
        family = self.family
        with Session(self, family.ports["smtp"]) as s:
            keywords = s.ehlo()
            self.assertNotIn("STARTTLS", keywords)
            self.assertIn("PIPELINING", keywords)

    def test_declared_size_over_the_limit(self):
        family = self.family
        with Session(self, family.ports["smtp"]) as s:
            self.assertIn("SIZE 10240", s.ehlo())
            self.assertRegex(s.cmd("MAIL FROM:<sender@example.net> SIZE=20000"), r"^552 5\.3\.4 ")
            self.assertEqual(s.cmd("MAIL FROM:<sender@example.net> SIZE=2000"), "250 2.1.0 Ok")

    def test_content_over_the_limit_is_refused_at_the_end(self):
        family = self.family
        big = message("too big", "x" * 70 + "\r\n") + (b"z" * 70 + b"\r\n") * 200
        with Session(self, family.ports["smtp"]) as s:
            s.ehlo()
            self.assertEqual(s.cmd("MAIL FROM:<sender@example.net>"), "250 2.1.0 Ok")
            self.assertEqual(s.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
            self.assertRegex(s.cmd("DATA"), r"^354 ")
            s.send(big + b".\r\n")
            self.assertRegex(s.reply_line(), r"^552 5\.3\.4 ")
            # The session goes on; a small message gets through.
            s.transaction("sender@example.net", [ALICE], message("small"))
            s.cmd("QUIT")
        family.wait_delivered(ALICE, 1)
        family.wait_queue_empty()
        (msg,) = family.read_maildir(ALICE)
        self.assertEqual(msg["Subject"], "small")

    def test_the_size_limit_counts_the_content_as_sent_without_dot_stuffing(self):
        # RFC 1870 section 3: CRLFs count, the final dot and stuffing dots
        # do not. Every line starts with a dot, so the wire has 128 more.
        family = self.family
        limit = 10 * 1024

        def content(size):
            head = b"Subject: at the limit\r\n\r\n"
            lines = (b"." + b"x" * 77 + b"\r\n") * ((size - len(head)) // 80)
            return head + lines + b"." + b"y" * (size - len(head) - len(lines) - 3) + b"\r\n"

        for size, want in ((limit, r"^250 2\.0\.0 Ok: queued as "), (limit + 1, r"^552 5\.3\.4 ")):
            with self.subTest(size=size), Session(self, family.ports["smtp"]) as s:
                data = content(size)
                self.assertEqual(len(data), size)
                s.ehlo()
                declared = s.cmd(f"MAIL FROM:<sender@example.net> SIZE={size}")
                self.assertRegex(declared, r"^250 2\.1\.0 Ok$" if size <= limit else r"^552 5\.3\.4 ")
                if size > limit:
                    # Undeclared, it is refused at the end.
                    self.assertEqual(s.cmd("MAIL FROM:<sender@example.net>"), "250 2.1.0 Ok")
                self.assertEqual(s.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
                self.assertRegex(s.cmd("DATA"), r"^354 ")
                s.send(dot_stuff(data) + b".\r\n")
                self.assertRegex(s.reply_line(), want)
        (delivered,) = family.wait_delivered(ALICE, 1)
        self.assertTrue(delivered.endswith(wire_lf(content(limit))))

    def test_too_many_recipients(self):
        family = self.family
        with Session(self, family.ports["smtp"]) as s:
            s.ehlo()
            self.assertEqual(s.cmd("MAIL FROM:<sender@example.net>"), "250 2.1.0 Ok")
            for rcpt in (ALICE, BOB, "carol@example.org"):
                self.assertEqual(s.cmd(f"RCPT TO:<{rcpt}>"), "250 2.1.5 Ok")
            self.assertEqual(s.cmd("RCPT TO:<dave@example.org>"), "452 4.5.3 Too many recipients")
            self.assertRegex(s.cmd("DATA"), r"^354 ")
            s.send(message("three") + b".\r\n")
            self.assertRegex(s.reply_line(), rf"^250 2\.0\.0 Ok: queued as {QID}$")
        for rcpt in (ALICE, BOB, "carol@example.org"):
            family.wait_delivered(rcpt, 1)
        family.wait_queue_empty()
        self.assertEqual(family.messages("dave@example.org"), [])


    def test_connections_per_address(self):
        family = self.family
        sessions = [Session(self, family.ports["smtp"]) for _ in range(3)]
        try:
            with SmtpConn(family.ports["smtp"]) as extra:
                self.assertEqual(extra.reply_line(), f"421 4.7.0 {HOSTNAME} Too many connections, try again later")
                self.assertTrue(extra.closed_after())
            sessions.pop().close()
            # Once smtpd has seen that one go, there is room again.
            deadline = time.monotonic() + 30
            while True:
                with SmtpConn(family.ports["smtp"]) as again:
                    greeting = again.reply_line()
                    if greeting.startswith("220 ") or time.monotonic() > deadline:
                        break
                time.sleep(0.1)
            self.assertEqual(greeting, f"220 {HOSTNAME} ESMTP maild")
        finally:
            for s in sessions:
                s.close()


if __name__ == "__main__":
    main()
