"""Start and drive the Jenkins emulator (tests/jenkins-emulator) from Python tests.

Standard library only. Typical use::

    from emulator import Emulator
    with Emulator(version="2.560", users=["alice"]) as emu:
        status, body = emu.script('println "hi"')      # as the admin, by API token
        r = emu.get("/whoAmI/api/json", auth=("alice", "alice"))
        print(r.status, r.json())

``auth`` arguments everywhere: ``None`` = the emulator's admin and its API token,
``False`` = anonymous (no Authorization header), ``(user, secret)`` = Basic auth,
a ``str`` = the raw Authorization header value (for malformed-header tests).
Users made by ``--users`` / ``users=[...]`` have their name as password.
"""

import base64
import http.client
import json
import os
import select
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.parse

RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "jenkins-emulator", "run")


def java_home():
    """$JAVA_HOME (CTest sets it from CMake's JTR_JAVA_HOME), else the JDK of the javac
    on PATH, whatever the architecture."""
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    javac = shutil.which("javac")
    if javac is None:
        raise RuntimeError("no JDK: set JAVA_HOME or install openjdk-17-jdk-headless")
    return os.path.dirname(os.path.dirname(os.path.realpath(javac)))


class Response:
    """One HTTP answer: ``status``, ``headers`` (case-insensitive), ``body`` bytes."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "Response(%d, %r)" % (self.status, self.body[:200])


class Emulator:
    """A running emulator; a context manager that kills the JVM on exit.

    version, timezone, tls, users, admin map to the ``run`` options; ``data`` defaults to a
    fresh temporary directory, removed by ``stop()`` when the emulator made it.
    """

    ANONYMOUS = False

    def __init__(self, version="2.560", timezone=None, tls=False, users=(), admin=None,
                 data=None, start=True, startup_timeout=240):
        self.version = version
        self.timezone = timezone
        self.tls = tls
        self.users = list(users)
        self.admin = admin
        self._own_data = data is None
        self.data = data or tempfile.mkdtemp(prefix="jenkins-emu-")
        self.startup_timeout = startup_timeout
        self.proc = None
        self.info = None
        self.stderr_path = os.path.join(self.data, "emulator.stderr")
        if start:
            self.start()

    # ---- lifecycle
    def start(self):
        """Starts the JVM and waits for its JSON line (the first run also compiles)."""
        cmd = [RUN, "--port", "0", "--data", self.data, "--version", self.version]
        if self.timezone:
            cmd += ["--timezone", self.timezone]
        if self.tls:
            cmd += ["--tls"]
        if self.users:
            cmd += ["--users", ",".join(self.users)]
        if self.admin:
            cmd += ["--admin", self.admin]
        env = dict(os.environ, JAVA_HOME=java_home())
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr, env=env)
        deadline = time.monotonic() + self.startup_timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop(remove=False)
                with open(self.stderr_path, "rb") as f:
                    err = f.read().decode("utf-8", "replace")[-3000:]
                raise RuntimeError("emulator did not start: %s" % err)
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                line += chunk
        self.info = json.loads(line.decode("utf-8").splitlines()[0])
        self.url = self.info["url"]
        self.admin_user = self.info["admin_user"]
        self.admin_token = self.info["admin_token"]
        self.ca_file = self.info["ca_file"]
        self.pid = self.info["pid"]
        parsed = urllib.parse.urlsplit(self.url)
        self.host, self.port = parsed.hostname, parsed.port
        return self

    def stop(self, remove=None):
        """SIGTERM, then SIGKILL after 10 s; returns the exit code. Removes a temp data dir."""
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            rc = self.proc.returncode
            self.proc.stdout.close()
            self._stderr.close()
            self.proc = None
        if remove is None:
            remove = False
        if remove and self._own_data:
            shutil.rmtree(self.data, ignore_errors=True)
        return rc

    def restart(self):
        """Stops and starts on the same data directory (new port, new X-Jenkins-Session)."""
        self.stop(remove=False)
        return self.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop(remove=True)

    # ---- HTTP
    def connection(self, timeout=30):
        """A new http.client connection to the emulator (HTTPS verified against ca_file)."""
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.ca_file)
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _auth_header(self, auth):
        if auth is None:
            auth = (self.admin_user, self.admin_token)
        if auth is False:
            return None
        if isinstance(auth, str):
            return auth
        raw = ("%s:%s" % auth).encode("utf-8")
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def request(self, method, path, body=None, auth=None, headers=None, timeout=30):
        """Sends one request on a fresh connection and returns a Response."""
        h = dict(headers or {})
        a = self._auth_header(auth)
        if a is not None:
            h["Authorization"] = a
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return Response(r.status, r.headers, r.read())
        finally:
            conn.close()

    def get(self, path, auth=None, headers=None):
        return self.request("GET", path, auth=auth, headers=headers)

    def post(self, path, data=None, auth=None, headers=None):
        """POST; a dict ``data`` is sent form-urlencoded, str/bytes as is."""
        h = dict(headers or {})
        if isinstance(data, dict):
            data = urllib.parse.urlencode(data)
            h.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif data is not None:
            h.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if isinstance(data, str):
            data = data.encode("utf-8")
        return self.request("POST", path, body=data if data is not None else b"", auth=auth, headers=h)

    def script(self, text, user=None, token=None):
        """POSTs ``text`` to /scriptText (as the admin unless user/token given) -> (status, body)."""
        if user is not None and token is None:
            raise ValueError("script(): a user needs an API token (password POSTs need a crumb)")
        auth = None if user is None else (user, token)
        r = self.post("/scriptText", {"script": text}, auth=auth)
        return r.status, r.text

    # ---- control API
    def _control(self, method, path, payload=None):
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        r = self.request(method, path, body=body, headers={"Content-Type": "application/json"})
        if r.status != 200:
            raise RuntimeError("%s %s -> %d %s" % (method, path, r.status, r.text))
        return r.json()

    def create_user(self, name, realm=True, admin=False, password=None):
        return self._control("POST", "/__emu/users", {"name": name, "realm": realm, "admin": admin,
                                                      "password": password or name})

    def fault(self, path, kind, count=1, match=None, status=503, delay_ms=1000):
        """Injects a fault for the next ``count`` requests to ``path`` (see the README)."""
        return self._control("POST", "/__emu/faults", {"path": path, "kind": kind, "count": count,
                                                       "match": match, "status": status,
                                                       "delay_ms": delay_ms})

    def clear_faults(self):
        return self._control("DELETE", "/__emu/faults")

    def set_latency(self, ms):
        """Delays every answer but the control API's by ``ms`` (a network round trip)."""
        return self._control("POST", "/__emu/latency", {"ms": ms})

    def shift_clock(self, days=0, seconds=0):
        return self._control("POST", "/__emu/clock", {"shift_days": days, "shift_seconds": seconds})

    def state(self):
        return self._control("GET", "/__emu/state")

    def events(self):
        return self._control("GET", "/__emu/events")

    def scripts(self):
        return self._control("GET", "/__emu/scripts")

    def counters(self):
        return self._control("GET", "/__emu/counters")

    def clear_logs(self):
        """Empties the event and script logs."""
        self._control("DELETE", "/__emu/events")
        return self._control("DELETE", "/__emu/scripts")

    @property
    def admin_password(self):
        """The admin's password (kept in DATA/emu-admin.json); password POSTs need a crumb."""
        with open(os.path.join(self.data, "emu-admin.json")) as f:
            return json.load(f)["password"]

    def crumb_headers(self, auth):
        """Headers (crumb + session cookie) that let a password-authenticated POST through."""
        r = self.get("/crumbIssuer/api/json", auth=auth)
        if r.status != 200:
            raise RuntimeError("crumbIssuer -> %d" % r.status)
        return {"Jenkins-Crumb": r.json()["crumb"], "Cookie": r.headers["Set-Cookie"].split(";")[0]}

    def reset_counters(self):
        return self._control("POST", "/__emu/reset-counters")

    def memory(self):
        """Heap and class-loading figures measured right after System.gc()."""
        return self._control("GET", "/__emu/memory")


class EmulatorTestCase(unittest.TestCase):
    """A test class that shares one emulator (``cls.emu``, started with EMULATOR's options)
    among its tests, stopped and removed after the last."""
    EMULATOR = {"version": "2.560"}

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(**cls.EMULATOR)

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop(remove=True)
