"""Accounts in a running family: mailctl's changes are seen by lookup at
once, passwords are checked only in lookup, failures are rate limited, and
the database is out of the network roles' reach."""

import os
import pwd
import sqlite3
import subprocess
import time
import unittest

from maildtest import Family, main, needs_root


class LookupFamily(Family):
    def __init__(self, extra=""):
        super().__init__(extra_config=extra, fast_hashing=True)

    def auth(self, user, password, client="127.0.0.1"):
        return self.ctl("auth", "test", user, "--client", client, password=password)


class AuthTest(unittest.TestCase):
    def test_login_password_change_and_unknown_user(self):
        with LookupFamily() as family:
            family.ok("domain", "add", "example.org")
            family.ok("user", "add", "alice@example.org", password="correct horse")
            family.start()

            result = family.auth("alice@example.org", "correct horse")
            self.assertEqual((result.returncode, result.stdout), (0, "ok alice@example.org\n"), result.stderr)
            # Domains never depend on case; local parts do not by default.
            self.assertEqual(family.auth("Alice@EXAMPLE.org", "correct horse").stdout, "ok alice@example.org\n")

            wrong = family.auth("alice@example.org", "wrong horse")
            unknown = family.auth("nobody@example.org", "correct horse")
            self.assertEqual((wrong.returncode, wrong.stdout), (1, "failed\n"))
            # An unknown user gets exactly the answer of a wrong password.
            self.assertEqual((unknown.returncode, unknown.stdout), (1, "failed\n"))

            # A new password counts at once, the old one no longer.
            family.ok("user", "passwd", "alice@example.org", password="battery staple")
            self.assertEqual(family.auth("alice@example.org", "correct horse").stdout, "failed\n")
            self.assertEqual(family.auth("alice@example.org", "battery staple").stdout, "ok alice@example.org\n")

            # A user added while running can log in without a restart; a
            # disabled one cannot.
            family.ok("user", "add", "bob@example.org", password="bobs password")
            self.assertEqual(family.auth("bob@example.org", "bobs password").stdout, "ok bob@example.org\n")
            family.ok("user", "disable", "bob@example.org")
            self.assertEqual(family.auth("bob@example.org", "bobs password").stdout, "failed\n")
            self.assertIn("authentication failed", family.log_text())

    def test_rate_limit_engages_and_releases(self):
        extra = "auth-address-failures 3\nauth-address-window 10s\nauth-account-failures 2\n"
        with LookupFamily(extra) as family:
            family.ok("domain", "add", "example.org")
            family.ok("user", "add", "alice@example.org", password="correct horse")
            family.start()
            attacker, other = "192.0.2.7", "2001:db8:1:2::5"
            for _ in range(3):
                self.assertEqual(family.auth("alice@example.org", "guess", client=attacker).stdout, "failed\n")
            # Blocked: even the right password fails temporarily from there.
            blocked = family.auth("alice@example.org", "correct horse", client=attacker)
            self.assertEqual((blocked.returncode, blocked.stdout), (1, "temporary failure\n"))
            self.assertIn("reason=too-many-failures", family.log_text())
            # The account is over its own limit too, but that only slows
            # guesses: its owner, elsewhere, still gets in.
            self.assertEqual(family.auth("alice@example.org", "correct horse", client=other).stdout,
                             "ok alice@example.org\n")
            time.sleep(11)
            self.assertEqual(family.auth("alice@example.org", "correct horse", client=attacker).stdout,
                             "ok alice@example.org\n")


class ResolveTest(unittest.TestCase):
    def test_resolution_through_the_running_lookup(self):
        with LookupFamily() as family:
            family.ok("domain", "add", "example.org")
            family.ok("user", "add", "alice@example.org", password="correct horse")
            family.ok("alias", "add", "postmaster@example.org", "alice@example.org")
            family.start()
            self.assertEqual(family.ok("resolve", "alice+lists@example.org"), "deliver local alice@example.org\n")
            self.assertEqual(family.ok("resolve", "postmaster@example.org"), "deliver local alice@example.org\n")
            unknown = family.ctl("resolve", "nobody@example.org")
            self.assertEqual((unknown.returncode, unknown.stdout), (1, "unknown user\n"))
            foreign = family.ctl("resolve", "someone@example.net")
            self.assertEqual((foreign.returncode, foreign.stdout), (1, "not a local domain\n"))

            # Changes count at once: a forward outside, then a loop.
            family.ok("alias", "add", "sales@example.org", "boss@example.net")
            self.assertEqual(family.ok("resolve", "sales@example.org"), "deliver external boss@example.net\n")
            family.ok("alias", "add", "a@example.org", "b@example.org")
            family.ok("alias", "add", "b@example.org", "a@example.org")
            loop = family.ctl("resolve", "a@example.org")
            self.assertEqual(loop.returncode, 1)
            self.assertTrue(loop.stdout.startswith("temporary failure: alias loop"), loop.stdout)
            self.assertEqual(family.proc.poll(), None)


class StorageTest(unittest.TestCase):
    @needs_root
    def test_database_belongs_to_lookup_and_no_network_role_can_read_it(self):
        with LookupFamily() as family:
            family.ok("domain", "add", "example.org")
            family.ok("user", "add", "alice@example.org", password="correct horse")
            family.start()
            db = os.path.join(family.dir, "db", "maild.db")
            lookup = pwd.getpwnam("_maildl")
            st = os.stat(db)
            self.assertEqual((st.st_uid, st.st_mode & 0o777), (lookup.pw_uid, 0o600))
            self.assertEqual(os.stat(os.path.dirname(db)).st_mode & 0o777, 0o700)
            result = subprocess.run(["setpriv", "--reuid=_maild", "--regid=_maild", "--clear-groups",
                                     "cat", db], capture_output=True, timeout=60)
            self.assertNotEqual(result.returncode, 0)
            self.assertIn(b"Permission denied", result.stderr)

            # The configured argon2 parameters made the stored hash.
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                (stored,) = conn.execute("SELECT password_hash FROM accounts").fetchone()
            self.assertTrue(stored.startswith("$argon2id$v=19$m=8192,t=1,p=1$"), stored)

    @needs_root
    def test_password_workers_are_confined_like_lookup(self):
        with LookupFamily() as family:
            family.start()
            pid = family.roles()["lookup"]
            tasks = os.listdir(f"/proc/{pid}/task")
            self.assertGreater(len(tasks), 1)
            for tid in tasks:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
                self.assertEqual(status["Seccomp"], "2", tid)
                self.assertEqual(status["NoNewPrivs"], "1", tid)
                self.assertNotEqual(status["Uid"].split()[0], "0", tid)


if __name__ == "__main__":
    main()
