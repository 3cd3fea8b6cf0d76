"""check-config --connect failures, each named on one line with its kind, exit 1: auth,
forbidden, untrusted or misnamed certificates, retries, redirects and bad answers."""

import os
import subprocess
import unittest

from emulator import Emulator
from jtr_connect import CannedServer, Forwarder, Workspace, emulator_controller


class ConnectFailuresTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ws = Workspace()
        cls.emu = Emulator(version="2.560", tls=True, users=["bob"])

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop(remove=True)
        cls.ws.close()

    def setUp(self):
        self.emu.clear_faults()
        self.emu.reset_counters()

    def connect(self, *controllers, **kw):
        return self.ws.connect(list(controllers), **kw)

    def scripts_posted(self):
        return self.emu.counters().get("POST /scriptText", 0)

    def test_a_wrong_admin_token_is_auth_and_not_retried(self):
        rc, lines, out = self.connect(emulator_controller(self.emu, token="11" + "0" * 32))
        self.assertEqual(rc, 1, out)
        self.assertTrue(lines["ci"].startswith("FAILED: auth: 401 from "), out)
        self.assertIn('admin_user "admin"', lines["ci"])
        self.assertNotIn("1100000000", out)
        self.assertEqual(self.emu.counters(), {"POST /scriptText": 1})

    def test_a_non_admin_is_forbidden_naming_the_permission(self):
        # bob logs in with his password, so the emulator also wants a crumb first: the
        # client fetches it with its session cookie and retries once.
        rc, lines, out = self.connect(emulator_controller(self.emu, admin_user="bob", token="bob"))
        self.assertEqual(rc, 1, out)
        self.assertTrue(lines["ci"].startswith("FAILED: forbidden: "), out)
        self.assertIn('admin_user "bob" lacks the permission hudson.model.Hudson.Administer',
                      lines["ci"])
        self.assertEqual(self.emu.counters(),
                         {"POST /scriptText": 2, "GET /crumbIssuer/api/json": 1})

    def test_an_untrusted_certificate_fails_closed(self):
        other = os.path.join(self.ws.dir, "other-ca.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=other", "-days", "1",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-keyout", os.path.join(self.ws.dir, "other.key"), "-out", other],
                       check=True, capture_output=True)
        rc, lines, out = self.connect(emulator_controller(self.emu, ca_file=other))
        self.assertEqual(rc, 1, out)
        self.assertTrue(lines["ci"].startswith("FAILED: tls: TLS: "), out)
        self.assertIn("ca_file " + other, lines["ci"])
        self.assertEqual(self.emu.counters(), {})

    def test_the_system_store_does_not_trust_the_emulator(self):
        rc, lines, out = self.connect(emulator_controller(self.emu, ca_file=None))
        self.assertEqual(rc, 1, out)
        self.assertTrue(lines["ci"].startswith("FAILED: tls: "), out)
        self.assertIn("the system trust store", lines["ci"])
        self.assertEqual(self.emu.counters(), {})

    def test_a_certificate_for_another_name_fails_closed(self):
        fwd = Forwarder("127.0.0.2", self.emu.port)
        try:
            url = "https://127.0.0.2:%d/" % fwd.port
            rc, lines, out = self.connect(emulator_controller(self.emu, url=url))
        finally:
            fwd.close()
        self.assertEqual(rc, 1, out)
        self.assertTrue(lines["ci"].startswith("FAILED: tls: "), out)
        self.assertIn("does not name host 127.0.0.2", lines["ci"])
        self.assertGreaterEqual(fwd.connections, 1)
        self.assertEqual(self.emu.counters(), {})

    def test_503_twice_then_200_succeeds_after_retries(self):
        self.emu.fault("/scriptText", "status", count=2, status=503)
        rc, lines, out = self.connect(emulator_controller(self.emu))
        self.assertEqual(rc, 0, out)
        self.assertTrue(lines["ci"].startswith("OK: Jenkins 2.560"), out)
        self.assertEqual(self.scripts_posted(), 3)

    def test_503_on_every_attempt_gives_up_after_the_configured_attempts(self):
        self.emu.fault("/scriptText", "status", count=10, status=503)
        rc, lines, out = self.connect(emulator_controller(self.emu))
        self.assertEqual(rc, 1, out)
        self.assertTrue(lines["ci"].startswith("FAILED: http_status: "), out)
        self.assertIn("HTTP 503", lines["ci"])
        self.assertIn("after 3 attempts", lines["ci"])
        self.assertEqual(self.scripts_posted(), 3)

    def test_a_dropped_probe_answer_is_retried(self):
        # The probe is idempotent: a connection dropped after the script ran is retried.
        self.emu.fault("/scriptText", "run_then_drop", count=1)
        rc, lines, out = self.connect(emulator_controller(self.emu))
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.scripts_posted(), 2)

    def test_a_slow_answer_times_out_and_the_probe_is_retried(self):
        self.emu.fault("/scriptText", "delay_before", count=1, delay_ms=2500)
        rc, lines, out = self.connect(emulator_controller(self.emu, timeout="1s"))
        self.assertEqual(rc, 0, out)
        self.assertTrue(lines["ci"].startswith("OK: Jenkins 2.560"), out)
        self.assertEqual(self.scripts_posted(), 2)

    def test_a_controller_that_never_answers_in_time_is_a_timeout(self):
        self.emu.fault("/scriptText", "delay_before", count=3, delay_ms=1500)
        rc, lines, out = self.connect(emulator_controller(self.emu, timeout="1s"),
                                      retry="{attempts: 2, initial: 0s, max: 1s}")
        self.assertEqual(rc, 1, out)
        self.assertTrue(lines["ci"].startswith("FAILED: timeout: no answer from "), out)
        self.assertIn("(after 2 attempts)", lines["ci"])
        self.assertEqual(self.scripts_posted(), 2)

    def test_a_garbage_answer_is_bad_output_and_not_retried(self):
        self.emu.fault("/scriptText", "garbage", count=1)
        rc, lines, out = self.connect(emulator_controller(self.emu))
        self.assertEqual(rc, 1, out)
        self.assertTrue(lines["ci"].startswith("FAILED: bad_output: "), out)
        self.assertIn("without a JTR-RESULT line", lines["ci"])
        self.assertEqual(self.scripts_posted(), 1)

    def test_a_redirect_names_its_target(self):
        sso = CannedServer(302, [("Location", "https://sso.example.com/login?from=%2FscriptText")])
        try:
            rc, lines, out = self.connect({"name": "ci", "url": sso.url, "admin_user": "admin",
                                           "token": "11" + "a" * 32})
        finally:
            sso.close()
        self.assertEqual(rc, 1, out)
        self.assertTrue(lines["ci"].startswith("FAILED: redirect: "), out)
        self.assertIn("to https://sso.example.com/login?from=%2FscriptText", lines["ci"])
        self.assertEqual(sso.requests, 1)

    def test_an_oversized_answer_is_bad_output(self):
        big = CannedServer(200, [("Content-Type", "text/plain")], b"x" * (200 * 1024))
        try:
            rc, lines, out = self.connect({"name": "ci", "url": big.url, "admin_user": "admin",
                                           "token": "11" + "a" * 32})
        finally:
            big.close()
        self.assertEqual(rc, 1, out)
        self.assertTrue(lines["ci"].startswith("FAILED: bad_output: "), out)
        self.assertIn("larger than 65536 bytes", lines["ci"])
        self.assertEqual(big.requests, 1)

    def test_one_failing_controller_does_not_hide_the_others(self):
        rc, lines, out = self.connect(
            emulator_controller(self.emu, "good"),
            emulator_controller(self.emu, "bad", token="11" + "f" * 32,
                                url="https://localhost:%d/" % self.emu.port))
        self.assertEqual(rc, 1, out)
        self.assertTrue(lines["good"].startswith("OK: Jenkins 2.560"), out)
        self.assertTrue(lines["bad"].startswith("FAILED: auth: "), out)

    def test_an_unreadable_token_file_names_the_controller(self):
        c = emulator_controller(self.emu)
        path = self.ws.config([c])
        os.remove(os.path.join(self.ws.dir, "ci.token"))
        r = subprocess.run([os.environ.get("JTR_BIN"), "check-config", "-c", path, "--connect"],
                           capture_output=True, text=True)
        # A missing admin_token_file is a config error (78) before anything connects.
        self.assertIn(r.returncode, (1, 78), r.stdout + r.stderr)
        self.assertIn("ci", r.stdout + r.stderr)
        self.assertEqual(self.emu.counters(), {})


if __name__ == "__main__":
    unittest.main()
