"""auth: self (issue 20, docs/self-rotation.md): a controller with no admin credential in the
config. The real binary rotates, verifies, revokes and sweeps over Jenkins' REST endpoints as
each user; the emulator's script console is never called for it; a lost REST mint answer
leaves no orphan; no plain token is at rest in the state directory, the sinks or the logs.
"""
import base64
import json
import os
import sqlite3
import subprocess
import unittest

import nacl.public

from emulator import Emulator, EmulatorTestCase
from rotation_rig import BIN, make_rig_dirs

class SelfRig:
    """A config with one `auth: self` controller (no admin keys) and `users` on it, each with
    a bootstrap token planted by the test (as an operator would make it by hand)."""

    def __init__(self, emu, users, grace="0s", admin_emu=None, admin_users=()):
        self.emu = emu
        self.users = users
        pub = make_rig_dirs(self, "jtr-self-")
        d = self.dir
        self.secrets = set()  # every plain token value the test has seen
        self.outputs = []
        entries = []
        for u in users:
            path = self.plant_bootstrap(u)
            entries.append("  - user: %s\n    controller: lean\n    prune: all\n"
                           "    bootstrap_token_file: %s\n    sinks:\n"
                           "      - {type: file, path: %s/%s.json, recipients: [deploy]}\n"
                           % (u, path, self.out, u))
        admin_yaml = ""
        if admin_emu is not None:
            # Mixed: an admin controller (script console) beside the self one.
            token_file = os.path.join(d, "admin-token")
            with open(token_file, "w") as f:
                f.write(admin_emu.admin_token + "\n")
            os.chmod(token_file, 0o600)
            admin_yaml = ("  - {name: ci, url: %s, admin_user: %s, admin_token_file: %s}\n"
                          % (admin_emu.url, admin_emu.admin_user, token_file))
            for u in admin_users:
                admin_emu.create_user(u)
                entries.append("  - user: %s\n    controller: ci\n    sinks:\n"
                               "      - {type: file, path: %s/%s.json, recipients: [deploy]}\n"
                               % (u, self.out, u))
        self.config = os.path.join(d, "config.yaml")
        with open(self.config, "w") as f:
            f.write("state_dir: %s\ncontrol: {socket: %s/control.sock}\n" % (self.state_dir, d))
            f.write("retry: {attempts: 2, initial: 1s, max: 1s}\n")
            f.write("controllers:\n  - {name: lean, url: %s, auth: self, timeout: 10s}\n" % emu.url)
            f.write(admin_yaml)
            f.write("recipients:\n  deploy: %s\n" % pub)
            f.write("defaults: {schedule: every 7d, lifetime: 30d, grace: %s, "
                    "failure_budget: 1d}\n" % grace)
            f.write("users:\n" + "".join(entries))
        os.chmod(self.config, 0o600)

    def plant_bootstrap(self, user):
        """Creates `user` with a token it made for itself, kept in bootstrap-USER (0600) as
        an operator would; returns that file's path."""
        self.emu.create_user(user)
        value = self.bootstrap(user)
        path = os.path.join(self.dir, "bootstrap-" + user)
        with open(path, "w") as f:
            f.write(value + "\n")
        os.chmod(path, 0o600)
        return path

    def bootstrap(self, user):
        """A token the user made for itself (REST, as the user with its password and a crumb);
        the test never uses the script console for a self user."""
        auth = (user, user)
        r = self.emu.post("/user/%s/descriptorByName/jenkins.security.ApiTokenProperty/"
                          "generateNewToken" % user, {"newTokenName": "bootstrap"}, auth=auth,
                          headers=self.emu.crumb_headers(auth))
        if r.status != 200:
            raise AssertionError("bootstrap token for %s: HTTP %d %s" % (user, r.status, r.text))
        value = r.json()["data"]["tokenValue"]
        self.secrets.add(value)
        return value

    def cleanup(self):
        self.tmp.cleanup()

    def run(self, *args):
        r = subprocess.run([BIN, *args, "-c", self.config], capture_output=True, text=True,
                           timeout=120)
        self.outputs.append(r.stdout + r.stderr)
        return r

    def once(self, *args):
        return self.run("once", *args)

    def envelope(self, user):
        with open(os.path.join(self.out, user + ".json")) as f:
            env = json.load(f)
        box = nacl.public.SealedBox(self.key)
        token = box.decrypt(base64.b64decode(env["sealed"][0]["ciphertext"])).decode()
        self.secrets.add(token)
        return env, token

    def query(self, sql, *params):
        c = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.state_dir, "state.db"), uri=True)
        try:
            return c.execute(sql, params).fetchall()
        finally:
            c.close()

    def current_uuid(self, user):
        rows = self.query("SELECT t.uuid FROM tokens t JOIN slots s ON s.id = t.slot_id "
                          "WHERE s.user_key = ? AND t.role = 'current'", user.lower())
        return rows[0][0] if rows else None

    def jenkins_tokens(self, user):
        for u in self.emu.state()["users"]:
            if u["id"].lower() == user.lower():
                return u["tokens"]
        return []

    def whoami(self, user, token):
        r = self.emu.get("/whoAmI/api/json", auth=(user, token))
        return r.status, (r.json().get("name") if r.status == 200 else None)


class SelfRotationTest(EmulatorTestCase):
    def rig(self, users, **kw):
        rig = SelfRig(self.emu, users, **kw)
        self.addCleanup(rig.cleanup)
        self.emu.reset_counters()
        self.emu.clear_logs()
        return rig

    def assert_no_script(self):
        scripted = {k: v for k, v in self.emu.counters().items() if "scriptText" in k}
        self.assertEqual(scripted, {}, "the script console was called")
        self.assertEqual(self.emu.scripts(), [], "a script was compiled")

    def assert_only_current(self, rig, user):
        """The user holds exactly one token, the state's current, and it logs in; the sink
        holds it."""
        tokens = rig.jenkins_tokens(user)
        self.assertEqual([t["uuid"] for t in tokens], [rig.current_uuid(user)],
                         "%s holds %s" % (user, tokens))
        env, token = rig.envelope(user)
        self.assertEqual(env["token_uuid"], rig.current_uuid(user))
        self.assertEqual(rig.whoami(user, token), (200, user))
        return token

    def assert_nothing_plain(self, rig):
        """No token value the test saw is in the state directory (database, WAL, key), the
        sink files, or the daemon's output."""
        self.assertTrue(rig.secrets)
        blobs = []
        for root, _, files in os.walk(rig.dir):
            for name in files:
                if name.startswith("bootstrap-"):
                    continue  # the operator's file holds its token by design
                with open(os.path.join(root, name), "rb") as f:
                    blobs.append((os.path.join(root, name), f.read()))
        blobs += [("output", o.encode()) for o in rig.outputs]
        for secret in rig.secrets:
            for where, blob in blobs:
                self.assertNotIn(secret.encode(), blob, "a plain token in %s" % where)

    def test_rotations_revokes_and_expiry_over_rest_only(self):
        rig = self.rig(["self-a", "self-b"])
        r = rig.once()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("no longer needed", r.stdout + r.stderr)
        firsts = {}
        for u in rig.users:
            # grace 0s: the bootstrap token was swept in the same pass.
            firsts[u] = self.assert_only_current(rig, u)
            with open(os.path.join(rig.dir, "bootstrap-" + u)) as f:
                self.assertEqual(rig.whoami(u, f.read().strip())[0], 401)
            # Jenkins 2.560 expires it: a day that ends after the daemon's deadline.
            (t,) = rig.jenkins_tokens(u)
            self.assertIsNotNone(t["expiration"])
            env, _ = rig.envelope(u)
            self.assertTrue(t["expiration"] >= env["expires"][:10], (t, env["expires"]))
            self.assertTrue(env["jenkins_expires"].endswith("+14:00"), env["jenkins_expires"])
        # A forced rotation logs in with the kept token, and revokes the previous one.
        r = rig.once("--force")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for u in rig.users:
            second = self.assert_only_current(rig, u)
            self.assertNotEqual(second, firsts[u])
            self.assertEqual(rig.whoami(u, firsts[u])[0], 401)
        # The state keeps sealed values only, and its key was made 0600 on first use.
        key = os.path.join(rig.state_dir, "state_key")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        self.assertTrue(rig.query("SELECT count(*) FROM self_secrets")[0][0] >= 2)
        self.assert_no_script()
        self.assert_nothing_plain(rig)

    def test_lost_rest_mint_answer_leaves_no_orphan(self):
        rig = self.rig(["self-lost"])
        self.assertEqual(rig.once().returncode, 0)
        path = "/user/self-lost/descriptorByName/jenkins.security.ApiTokenProperty/addFixedToken"
        self.emu.fault(path, "run_then_drop", count=1)
        r = rig.once("--force")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The dropped mint ran: the daemon proved it by its value, abandoned it, minted anew
        # and swept it with revokeAllExcept.
        states = [s for (s,) in rig.query("SELECT state FROM attempts ORDER BY seq")]
        self.assertEqual(states, ["committed", "abandoned", "committed"])
        made = rig.query("SELECT detail FROM audit WHERE event = 'lost_mint'")
        self.assertTrue(made and "lost mint made" in made[0][0], made)
        self.assert_only_current(rig, "self-lost")
        self.assert_no_script()
        self.assert_nothing_plain(rig)

    def test_check_config_connect_logs_in_as_the_user(self):
        rig = self.rig(["self-cc"])
        r = rig.run("check-config", "--connect")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("lean: OK: Jenkins 2.560, auth: self as self-cc (REST, no admin; expiring "
                      "tokens: yes)", r.stdout)
        self.assert_no_script()
        self.assert_nothing_plain(rig)

    def test_lost_answer_before_running_leaves_nothing(self):
        rig = self.rig(["self-unmade"])
        self.assertEqual(rig.once().returncode, 0)
        path = "/user/self-unmade/descriptorByName/jenkins.security.ApiTokenProperty/addFixedToken"
        self.emu.fault(path, "drop_before", count=1)
        r = rig.once("--force")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_only_current(rig, "self-unmade")
        self.assert_no_script()


class SelfRotationOldJenkinsTest(EmulatorTestCase):
    """Jenkins before 2.260 has neither addFixedToken nor revokeAllExcept: refused, naming the
    controller, and nothing is minted."""

    EMULATOR = {"version": "2.250"}

    def test_refused_at_probe(self):
        rig = SelfRig(self.emu, ["self-old"])
        self.addCleanup(rig.cleanup)
        self.emu.reset_counters()
        r = rig.once()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("controller lean: auth: self needs Jenkins 2.260 or later", r.stdout + r.stderr)
        self.assertEqual(len(rig.jenkins_tokens("self-old")), 1)  # the bootstrap token only
        r = rig.run("check-config", "--connect")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("lean: FAILED: auth: self needs Jenkins 2.260 or later (addFixedToken and "
                      "revokeAllExcept); it runs 2.250 (probed as self-old)", r.stdout)
        self.assertEqual({k: v for k, v in self.emu.counters().items() if "scriptText" in k}, {})


class MixedControllersTest(unittest.TestCase):
    """An admin controller (script console) and a self one (REST) in one config, one
    emulator each: both rotate in one `once`; the self one's emulator runs no script."""

    @classmethod
    def setUpClass(cls):
        cls.admin_emu = Emulator(version="2.560")
        cls.self_emu = Emulator(version="2.462")

    @classmethod
    def tearDownClass(cls):
        cls.admin_emu.stop(remove=True)
        cls.self_emu.stop(remove=True)

    def test_both_rotate_and_only_the_admin_one_scripts(self):
        rig = SelfRig(self.self_emu, ["self-m"], admin_emu=self.admin_emu, admin_users=["adm-m"])
        self.addCleanup(rig.cleanup)
        self.self_emu.reset_counters()
        self.admin_emu.reset_counters()
        r = rig.once()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for emu, user in ((self.self_emu, "self-m"), (self.admin_emu, "adm-m")):
            env, token = rig.envelope(user)
            self.assertEqual(emu.get("/whoAmI/api/json", auth=(user, token)).json()["name"], user)
            self.assertEqual(env["token_uuid"], rig.current_uuid(user))
        # 2.462 (2.260-2.547): no expiry in Jenkins, the daemon's deadline only.
        env, _ = rig.envelope("self-m")
        self.assertIsNone(env["jenkins_expires"])
        self.assertEqual({k: v for k, v in self.self_emu.counters().items() if "scriptText" in k},
                         {})
        self.assertTrue(any("scriptText" in k for k in self.admin_emu.counters()))
        r = rig.once("--force")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual([t["uuid"] for t in rig.jenkins_tokens("self-m")],
                         [rig.current_uuid("self-m")])
        self.assertEqual({k: v for k, v in self.self_emu.counters().items() if "scriptText" in k},
                         {})


if __name__ == "__main__":
    unittest.main()
