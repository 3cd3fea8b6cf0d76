"""Malformed requests get a status like Jenkins' (Jetty's) and never take the emulator down."""

import base64
import os
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from emulator import Emulator  # noqa: E402

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def basic(raw):
    return "Basic " + base64.b64encode(raw).decode("ascii")


class MalformedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(version="2.560", users=["svc"])

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop(remove=True)

    def tearDown(self):
        # Whatever the request did, the emulator still answers.
        self.assertEqual(self.emu.get("/api/json").status, 200)

    def test_bad_percent_encoding_is_400(self):
        for body in (b"script=%zz", b"script=%4", b"script=abc%"):
            self.assertEqual(self.emu.post("/scriptText", body, headers=FORM).status, 400, body)
        self.assertEqual(self.emu.post("/scriptText?script=%g1", b"").status, 400)

    def test_non_utf8_is_400(self):
        for body in (b"script=%ff%fe", b"script=\xff\xfeprint", b"script=%c3%28"):
            self.assertEqual(self.emu.post("/scriptText", body, headers=FORM).status, 400, body)

    def test_utf8_round_trips(self):
        self.assertEqual(self.emu.script("print 'h\u00e9llo \u2603'"), (200, "h\u00e9llo \u2603"))

    def test_broken_basic_headers(self):
        for header in ("Basic !!!not-base64", basic(b"no-colon"), basic(b"\xff\xfe:\xff"),
                       "bAsIc " + base64.b64encode(b"admin:wrong").decode()):
            r = self.emu.post("/scriptText", {"script": "1"}, auth=header)
            self.assertEqual(r.status, 401, header)
            self.assertEqual(r.headers["WWW-Authenticate"], 'Basic realm="Jenkins"')
        # Not Basic at all: the request is anonymous ("Basic " loses its space to header trimming).
        for header in ("Bearer abc", "Basic", "Basic ", "Digest x=y"):
            self.assertEqual(self.emu.post("/scriptText", {"script": "1"}, auth=header).status, 403, header)
        # The password may contain colons; only the first one splits.
        self.emu.create_user("colon", password="a:b:c", admin=False)
        self.assertEqual(self.emu.get("/whoAmI/api/json", auth=basic(b"colon:a:b:c")).json()["name"], "colon")

    def test_ten_megabyte_body(self):
        big = b"script=" + b"//" + b"x" * (10 * 1024 * 1024)
        # Jenkins has no form-size limit by default: the admin's script (one long comment) runs.
        r = self.emu.post("/scriptText", big, headers=FORM)
        self.assertEqual((r.status, r.body), (200, b""))
        # Anonymous: refused before anything runs.
        self.assertEqual(self.emu.post("/scriptText", big, headers=FORM, auth=False).status, 403)

    def test_oversized_body_is_413(self):
        huge = b"script=" + b"x" * (17 * 1024 * 1024)
        try:
            r = self.emu.post("/scriptText", huge, headers=FORM)
            self.assertEqual(r.status, 413)
        except (ConnectionError, BrokenPipeError):
            pass  # the emulator may close while the client is still sending

    def test_bad_path_encoding_and_unknown_paths(self):
        self.assertEqual(self.emu.get("/script%zzText").status, 400)
        self.assertEqual(self.emu.get("/no/such/page").status, 404)
        self.assertEqual(self.emu.get("/no/such/page", auth=False).status, 403)

    def test_garbage_on_the_socket(self):
        for raw in (b"GARBAGE\r\n\r\n", b"POST /scriptText HTTP/1.1\r\nContent-Length: 100\r\n\r\nscript=1",
                    b"\x00\x01\x02\xff" * 100, b"GET /api/json HTTP/1.1\r\n" + b"X: " + b"y" * 70000 + b"\r\n\r\n"):
            s = socket.create_connection((self.emu.host, self.emu.port), timeout=5)
            try:
                s.sendall(raw)
                s.shutdown(socket.SHUT_WR)
                try:
                    s.recv(4096)
                except (ConnectionError, socket.timeout):
                    pass
            finally:
                s.close()


if __name__ == "__main__":
    unittest.main()
