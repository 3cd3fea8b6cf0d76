"""Fault injection (/__emu/faults), request counters and the script log."""

import hashlib
import http.client
import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from emulator import Emulator  # noqa: E402

MAKE = ('def u = User.getById("svc", false)\n'
        'u.getProperty(jenkins.security.ApiTokenProperty).generateNewToken("%s").plainValue')


class FaultTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(version="2.560", users=["svc"])

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop(remove=True)

    def setUp(self):
        self.emu.clear_faults()

    def ran(self, text):
        """How often the emulator compiled exactly this script text."""
        sha = hashlib.sha256(text.encode()).hexdigest()
        return sum(1 for s in self.emu.scripts() if s["sha256"] == sha)

    def created(self, name):
        return [e for e in self.emu.events() if e["event"] == "token_created" and e["name"] == name]

    def test_status_fault_answers_without_running(self):
        self.emu.fault("/scriptText", "status", count=2, status=503)
        text = "print 'status fault'"
        self.assertEqual(self.emu.script(text)[0], 503)
        self.assertEqual(self.emu.script(text)[0], 503)
        self.assertEqual(self.ran(text), 0)
        self.assertEqual(self.emu.script(text), (200, "status fault"))

    def test_match_limits_the_fault_to_bodies_containing_text(self):
        self.emu.fault("/scriptText", "status", status=502, match="Needle Token")
        self.assertEqual(self.emu.script("print 'haystack'")[0], 200)
        self.assertEqual(self.emu.script("print 'Needle Token'")[0], 502)
        self.assertEqual(self.emu.script("print 'Needle Token'")[0], 200)

    def test_latency_delays_every_answer_but_the_control_apis(self):
        self.addCleanup(self.emu.set_latency, 0)
        self.assertEqual(self.emu.set_latency(400), {"ms": 400})
        for call in (lambda: self.emu.get("/whoAmI/api/json"),
                     lambda: self.emu.script("print 'slow'")):
            start = time.monotonic()
            call()
            self.assertGreaterEqual(time.monotonic() - start, 0.4)
        # The control API is never delayed (a bench reads counters between its rounds),
        # and latency 0 turns it off again: neither call waits the 5 s.
        self.emu.set_latency(5000)
        start = time.monotonic()
        self.emu.counters()
        self.assertEqual(self.emu.set_latency(0), {"ms": 0})
        self.emu.get("/whoAmI/api/json")
        self.assertLess(time.monotonic() - start, 5)

    def test_delay_before_runs_after_the_delay(self):
        self.emu.fault("/scriptText", "delay_before", delay_ms=1500)
        text = MAKE % "delayed-before"
        with self.assertRaises((socket.timeout, TimeoutError)):
            self.timed_script(text, timeout=0.7)
        self.assertEqual(self.created("delayed-before"), [])
        time.sleep(1.5)
        self.assertEqual(len(self.created("delayed-before")), 1)

    def test_delay_after_runs_before_the_delay(self):
        self.emu.fault("/scriptText", "delay_after", delay_ms=1500)
        text = MAKE % "delayed-after"
        with self.assertRaises((socket.timeout, TimeoutError)):
            self.timed_script(text, timeout=0.7)
        self.assertEqual(len(self.created("delayed-after")), 1)
        time.sleep(1.0)
        t0 = time.monotonic()
        self.assertEqual(self.emu.script("print 1"), (200, "1"))
        self.assertLess(time.monotonic() - t0, 1.0)

    def test_garbage_replaces_the_answer_of_a_script_that_ran(self):
        self.emu.fault("/scriptText", "garbage")
        status, body = self.emu.script(MAKE % "garbled")
        self.assertEqual(status, 200)
        self.assertNotIn("Result: 11", body)
        self.assertEqual(len(self.created("garbled")), 1)

    def test_drop_before_closes_without_running(self):
        self.emu.fault("/scriptText", "drop_before")
        text = MAKE % "dropped-before"
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.emu.script(text)
        self.assertEqual(self.ran(text), 0)
        self.assertEqual(self.created("dropped-before"), [])

    def test_run_then_drop_runs_and_closes(self):
        self.emu.fault("/scriptText", "run_then_drop", match="run-then-drop")
        text = MAKE % "run-then-drop"
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
            self.emu.script(text)
        self.assertEqual(self.ran(text), 1)
        self.assertEqual(len(self.created("run-then-drop")), 1)
        # Only once: the retry gets through.
        self.assertTrue(self.emu.script(text)[1].startswith("Result: 11"))

    def test_faults_on_other_endpoints_and_clear(self):
        self.emu.fault("/whoAmI/api/json", "status", status=500, count=5)
        self.assertEqual(self.emu.get("/whoAmI/api/json").status, 500)
        self.assertEqual(self.emu.get("/api/json").status, 200)
        self.emu.clear_faults()
        self.assertEqual(self.emu.get("/whoAmI/api/json").status, 200)

    def test_bad_fault_requests_are_refused(self):
        r = self.emu.post("/__emu/faults", '{"path": "/scriptText", "kind": "explode"}',
                          headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        r = self.emu.post("/__emu/faults", "not json", headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)

    def test_counters(self):
        self.emu.reset_counters()
        self.emu.script("1")
        self.emu.script("2")
        self.emu.get("/api/json")
        self.emu.get("/scriptText")
        self.assertEqual(self.emu.counters(), {"POST /scriptText": 2, "GET /api/json": 1, "GET /scriptText": 1})
        self.emu.reset_counters()
        self.assertEqual(self.emu.counters(), {})

    def timed_script(self, text, timeout):
        import urllib.parse
        conn = http.client.HTTPConnection(self.emu.host, self.emu.port, timeout=timeout)
        try:
            conn.request("POST", "/scriptText", body=urllib.parse.urlencode({"script": text}),
                         headers={"Authorization": self.emu._auth_header(None),
                                  "Content-Type": "application/x-www-form-urlencoded"})
            return conn.getresponse().read()
        finally:
            conn.close()


if __name__ == "__main__":
    unittest.main()
