"""check-config --connect against the emulator on three Jenkins tiers at once: the probe
finds the capabilities by reflection, not by version number (DESIGN §2.3)."""

import unittest

from emulator import Emulator
from jtr_connect import Workspace, emulator_controller


class ConnectVersionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emus = []
        cls.ws = Workspace()
        try:
            cls.new = cls._start(version="2.560", tls=True, timezone="Asia/Tokyo")
            cls.lts = cls._start(version="2.547")
            cls.old = cls._start(version="2.250")
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def _start(cls, **kw):
        emu = Emulator(**kw)
        cls.emus.append(emu)
        return emu

    @classmethod
    def tearDownClass(cls):
        for emu in cls.emus:
            emu.stop(remove=True)
        cls.ws.close()

    def test_each_tier_reports_its_capabilities(self):
        status, text = self.lts.script(
            "jenkins.security.apitoken.ApiTokenPropertyConfiguration.get()"
            ".setUsageStatisticsEnabled(false)")
        self.assertEqual(status, 200, text)
        for emu in self.emus:
            emu.reset_counters()
        rc, lines, out = self.ws.connect([
            emulator_controller(self.new, "new"),
            emulator_controller(self.lts, "lts"),
            emulator_controller(self.old, "old"),
        ])
        self.assertEqual(rc, 0, out)
        new, lts, old = lines["new"], lines["lts"], lines["old"]
        self.assertTrue(new.startswith("OK: Jenkins 2.560 at https://127.0.0.1:"), new)
        self.assertIn("zone Asia/Tokyo", new)
        self.assertIn("expiring tokens: yes, 2.260 helpers: yes, usage statistics: on", new)
        self.assertTrue(lts.startswith("OK: Jenkins 2.547 at http://127.0.0.1:"), lts)
        self.assertIn("expiring tokens: no, 2.260 helpers: yes, usage statistics: off", lts)
        self.assertTrue(old.startswith("OK: Jenkins 2.250 at http://127.0.0.1:"), old)
        self.assertIn("expiring tokens: no, 2.260 helpers: no, usage statistics: on", old)
        for line in (new, lts, old):
            self.assertRegex(line, r"latency \d+ ms; clock skew [+-]\d+\.\d s")
        # One probe each: nothing was retried, and the token never reached the output.
        for emu in self.emus:
            self.assertEqual(emu.counters().get("POST /scriptText"), 1)
            self.assertNotIn(emu.admin_token, out)
            self.assertEqual(len([s for s in emu.scripts()]), 1 if emu is not self.lts else 2)


if __name__ == "__main__":
    unittest.main()
