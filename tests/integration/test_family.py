"""The family as a whole: every role jailed, status, network replies, stop."""

import os
import poplib
import imaplib
import pwd
import signal
import smtplib
import subprocess
import time
import unittest

from maildtest import (IS_ROOT, MAILCTL, MAILD, ROLES, ROLE_USERS, Family, alive, main, needs_root)


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


class JailTest(unittest.TestCase):
    @needs_root
    def test_every_role_is_chrooted_unprivileged_and_confined(self):
        with Family() as family:
            family.start()
            pids = family.roles()
            self.assertEqual(sorted(pids), sorted(ROLES))
            roots = {"lookup": "db", "queue": "spool", "deliver": "vmail"}
            for role, pid in pids.items():
                with self.subTest(role=role):
                    status = proc_status(pid)
                    want = pwd.getpwnam(ROLE_USERS[role])
                    uids = [int(u) for u in status["Uid"].split()]
                    gids = [int(g) for g in status["Gid"].split()]
                    self.assertNotEqual(want.pw_uid, 0)
                    self.assertEqual(uids, [want.pw_uid] * 4)
                    self.assertEqual(gids, [want.pw_gid] * 4)
                    self.assertEqual(status["Groups"].split(), [str(want.pw_gid)])
                    self.assertEqual(status["Seccomp"], "2")
                    self.assertEqual(status["NoNewPrivs"], "1")
                    root = os.path.join(family.dir, roots.get(role, "empty"))
                    self.assertEqual(os.readlink(f"/proc/{pid}/root"), root)
                    self.assertEqual(os.readlink(f"/proc/{pid}/cwd"), root)
            # The parent stays root, outside any jail.
            self.assertEqual(proc_status(family.proc.pid)["Uid"].split()[0], "0")

    def test_unprivileged_mode_still_separates_and_confines(self):
        with Family(unprivileged=True) as family:
            family.start()
            self.assertIn("unprivileged mode", family.log_text())
            pids = family.roles()
            self.assertEqual(sorted(pids), sorted(ROLES))
            for role, pid in pids.items():
                with self.subTest(role=role):
                    status = proc_status(pid)
                    self.assertEqual(status["Seccomp"], "2")
                    self.assertEqual(status["NoNewPrivs"], "1")
                    self.assertEqual(status["Uid"].split()[0], str(os.geteuid()))

    @needs_root
    def test_refuses_to_start_unprivileged_without_the_flag(self):
        with Family(unprivileged=True) as family:
            os.chmod(family.config_path, 0o644)
            result = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                     MAILD, "-d", "-f", family.config_path],
                                    capture_output=True, text=True, timeout=60)
            self.assertEqual(result.returncode, 1)
            self.assertIn("must be started as root", result.stderr)


class StatusTest(unittest.TestCase):
    def test_mailctl_status_lists_every_process(self):
        with Family() as family:
            family.start()
            pids = family.roles()
            result = family.mailctl("status")
            self.assertEqual(result.returncode, 0, result.stderr)
            lines = result.stdout.splitlines()
            self.assertEqual(lines[0].split(), ["ROLE", "PID", "USER", "STATE"])
            rows = {fields[0]: fields[1:] for fields in (line.split() for line in lines[1:])}
            self.assertEqual(sorted(rows), sorted(ROLES + ["maild"]))
            self.assertEqual(rows["maild"][0], str(family.proc.pid))
            for role in ROLES:
                pid, user, state = rows[role]
                self.assertEqual(int(pid), pids[role])
                self.assertEqual(state, "running")
                if IS_ROOT:
                    self.assertEqual(user, ROLE_USERS[role])

    @needs_root
    def test_control_socket_is_root_only(self):
        with Family() as family:
            family.start()
            st = os.stat(family.control_socket)
            self.assertEqual(st.st_mode & 0o777, 0o600)
            self.assertEqual(st.st_uid, 0)
            result = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                     MAILCTL, "-s", family.control_socket, "status"],
                                    capture_output=True, text=True, timeout=60)
            self.assertEqual(result.returncode, 1)
            self.assertIn("Permission denied", result.stderr)

    def test_mailctl_status_without_maild(self):
        result = subprocess.run([MAILCTL, "-s", "/nonexistent/control.sock", "status"],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 1)
        self.assertIn("cannot connect to /nonexistent/control.sock", result.stderr)

    def test_mailctl_version(self):
        result = subprocess.run([MAILCTL, "version"], capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0)
        self.assertRegex(result.stdout, r"^mailctl \d+\.\d+\.\d+ \(protocol \d+\)\n$")

    def test_a_bad_client_is_dropped_and_control_lives_on(self):
        import socket
        import struct
        with Family() as family:
            family.start()
            control_pid = family.roles()["control"]
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(30)
                s.connect(family.control_socket)
                # A ControlStatusResult: a type mailctl may not send.
                s.sendall(struct.pack("=III", 9, 0, 0))
                self.assertEqual(s.recv(100), b"")
            family.wait_for_log("sent a malformed message: not_allowed")
            self.assertTrue(alive(control_pid))
            self.assertEqual(family.mailctl("status").returncode, 0)


class NetworkTest(unittest.TestCase):
    def test_smtp_greets_and_the_other_listeners_say_they_are_not_there_yet(self):
        with Family() as family:
            family.start()
            for kind in ("smtp", "submission"):
                with smtplib.SMTP("127.0.0.1", family.ports[kind], timeout=30) as smtp:
                    code, _ = smtp.noop()
                    self.assertEqual(code, 250)
            with self.assertRaises(imaplib.IMAP4.error) as cm2:
                imaplib.IMAP4("127.0.0.1", family.ports["imap"], timeout=30)
            self.assertIn("* BYE maild: IMAP service not implemented yet", str(cm2.exception))
            with self.assertRaises(poplib.error_proto) as cm3:
                poplib.POP3("127.0.0.1", family.ports["pop3"], timeout=30)
            self.assertIn("-ERR [SYS/TEMP]", str(cm3.exception))


class StopTest(unittest.TestCase):
    def test_sigterm_stops_every_process_within_five_seconds(self):
        with Family() as family:
            family.start()
            pids = list(family.roles().values()) + [family.proc.pid]
            family.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 5
            status = family.wait_exit(timeout=5)
            while time.monotonic() < deadline and any(alive(p) for p in pids):
                time.sleep(0.05)
            self.assertEqual([p for p in pids if alive(p)], [])
            self.assertEqual(status, 0)
            self.assertIn("stopped", family.log_text())
            self.assertFalse(os.path.exists(os.path.join(family.dir, "maild.pid")))

    def test_sigint_stops_too(self):
        with Family() as family:
            family.start()
            family.proc.send_signal(signal.SIGINT)
            self.assertEqual(family.wait_exit(timeout=5), 0)

    def test_a_second_maild_on_the_same_pidfile_is_refused(self):
        with Family() as family:
            family.start()
            result = subprocess.run([MAILD, "-d", "-f", family.config_path] + family.flags(),
                                    capture_output=True, text=True, timeout=60)
            self.assertEqual(result.returncode, 1)
            self.assertIn("another maild is running", result.stderr)
            self.assertEqual(family.mailctl("status").returncode, 0)


if __name__ == "__main__":
    main()
