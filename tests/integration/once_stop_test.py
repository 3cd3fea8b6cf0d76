"""Issue 14: `once` stops cleanly on SIGTERM, a lost mint whose revoke fails is not
reported as settled, and `plan --connect` writes nothing.

Runs the real binary against the emulator (rotation_rig.RigTest).
"""
import hashlib
import os
import signal
import subprocess
import time
import unittest

from rotation_rig import BIN, RigTest

MINT = "JTR-TOKEN"    # text only the mint script carries (its output marker)
REVOKE = "not_found"  # text only the revoke script carries


def gone(pid):
    """True when no process `pid` runs (never existed, reaped, or a zombie)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def group_gone(pgid):
    """True when no live process is left in process group `pgid`."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return False
    return True


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class OnceStopTest(RigTest):
    def created(self, user):
        return [e for e in self.emu.events() if e["event"] == "token_created" and e["user"] == user]

    def test_sigterm_kills_the_hook_group_and_the_next_once_resumes_without_minting(self):
        rig = self.rig("stop", n=1)
        (user,) = rig.users
        hook = os.path.join(rig.dir, "hooks", "exec")
        with open(hook) as f:
            fast = f.read()
        pid_file = os.path.join(rig.dir, "hook.pid")
        child_file = os.path.join(rig.dir, "hook-child.pid")
        slow = ("#!/bin/sh\ncat > /dev/null\necho $$ > %s\n"
                "sleep 120 &\necho $! > %s\nwait\n" % (pid_file, child_file))
        with open(hook + ".new", "w") as f:
            f.write(slow)
        os.chmod(hook + ".new", 0o755)
        os.rename(hook + ".new", hook)

        p = subprocess.Popen([BIN, "once", "-c", rig.config], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 90
            while not (os.path.exists(child_file) and os.path.getsize(child_file) > 0):
                self.assertIsNone(p.poll(), "once ended before its hook ran")
                self.assertLess(time.time(), deadline, "the hook never started")
                time.sleep(0.05)
            with open(pid_file) as f:
                hook_pid = int(f.read())
            with open(child_file) as f:
                child_pid = int(f.read())
            sent = time.monotonic()
            p.send_signal(signal.SIGTERM)
            out, err = p.communicate(timeout=30)
            took = time.monotonic() - sent
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertLess(took, 5, "once took %.1f s to stop\n%s%s" % (took, out, err))
        self.assertNotEqual(p.returncode, 0, out + err)
        self.assertIn("stopped", err)
        # The hook's whole process group is gone: the hook and the child it started.
        deadline = time.time() + 5
        while not (group_gone(hook_pid) and gone(child_pid)) and time.time() < deadline:
            time.sleep(0.05)
        self.assertTrue(gone(hook_pid), "the hook survived once")
        self.assertTrue(gone(child_pid), "the hook's child survived once")
        self.assertTrue(group_gone(hook_pid), "the hook's process group survived once")
        # A state the next run resumes: the attempt is open past its mint.
        (state,) = rig.query("SELECT state FROM attempts ORDER BY seq DESC LIMIT 1")[0]
        self.assertIn(state, ("verified", "delivering"))

        minted = len(self.created(user))
        self.assertEqual(minted, 1)
        with open(hook + ".new", "w") as f:
            f.write(fast)
        os.chmod(hook + ".new", 0o755)
        os.rename(hook + ".new", hook)
        r = rig.once()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(len(self.created(user)), minted, "the resumed attempt minted again")
        (state,) = rig.query("SELECT state FROM attempts ORDER BY seq DESC LIMIT 1")[0]
        self.assertEqual(state, "committed")
        rig.check_invariants(self)

    def test_lost_mint_whose_revoke_fails_fails_the_pass_until_it_is_revoked(self):
        rig = self.rig("lostrev", n=1)
        (user,) = rig.users
        self.emu.fault("/scriptText", "run_then_drop", count=1, match=MINT)
        self.emu.fault("/scriptText", "status", count=50, match=REVOKE, status=500)
        try:
            r = rig.once()
        finally:
            self.emu.clear_faults()
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("revoke failed", r.stdout + r.stderr)
        (name, state) = rig.query("SELECT token_name, state FROM attempts ORDER BY seq LIMIT 1")[0]
        self.assertEqual(state, "planned", "the unsettled lost mint must stay open")
        lost = [t for t in rig.jenkins_tokens(user) if t["name"] == name]
        self.assertEqual(len(lost), 1, "the lost mint is still in Jenkins")
        audit = [row[0] + ": " + row[1] for row in
                 rig.query("SELECT event, detail FROM audit ORDER BY id")]
        self.assertTrue(any("lost_mint_revoke_failed" in a for a in audit), audit)
        self.assertFalse(any("found by name and revoked" in a for a in audit), audit)

        # The next pass settles it (the slot then rotates); the abandoned attempt is still
        # reported, as every abandoned attempt is.
        r = rig.once()
        self.assertIn("lost mint found by name and revoked", r.stdout, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"emu/%s +committed" % user)
        revoked = [e for e in self.emu.events()
                   if e["event"] == "token_revoked" and e["uuid"] == lost[0]["uuid"]]
        self.assertEqual(len(revoked), 1, "the next pass must revoke the lost mint")
        (state,) = rig.query("SELECT state FROM attempts WHERE token_name = ?", name)[0]
        self.assertEqual(state, "abandoned")
        audit = [row[0] + ": " + row[1] for row in
                 rig.query("SELECT event, detail FROM audit ORDER BY id")]
        self.assertTrue(any("found by name and revoked" in a for a in audit), audit)
        rig.check_invariants(self)

    def test_plan_connect_leaves_the_state_byte_identical(self):
        rig = self.rig("planro", n=2)
        r = rig.once()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # Something for the preview to talk about: a name shaped like ours without its MAC
        # (reported, never ours) and a new slot.
        rig.plant(rig.users[0], rig.prefix() + "000001")
        self.emu.create_user("planro-new")
        rig.edit_config("users:\n", "users:\n  - user: planro-new\n    controller: emu\n"
                        "    sinks:\n      - {type: file, path: %s/planro-new.json, "
                        "recipients: [deploy]}\n" % rig.out)
        db = os.path.join(rig.state_dir, "state.db")
        wal = db + "-wal"
        before = sha256(db)
        wal_before = os.path.getsize(wal) if os.path.exists(wal) else 0
        p = rig.run("plan", "--connect")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("named like ours", p.stdout)
        self.assertEqual(sha256(db), before, "plan --connect changed state.db")
        # Nor was anything written ahead into the log.
        wal_after = os.path.getsize(wal) if os.path.exists(wal) else 0
        self.assertLessEqual(wal_after, wal_before)
        new = rig.query("SELECT COUNT(*) FROM slots WHERE user_display = 'planro-new'")[0][0]
        self.assertEqual(new, 0, "plan --connect must not make slot rows")


if __name__ == "__main__":
    unittest.main()
