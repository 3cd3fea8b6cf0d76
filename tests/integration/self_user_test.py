"""auth: self per user (issue 20): on a controller with an admin credential, one user says
`auth: self` and rotates over REST with its own token (bootstrap file, sealed kept token,
sweep), while the controller's other users take the script path as its admin. The real
binary against one emulator: both rotate, verify and revoke; every REST call for the self
user logs in as that user with a token of its own; no plain token is at rest.
"""
import json
import os
import signal
import subprocess
import time
import unittest

from emulator import EmulatorTestCase
from rotation_rig import make_rig_dirs
from self_rotation_test import BIN, SelfRig

REST = "/user/%s/descriptorByName/jenkins.security.ApiTokenProperty/%s"


class MixedUserRig(SelfRig):
    """One admin controller `ci` with script-path users `admin_users` and `self_users`
    saying `auth: self` (each with a bootstrap token it made for itself)."""

    def __init__(self, emu, self_users, admin_users, grace="0s"):  # pylint: disable=super-init-not-called
        self.emu = emu
        self.users = list(self_users) + list(admin_users)
        pub = make_rig_dirs(self, "jtr-selfuser-")
        d = self.dir
        self.secrets = set()
        self.outputs = []
        self.bootstrap_uuids = {}
        token_file = os.path.join(d, "admin-token")
        with open(token_file, "w") as f:
            f.write(emu.admin_token + "\n")
        os.chmod(token_file, 0o600)
        entries = []
        for u in self_users:
            path = self.plant_bootstrap(u)
            self.bootstrap_uuids[u] = [t["uuid"] for t in self.jenkins_tokens(u)]
            entries.append("  - user: %s\n    controller: ci\n    auth: self\n    prune: all\n"
                           "    bootstrap_token_file: %s\n    sinks:\n"
                           "      - {type: file, path: %s/%s.json, recipients: [deploy]}\n"
                           % (u, path, self.out, u))
        for u in admin_users:
            emu.create_user(u)
            entries.append("  - user: %s\n    controller: ci\n    sinks:\n"
                           "      - {type: file, path: %s/%s.json, recipients: [deploy]}\n"
                           % (u, self.out, u))
        self.config = os.path.join(d, "config.yaml")
        with open(self.config, "w") as f:
            f.write("state_dir: %s\ncontrol: {socket: %s/control.sock}\n" % (self.state_dir, d))
            f.write("retry: {attempts: 2, initial: 1s, max: 1s}\n")
            f.write("controllers:\n  - {name: ci, url: %s, admin_user: %s, admin_token_file: %s, "
                    "timeout: 10s}\n" % (emu.url, emu.admin_user, token_file))
            f.write("recipients:\n  deploy: %s\n" % pub)
            f.write("defaults: {schedule: every 7d, lifetime: 30d, grace: %s, "
                    "failure_budget: 1d}\n" % grace)
            f.write("users:\n" + "".join(entries))
        os.chmod(self.config, 0o600)


class SelfUserOnAdminControllerTest(EmulatorTestCase):
    def rig(self, self_users, admin_users, **kw):
        rig = MixedUserRig(self.emu, self_users, admin_users, **kw)
        self.addCleanup(rig.cleanup)
        # After the bootstrap tokens were made (with the users' passwords).
        self.emu.reset_counters()
        self.emu.clear_logs()
        return rig

    def assert_only_current(self, rig, user):
        tokens = rig.jenkins_tokens(user)
        self.assertEqual([t["uuid"] for t in tokens], [rig.current_uuid(user)],
                         "%s holds %s\n%s" % (user, tokens, rig.outputs[-1]))
        env, token = rig.envelope(user)
        self.assertEqual(env["token_uuid"], rig.current_uuid(user))
        self.assertEqual(rig.whoami(user, token), (200, user))
        return token

    def assert_logins_are_its_own(self, rig, user):
        """Every login as `user` used a token of that user (the bootstrap one or one the
        daemon minted for it): nothing logged in as it with anything else."""
        own = set(rig.bootstrap_uuids.get(user, []))
        own |= {u for (u,) in rig.query(
            "SELECT t.uuid FROM tokens t JOIN slots s ON s.id = t.slot_id WHERE s.user_key = ?",
            user.lower())}
        logins = [e for e in self.emu.events() if e["event"] == "login" and e["user"] == user]
        self.assertTrue(logins, "nobody logged in as %s" % user)
        for e in logins:
            self.assertIn(e["uuid"], own, "%s logged in with %r" % (user, e))
        return logins

    def assert_nothing_plain(self, rig):
        self.assertTrue(rig.secrets)
        blobs = []
        for root, _, files in os.walk(rig.dir):
            for name in files:
                if name.startswith("bootstrap-") or name == "admin-token":
                    continue  # the operator's files hold their tokens by design
                with open(os.path.join(root, name), "rb") as f:
                    blobs.append((os.path.join(root, name), f.read()))
        blobs += [("output", o.encode()) for o in rig.outputs]
        for secret in rig.secrets:
            for where, blob in blobs:
                self.assertNotIn(secret.encode(), blob, "a plain token in %s" % where)

    def test_a_self_user_and_an_admin_user_of_one_controller_both_rotate(self):
        me, adm = "su-self", "su-adm"
        rig = self.rig([me], [adm, "su-adm2"])
        r = rig.once()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("%s: first rotation committed" % ("ci/" + me), r.stdout + r.stderr)
        firsts = {u: self.assert_only_current(rig, u) for u in rig.users}
        # The bootstrap token was swept (grace 0s) by the user itself.
        with open(os.path.join(rig.dir, "bootstrap-" + me)) as f:
            self.assertEqual(rig.whoami(me, f.read().strip())[0], 401)
        counters = self.emu.counters()
        # addFixedToken answers 403 to anyone but the user itself (reference §4): that it
        # made the token proves the self user's own token was used.
        self.assertEqual(counters.get("POST " + REST % (me, "addFixedToken")), 1, counters)
        self.assertEqual(counters.get("POST " + REST % (me, "revokeAllExcept")), 1, counters)
        self.assertTrue(counters.get("POST /scriptText", 0) >= 2, counters)  # probe, list, mint
        for u in (adm, "su-adm2"):
            self.assertEqual([k for k in counters if k.startswith("POST /user/%s/" % u)], [])
        self.assert_logins_are_its_own(rig, me)
        # The state keeps the self user's current token sealed, the admin users' not at all.
        kept = rig.query("SELECT s.user_key FROM self_secrets x JOIN tokens t ON t.seq = x.seq "
                         "JOIN slots s ON s.id = t.slot_id WHERE t.role = 'current'")
        self.assertEqual(kept, [(me,)])

        self.emu.reset_counters()
        r = rig.once("--force")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for u in rig.users:
            second = self.assert_only_current(rig, u)
            self.assertNotEqual(second, firsts[u])
            self.assertEqual(rig.whoami(u, firsts[u])[0], 401, "%s: the old token lives" % u)
        counters = self.emu.counters()
        # The second rotation logged in with the kept token and revoked the old one by uuid.
        self.assertEqual(counters.get("POST " + REST % (me, "addFixedToken")), 1, counters)
        self.assertEqual(counters.get("POST " + REST % (me, "revoke")), 1, counters)
        self.assert_logins_are_its_own(rig, me)
        self.assert_nothing_plain(rig)

    def test_check_config_takes_a_self_user_on_an_admin_controller(self):
        rig = self.rig(["su-cc"], ["su-cc-adm"])
        r = rig.run("check-config")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The reverse, auth: admin for a user of a self controller, is refused.
        with open(rig.config) as f:
            text = f.read()
        with open(rig.config, "w") as f:
            f.write(text.replace("admin_user: %s, admin_token_file: %s/admin-token, "
                                 % (self.emu.admin_user, rig.dir), "auth: self, ")
                    .replace("    controller: ci\n    sinks:", "    controller: ci\n"
                             "    auth: admin\n    sinks:"))
        r = rig.run("check-config")
        self.assertEqual(r.returncode, 78, r.stdout + r.stderr)
        self.assertIn("users[1].auth: expected auth: self (or none) for a user of controller "
                      "\"ci\", found auth: admin", r.stderr)


class SelfUserOnOldJenkinsTest(EmulatorTestCase):
    """Jenkins before 2.260 has no addFixedToken: the self user is refused (check-config
    --connect and each pass), naming the controller; the script-path user rotates."""

    EMULATOR = {"version": "2.250"}

    def test_the_self_user_is_refused_and_the_admin_user_rotates(self):
        rig = MixedUserRig(self.emu, ["old-self"], ["old-adm"])
        self.addCleanup(rig.cleanup)
        r = rig.run("check-config", "--connect")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("ci: FAILED: auth: self (user old-self) needs Jenkins 2.260 or later "
                      "(addFixedToken and revokeAllExcept); it runs 2.250", r.stdout)
        r = rig.once()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("controller ci: auth: self needs Jenkins 2.260 or later", r.stdout + r.stderr)
        self.assertEqual(len(rig.jenkins_tokens("old-self")), 1)  # the bootstrap token only
        self.assertIsNone(rig.current_uuid("old-self"))
        env, token = rig.envelope("old-adm")
        self.assertEqual(env["token_uuid"], rig.current_uuid("old-adm"))
        self.assertEqual(rig.whoami("old-adm", token), (200, "old-adm"))


class RevokedKeptTokenTest(EmulatorTestCase):
    """A self slot whose kept token someone revoked in Jenkins: the slot fails naming the
    user, the controller and bootstrap_token_file (status and the slot's state say so); the
    other users go on; a new token in bootstrap_token_file starts it over."""

    def daemon_status(self, rig, slot):
        """Starts the daemon, asks it to rotate `slot` (which fails) and returns
        (rotate's answer, status --json's entry for the slot)."""
        err = open(os.path.join(rig.dir, "daemon.log"), "w")
        env = {k: v for k, v in os.environ.items()
               if k not in ("JTR_CRASH_AT", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID")}
        proc = subprocess.Popen([BIN, "daemon", "-c", rig.config], stdout=subprocess.DEVNULL,
                                stderr=err, env=env)
        try:
            sock = os.path.join(rig.dir, "control.sock")
            end = time.monotonic() + 30
            while not os.path.exists(sock) and time.monotonic() < end:
                time.sleep(0.1)
            rotate = rig.run("rotate", "--wait", slot)
            st = rig.run("status", "--json")
            self.assertEqual(st.returncode, 0, st.stdout + st.stderr)
            entry = {s["slot"]: s for s in json.loads(st.stdout)["slots"]}[slot]
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                err.close()
            with open(os.path.join(rig.dir, "daemon.log")) as f:
                rig.outputs.append(f.read())
        return rotate, entry

    def test_a_kept_token_revoked_out_of_band_fails_the_slot_until_bootstrapped_again(self):
        a, b = "oob-a", "oob-b"
        rig = SelfRig(self.emu, [a, b])
        self.addCleanup(rig.cleanup)
        self.assertEqual(rig.once().returncode, 0, rig.outputs[-1])
        first_b = rig.current_uuid(b)
        # Someone revokes a's current token in Jenkins (the web UI, as an administrator).
        r = self.emu.post(REST % (a, "revoke"), {"tokenUuid": rig.current_uuid(a)})
        self.assertEqual(r.status, 200)

        r = rig.once("--force")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        why = ("controller lean: user %s: Jenkins refuses the token the daemon keeps for this "
               "user (revoked or expired outside the rotator?), and the token in "
               "bootstrap_token_file %s/bootstrap-%s too: the slot cannot rotate until "
               "bootstrap_token_file holds a current token of %s again" % (a, rig.dir, a, a))
        self.assertIn(why, r.stdout + r.stderr)
        # The other user of the controller rotated all the same.
        self.assertNotEqual(rig.current_uuid(b), first_b)
        self.assertEqual([t["uuid"] for t in rig.jenkins_tokens(b)], [rig.current_uuid(b)])
        # The slot's state says it fails (plan, and the status and metrics read the same row).
        p = rig.run("plan", "--json", "--count", "1")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        state = {s["user"]: s for s in json.loads(p.stdout)["slots"]}[a]["state"]
        self.assertIn(why, state["last_error"] or "")

        rotate, entry = self.daemon_status(rig, "lean/" + a)
        self.assertNotEqual(rotate.returncode, 0, rotate.stdout + rotate.stderr)
        self.assertIn(why, rotate.stdout + rotate.stderr)
        self.assertEqual(entry["last_result"], "failed", entry)
        self.assertIn(why, entry["last_error"], entry)
        self.assertGreaterEqual(entry["consecutive_failures"], 2, entry)

        # The operator gives a new token of a's in bootstrap_token_file: a rotates again,
        # and that token is swept after the commit (grace 0s), as a first bootstrap is.
        value = rig.bootstrap(a)
        path = os.path.join(rig.dir, "bootstrap-" + a)
        with open(path, "w") as f:
            f.write(value + "\n")
        r = rig.once("--force")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for u in (a, b):
            self.assertEqual([t["uuid"] for t in rig.jenkins_tokens(u)], [rig.current_uuid(u)])
            env, token = rig.envelope(u)
            self.assertEqual(env["token_uuid"], rig.current_uuid(u))
            self.assertEqual(rig.whoami(u, token), (200, u))
        self.assertEqual(rig.whoami(a, value)[0], 401, "the new bootstrap token was not swept")
        self.assertEqual(self.emu.counters().get("POST /scriptText"), None)


if __name__ == "__main__":
    unittest.main()
