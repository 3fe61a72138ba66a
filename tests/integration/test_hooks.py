"""A role that breaks its sandbox or receives a malformed message dies,
and the family stops with a log line that names it."""

import re
import unittest

from maildtest import ROLES, Family, main, needs_hooks


class ForbiddenSyscallTest(unittest.TestCase):
    @needs_hooks
    def test_a_forbidden_system_call_kills_the_role_and_stops_the_family(self):
        for role in ROLES:
            with self.subTest(role=role), Family(hook=f"syscall:{role}") as family:
                family.start()
                self.assertEqual(family.wait_exit(timeout=60), 1)
                log = family.log_text()
                self.assertRegex(log, rf"role {role} \(pid \d+\) killed by signal SIGSYS: stopping the family")
                self.assertIn("stopped", log)
                self.assertNotIn("the sandbox did not stop it", log)


class MalformedImsgTest(unittest.TestCase):
    @needs_hooks
    def test_a_malformed_message_kills_the_role_not_the_parent(self):
        for role in ("lookup", "smtpd", "control"):
            with self.subTest(role=role), Family(hook=f"imsg:{role}") as family:
                family.start()
                self.assertEqual(family.wait_exit(timeout=60), 1)
                log = family.log_text()
                self.assertRegex(log, rf"{role}\[\d+\]: {role}: malformed message from maild: unknown_type")
                self.assertRegex(log, rf"role {role} \(pid \d+\) exited with status 1: stopping the family")
                # The parent lived to stop the others and say so.
                self.assertTrue(re.search(r"maild\[\d+\]: stopped", log), log)


if __name__ == "__main__":
    main()
