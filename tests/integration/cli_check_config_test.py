"""check-config and the CLI surface, through the real binary."""
import os
import stat
import subprocess
import tempfile
import time
import unittest

BIN = os.environ.get("JTR_BIN", "build/jenkins-token-rotator")
SRC = os.environ.get("JTR_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))


def run(*args, env=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run([BIN, *args], capture_output=True, text=True, env=e, timeout=60)


class CheckConfigTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.creds = self.tmp.name
        for name, content in (("ci-admin-token", "11" + "0" * 32 + "\n"),
                              ("http-token", "bearer-secret-xyz\n"),
                              # config checks only the file; crypto reads the key
                              ("signing-key", "signing-key-placeholder\n")):
            path = os.path.join(self.creds, name)
            with open(path, "w") as f:
                f.write(content)
            os.chmod(path, 0o600)
        self.env = {"CREDENTIALS_DIRECTORY": self.creds}

    def tearDown(self):
        self.tmp.cleanup()

    def test_shipped_configs_pass(self):
        for name, summary in (("example.yaml", "1 controller, 1 recipient, 1 user, 1 sink"),
                              ("full.yaml", "1 controller, 2 recipients, 2 users, 4 sinks")):
            path = os.path.join(SRC, "conf", name)
            r = run("check-config", "-c", path, env=self.env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, f"{path}: OK: {summary}\n")
            self.assertEqual(r.stderr, "")

    def test_errors_exit_78_and_keep_secrets_out(self):
        # The http token file becomes readable by others: refused without its content.
        os.chmod(os.path.join(self.creds, "http-token"), 0o644)
        path = os.path.join(SRC, "conf", "full.yaml")
        r = run("check-config", "-c", path, env=self.env)
        self.assertEqual(r.returncode, 78)
        self.assertEqual(r.stdout, "")
        self.assertIn(f"{path}:77:26: users[0].sinks[2].headers.Authorization: "
                      f"${{file:{self.creds}/http-token}}: expected a file not readable by group or "
                      "others (chmod 0600), found mode 0644\n", r.stderr)
        self.assertNotIn("bearer-secret-xyz", r.stderr + r.stdout)

    def test_missing_config_file(self):
        r = run("check-config", "-c", "/nonexistent/config.yaml")
        self.assertEqual(r.returncode, 78)
        self.assertEqual(r.stderr, "/nonexistent/config.yaml: /nonexistent/config.yaml: "
                                   "No such file or directory\n")

    def test_binary_garbage_is_a_clear_error(self):
        path = os.path.join(self.tmp.name, "garbage.yaml")
        with open(path, "wb") as f:
            f.write(os.urandom(4096) + b"\x00")
        os.chmod(path, 0o600)
        r = run("check-config", "-c", path)
        self.assertEqual(r.returncode, 78)
        self.assertRegex(r.stderr, r"^" + path + r":\d+:\d+: expected UTF-8 text, found byte 0x[0-9a-f]{2}\n$")

    def test_billion_laughs_is_refused_quickly(self):
        users = "users: [&u {user: u, controller: c, sinks: [&s {type: file, path: /t, recipients: [" \
                + ", ".join(["r"] * 2000) + "]}" + ", *s" * 2000 + "]}" + ", *u" * 2000 + "]"
        path = os.path.join(self.tmp.name, "bomb.yaml")
        with open(path, "w") as f:
            f.write(users + "\n")
        os.chmod(path, 0o600)
        start = time.monotonic()
        r = run("check-config", "-c", path)
        took = time.monotonic() - start
        self.assertEqual(r.returncode, 78)
        self.assertEqual(r.stderr, f"{path}:1:1: (root): expected a config of reasonable size, found a "
                                   "document that expands past 2,000,000 nodes (anchors and aliases?)\n")
        self.assertLess(took, 30)


    def write_config(self, name, text):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o600)
        return path

    def test_a_directory_as_config_is_a_clear_error(self):
        r = run("check-config", "-c", self.tmp.name)
        self.assertEqual(r.returncode, 78)
        self.assertEqual(r.stderr, f"{self.tmp.name}: expected a regular file, found a directory\n")

    def test_a_fifo_as_config_does_not_hang(self):
        path = os.path.join(self.tmp.name, "config.yaml")
        os.mkfifo(path, 0o600)
        start = time.monotonic()
        r = subprocess.run([BIN, "check-config", "-c", path], capture_output=True, text=True,
                           timeout=10)
        self.assertLess(time.monotonic() - start, 5)
        self.assertEqual(r.returncode, 78)
        self.assertEqual(r.stderr, f"{path}: expected a regular file, found a FIFO\n")

    def test_a_recipient_key_in_a_world_writable_directory_exits_78(self):
        # Anyone could `mv` their own key over it: every future token would be theirs.
        shared = os.path.join(self.tmp.name, "shared")
        os.mkdir(shared)
        os.chmod(shared, 0o777)
        key = os.path.join(shared, "deploy.pub")
        with open(key, "w") as f:
            f.write("Ad3bk53WyWOuOQdFNUPA4chEbyYswQhGS2ZvdIv5Dwg=\n")
        os.chmod(key, 0o644)
        path = self.write_config("config.yaml", (
            "controllers:\n"
            "  - name: ci\n"
            "    url: https://jenkins.example.com/\n"
            "    admin_user: token-rotator\n"
            f"    admin_token_file: {self.creds}/ci-admin-token\n"
            "recipients:\n"
            f"  deploy: {key}\n"
            "users:\n"
            "  - {user: svc, controller: ci, sinks: [{type: file, path: /tmp/t.json, "
            "recipients: [deploy]}]}\n"))
        r = run("check-config", "-c", path)
        self.assertEqual(r.returncode, 78, r.stdout)
        self.assertEqual(r.stderr, f"{path}:7:11: recipients.deploy: expected directory {shared} "
                                   "not writable by group or others, found mode 0777\n")


class CliTest(unittest.TestCase):
    def test_help_lists_only_working_commands(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("check-config [-c FILE]", r.stdout)
        commands = [l.split()[0] for l in r.stdout.split("Commands:\n")[1].split("\n\n")[0].splitlines()]
        for c in commands:
            h = run(c, "--help")
            self.assertEqual(h.returncode, 0, c)
            self.assertIn("Usage: jenkins-token-rotator " + c, h.stdout)

    def test_version(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^jenkins-token-rotator \d+\.\d+\.\d+\n$")

    def test_usage_errors_exit_2(self):
        self.assertEqual(run().returncode, 2)
        r = run("frobnicate")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, 'jenkins-token-rotator: unknown command "frobnicate" (see --help)\n')
        r = run("check-config", "--bogus")
        self.assertEqual(r.returncode, 2)
        self.assertEqual(r.stderr, "jenkins-token-rotator: check-config: unknown option --bogus "
                                   "(see jenkins-token-rotator --help)\n")
        self.assertEqual(run("check-config", "-c").returncode, 2)


if __name__ == "__main__":
    unittest.main()
