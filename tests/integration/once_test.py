"""End-to-end rotation with `once`: the real binary, the emulator running our Groovy,
real file and exec sinks, PyNaCl opening the envelopes (issue 9)."""
import base64
import datetime
import json
import os
import sqlite3
import subprocess
import tempfile
import time
import unittest

from emulator import Emulator
import nacl.public

BIN = os.environ.get("JTR_BIN", "build/jenkins-token-rotator")
USERS = ["svc-a", "svc-b", "svc-c"]


def open_envelope(path, private_key):
    with open(path) as f:
        env = json.load(f)
    box = nacl.public.SealedBox(private_key)
    if not env["sealed"]:
        raise AssertionError("no sealed entry")
    return env, box.decrypt(base64.b64decode(env["sealed"][0]["ciphertext"])).decode()


class OnceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(version="2.560", users=USERS)

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop(remove=True)

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        d = self.tmp.name
        os.chmod(d, 0o755)
        self.state = os.path.join(d, "state")
        os.mkdir(self.state, 0o700)
        self.out = os.path.join(d, "out")
        os.mkdir(self.out, 0o755)
        token_file = os.path.join(d, "admin-token")
        with open(token_file, "w") as f:
            f.write(self.emu.admin_token + "\n")
        os.chmod(token_file, 0o600)
        self.key = nacl.public.PrivateKey.generate()
        pub = os.path.join(d, "deploy.pub")
        with open(pub, "w") as f:
            f.write(base64.b64encode(bytes(self.key.public_key)).decode() + "\n")
        hooks = os.path.join(d, "hooks")
        os.mkdir(hooks, 0o755)
        self.hook_log = os.path.join(self.out, "hook.log")
        hook = os.path.join(hooks, "publish")
        with open(hook, "w") as f:
            f.write("#!/bin/sh\nset -eu\ncat > %s/$JTR_USER.exec.json\n"
                    "echo \"$(date +%%s.%%N) $JTR_USER $JTR_TOKEN_NAME $JTR_TOKEN_UUID\" >> %s\n"
                    % (self.out, self.hook_log))
        os.chmod(hook, 0o755)
        users = "".join(
            "  - user: %s\n    controller: emu\n    sinks:\n"
            "      - {type: file, path: %s/%s.json, recipients: [deploy]}\n"
            "      - {type: exec, command: [%s], recipients: [deploy], timeout: 10s}\n"
            % (u, self.out, u, hook) for u in USERS)
        self.config = os.path.join(d, "config.yaml")
        with open(self.config, "w") as f:
            f.write("state_dir: %s\ncontrol: {socket: %s/control.sock}\n"
                    "controllers:\n  - name: emu\n    url: %s\n    admin_user: %s\n"
                    "    admin_token_file: %s\n    batch_size: 2\n"
                    "recipients:\n  deploy: %s\n"
                    "defaults: {schedule: every 7d, lifetime: 30d, grace: 0s, failure_budget: 1d}\n"
                    "users:\n%s"
                    % (self.state, d, self.emu.url, self.emu.admin_user, token_file, pub, users))
        os.chmod(self.config, 0o600)

    def tearDown(self):
        self.tmp.cleanup()

    def once(self, *args):
        r = subprocess.run([BIN, "once", "-c", self.config, *args], capture_output=True, text=True,
                           timeout=120)
        self.outputs.append(r.stdout + r.stderr)
        return r

    def whoami(self, user, token):
        r = self.emu.get("/whoAmI/api/json", auth=(user, token))
        return r.status, (r.json().get("name") if r.status == 200 else None)

    def test_two_passes_rotate_every_user_and_retire_the_old_tokens(self):
        self.outputs = []
        r = self.once()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        first = {}
        for u in USERS:
            self.assertIn("emu/" + u, r.stdout)
            env, token = open_envelope(os.path.join(self.out, u + ".json"), self.key)
            self.assertEqual(env["user"], u)
            self.assertEqual(env["controller"], "emu")
            self.assertEqual(self.whoami(u, token), (200, u))
            env2, token2 = open_envelope(os.path.join(self.out, u + ".exec.json"), self.key)
            self.assertEqual(token2, token)
            first[u] = (env, token)

        r = self.once("--force")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        second = {}
        for u in USERS:
            env, token = open_envelope(os.path.join(self.out, u + ".json"), self.key)
            self.assertNotEqual(token, first[u][1])
            self.assertEqual(self.whoami(u, token), (200, u))
            # grace: 0s: the first pass's token is revoked by the second pass.
            self.assertEqual(self.whoami(u, first[u][1])[0], 401)
            second[u] = (env, token)

        # plan reads the state: each slot's current token and its last rotation.
        r = subprocess.run([BIN, "plan", "-c", self.config, "--json", "--count", "1"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        plan = {s["user"]: s for s in json.loads(r.stdout)["slots"]}
        for u in USERS:
            st = plan[u]["state"]
            self.assertEqual(st["current_token"], second[u][0]["token_name"])
            self.assertLess(st["token_age_seconds"], 120)
            self.assertIsNotNone(st["last_rotation"])
            self.assertFalse(st["degraded"])
            # every 7d from the last rotation
            last = datetime.datetime.fromisoformat(st["last_rotation"].replace("Z", "+00:00"))
            run = datetime.datetime.fromisoformat(plan[u]["runs"][0].replace("Z", "+00:00"))
            self.assertEqual(run - last, datetime.timedelta(days=7))

        # Ordering: each old token was revoked after its successor reached every sink.
        events = self.emu.events()
        with open(self.hook_log) as f:
            hook_lines = f.read().splitlines()
        for u in USERS:
            old_uuid = first[u][0]["token_uuid"]
            new_name = second[u][0]["token_name"]
            revoked = [e for e in events if e["event"] == "token_revoked" and e["uuid"] == old_uuid]
            self.assertEqual(len(revoked), 1, events)
            t_revoked = datetime.datetime.fromisoformat(revoked[0]["time"].replace("Z", "+00:00")).timestamp()
            file_mtime = os.stat(os.path.join(self.out, u + ".json")).st_mtime
            hook_time = max(float(l.split()[0]) for l in hook_lines if l.split()[1] == u and l.split()[2] == new_name)
            self.assertGreaterEqual(t_revoked, file_mtime)
            self.assertGreaterEqual(t_revoked, hook_time)

        # No token in clear anywhere we wrote.
        tokens = [t for _, t in first.values()] + [t for _, t in second.values()]
        blobs = list(self.outputs)
        for root, _, files in os.walk(self.tmp.name):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    blobs.append(f.read().decode("latin-1"))
        for t in tokens:
            for b in blobs:
                self.assertNotIn(t, b)

    def test_the_audit_log_keeps_audit_retention_of_history(self):
        self.outputs = []
        with open(self.config) as f:
            text = f.read()
        with open(self.config, "w") as f:
            f.write(text.replace("state_dir:", "audit_retention: 2s\nstate_dir:", 1))
        self.assertEqual(self.once().returncode, 0)
        db = os.path.join(self.state, "state.db")
        with sqlite3.connect("file:%s?mode=ro" % db, uri=True) as c:
            first_events = c.execute("SELECT count(*), max(time) FROM audit").fetchone()
        self.assertGreater(first_events[0], 3)
        time.sleep(3.2)
        start = int(time.time())
        self.assertEqual(self.once("--force").returncode, 0)
        with sqlite3.connect("file:%s?mode=ro" % db, uri=True) as c:
            oldest, count = c.execute("SELECT min(time), count(*) FROM audit").fetchone()
        # Everything of the first pass is gone; the second pass's entries stay.
        self.assertGreaterEqual(oldest, start - 2)
        self.assertGreater(count, 3)

    def test_a_second_once_refuses_while_the_first_holds_the_state(self):
        self.outputs = []
        self.emu.fault("/scriptText", "delay_before", count=1, delay_ms=4000)
        first = subprocess.Popen([BIN, "once", "-c", self.config], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        r = self.once()
        out, err = first.communicate(timeout=120)
        self.assertEqual(first.returncode, 0, out + err)
        self.assertEqual(r.returncode, 1)
        self.assertIn("held by another jenkins-token-rotator process", r.stderr)


if __name__ == "__main__":
    unittest.main()
