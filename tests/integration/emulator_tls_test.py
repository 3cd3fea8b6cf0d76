"""--tls: HTTPS verified against the exported PEM, and the process lifecycle."""

import http.client
import json
import os
import ssl
import sys
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from emulator import Emulator  # noqa: E402


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(version="2.560", tls=True, users=["svc"])

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop(remove=True)

    def test_json_line_and_pem(self):
        self.assertTrue(self.emu.url.startswith("https://127.0.0.1:"))
        self.assertTrue(os.path.isfile(self.emu.ca_file))
        with open(self.emu.ca_file) as f:
            self.assertIn("-----BEGIN CERTIFICATE-----", f.read())

    def test_verified_https_by_ip_and_name(self):
        ctx = ssl.create_default_context(cafile=self.emu.ca_file)
        for host in ("127.0.0.1", "localhost"):
            req = urllib.request.Request("https://%s:%d/whoAmI/api/json" % (host, self.emu.port))
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                self.assertEqual(json.load(r)["name"], "anonymous")
        status, body = self.emu.script("print 'over tls'")
        self.assertEqual((status, body), (200, "over tls"))

    def test_unverified_client_is_refused(self):
        conn = http.client.HTTPSConnection(self.emu.host, self.emu.port, timeout=10,
                                           context=ssl.create_default_context())
        with self.assertRaises(ssl.SSLCertVerificationError):
            conn.request("GET", "/api/json")
        conn.close()

    def test_plain_http_on_the_tls_port_does_not_kill_it(self):
        conn = http.client.HTTPConnection(self.emu.host, self.emu.port, timeout=5)
        try:
            conn.request("GET", "/api/json")
            conn.getresponse().read()
        except (ConnectionError, http.client.HTTPException, OSError):
            pass
        finally:
            conn.close()
        self.assertEqual(self.emu.get("/api/json").status, 200)


class LifecycleTest(unittest.TestCase):
    def test_sigterm_exits_zero_and_state_survives(self):
        emu = Emulator(version="2.560", users=["svc"])
        try:
            info = dict(emu.info)
            self.assertEqual(sorted(info), ["admin_token", "admin_user", "ca_file", "data", "pid", "url",
                                            "version"])
            self.assertRegex(info["admin_token"], r"^11[0-9a-f]{32}$")
            self.assertIsNone(info["ca_file"])
            self.assertEqual(info["version"], "2.560")
            self.assertEqual(emu.stop(), 0)
            emu.start()
            # Same data dir: same admin token, users kept.
            self.assertEqual(emu.admin_token, info["admin_token"])
            self.assertEqual(emu.get("/whoAmI/api/json", auth=("svc", "svc")).json()["name"], "svc")
            # A token login rewrites only that user's stats file.
            status, body = emu.script('User.getById("svc", false).getProperty(jenkins.security.ApiTokenProperty)'
                                      '.generateNewToken("t").plainValue')
            token = body.split()[1]
            users = os.path.join(emu.data, "users")
            before = {d: os.stat(os.path.join(users, d, "config.json")).st_mtime_ns for d in os.listdir(users)}
            self.assertEqual(emu.get("/whoAmI/api/json", auth=("svc", token)).status, 200)
            after = {d: os.stat(os.path.join(users, d, "config.json")).st_mtime_ns for d in os.listdir(users)}
            self.assertEqual(before, after)
            svc_dir = [d for d in os.listdir(users) if d.startswith("svc_")][0]
            self.assertTrue(os.path.isfile(os.path.join(users, svc_dir, "apiTokenStats.json")))
        finally:
            emu.stop(remove=True)


if __name__ == "__main__":
    unittest.main()
