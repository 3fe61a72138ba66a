"""Starts a real maild family from the build tree for integration tests.

Each Family gets its own temporary directory (configuration, chroots,
control socket, pidfile) and free loopback ports, and is stopped and
cleaned up by PID even when the test fails.
"""

import os
import pwd
import signal
import socket
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

# What AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer print
# when they find something; a sanitizer build sends every role's report to
# the family's log.
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")

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


def free_ports(count):
    """count distinct free loopback ports: all are held open until all are
    chosen, so the kernel cannot hand out one number twice."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


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


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


class Family:
    """One maild family. Use as a context manager."""

    def __init__(self, unprivileged=None, extra_config="", hook=None):
        self.unprivileged = (not IS_ROOT) if unprivileged is None else unprivileged
        self.hook = hook
        self.tmp = tempfile.TemporaryDirectory(prefix="maild-test-")
        self.dir = self.tmp.name
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
        kinds = ("smtp", "submission", "imap", "pop3")
        self.ports = dict(zip(kinds, free_ports(len(kinds))))
        self.config_path = os.path.join(self.dir, "maild.conf")
        self.log_path = os.path.join(self.dir, "maild.log")
        self.control_socket = os.path.join(self.dir, "control.sock")
        self.write_config(extra_config)
        self.proc = None
        self.known_pids = set()

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
        return "\n".join(lines) + "\n" + extra

    def write_config(self, extra=""):
        with open(self.config_path, "w") as f:
            f.write(self.config_text(extra))

    def flags(self):
        return ["-u"] if self.unprivileged else []

    def start(self, wait_ready=True, timeout=60):
        args = [MAILD, "-d", "-v", "-f", self.config_path] + self.flags()
        if self.hook:
            args += ["-T", self.hook]
        self.log = open(self.log_path, "wb")
        env = dict(os.environ)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.known_pids.add(self.proc.pid)
        if wait_ready:
            self.wait_for_log("ready:", timeout)
        return self

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_for_log(self, needle, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.remember_pids()
            if needle in self.log_text():
                return
            if self.proc.poll() is not None and needle not in self.log_text():
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

    def sanitizer_report(self):
        """The log from the first sanitizer report on, or None if it has none."""
        try:
            text = self.log_text()
        except FileNotFoundError:
            return None  # never started
        starts = [i for i in (text.find(m) for m in SANITIZER_MARKERS) if i >= 0]
        if not starts:
            return None
        # From the start of the line the report begins on.
        return text[text.rfind("\n", 0, min(starts)) + 1:]

    def __exit__(self, *exc):
        report = None
        try:
            self.stop()
            report = self.sanitizer_report()
        finally:
            if getattr(self, "log", None):
                self.log.close()
            self.tmp.cleanup()
        # A sanitizer report from any process of the family fails the test
        # that started it, even when the test itself passed.
        if report is not None:
            raise AssertionError("sanitizer report in the family's log:\n" + report)
        return False


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
