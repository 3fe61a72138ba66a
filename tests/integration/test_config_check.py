"""maild -n and mailctl config check on the broken configurations in
tests/configs/ and on the example configuration."""

import glob
import os
import re
import subprocess
import unittest

from maildtest import IS_ROOT, MAILCTL, MAILD, SOURCE_DIR, ensure_system_users, main

CONFIGS = os.path.join(SOURCE_DIR, "tests/configs")


def expectation(path):
    with open(path) as f:
        first = f.readline()
    m = re.match(r"# expect: (\d+:\d+): (.*)$", first.rstrip("\n"))
    if not m:
        raise AssertionError(f"{path}: first line must be '# expect: LINE:COL: message'")
    return m.group(1), m.group(2)


class ConfigCheckTest(unittest.TestCase):
    def test_every_broken_config_is_refused_with_its_location(self):
        paths = sorted(glob.glob(os.path.join(CONFIGS, "bad-*.conf")))
        self.assertGreater(len(paths), 10)
        for path in paths:
            where, message = expectation(path)
            for command in ([MAILD, "-n", "-f", path], [MAILCTL, "-f", path, "config", "check"]):
                with self.subTest(config=os.path.basename(path), command=os.path.basename(command[0])):
                    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
                    self.assertEqual(result.returncode, 1, result.stdout)
                    # 0:0 is an error tied to no line: "FILE: message".
                    prefix = f"{path}: " if where == "0:0" else f"{path}:{where}: "
                    self.assertIn(prefix, result.stderr)
                    line = [l for l in result.stderr.splitlines() if l.startswith(prefix)][0]
                    self.assertIn(message, line)
                    self.assertNotIn("configuration OK", result.stdout)

    def test_the_example_config_is_accepted(self):
        if IS_ROOT:
            ensure_system_users()  # the users it names, as the package creates them
        path = os.path.join(SOURCE_DIR, "etc/maild.conf")
        for command in ([MAILD, "-n", "-f", path], [MAILCTL, "-f", path, "config", "check"]):
            with self.subTest(command=os.path.basename(command[0])):
                result = subprocess.run(command, capture_output=True, text=True, timeout=60)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(result.stdout, f"{path}: configuration OK\n")

    def test_a_missing_config_file(self):
        result = subprocess.run([MAILD, "-n", "-f", "/nonexistent/maild.conf"], capture_output=True, text=True,
                                timeout=60)
        self.assertEqual(result.returncode, 1)
        self.assertIn("/nonexistent/maild.conf", result.stderr)
        self.assertIn("No such file or directory", result.stderr)


if __name__ == "__main__":
    main()
