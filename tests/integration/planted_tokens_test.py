"""Planted tokens (issue 10, issue 19 #2, DESIGN §1.3, §2.1, §2.2 "Orphans", "Prune"): a token
named like ours from another instance survives and is reported; names a service user forges
(our instance and a high seq, a made-up MAC, a copy of its own token's name) are reported and
change nothing; a restored old database stops pruning with a clear error; a hand-made token
survives `prune: managed` and goes under `prune: all` once older than `lifetime`.
"""
import os
import time
import unittest

from rotation_rig import RigTest


class PlantedTokensTest(RigTest):
    def names(self, rig, user):
        return {t["name"] for t in rig.jenkins_tokens(user)}

    def test_a_token_of_another_instance_survives_and_is_reported(self):
        rig = self.rig("pother")
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        other = "deadbeef" if rig.instance_id() != "deadbeef" else "feedface"
        planted = "rotator-%s-000001" % other
        u = rig.users[0]
        rig.plant(u, planted)
        for args in ((), ("--force",), ("--force",)):
            r = rig.once(*args)
            self.assertEqual(r.returncode, 0, rig.log())
            self.assertIn(planted, self.names(rig, u), "another instance's token was revoked")
        self.assertIn(planted, r.stdout + r.stderr, "once must report the foreign token")
        self.assertIn("another instance", r.stdout + r.stderr)
        p = rig.run("plan", "--connect")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(planted, p.stdout + p.stderr)
        rig.check_invariants(self)

    def test_forged_names_of_ours_change_nothing(self):
        # Issue 19 #2: svc-a, holding its own token (it is the consumer), names tokens like
        # ours with a high seq. They are reported and left alone; every slot of the
        # controller keeps rotating and pruning.
        rig = self.rig("pforge", grace="3s")
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        r = rig.once("--force")
        self.assertEqual(r.returncode, 0, rig.log())
        previous = [n for (n,) in rig.query(
            "SELECT a.token_name FROM tokens t JOIN attempts a ON a.seq = t.seq "
            "WHERE t.role = 'previous'")]
        self.assertEqual(len(previous), 2, rig.log())
        attacker = rig.users[0]
        _, token = rig.open_envelope(os.path.join(rig.out, attacker + ".json"))
        current = rig.query("SELECT a.token_name FROM tokens t JOIN attempts a ON a.seq = t.seq "
                            "JOIN slots s ON s.id = t.slot_id WHERE t.role = 'current' AND "
                            "s.user_display = ?", attacker)[0][0]
        forged = ["%s%06d" % (rig.prefix(), 999999),
                  "%s%06d-0123456789abcdef" % (rig.prefix(), 999999),
                  current]  # a copy of its own current token's name
        uuids = [rig.token_as_user(attacker, token, n) for n in forged]
        time.sleep(3.5)  # past retire_at: the previous tokens are due for pruning

        since = len(self.emu.events())
        r = rig.once("--force")
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, rig.log())
        self.assertNotIn("stale", out)
        for name in forged[:2]:
            self.assertIn(name, out, "the forged token must be reported")
        self.assertIn("named like ours", out)
        created = [e for e in self.emu.events()[since:] if e["event"] == "token_created"]
        self.assertEqual(sorted(e["user"] for e in created), sorted(rig.users),
                         "every slot of the controller rotates")
        revoked = {e["uuid"] for e in self.emu.events()[since:] if e["event"] == "token_revoked"}
        for uuid in uuids:
            self.assertNotIn(uuid, revoked, "a forged token was revoked (prune: managed)")
        live = self.names(rig, rig.users[0]) | self.names(rig, rig.users[1])
        for name in previous:
            self.assertNotIn(name, live, "pruning stopped: %s is still there" % name)
        for name in forged:
            self.assertIn(name, self.names(rig, attacker))
        p = rig.run("plan", "--connect")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(forged[0], p.stdout + p.stderr)
        rig.check_invariants(self)

    def test_a_restored_old_database_stops_pruning_and_the_slots_it_cannot_account_for(self):
        # A real restore: the backup predates tokens its own key named. Pruning on the
        # controller stops and the slots whose tokens give it away stop rotating; the
        # tokens the sinks hold stay alive; a slot untouched since the backup rotates.
        rig = self.rig("pstale", n=3, grace="3s")
        moved, kept = rig.users[:2], rig.users[2]
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        r = rig.once(*moved)
        self.assertEqual(r.returncode, 0, rig.log())
        backup = os.path.join(rig.dir, "state-backup.db")
        rig.backup_state(backup)
        time.sleep(3.5)
        r = rig.once(*moved)  # after the backup: new tokens the backup does not know
        self.assertEqual(r.returncode, 0, rig.log())
        held = {}
        for u in moved:
            env, token = rig.open_envelope(os.path.join(rig.out, u + ".json"))
            held[u] = (env["token_name"], token)
        rig.restore_state(backup)
        time.sleep(3.5)  # the restored database's previous tokens are past retire_at

        since = len(self.emu.events())
        r = rig.once("--force")
        out = r.stdout + r.stderr
        self.assertNotEqual(r.returncode, 0, rig.log())
        self.assertIn("stale", out)
        for u in moved:
            self.assertIn(held[u][0], out, "the error must name the token that gave it away")
        revoked = [e for e in self.emu.events()[since:] if e["event"] == "token_revoked"]
        self.assertEqual(revoked, [], "a stale database must not revoke anything\n" + rig.log())
        created = [e["user"] for e in self.emu.events()[since:] if e["event"] == "token_created"]
        self.assertEqual(created, [kept], "only the slot the backup still accounts for rotates")
        for u in moved:
            name, token = held[u]
            self.assertIn(name, self.names(rig, u))
            self.assertEqual(rig.whoami(u, token), (200, u), "the token a sink holds must live")
        p = rig.run("plan", "--connect")
        self.assertIn("stale", p.stdout + p.stderr)

    def test_a_hand_made_token_survives_managed_and_goes_under_all_once_older_than_lifetime(self):
        rig = self.rig("pall", user_extra={"pall-0": "prune: managed", "pall-1": "prune: all"})
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        # Jenkins' clock decides a token's age: make "hand-old" 40 days ago (lifetime 30d).
        shifted = self.emu.shift_clock(days=-40)
        try:
            old = {u: rig.plant(u, "hand-old") for u in rig.users}
        finally:
            self.emu.shift_clock(seconds=-shifted["shift_seconds"])
        young = {u: rig.plant(u, "hand-young") for u in rig.users}
        for u in rig.users:
            ages = {t["name"]: t["creation"] for t in rig.jenkins_tokens(u)}
            self.assertLess(ages["hand-old"], ages["hand-young"])

        for args in ((), ("--force",)):
            r = rig.once(*args)
            self.assertEqual(r.returncode, 0, rig.log())
        managed, everything = rig.users
        self.assertTrue({"hand-old", "hand-young"} <= self.names(rig, managed),
                        "prune: managed revoked a hand-made token\n" + rig.log())
        self.assertIn("hand-young", self.names(rig, everything),
                      "prune: all revoked a token younger than lifetime\n" + rig.log())
        self.assertNotIn("hand-old", self.names(rig, everything),
                         "prune: all kept a token older than lifetime\n" + rig.log())
        revoked = {e["uuid"] for e in self.emu.events() if e["event"] == "token_revoked"}
        self.assertIn(old[everything], revoked)
        self.assertNotIn(old[managed], revoked)
        self.assertNotIn(young[managed], revoked)
        self.assertNotIn(young[everything], revoked)
        rig.check_invariants(self)


if __name__ == "__main__":
    unittest.main()
