"""One version everywhere: CMake's project(VERSION), `--version`, the Debian changelog,
the man pages' titles; and CHANGELOG.md's newest released heading (`## X.Y.Z`), once
there is one, is this version when `## Unreleased` is empty and not above it otherwise
(until the first release everything sits under `## Unreleased`)."""

import os
import re
import subprocess
import unittest

SRC = os.environ.get("JTR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ["JTR_BIN"]


def read(*path):
    with open(os.path.join(SRC, *path)) as f:
        return f.read()


class VersionTest(unittest.TestCase):
    def setUp(self):
        self.version = re.search(r"project\(jenkins-token-rotator VERSION (\S+)",
                                 read("CMakeLists.txt")).group(1)

    def test_the_binary_says_it(self):
        out = subprocess.run([BIN, "--version"], capture_output=True, text=True, check=True)
        self.assertEqual(out.stdout, "jenkins-token-rotator %s\n" % self.version)

    def test_the_debian_changelog_says_it(self):
        first = read("packaging", "debian", "changelog").splitlines()[0]
        m = re.match(r"jenkins-token-rotator \(([^)]+)\) \S+; urgency=\S+$", first)
        self.assertIsNotNone(m, first)
        # A native package: the upstream version exactly, no Debian revision.
        self.assertEqual(m.group(1), self.version)

    def test_the_man_pages_say_it(self):
        for page in ("jenkins-token-rotator.8", "jenkins-token-rotator.yaml.5"):
            th = next(l for l in read("docs", "man", page).splitlines() if l.startswith(".TH"))
            self.assertIn('"jenkins-token-rotator %s"' % self.version, th, page)

    def test_changelog_md_agrees(self):
        text = read("CHANGELOG.md")
        headings = re.findall(r"^## (\S+)", text, re.M)
        self.assertEqual(headings[0], "Unreleased")
        released = [h for h in headings if re.match(r"\d+\.\d+\.\d+$", h)]
        if not released:
            return  # nothing released yet: the version is the one being prepared
        unreleased = text.split("## Unreleased", 1)[1].split("\n## ", 1)[0].strip()
        as_tuple = lambda v: tuple(int(x) for x in v.split("."))  # noqa: E731
        if unreleased:
            self.assertGreaterEqual(as_tuple(self.version), as_tuple(released[0]))
        else:
            self.assertEqual(self.version, released[0])


if __name__ == "__main__":
    unittest.main()
