"""SMTP smuggling, injection and relay tricks: each closes the session or
is refused, and nothing of it reaches a mailbox or the queue."""

import os

from maildtest import QID, MailTestCase, Session, main, message, send, wire_lf

ALICE = "alice@example.org"
BOB = "bob@example.org"


class SmugglingTest(MailTestCase):
    family_args = {"tls": True}

    @classmethod
    def prepare(cls, family):
        # Accounts may hold shell metacharacters: they must stay bytes all
        # the way into the mailbox's directory name.
        cls.marker = os.path.join(family.dir, "pwned")
        cls.hostile_accounts = [f"`touch${{IFS}}{cls.marker}0`@example.org", "a|b@example.org"]
        for account in cls.hostile_accounts:
            family.add_user(account)

    def test_bare_lf_in_a_command_closes_the_session(self):
        family = self.family
        with Session(self, family.ports["smtp"]) as s:
            s.ehlo()
            s.send(b"MAIL FROM:<sender@example.net>\nRCPT TO:<alice@example.org>\r\n")
            self.assertRegex(s.reply_line(), r"^500 5\.5\.2 ")
            self.assertTrue(s.closed_after())
        # A bare CR too.
        with Session(self, family.ports["smtp"]) as s:
            s.ehlo()
            s.send(b"NOOP\rRSET\r\n")
            self.assertRegex(s.reply_line(), r"^500 5\.5\.2 ")
            self.assertTrue(s.closed_after())

    def test_smuggling_probes_close_the_session_and_smuggle_nothing(self):
        smuggled = (b"MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n"
                    b"Subject: Smuggled\r\n\r\nSmuggled\r\n.\r\n")
        probes = {
            "lf-dot-lf": b"\n.\n",
            "crlf-dot-cr": b"\r\n.\r",
            "lf-dot-crlf": b"\n.\r\n",
            "cr-dot-crlf": b"\r.\r\n",
            "nul": b"\x00\r\n.\r\n",
        }
        family = self.family
        send(self, family, [ALICE], message("legitimate 1"))
        for name, probe in probes.items():
            with self.subTest(probe=name), Session(self, family.ports["smtp"]) as s:
                s.ehlo()
                self.assertEqual(s.cmd("MAIL FROM:<sender@example.net>"), "250 2.1.0 Ok")
                self.assertEqual(s.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
                self.assertRegex(s.cmd("DATA"), r"^354 ")
                s.send(b"Subject: probe " + name.encode() + b"\r\n\r\nbody" + probe + smuggled)
                self.assertRegex(s.reply_line(), r"^554 5\.6\.0 ")
                self.assertTrue(s.closed_after())
        send(self, family, [ALICE], message("legitimate 2"))
        family.wait_delivered(ALICE, 2)
        family.wait_queue_empty()
        delivered = family.messages(ALICE)
        subjects = sorted(m["Subject"] for m in family.read_maildir(ALICE))
        self.assertEqual(subjects, ["legitimate 1", "legitimate 2"])
        for data in delivered:
            self.assertNotIn(b"Smuggled", data)
            self.assertNotIn(b"probe", data)
            self.assertNotIn(b"evil@", data)

    def test_bare_lf_in_a_bdat_chunk_closes_the_session(self):
        family = self.family
        chunk = (b"Subject: chunk probe\r\n\r\nbody\n.\nMAIL FROM:<evil@attacker.test>\r\n"
                 b"RCPT TO:<alice@example.org>\r\nDATA\r\nSmuggled\r\n.\r\n")
        with Session(self, family.ports["smtp"]) as s:
            s.ehlo()
            self.assertEqual(s.cmd("MAIL FROM:<sender@example.net>"), "250 2.1.0 Ok")
            self.assertEqual(s.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
            s.send(f"BDAT {len(chunk)} LAST\r\n".encode() + chunk)
            self.assertRegex(s.reply_line(), r"^554 5\.6\.0 ")
            self.assertTrue(s.closed_after())
        send(self, family, [ALICE], message("legitimate"))
        family.wait_delivered(ALICE, 1)
        family.wait_queue_empty()
        self.assertEqual([m["Subject"] for m in family.read_maildir(ALICE)], ["legitimate"])

    def test_tls_injection_after_starttls(self):
        family = self.family
        with Session(self, family.ports["smtp"]) as s:
            self.assertIn("STARTTLS", s.ehlo())
            s.send(b"STARTTLS\r\nMAIL FROM:<a@example.net>\r\n")
            self.assertEqual(s.reply_line(), "554 5.5.0 Data pipelined after STARTTLS")
            self.assertTrue(s.closed_after())
        self.assertTrue(family.queue_empty())

    def test_pipelining_guard_after_end_of_data(self):
        family = self.family
        with Session(self, family.ports["smtp"]) as s:
            s.ehlo()
            self.assertEqual(s.cmd("MAIL FROM:<sender@example.net>"), "250 2.1.0 Ok")
            self.assertEqual(s.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
            self.assertRegex(s.cmd("DATA"), r"^354 ")
            s.send(message("early talker") + b".\r\nMAIL FROM:<sender@example.net>\r\n")
            self.assertEqual(s.reply_line(), "554 5.5.0 Commands sent before the reply to end of data")
            self.assertTrue(s.closed_after())
        # The next client is served, and its message is the only one.
        send(self, family, [ALICE], message("patient"))
        family.wait_delivered(ALICE, 1)
        family.wait_queue_empty()
        self.assertEqual([m["Subject"] for m in family.read_maildir(ALICE)], ["patient"])

    def test_a_whole_pipelined_transaction(self):
        family = self.family
        with Session(self, family.ports["smtp"]) as s:
            s.send(b"EHLO client.example.net\r\nMAIL FROM:<sender@example.net>\r\n"
                   b"RCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
            code, lines = s.reply()
            self.assertEqual(code, 250)
            self.assertIn("PIPELINING", [line.upper() for line in lines])
            self.assertEqual(s.reply_line(), "250 2.1.0 Ok")
            self.assertEqual(s.reply_line(), "250 2.1.5 Ok")
            self.assertEqual(s.reply_line(), "250 2.1.5 Ok")
            self.assertRegex(s.reply_line(), r"^354 ")
            s.send(message("pipelined") + b".\r\n")
            self.assertRegex(s.reply_line(), rf"^250 2\.0\.0 Ok: queued as {QID}$")
            self.assertEqual(s.cmd("QUIT"), "221 2.0.0 Bye")
        for rcpt in (ALICE, BOB):
            family.wait_delivered(rcpt, 1)
            self.assertEqual([m["Subject"] for m in family.read_maildir(rcpt)], ["pipelined"])

    def test_overlong_lines(self):
        family = self.family
        with Session(self, family.ports["smtp"]) as s:
            s.send(b"EHLO " + b"a" * 65536 + b"\r\n")
            self.assertEqual(s.reply_line(), "500 5.5.6 Line too long")
            self.assertTrue(s.closed_after())
        with Session(self, family.ports["smtp"]) as s:
            s.ehlo()
            self.assertEqual(s.cmd("MAIL FROM:<sender@example.net>"), "250 2.1.0 Ok")
            self.assertEqual(s.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
            self.assertRegex(s.cmd("DATA"), r"^354 ")
            s.send(b"Subject: long\r\n\r\n" + b"x" * 1200 + b"\r\n.\r\n")
            self.assertRegex(s.reply_line(), r"^554 5\.6\.0 ")
            self.assertTrue(s.closed_after())
        # The server is fine for the next client.
        send(self, family, [ALICE], message("after the long lines"))
        family.wait_delivered(ALICE, 1)
        family.wait_queue_empty()
        self.assertEqual([m["Subject"] for m in family.read_maildir(ALICE)], ["after the long lines"])

    def test_a_line_of_998_octets_is_accepted(self):
        # RFC 5321 section 4.5.3.1.6: 998 octets and CRLF is the limit, and
        # allowed.
        family = self.family
        data = message("longest line", "y" * 998 + "\r\n")
        send(self, family, [ALICE], data)
        (delivered,) = family.wait_delivered(ALICE, 1)
        self.assertTrue(delivered.endswith(wire_lf(data)))

    def test_address_tricks_relay_nothing(self):
        tricks = {
            "source route": "<@other.test:bob@remote.test>",
            "percent hack": "<bob%remote.test@example.org>",
            "quoted at": '<"bob@remote.test"@example.org>',
            "trailing dot": "<bob@remote.test.>",
            "address literal": "<bob@[192.0.2.1]>",
            "mixed case": "<BoB@ReMoTe.TeSt>",
            "bang path": "<remote.test!bob@example.org>",
        }
        family = self.family
        with Session(self, family.ports["smtp"]) as s:
            s.ehlo()
            self.assertEqual(s.cmd("MAIL FROM:<sender@example.net>"), "250 2.1.0 Ok")
            for name, rcpt in tricks.items():
                with self.subTest(trick=name):
                    reply = s.cmd(f"RCPT TO:{rcpt}")
                    self.assertRegex(reply, r"^5\d\d 5\.\d\.\d+ ", rcpt)
                    if name == "percent hack":
                        self.assertEqual(reply, "550 5.1.1 User unknown")
            # A local recipient, so that the message is queued: had
            # any trick been accepted, its remote copy would wait in
            # the queue for ever.
            self.assertEqual(s.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
            self.assertRegex(s.cmd("DATA"), r"^354 ")
            s.send(message("tricks") + b".\r\n")
            self.assertRegex(s.reply_line(), rf"^250 2\.0\.0 Ok: queued as {QID}$")
        family.wait_delivered(ALICE, 1)
        family.wait_queue_empty()
        self.assertNotIn("remote.test", family.queue_show())

    def test_shell_metacharacters_stay_inert_bytes(self):
        family = self.family
        marker, hostile_accounts = self.marker, self.hostile_accounts
        hostile = [
            f'"$(touch {marker}1)"@example.org',
            f"`touch${{IFS}}{marker}2`@example.org",
            f"$(touch${{IFS}}{marker}3)@example.org",
            "a|c@example.org",
            f"a;touch${{IFS}}{marker}4@example.org",
        ]
        # As recipients: unknown users (or a syntax error), and the
        # accounts, which get their copy.
        with Session(self, family.ports["smtp"]) as s:
            s.ehlo()
            self.assertEqual(s.cmd("MAIL FROM:<sender@example.net>"), "250 2.1.0 Ok")
            for address in hostile:
                self.assertRegex(s.cmd(f"RCPT TO:<{address}>"), r"^5\d\d ", address)
            for address in hostile_accounts:
                self.assertEqual(s.cmd(f"RCPT TO:<{address}>"), "250 2.1.5 Ok", address)
            self.assertRegex(s.cmd("DATA"), r"^354 ")
            s.send(message("to hostile accounts") + b".\r\n")
            self.assertRegex(s.reply_line(), rf"^250 2\.0\.0 Ok: queued as {QID}$")
        for account in hostile_accounts:
            (delivered,) = family.wait_delivered(account, 1)
            self.assertIn(f"Delivered-To: {account}\n".encode(), delivered)
        self.assertEqual([os.path.basename(family.maildir(a)) for a in hostile_accounts],
                         [f"%60touch%24%7BIFS%7D{marker.replace('/', '%2F')}0%60", "a%7Cb"])
        # Nothing outside the domain's directory.
        self.assertEqual(os.listdir(os.path.join(family.dir, "vmail")), ["example.org"])
        # As senders, which go into the queue, the logs and the
        # Return-Path of the delivered copy (a new session: each refusal
        # counts towards max-errors).
        accepted = []
        with Session(self, family.ports["smtp"]) as s:
            s.ehlo()
            for address in hostile:
                reply = s.cmd(f"MAIL FROM:<{address}>")
                if reply != "250 2.1.0 Ok":
                    self.assertRegex(reply, r"^5\d\d ", address)
                    continue
                self.assertEqual(s.cmd("RCPT TO:<alice@example.org>"), "250 2.1.5 Ok")
                self.assertRegex(s.cmd("DATA"), r"^354 ")
                s.send(message("hostile sender") + b".\r\n")
                self.assertRegex(s.reply_line(), rf"^250 2\.0\.0 Ok: queued as {QID}$")
                accepted.append(address)
            s.cmd("QUIT")
        delivered = family.wait_delivered(ALICE, len(accepted))
        family.wait_queue_empty()
        return_paths = sorted(data.split(b"\n", 1)[0] for data in delivered)
        self.assertEqual(return_paths, sorted(f"Return-Path: <{a}>".encode() for a in accepted))
        self.assertEqual([f for f in os.listdir(family.dir) if f.startswith("pwned")], [])
        self.assertTrue(accepted, "no hostile sender was accepted at all")


if __name__ == "__main__":
    main()
