"""The client commands with no daemon, or a socket that refuses us (issue 16): the real
binary, real UNIX sockets. The end-to-end commands against the daemon are in control_test.py."""
import grp
import os
import shutil
import socket
import subprocess
import tempfile
import unittest

BIN = os.environ.get("JTR_BIN", "build/jenkins-token-rotator")
CLIENT_COMMANDS = [["status"], ["status", "--json"], ["rotate", "--all"], ["rotate", "svc-a", "--wait"],
                   ["prune"], ["prune", "--wait"], ["reload"], ["history"], ["history", "svc-a"],
                   ["plan", "--daemon"]]


def run(*args, prefix=()):
    return subprocess.run([*prefix, BIN, *args], capture_output=True, text=True, timeout=60)


class ControlClientTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="jtr-ctl-")
        self.dir = self.tmp.name
        os.chmod(self.dir, 0o711)
        self.addCleanup(self.tmp.cleanup)

    def write_config(self, text):
        path = os.path.join(self.dir, "config.yaml")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        return path

    def test_no_daemon_exits_69_naming_the_socket(self):
        sock = os.path.join(self.dir, "none.sock")
        for cmd in CLIENT_COMMANDS:
            with self.subTest(cmd=cmd):
                r = run(*cmd, "--socket", sock)
                self.assertEqual(r.returncode, 69, r.stdout + r.stderr)
                self.assertIn("is the daemon running? (socket %s)" % sock, r.stderr)
                self.assertEqual(r.stdout, "")

    def test_a_stale_socket_file_is_no_daemon_either(self):
        sock = os.path.join(self.dir, "stale.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(sock)
        s.close()  # bound, never listening: connect() is refused
        r = run("status", "--socket", sock)
        self.assertEqual(r.returncode, 69, r.stderr)
        self.assertIn("is the daemon running? (socket %s)" % sock, r.stderr)

    def test_only_control_socket_is_read_from_the_config(self):
        sock = os.path.join(self.dir, "from-config.sock")
        # Credentials nobody may read, unknown keys, and a YAML error outside `control:`:
        # none of it matters to a client command.
        secret = os.path.join(self.dir, "admin-token")
        with open(secret, "w") as f:
            f.write("x\n")
        os.chmod(secret, 0o000)
        config = self.write_config(
            "state_dir: [not closed\n"
            "control:\n  socket: %s\n  group: ops\n"
            "controllers:\n  - {name: ci, url: https://x/, admin_token_file: %s, nonsense: 1}\n"
            % (sock, secret))
        r = run("status", "-c", config)
        self.assertEqual(r.returncode, 69, r.stderr)
        self.assertIn("(socket %s)" % sock, r.stderr)
        # A relative socket path is taken from the config's directory, as the daemon does.
        config = self.write_config("control: {socket: rel.sock}\n")
        r = run("rotate", "--all", "-c", config)
        self.assertEqual(r.returncode, 69, r.stderr)
        self.assertIn("(socket %s/rel.sock)" % self.dir, r.stderr)

    def test_a_config_without_a_readable_socket_is_a_config_error(self):
        config = self.write_config("control:\n  socket: [1, 2]\n")
        r = run("status", "-c", config)
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("%s:2:11: control.socket: expected a path" % config, r.stderr)
        r = run("status", "-c", os.path.join(self.dir, "missing.yaml"))
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("--socket PATH", r.stderr)

    def test_usage_errors_exit_2_before_any_connection(self):
        sock = os.path.join(self.dir, "none.sock")
        for cmd, text in [(["rotate"], "name the slots"),
                          (["rotate", "--all", "svc-a"], "name the slots"),
                          (["history", "--limit", "0"], "--limit: expected a number from 1 to 1000"),
                          (["history", "a", "b"], "unexpected argument \"b\""),
                          (["status", "extra"], "unexpected argument"),
                          (["plan", "--daemon", "--count", "101"], "from 1 to 100"),
                          (["plan", "--daemon", "--connect"], "--connect works on the config"),
                          (["reload", "--wait"], "unknown option --wait")]:
            with self.subTest(cmd=cmd):
                r = run(*cmd, "--socket", sock)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(text, r.stderr)

    def test_help_lists_the_client_commands(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        for usage in ("rotate [SLOT...|--all] [--wait]", "prune [--wait]", "reload",
                      "status [--json]", "history [SLOT] [--limit N] [--json]", "--daemon",
                      "--socket PATH"):
            self.assertIn(usage, r.stdout)
        for line in r.stdout.splitlines():
            self.assertLessEqual(len(line), 140, line)

    def test_refused_by_the_socket_names_the_group_to_join(self):
        if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("groupadd"):
            self.skipTest("needs root, setpriv and groupadd")
        group = "jtr-ctl-%d" % os.getpid()
        subprocess.run(["groupadd", group], check=True)
        self.addCleanup(subprocess.run, ["groupdel", group])
        gid = grp.getgrnam(group).gr_gid
        # A listening socket as the daemon leaves it: 0660, root and the control group.
        sock = os.path.join(self.dir, "control.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(sock)
        s.listen(4)
        self.addCleanup(s.close)
        os.chown(sock, 0, gid)
        os.chmod(sock, 0o660)
        binary = os.path.join(self.dir, "jenkins-token-rotator")
        shutil.copy(BIN, binary)
        os.chmod(binary, 0o755)
        r = subprocess.run(["setpriv", "--reuid", "4242", "--regid", "4242", "--clear-groups",
                            binary, "status", "--socket", sock],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("permission denied (socket %s): join the group %s" % (sock, group), r.stderr)


if __name__ == "__main__":
    unittest.main()
