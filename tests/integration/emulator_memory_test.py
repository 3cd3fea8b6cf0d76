"""Script classes are unloaded: heap and loaded-class count stay flat over many script calls.

Runs 1,000 calls by default; EMU_MEMORY_CALLS=5000 asks for the full run of the issue.
"""

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
        # Clear soft references at every GC so that Groovy's soft caches do not blur the figure.
        old = os.environ.get("EMU_JAVA_OPTS")
        os.environ["EMU_JAVA_OPTS"] = "-XX:SoftRefLRUPolicyMSPerMB=0"
        try:
            cls.emu = Emulator(version="2.560", users=["svc"])
        finally:
            if old is None:
                del os.environ["EMU_JAVA_OPTS"]
            else:
                os.environ["EMU_JAVA_OPTS"] = old

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop(remove=True)

    def run_scripts(self, n, tag):
        conn = self.emu.connection()
        # By password + crumb: a token login would rewrite apiTokenStats.json on every call,
        # which costs more than the script itself here.
        pw = (self.emu.admin_user, self.emu.admin_password)
        auth = self.emu._auth_header(pw)
        headers = dict(self.emu.crumb_headers(pw), Authorization=auth)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            for i in range(n):
                # Every text differs, so every call compiles a new class (with a closure).
                text = ('def u = User.getById("svc", false)\n'
                        'def p = u.getProperty(jenkins.security.ApiTokenProperty)\n'
                        'def n = p.tokenList.collect { it.name }.size()\n'
                        'return "%s-%d-" + n' % (tag, i))
                conn.request("POST", "/scriptText", body=urllib.parse.urlencode({"script": text}), headers=headers)
                r = conn.getresponse()
                body = r.read().decode()
                self.assertEqual((r.status, body), (200, "Result: %s-%d-0\n" % (tag, i)))
        finally:
            conn.close()

    def test_memory_flat(self):
        self.run_scripts(300, "warm")
        # The event and script logs grow by design (~1 KB a call); empty them around the
        # measurement so that only leaks would show.
        self.emu.clear_logs()
        before = self.emu.memory()
        t0 = time.monotonic()
        self.run_scripts(CALLS // 2, "run")
        self.assertEqual(len(self.emu.scripts()), CALLS // 2)
        self.emu.clear_logs()
        mid = self.emu.memory()
        self.run_scripts(CALLS - CALLS // 2, "run2")
        elapsed = time.monotonic() - t0
        self.assertEqual(len(self.emu.scripts()), CALLS - CALLS // 2)
        self.emu.clear_logs()
        after = self.emu.memory()
        growth = after["heap_live"] - before["heap_live"]
        classes = after["loaded_classes"] - before["loaded_classes"]
        sys.stderr.write("\n[memory] %d calls in %.1f s; live heap %.2f -> %.2f (half-way) -> %.2f MiB "
                         "(%+.2f); heap used after GC %.1f -> %.1f MiB; loaded classes %d -> %d; unloaded %d; metaspace %.1f -> %.1f MiB\n"
                         % (CALLS, elapsed, before["heap_live"] / 2**20, mid["heap_live"] / 2**20,
                            after["heap_live"] / 2**20, growth / 2**20, before["heap_used"] / 2**20,
                            after["heap_used"] / 2**20, before["loaded_classes"], after["loaded_classes"],
                            after["unloaded_classes"], before["metaspace_used"] / 2**20,
                            after["metaspace_used"] / 2**20))
        self.assertGreaterEqual(after["unloaded_classes"] - before["unloaded_classes"], CALLS // 2)
        self.assertLess(classes, 300)
        self.assertLess(growth, 2 * 2**20)


if __name__ == "__main__":
    unittest.main()
