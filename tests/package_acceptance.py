"""The installed package at work (run by tests/package as root after `dpkg -i`): the
installed binary, run as the service user, rotates a user of the Jenkins emulator with
the packaged state directory; with the daemon, through its control socket.

    /usr/bin/python3 tests/package_acceptance.py -v
"""

import base64
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "integration"))
from emulator import Emulator  # noqa: E402

BIN = "/usr/bin/jenkins-token-rotator"
USER = "jenkins-token-rotator"
STATE = "/var/lib/jenkins-token-rotator"
SOCKET = "/run/jenkins-token-rotator/control.sock"


def as_service_user(args, **kw):
    return subprocess.run(["runuser", "-u", USER, "--", BIN] + args, cwd="/",
                          capture_output=True, text=True, timeout=180, **kw)


def has_daemon():
    return subprocess.run([BIN, "daemon", "--help"], capture_output=True).returncode == 0


class InstalledPackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(users=["svc-deploy"]).start()
        cls.work = tempfile.mkdtemp(prefix="jtr-package-")
        os.chmod(cls.work, 0o755)  # the service user reads the config in here
        pw = pwd.getpwnam(USER)
        cls.uid, cls.gid = pw.pw_uid, pw.pw_gid
        key = os.path.join(cls.work, "deploy.key")
        pub = subprocess.run([BIN, "keygen", "--out", key], capture_output=True, text=True,
                             check=True).stdout
        with open(os.path.join(cls.work, "deploy.pub"), "w") as f:
            f.write(pub)
        token = os.path.join(cls.work, "admin-token")
        with open(token, "w") as f:
            f.write(cls.emu.admin_token + "\n")
        os.chown(token, cls.uid, cls.gid)
        os.chmod(token, 0o600)
        cls.out = os.path.join(cls.work, "out")
        os.mkdir(cls.out, 0o755)
        os.chown(cls.out, cls.uid, cls.gid)
        cls.config = os.path.join(cls.work, "config.yaml")
        with open(cls.config, "w") as f:
            f.write(f"""state_dir: {STATE}
control: {{socket: {SOCKET}, group: {USER}}}
controllers:
  - {{name: ci, url: "{cls.emu.url}", admin_user: {cls.emu.admin_user}, admin_token_file: {token}}}
recipients:
  deploy: {cls.work}/deploy.pub
defaults: {{schedule: every 7d, grace: 0s}}
users:
  - user: svc-deploy
    controller: ci
    sinks: [{{type: file, path: {cls.out}/svc-deploy.json, recipients: [deploy]}}]
""")

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def token(self):
        out = subprocess.run([BIN, "decrypt", "--key", os.path.join(self.work, "deploy.key"),
                              os.path.join(self.out, "svc-deploy.json")],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def logs_in(self, token):
        req = urllib.request.Request(self.emu.url + "whoAmI/api/json")
        cred = base64.b64encode(("svc-deploy:" + token).encode()).decode()
        req.add_header("Authorization", "Basic " + cred)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.load(r)["name"] == "svc-deploy"
        except urllib.error.HTTPError:
            return False

    def test_1_once_as_the_service_user_with_the_packaged_state_dir(self):
        r = as_service_user(["once", "-c", self.config, "--force"])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(self.logs_in(self.token()))
        self.assertEqual(os.stat(os.path.join(STATE, "state.db")).st_uid, self.uid)
        st = os.stat(STATE)
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (self.uid, 0o700))
        # Root may not open the service user's state: it would leave root-owned files.
        r = subprocess.run([BIN, "once", "-c", self.config], capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(USER, r.stderr)

    @unittest.skipUnless(has_daemon(), "the daemon is not in this build yet (issues 15, 16): "
                         "rotation through the control socket not tested")
    def test_2_the_daemon_rotates_through_its_control_socket(self):
        before = self.token() if os.path.exists(os.path.join(self.out, "svc-deploy.json")) else None
        daemon = subprocess.Popen(["setpriv", "--reuid", USER, "--regid", USER, "--init-groups",
                                   BIN, "daemon", "-c", self.config], cwd="/",
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with socket.socket(socket.AF_UNIX) as s:
                        s.connect(SOCKET)
                    break
                except OSError:
                    self.assertIsNone(daemon.poll(), "the daemon exited")
                    self.assertLess(time.monotonic(), deadline, "no control socket")
                    time.sleep(0.2)
            self.assertEqual(os.stat(SOCKET).st_mode & 0o777, 0o660)
            r = subprocess.run([BIN, "rotate", "-c", self.config, "--all", "--wait"],
                               capture_output=True, text=True, timeout=180)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            after = self.token()
            self.assertNotEqual(before, after)
            self.assertTrue(self.logs_in(after))
            r = as_service_user(["status", "-c", self.config, "--json"])
            self.assertEqual(r.returncode, 0, r.stderr)
            status = json.loads(r.stdout)
            self.assertEqual([s["state"] for s in status["slots"]], ["ok"])
            self.assertNotIn(after, r.stdout)
        finally:
            daemon.send_signal(signal.SIGTERM)
            out, _ = daemon.communicate(timeout=150)
        self.assertEqual(daemon.returncode, 0, out)
        self.assertNotIn(after, out)


if __name__ == "__main__":
    unittest.main()
