"""mailctl's queue commands through control to the queue role: an empty
queue, queue ids checked before anything is sent, unknown messages; a
message for a forward outside the local domains, which waits in the queue
(maild does not send remote mail yet) and can be shown, held, released and
removed; and a local delivery that fails, is retried, stops while held and
goes through once released."""

import os
import re
import smtplib
import time
import unittest

from maildtest import Family, MailFamily, main, message, needs_root

UNKNOWN_ID = "0123456789abcdef"
# One message's first line in `queue show`.
HEAD = re.compile(r"^([0-9a-f]{16})  age (\d+)s  size (\d+)  (active|held)$", re.M)


class QueueCommandsTest(unittest.TestCase):
    """A running family with nothing queued."""

    @classmethod
    def setUpClass(cls):
        cls.family = Family()
        try:
            cls.family.start()
        except BaseException:
            cls.family.__exit__(None, None, None)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.family.__exit__(None, None, None)

    def ctl(self, *args):
        return self.family.ctl(*args)

    def test_show_empty_queue(self):
        result = self.ctl("queue", "show")
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, "queue is empty\n", ""))

    def test_unknown_message(self):
        for action in ("remove", "hold", "release", "flush"):
            result = self.ctl("queue", action, UNKNOWN_ID)
            self.assertEqual(result.returncode, 1, f"queue {action}: {result.stdout}{result.stderr}")
            self.assertEqual(result.stdout, "")
            self.assertEqual(result.stderr, "mailctl: no such message\n", action)

    def test_flush_everything(self):
        result = self.ctl("queue", "flush")
        self.assertEqual((result.returncode, result.stdout), (0, "flushed 0 messages\n"), result.stderr)

    def test_invalid_ids_are_usage_errors_and_never_sent(self):
        before = self.family.log_text(this_run=True)
        for bad in ("xyz", UNKNOWN_ID.upper(), UNKNOWN_ID[:-1], UNKNOWN_ID + "0", "../../etc/passwd",
                    "0123456789abcde\x1b", ""):
            for action in ("remove", "hold", "release", "flush"):
                result = self.ctl("queue", action, "--", bad)
                self.assertEqual(result.returncode, 2, f"queue {action} {bad!r}: {result.stdout}{result.stderr}")
                self.assertIn("invalid queue id", result.stderr)
                # The escape byte is shown escaped, never sent to the terminal.
                self.assertNotIn("\x1b", result.stderr)
        # Nothing reached maild: control would have logged a dropped client.
        self.assertEqual(self.family.log_text(this_run=True).count("dropping it"), before.count("dropping it"))

    def test_usage_errors(self):
        for args in (("queue",), ("queue", "show", UNKNOWN_ID), ("queue", "remove"), ("queue", "hold"),
                     ("queue", "release"), ("queue", "remove", UNKNOWN_ID, UNKNOWN_ID),
                     ("queue", "flush", UNKNOWN_ID, UNKNOWN_ID), ("queue", "list")):
            result = self.ctl(*args)
            self.assertEqual(result.returncode, 2, f"{args}: {result.stdout}{result.stderr}")
            self.assertIn("usage:", result.stderr)


class UnreachableTest(unittest.TestCase):
    def test_no_maild(self):
        with Family() as family:  # never started: nobody listens on its socket
            for args in (("queue", "show"), ("queue", "remove", UNKNOWN_ID), ("queue", "flush")):
                result = family.ctl(*args)
                self.assertEqual(result.returncode, 3, f"{args}: {result.stdout}{result.stderr}")
                self.assertIn("is maild running?", result.stderr)


class WaitingMessageTest(unittest.TestCase):
    """postmaster@example.org forwards to a remote mailbox: its messages
    stay in the queue, waiting for outbound delivery, until removed."""

    def setUp(self):
        self.family = MailFamily()
        self.addCleanup(self.family.__exit__, None, None, None)
        self.family.ok("alias", "add", "postmaster@example.org", "someone@remote.test")
        self.family.start()

    def send(self, sender, subject):
        with smtplib.SMTP("127.0.0.1", self.family.ports["smtp"], timeout=30) as smtp:
            refused = smtp.sendmail(sender, ["postmaster@example.org"], message(subject))
        self.assertEqual(refused, {})

    def show(self):
        result = self.family.ctl("queue", "show")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "")
        return result.stdout

    def action(self, *args):
        result = self.family.ctl("queue", *args)
        self.assertEqual(result.returncode, 0, f"queue {' '.join(args)}: {result.stderr}")
        return result.stdout

    def blocks(self, shown):
        """{qid: its block of lines} from queue show's output."""
        out = {}
        for block in shown.split("\n\n")[:-1]:
            head = HEAD.match(block)
            self.assertIsNotNone(head, block)
            out[head.group(1)] = block
        return out

    def test_show_hold_release_remove(self):
        self.send("sender@example.net", "first")
        self.send("", "a bounce")  # the null reverse path
        shown = self.show()
        self.assertTrue(shown.endswith("\n\n2 messages\n"), shown)
        blocks = self.blocks(shown)
        self.assertEqual(len(blocks), 2, shown)
        by_sender = {}
        for qid, block in blocks.items():
            lines = block.split("\n")
            head = HEAD.match(lines[0])
            self.assertLess(int(head.group(2)), 120)
            self.assertGreater(int(head.group(3)), len(message("first")))  # plus the Received: header
            self.assertEqual(head.group(4), "active")
            self.assertEqual(lines[2], "  to someone@remote.test (rcpt postmaster@example.org)"
                                       "  waiting for outbound  attempts 0", block)
            self.assertEqual(len(lines), 3, block)
            by_sender[lines[1]] = qid
        self.assertEqual(set(by_sender), {"  from <sender@example.net>", "  from <>"})
        qid = by_sender["  from <sender@example.net>"]
        other = by_sender["  from <>"]

        self.assertEqual(self.action("hold", qid), f"held {qid}\n")
        self.assertEqual(HEAD.match(self.blocks(self.show())[qid]).group(4), "held")
        self.assertEqual(HEAD.match(self.blocks(self.show())[other]).group(4), "active")
        self.assertEqual(self.action("release", qid), f"released {qid}\n")
        self.assertEqual(HEAD.match(self.blocks(self.show())[qid]).group(4), "active")
        self.assertEqual(self.action("flush", qid), f"flushed {qid}\n")

        self.assertEqual(self.action("remove", qid), f"removed {qid}\n")
        shown = self.show()
        self.assertEqual(list(self.blocks(shown)), [other], shown)
        self.assertTrue(shown.endswith("\n\n1 message\n"), shown)
        again = self.family.ctl("queue", "remove", qid)
        self.assertEqual((again.returncode, again.stderr), (1, "mailctl: no such message\n"))

        self.assertEqual(self.action("remove", other), f"removed {other}\n")
        self.assertEqual(self.show(), "queue is empty\n")
        # Held, released and removed for good: the queue says so in its log.
        log = self.family.log_text(this_run=True)
        for event in (f"held qid={qid}", f"released qid={qid}", f"removed qid={qid}", f"removed qid={other}"):
            self.assertIn(event, log)

    def test_held_message_survives_a_restart(self):
        self.send("sender@example.net", "kept")
        (qid,) = self.blocks(self.show())
        self.action("hold", qid)
        self.family.stop()
        self.family.start()
        self.assertEqual(HEAD.match(self.blocks(self.show())[qid]).group(4), "held")
        self.action("remove", qid)
        self.assertEqual(self.show(), "queue is empty\n")


class RetryTest(unittest.TestCase):
    """alice's Maildir cannot be created (its domain's directory is root's),
    so each delivery fails temporarily until that is fixed."""

    TARGET = re.compile(r"^  to alice@example\.org  pending  attempts (\d+)(  next in \d+s)?"
                        r"  last error: mkdir example\.org/alice: Permission denied$", re.M)

    def attempts(self, family):
        shown = family.ctl("queue", "show").stdout
        target = self.TARGET.search(shown)
        return (int(target.group(1)) if target else 0), shown

    @needs_root
    def test_held_message_is_not_retried_until_released(self):
        with MailFamily() as family:  # retries after 1s, then every 2s
            domain_dir = os.path.dirname(family.maildir("alice@example.org"))
            os.mkdir(domain_dir, 0o755)
            family.start()
            with smtplib.SMTP("127.0.0.1", family.ports["smtp"], timeout=30) as smtp:
                smtp.sendmail("sender@example.net", ["alice@example.org"], message("retried"))
            deadline = time.monotonic() + 30
            while self.attempts(family)[0] < 2:
                self.assertLess(time.monotonic(), deadline, self.attempts(family)[1])
                time.sleep(0.2)
            (qid,) = [head.group(1) for head in HEAD.finditer(family.ctl("queue", "show").stdout)]
            family.ok("queue", "hold", qid)
            time.sleep(1)  # an attempt already under way may still finish
            held, shown = self.attempts(family)
            self.assertIn(f"{qid}  age", shown)
            time.sleep(5)
            self.assertEqual(self.attempts(family)[0], held, "a held message was tried")
            self.assertEqual(family.messages("alice@example.org"), [])

            os.rmdir(domain_dir)
            self.assertEqual(family.ok("queue", "release", qid), f"released {qid}\n")
            family.wait_delivered("alice@example.org", 1, timeout=10)
            family.wait_queue_empty(timeout=10)


if __name__ == "__main__":
    main()
