"""Durability (DESIGN.md invariant 5): kill -9 of the whole family while
many clients send loses no message that got its 250 and delivers none twice;
every delivered file is whole."""

import random
import re
import smtplib
import threading
import time
import unittest

from maildtest import MailFamily, main

SENDERS = 50
MESSAGES_PER_SENDER = 6
ACCOUNTS = [f"crash{i}@example.org" for i in range(5)]


def crash_message(marker):
    body = "".join(f"{marker} line {i}: the quick brown fox\r\n" for i in range(20))
    return (f"From: <sender@example.net>\r\nTo: <crash@example.org>\r\nSubject: {marker}\r\n"
            f"Message-ID: <{marker}@crash.test>\r\n\r\n{body}END {marker}\r\n").encode()


class Round:
    """One burst of concurrent senders, and the markers that got a 250."""

    def __init__(self, family, name, rng):
        self.family = family
        self.name = name
        self.rng = rng
        self.lock = threading.Lock()
        self.acked = {}     # marker -> the accounts it was sent to
        self.attempted = {}  # marker -> the accounts, whether or not acknowledged
        self.progress = threading.Condition(self.lock)
        self.finished = 0  # senders that are done, one way or another

    def sender(self, t):
        try:
            with smtplib.SMTP("127.0.0.1", self.family.ports["smtp"], timeout=30) as smtp:
                for i in range(MESSAGES_PER_SENDER):
                    marker = f"{self.name}-t{t:02d}-m{i}"
                    rcpts = [ACCOUNTS[(t + i) % len(ACCOUNTS)]]
                    if (t + i) % 4 == 0:
                        rcpts.append(ACCOUNTS[(t + i + 1) % len(ACCOUNTS)])
                    with self.lock:
                        self.attempted[marker] = rcpts
                    smtp.sendmail("sender@example.net", rcpts, crash_message(marker))
                    with self.lock:
                        self.acked[marker] = rcpts
                        self.progress.notify_all()
        except (OSError, smtplib.SMTPException):
            pass  # the family was killed under us
        finally:
            with self.lock:
                self.finished += 1
                self.progress.notify_all()

    def run(self, kill_after):
        """Starts the senders, kills the family once kill_after messages
        were acknowledged, and waits for the senders to give up."""
        threads = [threading.Thread(target=self.sender, args=(t,), daemon=True) for t in range(SENDERS)]
        for thread in threads:
            thread.start()
        with self.lock:
            self.progress.wait_for(lambda: len(self.acked) >= kill_after or self.finished == SENDERS, timeout=120)
            acked_at_kill = len(self.acked)
        time.sleep(self.rng.uniform(0, 0.05))
        self.family.kill()
        for thread in threads:
            thread.join(timeout=60)
        return acked_at_kill


class CrashTest(unittest.TestCase):
    def test_kill_during_concurrent_sending_loses_and_duplicates_nothing(self):
        seed = random.randrange(1 << 30)
        print(f"\nrandom seed {seed}")
        rng = random.Random(seed)
        total = SENDERS * MESSAGES_PER_SENDER
        # All senders at once, from one address.
        with MailFamily(f"max-connections-per-address {SENDERS}\n", accounts=ACCOUNTS) as family:
            family.start()
            rounds = []
            for n in range(2):
                kill_after = rng.randrange(10, total // 2)
                r = Round(family, f"r{n}", rng)
                acked_at_kill = r.run(kill_after)
                print(f"round {n}: killed after {acked_at_kill} acknowledged messages "
                      f"({len(r.acked)} in all, {len(r.attempted)} attempted)")
                if len(r.acked) == total:
                    print(f"round {n}: note: every message was acknowledged before the kill")
                rounds.append(r)
                family.start()
                recovered = re.search(r"queue: recovered .*", family.log_text(this_run=True))
                print(f"round {n}: restarted: {recovered.group(0) if recovered else 'no recovery line'}")
                family.wait_queue_empty(timeout=120)

            acked, attempted = {}, {}
            for r in rounds:
                acked.update(r.acked)
                attempted.update(r.attempted)
            copies = {}  # (account, marker) -> number of files
            for account in ACCOUNTS:
                for data in family.messages(account):
                    match = re.search(rb"^Subject: (r\d-t\d\d-m\d)\n", data, re.M)
                    self.assertIsNotNone(match, f"{account}: a message without our marker:\n{data[:500]!r}")
                    marker = match.group(1).decode()
                    # Whole: the complete message, ending with its last line.
                    self.assertTrue(data.endswith(crash_message(marker).replace(b"\r\n", b"\n")),
                                    f"{account}: {marker} is not whole:\n{data[-300:]!r}")
                    self.assertIn(account, attempted.get(marker, []), f"{marker} reached {account}")
                    copies[(account, marker)] = copies.get((account, marker), 0) + 1
                for msg in family.read_maildir(account):
                    self.assertRegex(msg["Message-ID"], r"^<r\d-t\d\d-m\d@crash\.test>$")
            duplicates = {k: n for k, n in copies.items() if n > 1}
            self.assertEqual(duplicates, {}, "delivered more than once")
            lost = [(account, marker) for marker, rcpts in acked.items() for account in rcpts
                    if (account, marker) not in copies]
            self.assertEqual(lost, [], "acknowledged but never delivered")
            print(f"{sum(len(r) for r in acked.values())} acknowledged copies, {len(copies)} delivered, "
                  f"none twice")


if __name__ == "__main__":
    main()
