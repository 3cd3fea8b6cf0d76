"""No minted token appears in what `once` printed or wrote (DESIGN §1.5, issue 7).

The emulator records every plain token it mints (-Demu.recordTokens), including the ones
the daemon never delivers (a user outside the realm: verify fails, the token is revoked).
Two passes at log level debug (text, then JSON); then every value, and its secret part
without the "11" prefix, is looked for in stdout, stderr and every file under the
test's directory (config, state database and its journal, sinks, hook output)."""
import base64
import os
import subprocess
import tempfile
import unittest

from emulator import Emulator

BIN = os.environ.get("JTR_BIN", "build/jenkins-token-rotator")
USERS = ["svc-a", "svc-b"]
GHOST = "svc-ghost"  # exists in Jenkins, but not in the security realm: login gives 500


class OnceSecretsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        d = self.tmp.name
        os.chmod(d, 0o755)
        # Outside d: the record holds plain values by design and is not ours to scan.
        self.record_dir = tempfile.TemporaryDirectory()
        self.record = os.path.join(self.record_dir.name, "minted")
        old = os.environ.get("EMU_JAVA_OPTS")
        os.environ["EMU_JAVA_OPTS"] = "-Demu.recordTokens=" + self.record
        try:
            self.emu = Emulator(version="2.560", users=USERS)
        finally:
            if old is None:
                del os.environ["EMU_JAVA_OPTS"]
            else:
                os.environ["EMU_JAVA_OPTS"] = old
        self.emu.create_user(GHOST, realm=False)

        self.state = os.path.join(d, "state")
        os.mkdir(self.state, 0o700)
        self.out = os.path.join(d, "out")
        os.mkdir(self.out, 0o755)
        token_file = os.path.join(d, "admin-token")
        with open(token_file, "w") as f:
            f.write(self.emu.admin_token + "\n")
        os.chmod(token_file, 0o600)
        pub = os.path.join(d, "deploy.pub")
        with open(pub, "w") as f:
            f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
        hook = os.path.join(d, "hook")
        with open(hook, "w") as f:
            # Whatever the hook sees goes to a file we scan, environment included.
            f.write("#!/bin/sh\ncat > %s/$JTR_USER.exec.json\nenv > %s/$JTR_USER.env\n"
                    "echo \"hook ran for $JTR_USER\" >&2\n" % (self.out, self.out))
        os.chmod(hook, 0o755)
        users = "".join(
            "  - user: %s\n    controller: emu\n    sinks:\n"
            "      - {type: file, path: %s/%s.json, recipients: [deploy]}\n"
            "      - {type: exec, command: [%s], recipients: [deploy], timeout: 10s}\n"
            % (u, self.out, u, hook) for u in USERS + [GHOST])
        self.configs = []
        for fmt in ("text", "json"):
            path = os.path.join(d, "config-%s.yaml" % fmt)
            with open(path, "w") as f:
                f.write("state_dir: %s\ncontrol: {socket: %s/control.sock}\n"
                        "log: {level: debug, format: %s}\n"
                        "controllers:\n  - name: emu\n    url: %s\n    admin_user: %s\n"
                        "    admin_token_file: %s\n    batch_size: 2\n"
                        "recipients:\n  deploy: %s\n"
                        "defaults: {schedule: every 7d, lifetime: 30d, grace: 0s, failure_budget: 1d}\n"
                        "users:\n%s"
                        % (self.state, d, fmt, self.emu.url, self.emu.admin_user, token_file, pub,
                           users))
            os.chmod(path, 0o600)
            self.configs.append(path)

    def tearDown(self):
        self.emu.stop(remove=True)
        self.tmp.cleanup()
        self.record_dir.cleanup()

    def test_no_minted_value_in_output_logs_or_files(self):
        outputs = []
        for config, extra in zip(self.configs, ([], ["--force"])):
            r = subprocess.run([BIN, "once", "-c", config, *extra], capture_output=True,
                               text=True, timeout=120)
            outputs.append(r.stdout)
            outputs.append(r.stderr)
            # The ghost's slot fails (exit 1 or so); the others must have rotated.
            for u in USERS:
                self.assertIn("emu/" + u, r.stdout + r.stderr)
        self.assertIn("debug", "".join(outputs).lower())

        with open(self.record) as f:
            minted = [v for v in f.read().split() if v != self.emu.admin_token]
        # Two passes: two users each, plus the ghost (minted, refused, revoked).
        self.assertGreaterEqual(len(minted), 5, minted)
        for v in minted:
            self.assertRegex(v, r"^11[0-9a-f]{32}$")
        ghost_created = [e["uuid"] for e in self.emu.events()
                         if e["event"] == "token_created" and e["user"] == GHOST]
        ghost_revoked = [e["uuid"] for e in self.emu.events()
                         if e["event"] == "token_revoked" and e["user"] == GHOST]
        self.assertGreaterEqual(len(ghost_created), 1)
        self.assertEqual(sorted(ghost_created), sorted(ghost_revoked))
        for u in USERS:
            self.assertTrue(os.path.exists(os.path.join(self.out, u + ".json")))
        self.assertFalse(os.path.exists(os.path.join(self.out, GHOST + ".json")))

        blobs = {"stdout/stderr %d" % i: o for i, o in enumerate(outputs)}
        files = 0
        for root, _, names in os.walk(self.tmp.name):
            for name in names:
                path = os.path.join(root, name)
                if os.path.islink(path) or not os.path.isfile(path):
                    continue
                with open(path, "rb") as f:
                    blobs[path] = f.read().decode("latin-1")
                files += 1
        self.assertGreaterEqual(files, 8)  # configs, token, key, hook, state db, sinks, env
        for v in minted:
            for where, blob in blobs.items():
                self.assertNotIn(v[2:], blob, "a minted token is in " + where)
                self.assertNotIn(v[2:].upper(), blob, "a minted token is in " + where)


if __name__ == "__main__":
    unittest.main()
