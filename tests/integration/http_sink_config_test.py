"""check-config on an http sink whose header ${file:} cannot be read: exit 78, the place, no content."""
import os
import subprocess
import tempfile
import unittest

BIN = os.environ.get("JTR_BIN", "build/jenkins-token-rotator")
SRC = os.environ.get("JTR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIG = os.path.join(SRC, "conf", "full.yaml")
# conf/full.yaml: users[0].sinks[2] is the http sink; its Authorization value starts here.
WHERE = f"{CONFIG}:77:26: users[0].sinks[2].headers.Authorization: "
SECRET = "bearer-secret-4711"


class HttpHeaderFileTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.creds = self.tmp.name
        os.chmod(self.creds, 0o755)  # so the unprivileged run below can look inside
        self.admin = os.path.join(self.creds, "ci-admin-token")
        self.token = os.path.join(self.creds, "http-token")
        self.write(self.admin, "11" + "0" * 32 + "\n")
        # conf/full.yaml names a signing key; config checks only the file
        self.write(os.path.join(self.creds, "signing-key"), "signing-key-placeholder\n")

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, path, content):
        with open(path, "w") as f:
            f.write(content)
        os.chmod(path, 0o600)

    def check_config(self, as_nobody=False):
        env = dict(os.environ, CREDENTIALS_DIRECTORY=self.creds)
        drop = (lambda: (os.setgroups([]), os.setgid(65534), os.setuid(65534))) if as_nobody else None
        return subprocess.run([BIN, "check-config", "-c", CONFIG], capture_output=True, text=True,
                              env=env, timeout=60, preexec_fn=drop)

    def test_a_readable_header_file_passes(self):
        self.write(self.token, SECRET + "\n")
        r = self.check_config()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn(SECRET, r.stdout + r.stderr)

    def test_a_missing_header_file_exits_78_with_its_place(self):
        r = self.check_config()
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn(WHERE + f"${{file:{self.token}}}: cannot be read: No such file or directory\n",
                      r.stderr)

    def test_a_0600_header_file_we_may_not_read_exits_78_without_its_content(self):
        self.write(self.token, SECRET + "\n")
        if os.geteuid() == 0:
            # Owned by root with mode 0600: right for a secret, but the daemon's user is
            # another one. The admin token (checked for its mode only) stays root's too.
            r = self.check_config(as_nobody=True)
        else:
            os.chmod(self.token, 0o000)
            r = self.check_config()
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertEqual(r.stdout, "")
        self.assertIn(WHERE + f"${{file:{self.token}}}: cannot be read: Permission denied\n",
                      r.stderr)
        self.assertNotIn(SECRET, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
