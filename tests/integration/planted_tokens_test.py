"""Planted tokens (issue 10, DESIGN §1.3, §2.2 "Orphans", "Prune"): a token named like ours
from another instance survives and is reported; one with our instance id and a seq above
the database's highest stops pruning with a clear error; a hand-made token survives
`prune: managed` and goes under `prune: all` once older than `lifetime`.
"""
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

    def test_a_seq_above_the_databases_highest_stops_pruning_with_a_clear_error(self):
        rig = self.rig("pstale", grace="3s")
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        r = rig.once("--force")
        self.assertEqual(r.returncode, 0, rig.log())
        # The first pass's tokens are `previous` now, retiring in 3 s.
        previous = rig.query("SELECT a.token_name FROM tokens t JOIN attempts a ON a.seq = t.seq "
                             "WHERE t.role = 'previous'")
        self.assertEqual(len(previous), 2, rig.log())
        highest = rig.query("SELECT last_seq FROM instance")[0][0]
        planted = "rotator-%s-%06d" % (rig.instance_id(), highest + 500)
        u = rig.users[0]
        rig.plant(u, planted)
        time.sleep(3.5)  # past retire_at: only the stale guard keeps them now

        r = rig.once()
        self.assertNotEqual(r.returncode, 0, rig.log())
        out = r.stdout + r.stderr
        self.assertIn("stale", out)
        self.assertIn(planted, out, "the error must name the token that gave it away")
        live = self.names(rig, rig.users[0]) | self.names(rig, rig.users[1])
        for (name,) in previous:
            self.assertIn(name, live, "a stale database must not prune (%s went)" % name)
        self.assertIn(planted, live, "the unknown token of ours is left for the operator")
        p = rig.run("plan", "--connect")
        self.assertIn("stale", p.stdout + p.stderr)

        # The operator removes the token: pruning resumes.
        status, body = self.emu.script(
            'def p = User.getById("%s", false).getProperty(jenkins.security.ApiTokenProperty)\n'
            'p.tokenList.findAll { it.name == "%s" }.each { p.revokeToken(it.uuid) }' % (u, planted))
        self.assertEqual(status, 200, body)
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        live = self.names(rig, rig.users[0]) | self.names(rig, rig.users[1])
        for (name,) in previous:
            self.assertNotIn(name, live)
        rig.check_invariants(self)

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
