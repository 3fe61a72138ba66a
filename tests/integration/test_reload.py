"""SIGHUP: a broken configuration keeps the family running on the old one;
a good one is applied in every role."""

import signal
import unittest

from maildtest import ROLES, Family, main


class ReloadTest(unittest.TestCase):
    def test_broken_config_is_refused_and_good_config_applied(self):
        with Family() as family:
            family.start()
            pids = family.roles()

            with open(family.config_path, "a") as f:
                f.write("no-such-keyword yes\n")
            family.proc.send_signal(signal.SIGHUP)
            family.wait_for_log("reload failed: keeping the running configuration")
            self.assertIn('unknown keyword "no-such-keyword"', family.log_text())
            self.assertIsNone(family.proc.poll())
            self.assertEqual(family.roles(), pids)
            self.assertEqual(family.mailctl("status").returncode, 0)

            family.write_config("hostname reloaded.example.org\n")
            family.proc.send_signal(signal.SIGHUP)
            family.wait_for_log("configuration reloaded\n")
            for role in ROLES:
                family.wait_for_log(f"{role}: configuration reloaded hostname=reloaded.example.org")
            self.assertEqual(family.roles(), pids)

    def test_a_change_that_needs_a_restart_is_refused(self):
        with Family() as family:
            family.start()
            family.ports["smtp"] += 1
            family.write_config()
            family.proc.send_signal(signal.SIGHUP)
            family.wait_for_log("reload: listeners changed, which takes a restart")
            self.assertIsNone(family.proc.poll())


if __name__ == "__main__":
    main()
