"""mailctl's account commands (domain, user, alias) on a family's database,
without a running maild: names and passwords checked with clear messages,
lists sorted, alias problems found, and the database always the lookup
user's, mode 0600."""

import fcntl
import os
import pwd
import select
import signal
import sqlite3
import stat
import subprocess
import termios
import time
import unittest

from maildtest import IS_ROOT, MAILCTL, ROLE_USERS, Family, main, needs_root

# The cost of hashing is not what these tests are about.
FAST_HASH = "argon2-memory 8M\nargon2-iterations 1\n"
PASSWORD = "correct horse battery"


def mailctl(family, *args, password=None, config=None, **kwargs):
    """Runs mailctl on the family's configuration; a password goes in on
    standard input (with --password-stdin), which is otherwise empty."""
    kwargs.setdefault("input", "" if password is None else password + "\n")
    return subprocess.run([MAILCTL, "-f", config or family.config_path, *args], capture_output=True, text=True,
                          timeout=120, **kwargs)


def database(family):
    return os.path.join(family.dir, "db", "maild.db")


def stored_hashes(family):
    """{address: password hash}, read without locking or creating files
    beside the database."""
    db = sqlite3.connect(f"file:{database(family)}?immutable=1", uri=True)
    try:
        rows = db.execute("SELECT a.local || '@' || d.name, a.password_hash "
                          "FROM accounts a JOIN domains d ON d.id = a.domain_id").fetchall()
    finally:
        db.close()
    return dict(rows)


class AccountsTestCase(unittest.TestCase):
    """A family that is never started: the commands open its database."""

    def setUp(self):
        self.family = Family(extra_config=FAST_HASH)
        self.addCleanup(self.family.__exit__, None, None, None)

    def ok(self, *args, **kwargs):
        result = mailctl(self.family, *args, **kwargs)
        self.assertEqual(result.returncode, 0, f"mailctl {' '.join(args)}: {result.stderr}")
        self.assertEqual(result.stderr, "")
        return result.stdout

    def fails(self, status, message, *args, **kwargs):
        result = mailctl(self.family, *args, **kwargs)
        self.assertEqual(result.returncode, status, f"mailctl {' '.join(args)}: {result.stdout}{result.stderr}")
        self.assertIn(message, result.stderr)
        return result

    def lines(self, *args):
        return self.ok(*args).splitlines()

    def add_user(self, address, password=PASSWORD):
        self.ok("user", "add", "--password-stdin", address, password=password)


class DomainTest(AccountsTestCase):
    def test_add_list_and_delete(self):
        self.assertEqual(self.lines("domain", "list"), [])
        for domain in ("example.org", "b.example", "A.example"):
            self.ok("domain", "add", domain)
        self.assertEqual(self.lines("domain", "list"), ["a.example", "b.example", "example.org"])
        self.fails(1, "domain EXAMPLE.org already exists", "domain", "add", "EXAMPLE.org")
        self.ok("domain", "del", "b.example")
        self.assertEqual(self.lines("domain", "list"), ["a.example", "example.org"])
        self.fails(1, "unknown domain b.example", "domain", "del", "b.example")

    def test_invalid_domains_are_refused_with_the_reason(self):
        self.fails(1, "invalid domain bad..example: not a valid domain name", "domain", "add", "bad..example")
        self.fails(1, "give an internationalized domain in its xn-- form", "domain", "add", "bücher.example")
        self.fails(1, "invalid domain", "domain", "add", "example.org'; DROP TABLE domains; --")
        self.ok("domain", "add", "xn--bcher-kva.example")
        self.assertEqual(self.lines("domain", "list"), ["xn--bcher-kva.example"])

    def test_a_domain_in_use_is_deleted_only_with_force(self):
        self.ok("domain", "add", "example.org")
        self.add_user("alice@example.org")
        self.add_user("bob@example.org")
        self.ok("alias", "add", "info@example.org", "alice@example.org")
        self.fails(1, "domain example.org has 2 accounts and 1 alias; use --force", "domain", "del", "example.org")
        self.assertEqual(self.lines("domain", "list"), ["example.org"])
        self.assertEqual(len(self.lines("user", "list")), 2)
        self.ok("domain", "del", "--force", "example.org")
        self.assertEqual(self.lines("domain", "list"), [])
        self.assertEqual(self.lines("user", "list"), [])
        self.assertEqual(self.lines("alias", "list"), [])


class UserTest(AccountsTestCase):
    def setUp(self):
        super().setUp()
        self.ok("domain", "add", "example.org")

    def test_add_list_and_refuse_a_duplicate(self):
        self.add_user("bob@example.org")
        self.add_user("alice@example.org")
        self.assertEqual(self.lines("user", "list"), ["alice@example.org enabled", "bob@example.org enabled"])
        self.fails(1, "user alice@example.org already exists", "user", "add", "--password-stdin",
                   "ALICE@Example.org", password=PASSWORD)
        self.assertEqual(len(self.lines("user", "list")), 2)

    def test_the_password_is_hashed_with_the_configured_cost(self):
        self.add_user("alice@example.org")
        hashes = stored_hashes(self.family)
        self.assertRegex(hashes["alice@example.org"], r"^\$argon2id\$v=19\$m=8192,t=1,p=1\$")
        with open(database(self.family), "rb") as f:
            self.assertNotIn(PASSWORD.encode(), f.read())
        self.ok("user", "passwd", "--password-stdin", "alice@example.org", password="another password")
        self.assertNotEqual(stored_hashes(self.family)["alice@example.org"], hashes["alice@example.org"])

    def test_mistakes_are_named(self):
        result = self.fails(1, "invalid address alice@@example.org: ", "user", "add", "--password-stdin",
                            "alice@@example.org", password=PASSWORD)
        self.assertRegex(result.stderr, r"invalid address alice@@example\.org: \S")  # the parser's reason
        self.fails(1, "unknown domain nowhere.example", "user", "add", "--password-stdin", "bob@nowhere.example",
                   password=PASSWORD)
        self.fails(1, "user carol@example.org not found", "user", "passwd", "--password-stdin",
                   "carol@example.org", password=PASSWORD)
        self.fails(1, "user carol@example.org not found", "user", "del", "carol@example.org")
        self.fails(1, "user carol@example.org not found", "user", "disable", "carol@example.org")
        self.fails(1, "unknown domain nowhere.example", "user", "list", "nowhere.example")
        self.assertEqual(self.lines("user", "list"), [])

    def test_weak_or_missing_passwords_are_refused(self):
        self.fails(1, "password too short (at least 8 characters)", "user", "add", "--password-stdin",
                   "alice@example.org", password="1234567")
        self.fails(1, "empty password", "user", "add", "--password-stdin", "alice@example.org", password="")
        self.fails(1, "password too long (at most 4096 bytes)", "user", "add", "--password-stdin",
                   "alice@example.org", password="x" * 4097)
        self.assertEqual(self.lines("user", "list"), [])
        # Without --password-stdin and without a terminal there is no one to ask.
        self.fails(1, "use --password-stdin", "user", "add", "alice@example.org", password=PASSWORD,
                   start_new_session=True)
        self.assertEqual(self.lines("user", "list"), [])

    def test_exactly_one_line_of_standard_input_is_the_password(self):
        # 7 bytes once the line end (with its CR) is gone: too short.
        for line in ("1234567\n", "1234567\r\n", "1234567\n8\n", "1234567"):
            with self.subTest(line=line):
                self.fails(1, "password too short", "user", "add", "--password-stdin", "alice@example.org",
                           input=line)
        self.ok("user", "add", "--password-stdin", "alice@example.org", input="12345678")
        self.ok("user", "add", "--password-stdin", "bob@example.org", input="1234567\r\r\n")
        self.assertEqual(sorted(stored_hashes(self.family)), ["alice@example.org", "bob@example.org"])

    def test_disable_and_enable(self):
        self.add_user("alice@example.org")
        self.add_user("bob@example.org")
        self.ok("user", "disable", "alice@example.org")
        self.assertEqual(self.lines("user", "list"), ["alice@example.org disabled", "bob@example.org enabled"])
        self.ok("user", "enable", "alice@example.org")
        self.assertEqual(self.lines("user", "list", "example.org"),
                         ["alice@example.org enabled", "bob@example.org enabled"])

    def test_delete(self):
        self.add_user("alice@example.org")
        self.ok("user", "del", "alice@example.org")
        self.assertEqual(self.lines("user", "list"), [])
        self.fails(1, "user alice@example.org not found", "user", "del", "alice@example.org")

    def test_list_by_domain(self):
        self.ok("domain", "add", "example.net")
        self.add_user("zed@example.net")
        self.add_user("alice@example.org")
        self.assertEqual(self.lines("user", "list", "example.net"), ["zed@example.net enabled"])
        self.assertEqual(self.lines("user", "list"), ["zed@example.net enabled", "alice@example.org enabled"])

    def test_quotes_are_data(self):
        self.add_user("a'b@example.org")
        self.fails(1, "invalid address x@example.org' OR '1'='1", "user", "add", "--password-stdin",
                   "x@example.org' OR '1'='1", password=PASSWORD)
        self.fails(1, "invalid address", "user", "del", "x@example.org' OR '1'='1")
        self.assertEqual(self.lines("user", "list"), ["a'b@example.org enabled"])
        self.assertEqual(list(stored_hashes(self.family)), ["a'b@example.org"])
        self.ok("user", "disable", "a'b@example.org")
        self.assertEqual(self.lines("user", "list"), ["a'b@example.org disabled"])

    def test_needless_quotes_are_dropped_and_a_dash_needs_double_dash(self):
        self.add_user('"john.doe"@example.org')
        self.ok("user", "add", "--password-stdin", "--", "-dash@example.org", password=PASSWORD)
        self.assertEqual(self.lines("user", "list"), ["-dash@example.org enabled", "john.doe@example.org enabled"])


class AliasTest(AccountsTestCase):
    def setUp(self):
        super().setUp()
        self.ok("domain", "add", "example.org")
        self.add_user("alice@example.org")

    def test_add_list_and_delete(self):
        self.ok("alias", "add", "info@example.org", "alice@example.org")
        self.ok("alias", "add", "info@example.org", "bob@elsewhere.example")
        self.ok("alias", "add", "abuse@example.org", "alice@example.org")
        self.assertEqual(self.lines("alias", "list"), [
            "abuse@example.org alice@example.org",
            "info@example.org bob@elsewhere.example",
            "info@example.org alice@example.org",
        ])
        self.fails(1, "alias info@example.org -> alice@example.org already exists", "alias", "add",
                   "info@example.org", "alice@example.org")
        self.ok("alias", "del", "info@example.org", "bob@elsewhere.example")
        self.assertEqual(self.lines("alias", "list", "example.org"), [
            "abuse@example.org alice@example.org",
            "info@example.org alice@example.org",
        ])
        self.fails(1, "alias info@example.org -> bob@elsewhere.example not found", "alias", "del",
                   "info@example.org", "bob@elsewhere.example")
        self.ok("alias", "del", "abuse@example.org")
        self.assertEqual(self.lines("alias", "list"), ["info@example.org alice@example.org"])
        self.fails(1, "alias abuse@example.org not found", "alias", "del", "abuse@example.org")

    def test_mistakes_are_named(self):
        self.fails(1, "unknown domain elsewhere.example", "alias", "add", "x@elsewhere.example", "alice@example.org")
        self.fails(1, "unknown domain elsewhere.example", "alias", "add", "@elsewhere.example", "alice@example.org")
        self.fails(1, "invalid address not-an-address: ", "alias", "add", "info@example.org", "not-an-address")
        self.fails(1, "invalid domain", "alias", "add", "@bad..example", "alice@example.org")
        self.fails(1, "unknown domain elsewhere.example", "alias", "list", "elsewhere.example")
        self.assertEqual(self.lines("alias", "list"), [])

    def test_catch_all(self):
        self.ok("alias", "add", "@example.org", "alice@example.org")
        self.ok("alias", "add", "info@example.org", "alice@example.org")
        self.assertEqual(self.lines("alias", "list"), [
            "@example.org alice@example.org",
            "info@example.org alice@example.org",
        ])
        self.assertEqual(self.lines("alias", "check"), ["aliases OK"])
        self.ok("alias", "del", "@example.org")
        self.assertEqual(self.lines("alias", "list"), ["info@example.org alice@example.org"])

    def test_check_finds_a_loop_and_passes_once_it_is_fixed(self):
        self.assertEqual(self.lines("alias", "check"), ["aliases OK"])
        # Added all the same, with a warning, as the operator may be on the
        # way to adding b.
        result = mailctl(self.family, "alias", "add", "a@example.org", "b@example.org")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("warning: a@example.org: alias a@example.org points to unknown local address b@example.org",
                      result.stderr)
        result = mailctl(self.family, "alias", "add", "b@example.org", "a@example.org")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("warning: b@example.org: alias loop: ", result.stderr)

        result = mailctl(self.family, "alias", "check")
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertEqual(result.stdout.splitlines(), [
            "a@example.org: alias loop: a@example.org -> b@example.org -> a@example.org",
            "b@example.org: alias loop: b@example.org -> a@example.org -> b@example.org",
        ])
        # b now points nowhere: still a problem, a dangling one.
        self.ok("alias", "del", "b@example.org")
        result = mailctl(self.family, "alias", "check")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stdout.splitlines(),
                         ["a@example.org: alias a@example.org points to unknown local address b@example.org"])
        self.ok("alias", "add", "b@example.org", "alice@example.org")
        self.assertEqual(self.lines("alias", "check"), ["aliases OK"])

    def test_check_finds_a_catch_all_that_points_into_itself(self):
        result = mailctl(self.family, "alias", "add", "@example.org", "nobody@example.org")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("warning: @example.org: target nobody@example.org: alias loop: ", result.stderr)
        result = mailctl(self.family, "alias", "check")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(len(result.stdout.splitlines()), 1)
        self.assertRegex(result.stdout, r"^@example\.org: target nobody@example\.org: alias loop: ")

    def test_check_finds_a_chain_too_deep(self):
        with open(self.family.config_path, "a") as f:
            f.write("max-alias-depth 2\n")
        self.ok("alias", "add", "c@example.org", "alice@example.org")
        self.ok("alias", "add", "b@example.org", "c@example.org")
        result = mailctl(self.family, "alias", "add", "a@example.org", "b@example.org")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("warning: a@example.org: alias chain longer than 2", result.stderr)
        result = mailctl(self.family, "alias", "check")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stdout, "a@example.org: alias chain longer than 2\n")


class UsageTest(AccountsTestCase):
    def test_usage_errors_exit_2(self):
        for args in (["user", "add"], ["domain", "add", "a.example", "b.example"], ["domain", "add", "--force",
                     "a.example"], ["frobnicate"], ["domain", "list", "--bogus"], ["user"], ["alias", "add", "x"]):
            with self.subTest(args=args):
                result = mailctl(self.family, *args)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn("usage:", result.stderr)
        self.assertEqual(self.lines("domain", "list"), [])

    def test_a_broken_configuration_is_refused(self):
        with open(self.family.config_path, "a") as f:
            f.write("no-such-keyword 1\n")
        result = mailctl(self.family, "domain", "list")
        self.assertEqual(result.returncode, 3)
        self.assertIn(f"{self.family.config_path}:", result.stderr)
        self.assertIn("cannot use this configuration", result.stderr)
        self.assertFalse(os.path.exists(database(self.family)))


class ControlClientTest(AccountsTestCase):
    """The client side of auth test and resolve, without a maild."""

    def test_bad_input_is_refused_before_asking(self):
        self.fails(1, "invalid address x@@example.org", "resolve", "x@@example.org")
        self.fails(1, "invalid client address 300.1.1.1", "auth", "test", "--client", "300.1.1.1",
                   "--password-stdin", "alice@example.org", password=PASSWORD)
        self.fails(1, "empty password", "auth", "test", "--password-stdin", "alice@example.org", password="")

    def test_no_maild_is_a_system_error(self):
        socket = os.path.join(self.family.dir, "control.sock")
        for args, password in ((["resolve", "alice@example.org"], None),
                               (["auth", "test", "--password-stdin", "alice@example.org"], PASSWORD)):
            with self.subTest(command=args[0]):
                result = mailctl(self.family, "-s", socket, *args, password=password)
                self.assertEqual(result.returncode, 3)
                self.assertIn(f"cannot connect to {socket}", result.stderr)


class TerminalTest(AccountsTestCase):
    """Without --password-stdin, the password is asked on the terminal,
    with echo off, and echo comes back on every path."""

    def setUp(self):
        super().setUp()
        self.ok("domain", "add", "example.org")
        self.master, self.slave = os.openpty()
        self.addCleanup(os.close, self.master)
        self.addCleanup(os.close, self.slave)
        self.output = b""

    def start(self, *args):
        def take_terminal():
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # after start_new_session's setsid
        return subprocess.Popen([MAILCTL, "-f", self.family.config_path, *args], stdin=self.slave,
                                stdout=self.slave, stderr=self.slave, start_new_session=True,
                                preexec_fn=take_terminal)

    def echo(self):
        return bool(termios.tcgetattr(self.slave)[3] & termios.ECHO)

    def read_until(self, needle, timeout=60):
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            self.assertLess(time.monotonic(), deadline, f"no {needle!r} in {self.output!r}")
            if select.select([self.master], [], [], 0.1)[0]:
                self.output += os.read(self.master, 1024)

    def test_a_new_password_is_asked_twice_without_echo(self):
        self.assertTrue(self.echo())
        proc = self.start("user", "add", "alice@example.org")
        self.read_until(b"Password: ")
        self.assertFalse(self.echo())
        os.write(self.master, b"terminal password\n")
        self.read_until(b"Retype password: ")
        self.assertFalse(self.echo())
        os.write(self.master, b"terminal password\n")
        self.assertEqual(proc.wait(timeout=60), 0, self.output)
        self.assertTrue(self.echo())
        self.assertNotIn(b"terminal password", self.output)
        self.assertEqual(self.lines("user", "list"), ["alice@example.org enabled"])

    def test_passwords_that_differ_are_refused(self):
        proc = self.start("user", "add", "alice@example.org")
        self.read_until(b"Password: ")
        os.write(self.master, b"terminal password\n")
        self.read_until(b"Retype password: ")
        os.write(self.master, b"terminal passwort\n")
        self.assertEqual(proc.wait(timeout=60), 1)
        self.read_until(b"passwords do not match")
        self.assertTrue(self.echo())
        self.assertEqual(self.lines("user", "list"), [])

    def test_an_interrupt_restores_echo(self):
        proc = self.start("user", "add", "alice@example.org")
        self.read_until(b"Password: ")
        self.assertFalse(self.echo())
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(timeout=60), -signal.SIGINT)
        self.assertTrue(self.echo())
        self.assertEqual(self.lines("user", "list"), [])


def lookup_user():
    return pwd.getpwnam(ROLE_USERS["lookup"])


class PrivilegeTest(AccountsTestCase):
    def assert_owned(self, path, uid):
        st = os.stat(path)
        self.assertEqual(st.st_uid, uid, path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, path)

    @needs_root
    def test_the_database_and_its_wal_belong_to_the_lookup_user(self):
        self.ok("domain", "add", "example.org")
        uid = lookup_user().pw_uid
        self.assert_owned(database(self.family), uid)
        # The -wal and -shm files exist while a connection is open: user
        # add holds one while it waits for the password.
        proc = subprocess.Popen([MAILCTL, "-f", self.family.config_path, "user", "add", "--password-stdin",
                                 "alice@example.org"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 60
            while not all(os.path.exists(database(self.family) + suffix) for suffix in ("-wal", "-shm")):
                self.assertIsNone(proc.poll(), "mailctl exited early")
                self.assertLess(time.monotonic(), deadline, "no -wal and -shm files")
                time.sleep(0.02)
            for suffix in ("", "-wal", "-shm"):
                self.assert_owned(database(self.family) + suffix, uid)
            out, err = proc.communicate(PASSWORD + "\n", timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(self.lines("user", "list"), ["alice@example.org enabled"])
        for name in os.listdir(os.path.dirname(database(self.family))):
            self.assert_owned(os.path.join(os.path.dirname(database(self.family)), name), uid)

    @needs_root
    def test_a_missing_database_directory_is_made_for_the_lookup_user(self):
        config = os.path.join(self.family.dir, "other.conf")
        path = os.path.join(self.family.dir, "new", "maild.db")
        with open(config, "w") as f:
            f.write(self.family.config_text(FAST_HASH).replace(database(self.family), path))
        result = mailctl(self.family, "domain", "add", "example.org", config=config)
        self.assertEqual(result.returncode, 0, result.stderr)
        st = os.stat(os.path.dirname(path))
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (lookup_user().pw_uid, 0o700))
        self.assert_owned(path, lookup_user().pw_uid)

    @needs_root
    def test_a_database_the_lookup_user_cannot_reach_is_a_system_error(self):
        db_dir = os.path.dirname(database(self.family))
        os.chown(db_dir, 0, 0)
        os.chmod(db_dir, 0o700)
        result = mailctl(self.family, "domain", "list")
        self.assertEqual(result.returncode, 3)
        self.assertIn("cannot open database: ", result.stderr)
        self.assertIn(f"(as user {ROLE_USERS['lookup']})", result.stderr)

    @needs_root
    def test_an_unknown_lookup_user_is_a_system_error(self):
        with open(self.family.config_path, "a") as f:
            f.write("user lookup no_such_user_maild\n")
        result = mailctl(self.family, "domain", "list")
        self.assertEqual(result.returncode, 3)
        self.assertIn("unknown user no_such_user_maild", result.stderr)
        self.assertFalse(os.path.exists(database(self.family)))

    def test_anyone_else_opens_the_database_as_themselves(self):
        command = [MAILCTL, "-f", self.family.config_path, "domain", "add", "example.org"]
        if IS_ROOT:
            nobody = pwd.getpwnam("nobody")
            os.chown(os.path.dirname(database(self.family)), nobody.pw_uid, nobody.pw_gid)
            command = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"] \
                + command
            uid = nobody.pw_uid
        else:
            uid = os.geteuid()
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assert_owned(database(self.family), uid)


if __name__ == "__main__":
    main()
