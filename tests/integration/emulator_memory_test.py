"""Script classes are unloaded: heap and loaded-class count stay flat over many script calls.

Runs 1,000 calls by default; EMU_MEMORY_CALLS=5000 asks for the full run of the issue.
"""

import http.client
import os
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from emulator import Emulator  # noqa: E402

CALLS = int(os.environ.get("EMU_MEMORY_CALLS", "1000"))


class MemoryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(version="2.560", users=["svc"])

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop(remove=True)

    def run_scripts(self, n, tag):
        conn = self.emu.connection()
        auth = self.emu._auth_header(None)
        try:
            for i in range(n):
                # Every text differs, so every call compiles a new class (with a closure).
                text = ('def u = User.getById("svc", false)\n'
                        'def p = u.getProperty(jenkins.security.ApiTokenProperty)\n'
                        'def n = p.tokenList.collect { it.name }.size()\n'
                        'return "%s-%d-" + n' % (tag, i))
                conn.request("POST", "/scriptText", body=urllib.parse.urlencode({"script": text}),
                             headers={"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"})
                r = conn.getresponse()
                body = r.read().decode()
                self.assertEqual((r.status, body), (200, "Result: %s-%d-0\n" % (tag, i)))
        finally:
            conn.close()

    def test_memory_flat(self):
        self.run_scripts(300, "warm")
        before = self.emu.memory()
        t0 = time.monotonic()
        self.run_scripts(CALLS, "run")
        elapsed = time.monotonic() - t0
        after = self.emu.memory()
        growth = after["heap_used"] - before["heap_used"]
        classes = after["loaded_classes"] - before["loaded_classes"]
        sys.stderr.write("\n[memory] %d calls in %.1f s; heap %.1f -> %.1f MiB (%+.1f); loaded classes %d -> %d; "
                         "unloaded %d; metaspace %.1f -> %.1f MiB\n"
                         % (CALLS, elapsed, before["heap_used"] / 2**20, after["heap_used"] / 2**20,
                            growth / 2**20, before["loaded_classes"], after["loaded_classes"],
                            after["unloaded_classes"], before["metaspace_used"] / 2**20,
                            after["metaspace_used"] / 2**20))
        self.assertGreaterEqual(after["unloaded_classes"] - before["unloaded_classes"], CALLS // 2)
        self.assertLess(classes, 300)
        self.assertLess(growth, 8 * 2**20)
        self.assertEqual(len(self.emu.scripts()), 300 + CALLS)


if __name__ == "__main__":
    unittest.main()
