"""SMTP over TLS: STARTTLS on smtp and submission, implicit TLS on
submissions, authentication, what an authenticated sender may send, and
stock clients (smtplib, swaks)."""

import base64
import re
import shutil
import smtplib
import socket
import subprocess
import unittest

from maildtest import (HOSTNAME, MailFamily, MailTestCase, SmtpConn, main, message, password_of,
                       unverified_tls_context)

QID = r"[0-9a-f]{16}"
ALICE = "alice@example.org"
BOB = "bob@example.org"


def plain(user, password):
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def b64(text):
    return base64.b64encode(text.encode()).decode()


def tls_session(test, family, kind):
    """A raw session on kind, in TLS (STARTTLS or implicit), after EHLO:
    (connection, the EHLO keywords in TLS)."""
    implicit = kind == "submissions"
    s = SmtpConn(family.ports[kind], implicit_tls=implicit)
    test.assertEqual(s.reply_line(), f"220 {HOSTNAME} ESMTP maild")
    if not implicit:
        test.assertIn("STARTTLS", s.ehlo())
        test.assertRegex(s.starttls(), r"^220 2\.0\.0 ")
    return s, s.ehlo()


def received_of(delivered):
    """The first Received: header of a delivered message, unfolded."""
    match = re.search(rb"^Received: (.*?)\n(?! |\t)", delivered, re.M | re.S)
    assert match, delivered[:400]
    return b" ".join(match.group(1).split()).decode(errors="replace")


class TlsTest(MailTestCase):
    family_args = {"tls": True}

    @classmethod
    def prepare(cls, family):
        family.ok("alias", "add", "sales@example.org", ALICE)

    def test_starttls_on_port_25_with_smtplib(self):
        family = self.family
        with smtplib.SMTP("127.0.0.1", family.ports["smtp"], timeout=30) as smtp:
            smtp.ehlo("client.example.net")
            self.assertTrue(smtp.has_extn("starttls"))
            code, _ = smtp.starttls(context=unverified_tls_context())
            self.assertEqual(code, 220)
            smtp.ehlo("client.example.net")
            self.assertFalse(smtp.has_extn("starttls"))
            # Port 25 never offers AUTH, not even in TLS.
            self.assertFalse(smtp.has_extn("auth"))
            self.assertEqual(smtp.sendmail("sender@example.net", [ALICE], message("over starttls")), {})
        (delivered,) = family.wait_delivered(ALICE, 1)
        received = received_of(delivered)
        self.assertIn("with ESMTPS ", received)
        self.assertRegex(received, r"TLSv1\.[23]")

    def test_a_second_starttls_is_refused(self):
        family = self.family
        s, keywords = tls_session(self, family, "smtp")
        with s:
            self.assertNotIn("STARTTLS", keywords)
            self.assertRegex(s.cmd("STARTTLS"), r"^5\d\d 5\.5\.1 ")

    def test_starttls_starts_the_session_over(self):
        # RFC 3207 section 4.2: what the client said before TLS is forgotten.
        family = self.family
        with SmtpConn(family.ports["smtp"]) as s:
            self.assertEqual(s.reply_line(), f"220 {HOSTNAME} ESMTP maild")
            s.ehlo()
            self.assertEqual(s.cmd("MAIL FROM:<sender@example.net>"), "250 2.1.0 Ok")
            self.assertEqual(s.cmd("STARTTLS"), "503 5.5.1 Bad sequence of commands")  # not mid-transaction
            self.assertEqual(s.cmd("RSET"), "250 2.0.0 Ok")
            s.starttls()
            self.assertEqual(s.cmd("MAIL FROM:<sender@example.net>"), "503 5.5.1 Bad sequence of commands")
            s.ehlo()
            self.assertEqual(s.cmd("MAIL FROM:<sender@example.net>"), "250 2.1.0 Ok")

    def test_a_cleartext_client_on_the_implicit_tls_port_is_dropped(self):
        family = self.family
        with socket.create_connection(("127.0.0.1", family.ports["submissions"]), timeout=30) as plain_client:
            plain_client.sendall(b"EHLO client.example.net\r\n")
            try:
                answer = plain_client.recv(1024)
            except ConnectionResetError:
                answer = b""
            self.assertNotIn(b"250", answer)
        s, keywords = tls_session(self, family, "submissions")
        with s:
            self.assertTrue([k for k in keywords if k.startswith("AUTH ")], keywords)

    def test_auth_is_offered_only_in_tls_and_plain_and_login_work(self):
        family = self.family
        for kind in ("submission", "submissions"):
            with self.subTest(kind=kind):
                s, keywords = tls_session(self, family, kind)
                with s:
                    auth = [k for k in keywords if k.startswith("AUTH ")]
                    self.assertEqual(len(auth), 1, keywords)
                    self.assertEqual(set(auth[0].split()[1:]), {"PLAIN", "LOGIN"})
                    self.assertNotIn("STARTTLS", keywords)
                    self.assertEqual(s.cmd("AUTH PLAIN " + plain(ALICE, "wrong password")),
                                     "535 5.7.8 Authentication credentials invalid")
                    self.assertEqual(s.cmd("AUTH PLAIN " + plain("nobody@example.org", "wrong password")),
                                     "535 5.7.8 Authentication credentials invalid")
                    # "*" cancels (RFC 4954 section 4); no proxy authorization.
                    self.assertEqual(s.cmd("AUTH PLAIN"), "334 ")
                    self.assertEqual(s.cmd("*"), "501 5.0.0 Authentication cancelled")
                    proxy = base64.b64encode(f"{BOB}\0{ALICE}\0{password_of(ALICE)}".encode()).decode()
                    self.assertEqual(s.cmd("AUTH PLAIN " + proxy), "535 5.7.8 Authentication credentials invalid")
                    self.assertEqual(s.cmd("AUTH PLAIN " + plain(ALICE, password_of(ALICE))),
                                     "235 2.7.0 Authentication successful")
                    # RFC 4954 section 4: no second AUTH.
                    self.assertRegex(s.cmd("AUTH PLAIN " + plain(ALICE, password_of(ALICE))), r"^503 5\.5\.1 ")
                s, _ = tls_session(self, family, kind)
                with s:
                    self.assertRegex(s.cmd("AUTH LOGIN"), r"^334 ")
                    self.assertRegex(s.cmd(b64(BOB)), r"^334 ")
                    self.assertEqual(s.cmd(b64(password_of(BOB))), "235 2.7.0 Authentication successful")
                    self.assertEqual(s.cmd("MAIL FROM:<bob@example.org>"), "250 2.1.0 Ok")

    def test_smtplib_submission_with_starttls_and_implicit_tls(self):
        family = self.family
        with smtplib.SMTP("127.0.0.1", family.ports["submission"], timeout=30) as smtp:
            smtp.starttls(context=unverified_tls_context())
            smtp.ehlo("client.example.net")
            smtp.user, smtp.password = ALICE, password_of(ALICE)
            self.assertEqual(smtp.auth("PLAIN", smtp.auth_plain),
                             (235, b"2.7.0 Authentication successful"))
            self.assertEqual(smtp.sendmail(ALICE, [BOB], message("starttls plain")), {})
        with smtplib.SMTP_SSL("127.0.0.1", family.ports["submissions"], timeout=30,
                              context=unverified_tls_context()) as smtp:
            smtp.ehlo("client.example.net")
            smtp.user, smtp.password = ALICE, password_of(ALICE)
            self.assertEqual(smtp.auth("LOGIN", smtp.auth_login, initial_response_ok=False),
                             (235, b"2.7.0 Authentication successful"))
            self.assertEqual(smtp.sendmail(ALICE, [BOB], message("implicit login")), {})
        with smtplib.SMTP_SSL("127.0.0.1", family.ports["submissions"], timeout=30,
                              context=unverified_tls_context()) as smtp:
            with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
                smtp.login(ALICE, "not the password")
            self.assertEqual(cm.exception.smtp_code, 535)
        delivered = family.wait_delivered(BOB, 2)
        family.wait_queue_empty()
        for data in delivered:
            received = received_of(data)
            self.assertIn("with ESMTPSA ", received)
            self.assertRegex(received, r"TLSv1\.[23]")
            self.assertTrue(data.startswith(b"Return-Path: <alice@example.org>\n"))

    def test_sender_must_belong_to_the_authenticated_user(self):
        family = self.family
        s, _ = tls_session(self, family, "submission")
        with s:
            self.assertEqual(s.cmd("AUTH PLAIN " + plain(ALICE, password_of(ALICE))),
                             "235 2.7.0 Authentication successful")
            for sender in (BOB, "someone@example.net", "nobody@example.org"):
                self.assertEqual(s.cmd(f"MAIL FROM:<{sender}>"),
                                 "553 5.7.1 Sender address not owned by the authenticated user", sender)
            self.assertEqual(s.cmd("MAIL FROM:<sales@example.org>"), "250 2.1.0 Ok")
            self.assertEqual(s.cmd("RSET"), "250 2.0.0 Ok")
            # An AUTH= parameter whose xtext decodes to a NUL.
            self.assertRegex(s.cmd("MAIL FROM:<alice@example.org> AUTH=<a+00b>"), r"^501 ")
            self.assertEqual(s.cmd("MAIL FROM:<alice@example.org>"), "250 2.1.0 Ok")

    def test_an_authenticated_client_may_pipeline_after_end_of_data(self):
        # The pipelining guard is for unauthenticated clients only.
        family = self.family
        s, _ = tls_session(self, family, "submission")
        with s:
            self.assertEqual(s.cmd("AUTH PLAIN " + plain(ALICE, password_of(ALICE))),
                             "235 2.7.0 Authentication successful")
            s.send(b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
            self.assertEqual(s.reply_line(), "250 2.1.0 Ok")
            self.assertEqual(s.reply_line(), "250 2.1.5 Ok")
            self.assertRegex(s.reply_line(), r"^354 ")
            s.send(message("pipelined after the dot") + b".\r\nQUIT\r\n")
            self.assertRegex(s.reply_line(), rf"^250 2\.0\.0 Ok: queued as {QID}$")
            self.assertEqual(s.reply_line(), "221 2.0.0 Bye")
        family.wait_delivered(BOB, 1)
        self.assertEqual([m["Subject"] for m in family.read_maildir(BOB)], ["pipelined after the dot"])

    def test_remote_recipients_wait_for_outbound(self):
        # Its own family: the message stays in the queue.
        with MailFamily(tls=True) as family:
            family.start()
            s, _ = tls_session(self, family, "submission")
            with s:
                self.assertEqual(s.cmd("AUTH PLAIN " + plain(ALICE, password_of(ALICE))),
                                 "235 2.7.0 Authentication successful")
                self.assertEqual(s.cmd("MAIL FROM:<alice@example.org>"), "250 2.1.0 Ok")
                self.assertEqual(s.cmd("RCPT TO:<friend@remote.test>"), "250 2.1.5 Ok")
                self.assertEqual(s.cmd("RCPT TO:<bob@example.org>"), "250 2.1.5 Ok")
                self.assertRegex(s.cmd("DATA"), r"^354 ")
                s.send(message("outbound") + b".\r\n")
                reply = s.reply_line()
                self.assertRegex(reply, rf"^250 2\.0\.0 Ok: queued as {QID}$")
                qid = reply.rsplit(" ", 1)[1]
            family.wait_delivered(BOB, 1)
            shown = family.queue_show()
            self.assertIn(qid, shown)
            self.assertRegex(shown, r"\n  to friend@remote\.test  waiting for outbound ")
            self.assertRegex(shown, r"\n  to bob@example\.org  delivered ")

    def test_message_id_and_date_added_when_missing(self):
        family = self.family
        bare = b"From: <alice@example.org>\r\nSubject: bare\r\n\r\nno id\r\n"
        full = (b"From: <alice@example.org>\r\nSubject: full\r\nMessage-ID: <mine@client.example>\r\n"
                b"Date: Mon, 30 Nov 2026 10:00:00 +0000\r\n\r\nwith id\r\n")
        with smtplib.SMTP("127.0.0.1", family.ports["submission"], timeout=30) as smtp:
            smtp.starttls(context=unverified_tls_context())
            smtp.login(ALICE, password_of(ALICE))
            smtp.sendmail(ALICE, [BOB], bare)
            smtp.sendmail(ALICE, [BOB], full)
        family.wait_delivered(BOB, 2)
        by_subject = {m["Subject"]: m for m in family.read_maildir(BOB)}
        added = by_subject["bare"]
        self.assertEqual(len(added.get_all("Message-ID")), 1)
        self.assertRegex(added["Message-ID"], r"^<[^<>@\s]+@[^<>@\s]+>$")
        self.assertEqual(len(added.get_all("Date")), 1)
        kept = by_subject["full"]
        self.assertEqual(kept.get_all("Message-ID"), ["<mine@client.example>"])
        self.assertEqual(kept.get_all("Date"), ["Mon, 30 Nov 2026 10:00:00 +0000"])

    def swaks(self, *args):
        result = subprocess.run(["swaks", "--timeout", "30", *args], capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        return result.stdout

    @unittest.skipUnless(shutil.which("swaks"), "swaks not installed")
    def test_swaks_submission_and_pipelining(self):
        family = self.family
        auth = ["--auth", "PLAIN", "--auth-user", ALICE, "--auth-password", password_of(ALICE)]
        out = self.swaks("--server", f"127.0.0.1:{family.ports['submission']}", "--from", ALICE,
                         "--to", BOB, "-tls", *auth, "--header", "Subject: swaks starttls")
        self.assertRegex(out, rf"250 2\.0\.0 Ok: queued as {QID}")
        out = self.swaks("--server", f"127.0.0.1:{family.ports['submissions']}", "--from", ALICE,
                         "--to", BOB, "--tls-on-connect", "--auth", "LOGIN", "--auth-user", ALICE,
                         "--auth-password", password_of(ALICE), "--header", "Subject: swaks implicit")
        self.assertIn("235 2.7.0 Authentication successful", out)
        out = self.swaks("--server", f"127.0.0.1:{family.ports['smtp']}", "--from", "sender@example.net",
                         "--to", ALICE, "--pipeline", "--header", "Subject: swaks pipelined")
        self.assertRegex(out, rf"250 2\.0\.0 Ok: queued as {QID}")
        family.wait_delivered(BOB, 2)
        family.wait_delivered(ALICE, 1)
        self.assertEqual(sorted(m["Subject"] for m in family.read_maildir(BOB)),
                         ["swaks implicit", "swaks starttls"])
        self.assertEqual([m["Subject"] for m in family.read_maildir(ALICE)], ["swaks pipelined"])


if __name__ == "__main__":
    main()
