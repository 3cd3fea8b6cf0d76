"""The systemd units as they will be installed, checked without installing them: each
template with @JTR_BINDIR@ set to the built binary's directory, `systemd-analyze verify`
prints nothing (the man pages of Documentation= found through MANPATH), and the
service's offline exposure is at most 1.5 (tests/package checks the installed units)."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

SRC = os.environ.get("JTR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ["JTR_BIN"]
UNITS = ("jenkins-token-rotator.service", "jenkins-token-rotator.socket")


@unittest.skipUnless(shutil.which("systemd-analyze"), "no systemd-analyze")
class SystemdUnitsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="jtr-units-")
        self.addCleanup(shutil.rmtree, self.dir)
        for unit in UNITS:
            with open(os.path.join(SRC, "systemd", unit + ".in")) as f:
                text = f.read().replace("@JTR_BINDIR@", os.path.dirname(os.path.abspath(BIN)))
            self.assertNotRegex(text, r"@[A-Z_]+@")  # every template variable replaced
            with open(os.path.join(self.dir, unit), "w") as f:
                f.write(text)
        for section, page in (("8", "jenkins-token-rotator.8"), ("5", "jenkins-token-rotator.yaml.5")):
            os.makedirs(os.path.join(self.dir, "man", "man" + section))
            os.symlink(os.path.join(os.path.abspath(SRC), "docs", "man", page),
                       os.path.join(self.dir, "man", "man" + section, page))
        self.env = dict(os.environ, MANPATH=os.path.join(self.dir, "man"))

    def analyze(self, *args):
        return subprocess.run(["systemd-analyze"] + list(args), cwd=self.dir, env=self.env,
                              capture_output=True, text=True)

    def test_verify_prints_nothing(self):
        r = self.analyze("verify", *["./" + u for u in UNITS])
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    def test_verify_would_see_a_mistake(self):
        path = os.path.join(self.dir, UNITS[0])
        with open(path, "a") as f:
            f.write("NoSuchSetting=1\n")
        r = self.analyze("verify", "./" + UNITS[0])
        self.assertIn("NoSuchSetting", r.stdout + r.stderr)

    def test_exposure_is_at_most_1_5(self):
        r = self.analyze("security", "--offline=true", "./" + UNITS[0])
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), 1.5)

    def test_the_relaxations_that_keep_sinks_and_hooks_working(self):
        with open(os.path.join(self.dir, UNITS[0])) as f:
            unit = f.read()
        # fchown to a sink's group: @chown allowed, so no blanket ~@privileged.
        self.assertNotRegex(unit, r"(?m)^SystemCallFilter=~.*@privileged")
        self.assertNotRegex(unit, r"(?m)^SystemCallFilter=~.*@chown")
        self.assertNotRegex(unit, r"(?m)^PrivateUsers=yes")
        self.assertRegex(unit, r"(?m)^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6$")
        self.assertRegex(unit, r"(?m)^RestartPreventExitStatus=78$")
        self.assertRegex(unit, r"(?m)^RuntimeDirectoryPreserve=yes$")


if __name__ == "__main__":
    unittest.main()
