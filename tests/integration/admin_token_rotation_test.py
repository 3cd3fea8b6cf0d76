"""admin_token_rotation (issue 20, second half; docs/admin-token-rotation.md): the daemon
rotates the admin token it authenticates with, against the emulator with the real binary.

Each test makes an admin user of its own (the class's emulator admin is the control API's),
whose first token is the bootstrap in admin_token_file. Checked: the token rotates (`once` and
the daemon's schedule), the daemon keeps working with the new one, the old one is refused after
`grace` and not before, `store: file` rewrites the file (mode kept), `store: state` keeps only a
sealed value, a lost mint answer leaves no orphan, and, in crash-point builds, a kill at each
step of the rotation leaves an admin token that works and exactly one of ours.
"""
import base64
import glob
import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import unittest
import urllib.request

import nacl.public

from rotation_rig import BIN, Rig, RigTest, binary_has_crash_points

# Every crash point of the admin path (rotation/admin_token.cpp), in the order a rotation
# visits them; crash_matrix_test checks that the sources hold exactly these plus its own.
ADMIN_POINTS = [
    "admin_token_planned",
    "admin_token_mint_answer",
    "admin_token_minted",
    "admin_token_verified",
    "admin_token_file_written",
    "admin_token_switched",
    "admin_token_retired",
]


class AdminRig(Rig):
    """A Rig whose controller authenticates as a fresh admin user of its own, with
    ``admin_token_rotation`` set to ``rotation`` (YAML flow mapping text)."""

    def __init__(self, emu, users, admin, rotation, **kw):
        super().__init__(emu, users, **kw)
        emu.create_user(admin, admin=True)
        self.admin = admin
        self.bootstrap = self.mint_admin_token("bootstrap")
        self.token_file = os.path.join(self.dir, "admin-token")
        with open(self.token_file, "w") as f:
            f.write(self.bootstrap + "\n")
        self.edit_config("    admin_user: %s\n" % emu.admin_user,
                         "    admin_user: %s\n    admin_token_rotation: %s\n" % (admin, rotation))
        self.seen_values = {self.bootstrap}

    def mint_admin_token(self, name):
        status, body = self.emu.script(
            'def p = User.getById("%s", false).getProperty(jenkins.security.ApiTokenProperty)\n'
            'println "VALUE=" + p.tokenStore.generateNewToken("%s").plainValue' % (self.admin, name))
        for line in body.splitlines():
            if line.startswith("VALUE="):
                return line[6:]
        raise AssertionError("minting the bootstrap token failed: %d %s" % (status, body))

    def state_key(self):
        with open(os.path.join(self.state_dir, "state_key")) as f:
            return nacl.public.PrivateKey(base64.b64decode(f.read().strip()))

    def admin_rows(self):
        return self.query("SELECT seq, name, uuid, sealed, state FROM admin_tokens ORDER BY id")

    def current(self):
        try:
            rows = [r for r in self.admin_rows() if r[4] == "current"]
        except sqlite3.OperationalError:
            return None  # a daemon that has not made its state yet (no file, or no schema)
        return rows[0] if len(rows) == 1 else None

    def credential(self):
        """The admin token the daemon uses now: the current row's sealed value (store: state),
        else the file (store: file, or before the first switch)."""
        cur = self.current()
        if cur and cur[3]:
            value = nacl.public.SealedBox(self.state_key()).decrypt(
                base64.b64decode(cur[3])).decode()
        else:
            with open(self.token_file) as f:
                value = f.read().strip()
        self.seen_values.add(value)
        return value

    def admin_works(self, token):
        """(whoAmI status, probe script status): the token logs in as the admin and may run a
        script (Overall/Administer)."""
        who = self.whoami(self.admin, token)
        status, body = self.emu.script('println "ADMIN-OK"', user=self.admin, token=token)
        return who == (200, self.admin) and status == 200 and "ADMIN-OK" in body

    def our_admin_tokens(self):
        return [t for t in self.jenkins_tokens(self.admin) if t["name"] != "bootstrap"]

    def scan_for_values(self, test, extra_texts=()):
        """No plain admin token value (any seen) in the state dir, the outputs or the sinks."""
        files = [p for p in glob.glob(os.path.join(self.state_dir, "**"), recursive=True)
                 + glob.glob(os.path.join(self.out, "*")) if os.path.isfile(p)]
        for value in self.seen_values:
            for p in files:
                with open(p, "rb") as f:
                    test.assertNotIn(value.encode(), f.read(), "a plain admin token in %s" % p)
            for text in list(self.outputs) + list(extra_texts):
                test.assertNotIn(value, text, "a plain admin token in the output")


class AdminTokenRotationTest(RigTest):
    def admin_rig(self, tag, rotation, users=1, **kw):
        names = ["at-%s-%d" % (tag, i) for i in range(users)]
        for u in names:
            self.emu.create_user(u)
        rig = AdminRig(self.emu, names, "adm-" + tag, rotation, **kw)
        self.addCleanup(rig.cleanup)
        return rig

    def test_once_rotates_with_store_state_and_keeps_only_a_sealed_value(self):
        rig = self.admin_rig("state", "{schedule: every 30d, grace: 1h}")
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        cur = rig.current()
        self.assertIsNotNone(cur, "no current admin token\n%s" % rig.log())
        seq, name, uuid, sealed, _ = cur
        self.assertTrue(name.startswith("rotator-admin-%s-" % rig.instance_id()), name)
        self.assertIsNotNone(sealed, "store: state keeps the sealed value")
        new = rig.credential()
        self.assertNotEqual(new, rig.bootstrap)
        self.assertTrue(rig.admin_works(new), "the new admin token does not work as admin")
        # The grace (1h) has not passed: the bootstrap still works and is known by uuid.
        self.assertTrue(rig.admin_works(rig.bootstrap))
        boot = [row for row in rig.admin_rows() if row[0] is None]
        self.assertEqual(len(boot), 1, "the bootstrap token was not identified: %r" % rig.admin_rows())
        self.assertEqual(boot[0][4], "previous")
        boot_uuid = [t["uuid"] for t in rig.jenkins_tokens(rig.admin) if t["name"] == "bootstrap"]
        self.assertEqual([boot[0][2]], boot_uuid)
        # The file is still the bootstrap: the daemon uses the state's newest token.
        with open(rig.token_file) as f:
            self.assertEqual(f.read().strip(), rig.bootstrap)
        # Not due again: a second once mints nothing; a user rotation works with the new one.
        r = rig.once("--force", rig.users[0])
        self.assertEqual(r.returncode, 0, rig.log())
        self.assertEqual(rig.current()[1], name, "rotated again although not due")
        rig.check_invariants(self)
        # The new token authenticated that pass: Jenkins counted its use.
        used = [t for t in rig.jenkins_tokens(rig.admin) if t["uuid"] == uuid]
        self.assertTrue(used and used[0].get("useCounter", 0) > 0, used)
        # Without admin_token_rotation the daemon keeps the state's token (the file's may be
        # revoked by then) instead of locking itself out, and says it no longer rotates it.
        rig.revoke_in_jenkins(rig.admin, boot[0][2])
        self.assertEqual(rig.whoami(rig.admin, rig.bootstrap)[0], 401)
        rig.edit_config("    admin_token_rotation: {schedule: every 30d, grace: 1h}\n", "")
        r = rig.once("--force")
        self.assertEqual(r.returncode, 0, rig.log())
        self.assertIn("no longer rotated", r.stderr)
        self.assertEqual(rig.current()[1], name)
        rig.scan_for_values(self)

    def test_once_with_store_file_rewrites_the_token_file_keeping_its_mode(self):
        rig = self.admin_rig("file", "{schedule: every 30d, grace: 0s, store: file}")
        before = os.stat(rig.token_file)
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        cur = rig.current()
        self.assertIsNotNone(cur, rig.log())
        self.assertIsNone(cur[3], "store: file keeps no sealed value once switched")
        with open(rig.token_file) as f:
            new = f.read().strip()
        rig.seen_values.add(new)
        after = os.stat(rig.token_file)
        self.assertNotEqual(new, rig.bootstrap)
        self.assertEqual(after.st_mode & 0o7777, 0o600)
        self.assertEqual((after.st_uid, after.st_gid), (before.st_uid, before.st_gid))
        self.assertTrue(rig.admin_works(new))
        # grace 0s: the bootstrap was revoked in the same pass, after the switch.
        self.assertEqual(rig.whoami(rig.admin, rig.bootstrap)[0], 401)
        self.assertEqual([t["uuid"] for t in rig.jenkins_tokens(rig.admin)], [cur[2]])
        r = rig.once("--force")
        self.assertEqual(r.returncode, 0, rig.log())
        # --force rotates the admin token too: the file holds a third token, the second is gone.
        with open(rig.token_file) as f:
            third = f.read().strip()
        rig.seen_values.add(third)
        self.assertNotEqual(third, new)
        self.assertEqual(rig.whoami(rig.admin, new)[0], 401)
        self.assertTrue(rig.admin_works(third))
        self.assertEqual(len(rig.jenkins_tokens(rig.admin)), 1)
        rig.check_invariants(self)
        rig.scan_for_values(self)

    def test_store_file_refuses_a_token_file_the_daemon_cannot_replace(self):
        rig = self.admin_rig("badfile", "{store: file}")
        os.chmod(rig.token_file, 0o400)
        r = rig.run("check-config")
        self.assertEqual(r.returncode, 78, r.stdout + r.stderr)
        self.assertIn("controllers[0].admin_token_rotation.store", r.stderr)
        self.assertIn("0600", r.stderr)

    def test_a_lost_mint_answer_is_found_by_name_and_revoked(self):
        rig = self.admin_rig("lost", "{schedule: every 30d, grace: 0s}")
        # The admin step is the first of the pass: the first mint script is the admin token's.
        self.emu.fault("/scriptText", "run_then_drop", count=1, match="JTR-TOKEN")
        r = rig.once()
        self.emu.clear_faults()
        self.assertIn("looking", r.stderr, rig.log())
        states = [row[4] for row in rig.admin_rows() if row[0] is not None]
        self.assertEqual(states, ["abandoned"], rig.log())
        # Nothing of ours left in Jenkins but what the state knows: the bootstrap only.
        self.assertEqual([t["name"] for t in rig.jenkins_tokens(rig.admin)], ["bootstrap"])
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        cur = rig.current()
        self.assertIsNotNone(cur)
        self.assertEqual([t["uuid"] for t in rig.jenkins_tokens(rig.admin)], [cur[2]])
        self.assertTrue(rig.admin_works(rig.credential()))
        rig.scan_for_values(self)

    def test_the_daemon_rotates_on_schedule_and_revokes_the_old_token_after_grace(self):
        grace = 8
        # Never rotated: due at start-up; then every minute.
        rig = self.admin_rig("daemon", "{schedule: every 1m, jitter: 0s, grace: %ds}" % grace)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        rig.edit_config("controllers:\n", "prune_interval: 2s\nmetrics: {listen: 127.0.0.1:%d}\n"
                        "controllers:\n" % port)
        log_path = os.path.join(rig.dir, "daemon.log")
        log = open(log_path, "w")

        def read_log():
            with open(log_path) as f:
                return f.read()

        d = subprocess.Popen([BIN, "daemon", "-c", rig.config], stdout=log,
                             stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and rig.current() is None:
                time.sleep(0.2)
            cur = rig.current()
            self.assertIsNotNone(cur, read_log())
            switched_at = rig.query("SELECT switched FROM admin_tokens WHERE state = 'current'")[0][0]
            new = rig.credential()
            # Before the grace is over the old token still works.
            self.assertTrue(rig.admin_works(rig.bootstrap), "the old token died before grace")
            # The daemon works with the new token: a user rotation succeeds.
            # (--all would rotate the admin token too.)
            r = rig.run("rotate", "emu/" + rig.users[0], "--wait")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr + read_log())
            refused_at = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if rig.whoami(rig.admin, rig.bootstrap)[0] == 401:
                    refused_at = time.time()
                    break
                time.sleep(0.5)
            self.assertIsNotNone(refused_at, "the old token was never revoked\n" + read_log())
            self.assertGreaterEqual(refused_at - switched_at, grace - 1)
            self.assertTrue(rig.admin_works(new))
            self.assertEqual([t["uuid"] for t in rig.jenkins_tokens(rig.admin)], [cur[2]])
            r = rig.run("status", "--json")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            status = json.loads(r.stdout)["admin_tokens"]
            self.assertEqual(len(status), 1, r.stdout)
            self.assertEqual(status[0]["token"], cur[1])
            self.assertEqual(status[0]["store"], "state")
            self.assertGreaterEqual(status[0]["age_s"], grace - 1)
            self.assertIsNotNone(status[0]["next_rotation"])
            r = rig.run("status")
            self.assertIn("ADMIN TOKEN", r.stdout)
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as m:
                text = m.read().decode()
            self.assertRegex(text, r'(?m)^jtr_admin_token_age_seconds\{controller="emu"\} \d+$')
            self.assertRegex(
                text, r'(?m)^jtr_admin_token_rotations_total\{controller="emu",result="rotated"\} 1$')
            # With the old token revoked, a user rotation still works: the daemon uses the new one.
            r = rig.run("rotate", "emu/" + rig.users[0], "--wait")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr + read_log())
            # A minute after the first switch the schedule rotates it again, by itself.
            second = None
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                second = rig.current()
                if second and second[1] != cur[1]:
                    break
                time.sleep(0.5)
            self.assertNotEqual(second[1], cur[1], "no scheduled rotation\n" + read_log())
            second_at = rig.query("SELECT switched FROM admin_tokens WHERE state = 'current'")[0][0]
            self.assertGreaterEqual(second_at - switched_at, 59, "rotated before its schedule")
            self.assertTrue(rig.admin_works(rig.credential()))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and rig.whoami(rig.admin, new)[0] != 401:
                time.sleep(0.5)
            self.assertEqual(rig.whoami(rig.admin, new)[0], 401, read_log())
            self.assertEqual([t["uuid"] for t in rig.jenkins_tokens(rig.admin)], [second[2]])
        finally:
            d.send_signal(signal.SIGTERM)
            d.wait(timeout=30)
            log.close()
        rig.check_invariants(self)
        rig.scan_for_values(self, [read_log()])


class AdminTokenRotationOldJenkinsTest(RigTest):
    """Jenkins 2.250: no helpers (tokenStore.* and user.save()), no expiring tokens; the
    bootstrap is still found by its hash (HashedToken.match exists since 2.129)."""
    EMULATOR = {"version": "2.250"}

    def test_once_rotates_and_revokes_the_bootstrap_on_the_store_variant(self):
        self.emu.create_user("at-old-0")
        rig = AdminRig(self.emu, ["at-old-0"], "adm-old", "{grace: 0s, store: file}")
        self.addCleanup(rig.cleanup)
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        cur = rig.current()
        self.assertIsNotNone(cur, rig.log())
        new = rig.credential()
        self.assertTrue(rig.admin_works(new))
        self.assertEqual(rig.whoami(rig.admin, rig.bootstrap)[0], 401)
        self.assertEqual([t["uuid"] for t in rig.jenkins_tokens(rig.admin)], [cur[2]])
        rig.check_invariants(self)
        rig.scan_for_values(self)


@unittest.skipUnless(binary_has_crash_points(),
                     "the binary has no crash points: build with -DJTR_CRASH_POINTS=ON "
                     "(the sanitizer CI build does) to run the admin token crash matrix")
class AdminTokenCrashTest(RigTest):
    def crash_case(self, point, store):
        tag = "%s-%s" % (point.replace("admin_token_", "").replace("_", ""), store)
        user = "ac-%s" % tag
        self.emu.create_user(user)
        rig = AdminRig(self.emu, [user], "adm-" + tag, "{grace: 0s, store: %s}" % store)
        self.addCleanup(rig.cleanup)
        r = rig.once(env={"JTR_CRASH_AT": point})
        self.assertEqual(r.returncode, -signal.SIGABRT,
                         "%s: expected an abort, got %d\n%s" % (point, r.returncode, rig.log()))
        self.assertIn("crash point %s reached" % point, r.stderr)
        # The restart settles what the crash left and ends with one working admin token.
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        self.check_one_working_token(rig, point)
        # And the next rotation works from there.
        r = rig.once("--force")
        self.assertEqual(r.returncode, 0, rig.log())
        self.check_one_working_token(rig, point)
        rig.check_invariants(self)
        rig.scan_for_values(self)

    def check_one_working_token(self, rig, point):
        cur = rig.current()
        self.assertIsNotNone(cur, "%s: no current admin token\n%s" % (point, rig.log()))
        self.assertTrue(rig.admin_works(rig.credential()),
                        "%s: the daemon's admin token does not work" % point)
        open_rows = [r for r in rig.admin_rows() if r[4] in ("planned", "minted")]
        self.assertEqual(open_rows, [], "%s: admin attempts left open" % point)
        # grace 0s: exactly one admin token lives, ours and current (none orphaned).
        self.assertEqual([t["uuid"] for t in rig.jenkins_tokens(rig.admin)], [cur[2]],
                         "%s: %r\n%s" % (point, rig.jenkins_tokens(rig.admin), rig.log()))


def _make(point, store):
    def test(self):
        self.crash_case(point, store)
    test.__name__ = "test_crash_at_%s_store_%s" % (point, store)
    return test


for _p in ADMIN_POINTS:
    for _s in ("state", "file"):
        if _p == "admin_token_file_written" and _s == "state":
            continue  # visited only with store: file
        setattr(AdminTokenCrashTest, "test_crash_at_%s_store_%s" % (_p, _s), _make(_p, _s))


if __name__ == "__main__":
    unittest.main()
