"""Crash matrix (issue 10): `once` aborts at every named step of a rotation; the next
`once` must leave every slot with exactly one current token that authenticates and is in
every sink, no token of ours in Jenkins the state does not account for, and no old token
revoked before its successor reached every sink (DESIGN §1, §2.2 "Resume after restart").

Needs a binary built with -DJTR_CRASH_POINTS=ON (the sanitizer CI build); skipped with a
message otherwise. A release binary must have no crash points at all: checked against the
CMake cache of the build the binary comes from.
"""
import base64
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

import nacl.public

from emulator import EmulatorTestCase
from rotation_rig import BIN, RigTest, binary_has_crash_points, parse_time
from self_rotation_test import SelfRig

# The first visit of each point: between_sinks is visited after each sink that took the
# token, so it stops right after the file sink of the first slot.
POINTS = [
    "after_planning",
    "after_mint_answer",
    "between_batch_items",
    "after_minted",
    "after_verify",
    "between_sinks",
    "before_commit",
    "after_commit",
    "mid_prune",
]
USERS = ["a", "b"]  # batch_size 2: one batch of two, so between_batch_items is visited
# auth: self (issue 20): the points only the REST path visits. It visits the shared ones
# above too (rotate_batch, delivery and prune are one code path); SELF_CASES crash it at
# each step: (point, phase, fault). Phase "first" crashes the first rotation (the bootstrap
# token logs in and is swept after the commit), "force" a forced one that logs in with the
# kept token; the fault is injected on the first user's addFixedToken.
SELF_POINTS = ["self_after_intent", "self_lost_checked", "self_mid_sweep"]
SELF_CASES = [
    ("self_after_intent", "force", None),       # values sealed and committed, none sent
    ("after_mint_answer", "force", None),       # minted in Jenkins, nothing recorded
    ("between_batch_items", "force", None),
    ("after_minted", "force", None),            # recorded with its uuid, not verified
    ("after_verify", "force", None),
    ("before_commit", "force", None),           # delivered, not committed
    ("after_commit", "force", None),            # the old token not yet revoked
    ("mid_prune", "force", None),               # revoked over REST, not recorded
    ("after_commit", "first", None),            # the bootstrap token not yet swept
    ("self_mid_sweep", "first", None),          # swept in Jenkins, not recorded
    ("self_lost_checked", "force", "run_then_drop"),  # a lost mint proven made, not settled
    ("self_lost_checked", "force", "drop_before"),    # a lost mint proven not made
]


def build_cache_option(binary, option):
    """The value of a CMake cache option for the build tree holding ``binary``, or None."""
    d = os.path.dirname(os.path.abspath(binary))
    for _ in range(3):
        cache = os.path.join(d, "CMakeCache.txt")
        if os.path.exists(cache):
            with open(cache) as f:
                for line in f:
                    m = re.match(r"^%s:[A-Z]+=(.*)$" % re.escape(option), line.strip())
                    if m:
                        return m.group(1)
            return None
        d = os.path.dirname(d)
    return None


class CrashPointsInBinaryTest(unittest.TestCase):
    def test_crash_points_exist_exactly_when_the_build_asked_for_them(self):
        has = binary_has_crash_points()
        option = build_cache_option(BIN, "JTR_CRASH_POINTS")
        if option is None:
            self.skipTest("no CMakeCache.txt beside %s: cannot tell how it was built" % BIN)
        wanted = option.upper() in ("ON", "1", "TRUE", "YES")
        self.assertEqual(has, wanted,
                         "JTR_CRASH_POINTS=%s but the binary %s crash points"
                         % (option, "has" if has else "lacks"))
        build_type = build_cache_option(BIN, "CMAKE_BUILD_TYPE") or ""
        if not wanted and build_type != "Debug" and shutil.which("strip"):
            # Optimised, the inert calls vanish with their names (debug info aside; at -O0
            # the literals stay, inert).
            with tempfile.TemporaryDirectory() as d:
                stripped = os.path.join(d, "bin")
                subprocess.run(["strip", "--strip-debug", "-o", stripped, BIN], check=True)
                with open(stripped, "rb") as f:
                    data = f.read()
            from admin_token_rotation_test import ADMIN_POINTS
            for name in POINTS + SELF_POINTS + ADMIN_POINTS:
                self.assertNotIn(name.encode(), data, "a release binary names %s" % name)

    def test_the_matrix_covers_every_crash_point_in_the_sources(self):
        root = os.environ.get("JTR_SOURCE_DIR",
                              os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
        found = set()
        for d, _, files in os.walk(os.path.join(root, "daemon")):
            for name in files:
                if name.endswith(".cpp"):
                    with open(os.path.join(d, name)) as f:
                        found |= set(re.findall(r'crash_point\("([a-z_]+)"\)', f.read()))
        # The admin token's points have their cases in admin_token_rotation_test.
        from admin_token_rotation_test import ADMIN_POINTS
        self.assertEqual(found, set(POINTS) | set(SELF_POINTS) | set(ADMIN_POINTS),
                         "a crash point without a matrix case, or the reverse")
        self.assertTrue(set(SELF_POINTS) <= {p for p, _, _ in SELF_CASES})


@unittest.skipUnless(binary_has_crash_points(),
                     "the binary has no crash points: build with -DJTR_CRASH_POINTS=ON "
                     "(the sanitizer CI build does) to run the crash matrix")
class CrashMatrixTest(RigTest):
    def crash_case(self, point, users=None):
        """Abort a forced pass at `point` (NAME or NAME:N), then recover; users default to
        one batch of two."""
        users = users or ["cm-%s-%s" % (point.replace("_", ""), u) for u in USERS]
        rig = self.make_rig(users, sinks=("file", "exec"), batch_size=2, grace="0s")

        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        rig.check_invariants(self)

        r = rig.once("--force", env={"JTR_CRASH_AT": point})
        self.assertEqual(r.returncode, -signal.SIGABRT,
                         "%s: expected an abort, got %d\n%s" % (point, r.returncode, rig.log()))
        self.assertIn("crash point %s reached" % point.split(":")[0], r.stderr)

        # One pass resumes what the crash left (DESIGN §2.2 "Resume after restart").
        r = rig.once()
        self.assertIn(r.returncode, (0, 1), rig.log())
        rig.check_invariants(self)
        open_attempts = rig.query("SELECT seq, state FROM attempts WHERE state IN "
                                  "('planned', 'minted', 'verified', 'delivering')")
        self.assertEqual(open_attempts, [], "%s: attempts left open\n%s" % (point, rig.log()))
        # A rotation after recovery works and retires what came before.
        r = rig.once("--force")
        self.assertEqual(r.returncode, 0, rig.log())
        rig.check_invariants(self)

    def test_a_resumed_delivery_never_revokes_a_token_a_sink_may_hold(self):
        """Sink results are recorded per batch, so a crash can leave a sink holding a token
        the state does not know it holds; a resumed attempt is therefore never failed."""
        user = "cm-resumed-a"
        rig = self.make_rig([user], sinks=("exec-switch", "file"), batch_size=1, grace="0s",
                            retry="{attempts: 1, initial: 1s, max: 1s}")
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())

        # The hook takes the new token, then the process dies before the file sink.
        r = rig.once("--force", env={"JTR_CRASH_AT": "between_sinks"})
        self.assertEqual(r.returncode, -signal.SIGABRT, rig.log())
        exec_json = os.path.join(rig.out, user + ".exec.json")
        env, held = rig.open_envelope(exec_json)
        current = rig.query("SELECT t.uuid FROM tokens t JOIN slots s ON s.id = t.slot_id "
                            "WHERE s.user_display = ? AND t.role = 'current'", user)
        self.assertNotEqual(env["token_uuid"], current[0][0], "the hook holds the new token")
        self.assertEqual(rig.whoami(user, held), (200, user))

        # Every sink fails on resume: the hook is broken, the file's path is a directory.
        rig.break_switch(True)
        file_path = os.path.join(rig.out, user + ".json")
        os.rename(file_path, file_path + ".saved")
        os.mkdir(file_path)
        r = rig.once()
        self.assertEqual(r.returncode, 1, rig.log())
        self.assertEqual(rig.whoami(user, held), (200, user),
                         "the token the hook holds was revoked\n" + rig.log())
        state = rig.query("SELECT state FROM attempts a JOIN tokens t ON t.seq = a.seq "
                          "WHERE t.uuid = ?", env["token_uuid"])
        self.assertIn(state[0][0], ("verified", "delivering"), rig.log())
        self.assertEqual(rig.plan()[user]["state"]["degraded"], True, rig.log())

        # Once the sinks work again the same token commits everywhere.
        rig.break_switch(False)
        os.rmdir(file_path)
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        rig.check_invariants(self)
        _, in_file = rig.open_envelope(file_path)
        self.assertEqual(in_file, held, "the resumed attempt's own token reached the file")

    def crash_between_sinks(self, user, **kw):
        """A rig whose hook holds a new token the file sink never got: (rig, that envelope)."""
        rig = self.make_rig([user], sinks=("exec-switch", "file"), batch_size=1, grace="0s",
                            **kw)
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        r = rig.once("--force", env={"JTR_CRASH_AT": "between_sinks"})
        self.assertEqual(r.returncode, -signal.SIGABRT, rig.log())
        env, _ = rig.open_envelope(os.path.join(rig.out, user + ".exec.json"))
        state = rig.query("SELECT a.state FROM attempts a JOIN tokens t ON t.seq = a.seq "
                          "WHERE t.uuid = ?", env["token_uuid"])
        self.assertEqual(state, [("verified",)], rig.log())
        return rig, env

    def test_a_resumed_token_revoked_in_jenkins_is_superseded_not_delivered(self):
        user = "cm-gone-a"
        rig, env = self.crash_between_sinks(user)
        rig.revoke_in_jenkins(user, env["token_uuid"])
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        rig.check_invariants(self)
        cur = rig.open_envelope(os.path.join(rig.out, user + ".json"))[0]["token_uuid"]
        self.assertNotEqual(cur, env["token_uuid"], "the dead token was delivered")
        audit = [e for (e,) in rig.query("SELECT event FROM audit ORDER BY id")]
        self.assertIn("superseded", audit)
        self.assertEqual(rig.query("SELECT state FROM attempts a JOIN tokens t ON t.seq = a.seq "
                                   "WHERE t.uuid = ?", env["token_uuid"]), [("abandoned",)])

    def test_a_sink_changed_before_a_resumed_delivery_makes_a_new_attempt_supersede_it(self):
        user = "cm-changed-a"
        rig, env = self.crash_between_sinks(user)
        # The file sink the resumed attempt never reached moves: its envelope was sealed
        # for the old place, so a new attempt must replace the resumed one.
        moved = os.path.join(rig.out, user + ".moved.json")
        rig.edit_config("%s/%s.json," % (rig.out, user), "%s," % moved)
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        audit = [e for (e,) in rig.query("SELECT event FROM audit ORDER BY id")]
        self.assertIn("superseded", audit)
        new_env, new_token = rig.open_envelope(moved)
        hook_env, hook_token = rig.open_envelope(os.path.join(rig.out, user + ".exec.json"))
        self.assertNotEqual(new_env["token_uuid"], env["token_uuid"])
        self.assertEqual(hook_env["token_uuid"], new_env["token_uuid"])
        self.assertEqual(hook_token, new_token)
        self.assertEqual(rig.whoami(user, new_token), (200, user))
        current = rig.query("SELECT t.uuid FROM tokens t WHERE t.role = 'current'")
        self.assertEqual(current, [(new_env["token_uuid"],)])
        # The resumed attempt's token, which the hook held, retired once its successor
        # reached both sinks (grace 0s).
        self.assertEqual(rig.query("SELECT a.state, t.role FROM attempts a JOIN tokens t ON "
                                   "t.seq = a.seq WHERE t.uuid = ?", env["token_uuid"]),
                         [("abandoned", "revoked")])
        # ... and not before: its revocation comes after both deliveries of the new token.
        revoked = [parse_time(e["time"]) for e in self.emu.events()
                   if e["event"] == "token_revoked" and e["uuid"] == env["token_uuid"]]
        self.assertEqual(len(revoked), 1)
        hooked = [h[0] for h in rig.hook_entries()
                  if h[3] == new_env["token_uuid"] and h[4] == "ok"]
        self.assertTrue(hooked)
        self.assertGreaterEqual(revoked[0], os.stat(moved).st_mtime)
        self.assertGreaterEqual(revoked[0], min(hooked))
    def test_overlapping_batches_crash_at_any_moment_and_recover(self):
        """Twelve slots in batches of two: several batches mint, verify and deliver at
        once, so a crash leaves them at different steps."""
        for spec in ("between_sinks:7", "before_commit:2", "after_verify:3"):
            with self.subTest(crash_at=spec):
                tag = spec.split(":")[0].replace("_", "")
                self.crash_case(spec, ["cm-ov-%s-%02d" % (tag, i) for i in range(12)])

@unittest.skipUnless(binary_has_crash_points(),
                     "the binary has no crash points: build with -DJTR_CRASH_POINTS=ON "
                     "(the sanitizer CI build does) to run the crash matrix")
class SelfCrashMatrixTest(EmulatorTestCase):
    """auth: self: `once` aborts at each step of the REST path; the next `once` leaves each
    user holding exactly its current token in Jenkins (grace 0s: no previous one lives), the
    sealed value the daemon keeps for it still logs in and is what the sink holds, nothing
    is left open, and no plain token is at rest in the state directory, sinks or output."""

    def run_bin(self, rig, *args, env=None):
        e = dict(os.environ)
        e.pop("JTR_CRASH_AT", None)
        e.update(env or {})
        r = subprocess.run([BIN, *args, "-c", rig.config], capture_output=True, text=True,
                           timeout=120, env=e)
        rig.outputs.append(r.stdout + r.stderr)
        return r

    def kept(self, rig):
        """{seq: plain value} of every value the state keeps sealed, opened with the state
        key (as a thief holding both would)."""
        with open(os.path.join(rig.state_dir, "state_key")) as f:
            key = nacl.public.PrivateKey(base64.b64decode(f.read().strip()))
        box = nacl.public.SealedBox(key)
        return {seq: box.decrypt(base64.b64decode(sealed)).decode()
                for seq, sealed in rig.query("SELECT seq, sealed FROM self_secrets")}

    def check_self(self, rig, point):
        log = "\n----\n".join(rig.outputs)[-6000:]
        kept = self.kept(rig)
        rig.secrets |= set(kept.values())
        for u in rig.users:
            current = rig.current_uuid(u)
            self.assertIsNotNone(current, "%s: %s has no current token\n%s" % (point, u, log))
            self.assertEqual([t["uuid"] for t in rig.jenkins_tokens(u)], [current],
                             "%s: %s holds more than its current token\n%s" % (point, u, log))
            env, token = rig.envelope(u)
            self.assertEqual(env["token_uuid"], current, "%s: %s: the sink is behind" % (point, u))
            (seq,) = rig.query("SELECT seq FROM tokens WHERE uuid = ?", current)[0]
            self.assertIn(seq, kept, "%s: %s: the current token's value is not kept" % (point, u))
            self.assertEqual(kept[seq], token, "%s: %s: kept and delivered differ" % (point, u))
            self.assertEqual(rig.whoami(u, kept[seq]), (200, u),
                             "%s: %s: the kept token does not log in" % (point, u))
        self.assertEqual(rig.query("SELECT seq, state FROM attempts WHERE state IN "
                                   "('planned', 'minted', 'verified', 'delivering')"), [],
                         "%s: attempts left open\n%s" % (point, log))
        blobs = [("output", o.encode()) for o in rig.outputs]
        for root, _, files in os.walk(rig.dir):
            for name in files:
                if name.startswith("bootstrap-"):
                    continue  # the operator's file holds its token by design
                with open(os.path.join(root, name), "rb") as f:
                    blobs.append((os.path.join(root, name), f.read()))
        for secret in rig.secrets:
            for where, blob in blobs:
                self.assertNotIn(secret.encode(), blob, "%s: a plain token in %s" % (point, where))

    def self_case(self, point, phase, fault):
        tag = point.replace("_", "")[:12]
        users = ["scm-%s-%s-%s" % (tag, phase[0], u) for u in USERS]
        if fault:
            users = [u + fault[0] for u in users]
        self.emu.clear_faults()
        rig = SelfRig(self.emu, users)
        self.addCleanup(rig.cleanup)
        if phase == "force":
            r = self.run_bin(rig, "once")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.check_self(rig, point)
        if fault:
            self.emu.fault("/user/%s/descriptorByName/jenkins.security.ApiTokenProperty/"
                           "addFixedToken" % users[0], fault, count=1)
        args = ["once", "--force"] if phase == "force" else ["once"]
        r = self.run_bin(rig, *args, env={"JTR_CRASH_AT": point})
        self.emu.clear_faults()
        self.assertEqual(r.returncode, -signal.SIGABRT,
                         "%s: expected an abort, got %d\n%s" % (point, r.returncode,
                                                               r.stdout + r.stderr))
        self.assertIn("crash point %s reached" % point, r.stderr)
        # One pass resumes what the crash left; a first rotation cut short may still be due.
        r = self.run_bin(rig, "once")
        self.assertIn(r.returncode, (0, 1), r.stdout + r.stderr)
        if any(rig.current_uuid(u) is None for u in users):
            r = self.run_bin(rig, "once")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.check_self(rig, point)
        # A rotation after recovery logs in with the kept token and retires what came before.
        r = self.run_bin(rig, "once", "--force")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.check_self(rig, point)


def _make_self(point, phase, fault):
    def test(self):
        self.self_case(point, phase, fault)
    test.__doc__ = "auth: self: abort at %s (%s rotation%s), then recover" % (
        point, phase, ", " + fault if fault else "")
    return test


for _p, _phase, _fault in SELF_CASES:
    _name = "test_self_crash_at_%s_%s%s" % (_p, _phase, "_" + _fault if _fault else "")
    setattr(SelfCrashMatrixTest, _name, _make_self(_p, _phase, _fault))


def _make(point):
    def test(self):
        self.crash_case(point)
    test.__name__ = "test_crash_at_" + point
    test.__doc__ = "abort at %s, then recover" % point
    return test


for _p in POINTS:
    setattr(CrashMatrixTest, "test_crash_at_" + _p, _make(_p))


if __name__ == "__main__":
    unittest.main()
