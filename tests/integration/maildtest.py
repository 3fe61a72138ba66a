"""Starts a real maild family from the build tree for integration tests.

Each Family gets its own temporary directory (configuration, chroots,
control socket, pidfile) and free loopback ports, and is stopped and
cleaned up by PID even when the test fails.
"""

import fcntl
import mailbox
import os
import pwd
import random
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

BUILD_DIR = os.environ.get("MAILD_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
SOURCE_DIR = os.environ.get("MAILD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
MAILD = os.path.join(BUILD_DIR, "sbin/maild")
MAILCTL = os.path.join(BUILD_DIR, "sbin/mailctl")
TEST_HOOKS = os.environ.get("MAILD_TEST_HOOKS", "0") in ("1", "ON", "TRUE", "true")
IS_ROOT = os.geteuid() == 0
# MAILD_TEST_KEEP=1 keeps each family's directory (config, log, spool,
# mailboxes) for a look after the test.
KEEP = os.environ.get("MAILD_TEST_KEEP", "0") == "1"

# What AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer print
# when they find something; a sanitizer build sends every role's report to
# the family's log.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")

# Cheap password hashing for tests; the defaults are for real use.
FAST_HASHING = "argon2-memory 8M\nargon2-iterations 1\n"

ROLES = ["control", "lookup", "queue", "deliver", "smtpd", "mta", "imapd", "pop3d"]
ROLE_USERS = {"control": "_maild", "lookup": "_maildl", "queue": "_maildq", "deliver": "_maildv",
              "smtpd": "_maild", "mta": "_maild", "imapd": "_maild", "pop3d": "_maild"}


def ensure_system_users():
    """The users the default configuration names (as the package creates them)."""
    for user in sorted(set(ROLE_USERS.values())):
        try:
            pwd.getpwnam(user)
        except KeyError:
            subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                            "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", user],
                           check=True)


PORT_CLAIMS_DIR = os.path.join(tempfile.gettempdir(), "maild-test-ports")


def port_pool():
    """Ports outside the kernel's ephemeral range, so that no client socket
    of any test can be holding one as its local port."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(n) for n in f.read().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    if low - 10000 >= 2000:
        return range(10000, low)
    return range(high + 1, 65536)


def claim_ports(count):
    """count loopback ports that no other test process holds: each is
    claimed by an flock on a file in PORT_CLAIMS_DIR (released when the
    returned files are closed, or when the process dies) and checked to be
    bindable. Returns (ports, claim files)."""
    os.makedirs(PORT_CLAIMS_DIR, mode=0o1777, exist_ok=True)
    pool = port_pool()
    rng = random.SystemRandom()
    ports, claims = [], []
    while len(ports) < count:
        port = rng.choice(pool)
        if port in ports:
            continue
        claim = open(os.path.join(PORT_CLAIMS_DIR, str(port)), "a")
        try:
            fcntl.flock(claim, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            claim.close()
            continue
        ports.append(port)
        claims.append(claim)
    return ports, claims


def role_pids(parent_pid):
    """{role name: pid} of the children of parent_pid, from /proc."""
    pids = {}
    try:
        with open(f"/proc/{parent_pid}/task/{parent_pid}/children") as f:
            children = [int(p) for p in f.read().split()]
    except OSError:
        return pids
    for pid in children:
        try:
            with open(f"/proc/{pid}/comm") as f:
                pids[f.read().strip()] = pid
        except OSError:
            pass
    return pids


def mailbox_component(text):
    """common/maildir.h mailbox_path(): bytes other than ASCII letters,
    digits and "-_+=." as %XX (upper-case hex), and a leading "." too."""
    out = []
    for i, b in enumerate(text.encode()):
        c = chr(b)
        if b < 0x80 and (c.isalnum() or c in "-_+=.") and not (i == 0 and c == "."):
            out.append(c)
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


class Family:
    """One maild family. Use as a context manager."""

    def __init__(self, unprivileged=None, extra_config="", hook=None, tls=False, fast_hashing=False):
        """tls: a fresh self-signed certificate for localhost, and a
        submissions listener; fast_hashing: FAST_HASHING in the config."""
        self.unprivileged = (not IS_ROOT) if unprivileged is None else unprivileged
        self.hook = hook
        self.tls = tls
        self.fast_hashing = fast_hashing
        self.dir = tempfile.mkdtemp(prefix="maild-test-")
        os.chmod(self.dir, 0o755)
        # As maild itself would create them: the chroot of the network
        # roles open to all, each role's own directory to that role only.
        for sub, mode in (("db", 0o700), ("spool", 0o700), ("vmail", 0o700), ("empty", 0o755)):
            os.mkdir(os.path.join(self.dir, sub))
            os.chmod(os.path.join(self.dir, sub), mode)
        if IS_ROOT and not self.unprivileged:
            ensure_system_users()
            for sub, user in (("db", "_maildl"), ("spool", "_maildq"), ("vmail", "_maildv")):
                pw = pwd.getpwnam(user)
                os.chown(os.path.join(self.dir, sub), pw.pw_uid, pw.pw_gid)
        self.port_claims = []
        self.choose_ports()
        self.cert_path = os.path.join(self.dir, "cert.pem")
        self.key_path = os.path.join(self.dir, "key.pem")
        if tls:
            try:
                self.make_certificate()
            except BaseException:
                shutil.rmtree(self.dir, ignore_errors=True)
                raise
        self.config_path = os.path.join(self.dir, "maild.conf")
        self.log_path = os.path.join(self.dir, "maild.log")
        self.control_socket = os.path.join(self.dir, "control.sock")
        self.write_config(extra_config)
        self.proc = None
        self.started = False
        self.known_pids = set()

    def choose_ports(self):
        for claim in self.port_claims:
            claim.close()
        kinds = ("smtp", "submission", "imap", "pop3") + (("submissions",) if self.tls else ())
        ports, self.port_claims = claim_ports(len(kinds))
        self.ports = dict(zip(kinds, ports))

    def config_text(self, extra=""):
        lines = [f"listen {kind} address 127.0.0.1 port {port}" for kind, port in self.ports.items()]
        lines += [
            f'database "{self.dir}/db/maild.db"',
            f'spool "{self.dir}/spool"',
            f'mail-store "{self.dir}/vmail"',
            f'empty-dir "{self.dir}/empty"',
            f'control-socket "{self.control_socket}"',
            f'pidfile "{self.dir}/maild.pid"',
        ]
        if self.tls:
            lines += [f'tls-certificate "{self.cert_path}"', f'tls-key "{self.key_path}"']
        text = "\n".join(lines) + "\n"
        if self.fast_hashing:
            text += FAST_HASHING
        return text + extra

    def make_certificate(self):
        """A self-signed P-256 certificate for localhost, valid two days; the
        key is 0600 and (as maild requires) owned by root or by us."""
        if shutil.which("openssl") is None:
            raise unittest.SkipTest("openssl not installed: cannot make a test certificate")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-keyout", self.key_path, "-out", self.cert_path],
                       check=True, capture_output=True, timeout=60)
        os.chmod(self.key_path, 0o600)
        os.chmod(self.cert_path, 0o644)

    def write_config(self, extra=""):
        self.extra_config = extra
        with open(self.config_path, "w") as f:
            f.write(self.config_text(extra))

    def flags(self):
        return ["-u"] if self.unprivileged else []

    def start(self, wait_ready=True, timeout=60):
        """Starts maild; again after stop() or kill(), on the same
        configuration and directories (the log goes on in the same file)."""
        args = [MAILD, "-d", "-v", "-f", self.config_path] + self.flags()
        if self.hook:
            args += ["-T", self.hook]
        if getattr(self, "log", None):
            self.log.close()
        self.log = open(self.log_path, "ab")
        # wait_for_log looks only at what this run logged.
        self.log_start = self.log.tell()
        env = dict(os.environ)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.known_pids.add(self.proc.pid)
        if wait_ready:
            try:
                self.wait_for_log("ready:", timeout)
            except AssertionError:
                # A port claimed by something outside the tests (claims only
                # keep tests apart): once, on other ports.
                if self.started or "Address already in use" not in self.log_text(this_run=True):
                    raise
                self.proc.wait(timeout=30)
                self.choose_ports()
                self.write_config(self.extra_config)
                self.started = True
                return self.start(wait_ready, timeout)
        self.started = True
        return self

    def log_text(self, this_run=False):
        """The whole log, or only what the current run wrote."""
        with open(self.log_path, "rb") as f:
            if this_run:
                f.seek(self.log_start)
            return f.read().decode(errors="replace")

    def wait_for_log(self, needle, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.remember_pids()
            if needle in self.log_text(this_run=True):
                return
            if self.proc.poll() is not None and needle not in self.log_text(this_run=True):
                raise AssertionError(f"maild exited ({self.proc.returncode}) before logging {needle!r}:\n"
                                     + self.log_text())
            time.sleep(0.05)
        raise AssertionError(f"no {needle!r} in the log within {timeout}s:\n" + self.log_text())

    def remember_pids(self):
        if self.proc and self.proc.poll() is None:
            self.known_pids.update(role_pids(self.proc.pid).values())

    def roles(self):
        pids = role_pids(self.proc.pid)
        self.known_pids.update(pids.values())
        return pids

    def wait_exit(self, timeout=30):
        return self.proc.wait(timeout=timeout)

    def mailctl(self, *args, check=False):
        return subprocess.run([MAILCTL, "-s", self.control_socket, *args], capture_output=True, text=True,
                              check=check, timeout=60)

    def ctl(self, *args, password=None):
        """mailctl with this family's config and control socket; a password
        goes in on stdin."""
        cmd = [MAILCTL, "-f", self.config_path, "-s", self.control_socket, *args]
        if password is not None:
            cmd.append("--password-stdin")
        return subprocess.run(cmd, input=(password + "\n") if password is not None else None,
                              capture_output=True, text=True, timeout=60)

    def ok(self, *args, password=None):
        """ctl(), which must succeed; its output."""
        result = self.ctl(*args, password=password)
        if result.returncode != 0:
            raise AssertionError(f"mailctl {' '.join(args)}: {result.returncode}\n{result.stdout}{result.stderr}")
        return result.stdout

    # The queue, through mailctl queue show.

    def queue_show(self):
        result = self.ctl("queue", "show")
        if result.returncode != 0:
            raise AssertionError(f"mailctl queue show: {result.returncode}\n{result.stdout}{result.stderr}")
        return result.stdout

    def queue_empty(self):
        return "queue is empty" in self.queue_show()

    def wait_queue_empty(self, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            shown = self.queue_show()
            if "queue is empty" in shown:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the queue is not empty after {timeout}s:\n{shown}")
            time.sleep(0.2)

    # Mailboxes.

    def maildir(self, account):
        """The Maildir of an account ("local@domain"), as common/maildir.h's
        mailbox_path() names it under the mail store."""
        local, _, domain = account.rpartition("@")
        return os.path.join(self.dir, "vmail", mailbox_component(domain), mailbox_component(local))

    def message_files(self, account):
        """Paths of the messages in the account's new/ and cur/, sorted."""
        files = []
        for sub in ("new", "cur"):
            d = os.path.join(self.maildir(account), sub)
            try:
                files += [os.path.join(d, name) for name in os.listdir(d)]
            except FileNotFoundError:
                pass
        return sorted(files)

    def messages(self, account):
        """The bytes of each message in the account's Maildir."""
        out = []
        for path in self.message_files(account):
            with open(path, "rb") as f:
                out.append(f.read())
        return out

    def read_maildir(self, account):
        """The messages as Python's stock Maildir reader sees them."""
        box = mailbox.Maildir(self.maildir(account), factory=None, create=False)
        return [box[key] for key in box.keys()]

    def wait_delivered(self, account, count, timeout=60):
        """Waits until the account has at least count messages; their bytes."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages(account)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{account}: {len(found)} of {count} messages after {timeout}s; queue:\n"
                                     + self.ctl("queue", "show").stdout + "\nlog tail:\n"
                                     + self.log_text()[-4000:])
            time.sleep(0.1)

    def kill(self):
        """SIGKILL to maild and every role at once: no process gets to clean
        up (what they wrote stays in the page cache, so this tests the
        order of writes and the recovery, not the fsyncs). start() again
        restarts the family on the same directories."""
        self.remember_pids()
        pids = [pid for pid in self.known_pids if alive(pid)]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc:
            self.proc.wait()
        deadline = time.monotonic() + 30
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        # Dead pids may be reused by anyone: never signal them again.
        self.known_pids -= {pid for pid in pids if not alive(pid)}

    def stop(self):
        """SIGTERM to maild, then SIGKILL to anything of ours left."""
        if self.proc and self.proc.poll() is None:
            self.remember_pids()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        for pid in self.known_pids:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.proc and self.proc.poll() is None:
            self.proc.wait()

    def __enter__(self):
        return self

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def sanitizer_report(self, since=0):
        """The log from the first sanitizer report on (after byte offset
        since), or None if it has none."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            return None  # never started
        starts = [i for i in (text.find(m) for m in SANITIZER_MARKERS) if i >= 0]
        if not starts:
            return None
        # From the start of the line the report begins on.
        return text[text.rfind("\n", 0, min(starts)) + 1:]

    def close(self, since=0):
        """Stops the family and removes its directory; the sanitizer report
        in the log after byte offset since, if any, or None."""
        report = None
        try:
            self.stop()
            report = self.sanitizer_report(since)
        finally:
            if getattr(self, "log", None):
                self.log.close()
            for claim in self.port_claims:
                claim.close()
            if KEEP:
                print(f"\nkept {self.dir}")
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
        return report

    def __exit__(self, *exc):
        # A sanitizer report from any process of the family fails the test
        # that started it, even when the test itself passed.
        report = self.close()
        if report is not None:
            raise AssertionError("sanitizer report in the family's log:\n" + report)
        return False


HOSTNAME = "mx.example.test"


def password_of(account):
    """The password MailFamily gives each account it creates."""
    return "pw-" + account.split("@")[0] + "-secret"


class MailFamily(Family):
    """A family for mail tests: a known host name, fast password hashing,
    quick queue retries, the domain example.org with the given accounts
    (password_of(account) each) created before the start."""

    def __init__(self, extra="", tls=False, accounts=("alice@example.org", "bob@example.org")):
        super().__init__(extra_config=f"hostname {HOSTNAME}\nqueue-retry-min 1s\nqueue-retry-max 2s\n" + extra,
                         tls=tls, fast_hashing=True)
        self.ok("domain", "add", "example.org")
        for account in accounts:
            self.add_user(account)

    def add_user(self, account):
        self.ok("user", "add", account, password=password_of(account))


class MailTestCase(unittest.TestCase):
    """Tests that share one running MailFamily, for speed: the family is
    started once per class (family_args, then prepare() before the start)
    and after each test the queue must drain and the messages are removed
    from every mailbox, so each test starts with empty mailboxes. A test
    during which any process of the family reports a sanitizer error fails;
    if the family died, the next test gets a new one."""

    family_args = {}

    @classmethod
    def prepare(cls, family):
        """Accounts, aliases and the like, before the family starts."""

    @classmethod
    def new_family(cls):
        family = MailFamily(**cls.family_args)
        try:
            cls.prepare(family)
            family.start()
        except BaseException:
            family.close()
            raise
        cls.checked = 0  # the log up to this offset was checked for sanitizer reports
        return family

    @classmethod
    def setUpClass(cls):
        cls.family = cls.new_family()

    @classmethod
    def tearDownClass(cls):
        # What the last test did not see: reports at exit (leaks).
        report = cls.family.close(since=cls.checked)
        if report is not None:
            raise AssertionError("sanitizer report in the family's log:\n" + report)

    def setUp(self):
        cls = type(self)
        if cls.family.proc.poll() is not None:
            # The test that saw it die has reported why.
            cls.family.close()
            cls.family = cls.new_family()
        self.family = cls.family

    def tearDown(self):
        cls, family = type(self), self.family
        report = family.sanitizer_report(since=cls.checked)
        cls.checked = family.log_size()
        if report is not None:
            raise AssertionError("sanitizer report in the family's log:\n" + report)
        if family.proc.poll() is not None:
            raise AssertionError("maild exited during the test:\n" + family.log_text(this_run=True)[-4000:])
        family.wait_queue_empty()
        store = os.path.join(family.dir, "vmail")
        for root, dirs, files in os.walk(store):
            if os.path.basename(root) in ("new", "cur"):
                for name in files:
                    os.unlink(os.path.join(root, name))


def message(subject, body="Hello.\r\n", headers=()):
    """A small message with CRLF line ends, as it goes on the wire after DATA
    (not dot-stuffed: no line starts with ".")."""
    head = "".join(f"{h}\r\n" for h in headers)
    text = f"From: <sender@example.net>\r\nTo: <rcpt@example.org>\r\nSubject: {subject}\r\n{head}\r\n{body}"
    return text.encode()


def unverified_tls_context():
    """A client context for the test's self-signed certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class SmtpConn:
    """A raw SMTP client: exactly the bytes the test writes go out, and
    replies are read one whole (possibly multi-line) reply at a time."""

    def __init__(self, port, implicit_tls=False, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if implicit_tls:
            self.sock = unverified_tls_context().wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        self.eof = False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        """Writes data in one write; a peer that already closed is not an
        error here (what it answered before that is still readable)."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk
        return chunk

    def reply(self):
        """(code, [text of each line]) of the next reply; (None, [what came])
        when the server closed instead."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                if self.eof or not self._fill():
                    rest, self.buf = self.buf, b""
                    return None, lines + ([rest.decode(errors="replace")] if rest else [])
            line, self.buf = self.buf.split(b"\r\n", 1)
            text = line.decode(errors="replace")
            lines.append(text[4:])
            if len(text) < 4 or text[3] != "-":
                return int(text[:3]), lines

    def reply_line(self):
        """The next reply as one string: "250 2.1.0 Ok" (the last line)."""
        code, lines = self.reply()
        if code is None:
            return f"(closed: {lines!r})"
        return f"{code} {lines[-1]}"

    def cmd(self, line):
        """Sends a command line; its reply as reply_line() gives it."""
        self.send(line.encode() + b"\r\n")
        return self.reply_line()

    def ehlo(self, name="client.example.net"):
        """EHLO; the list of keywords the server advertised (upper case)."""
        self.send(f"EHLO {name}\r\n".encode())
        code, lines = self.reply()
        if code != 250:
            raise AssertionError(f"EHLO: {code} {lines}")
        return [line.upper() for line in lines[1:]]

    def starttls(self):
        reply = self.cmd("STARTTLS")
        if not reply.startswith("220 "):
            raise AssertionError(f"STARTTLS: {reply}")
        self.sock = unverified_tls_context().wrap_socket(self.sock, server_hostname="localhost")
        return reply

    def closed_after(self):
        """True if the server closes the connection now, without sending
        anything more."""
        while not self.eof:
            self._fill()
        rest, self.buf = self.buf, b""
        if rest:
            raise AssertionError(f"more from the server before it closed: {rest!r}")
        return True


QID = r"[0-9a-f]{16}"


def dot_stuff(data):
    """RFC 5321 section 4.5.2: a line that starts with "." gets one more."""
    lines = data.split(b"\r\n")
    return b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)


def wire_lf(data):
    """A message as delivery writes it after its own headers: LF line ends."""
    return data.replace(b"\r\n", b"\n")


class Session(SmtpConn):
    """SmtpConn with the greeting read and the usual steps asserted."""

    def __init__(self, test, port, **kw):
        super().__init__(port, **kw)
        self.test = test
        self.greeting = self.reply_line()
        test.assertEqual(self.greeting, f"220 {HOSTNAME} ESMTP maild")

    def expect(self, line, reply_re):
        reply = self.cmd(line)
        self.test.assertRegex(reply, reply_re, f"reply to {line!r}")
        return reply

    def transaction(self, sender, rcpts, data, mail_params=""):
        """MAIL, RCPT for each, DATA, the content: the queue id."""
        self.expect(f"MAIL FROM:<{sender}>{mail_params}", r"^250 2\.1\.0 Ok$")
        for rcpt in rcpts:
            self.expect(f"RCPT TO:<{rcpt}>", r"^250 2\.1\.5 Ok$")
        self.expect("DATA", r"^354 ")
        self.send(dot_stuff(data) + b".\r\n")
        reply = self.reply_line()
        self.test.assertRegex(reply, rf"^250 2\.0\.0 Ok: queued as {QID}$")
        return reply.rsplit(" ", 1)[1]


def send(test, family, rcpts, data, sender="sender@example.net", port_kind="smtp"):
    """One message in one session on port 25: its queue id."""
    with Session(test, family.ports[port_kind]) as s:
        s.ehlo()
        qid = s.transaction(sender, rcpts, data)
        test.assertEqual(s.cmd("QUIT"), "221 2.0.0 Bye")
        return qid


def received_headers_end(test, delivered, sender, account):
    """Checks what delivery puts first and returns the rest: Return-Path,
    Delivered-To, then smtpd's Received: (folded lines), then the message."""
    prefix = f"Return-Path: <{sender}>\nDelivered-To: {account}\n".encode()
    test.assertTrue(delivered.startswith(prefix), delivered[:300])
    rest = delivered[len(prefix):]
    test.assertTrue(rest.startswith(b"Received: "), rest[:300])
    lines = rest.split(b"\n")
    i = 1
    while lines[i][:1] in (b" ", b"\t"):
        i += 1
    received = b"\n".join(lines[:i])
    return received, b"\n".join(lines[i:])


needs_root = unittest.skipUnless(IS_ROOT, "not root: privilege separation tests need root")
needs_hooks = unittest.skipUnless(TEST_HOOKS, "maild built without MAILD_TEST_HOOKS")


def main():
    """unittest.main, exiting 77 (ctest's skip) when every test skipped."""
    program = unittest.main(exit=False, verbosity=2)
    result = program.result
    if not result.wasSuccessful():
        raise SystemExit(1)
    if result.testsRun > 0 and len(result.skipped) == result.testsRun:
        raise SystemExit(77)
    raise SystemExit(0)
