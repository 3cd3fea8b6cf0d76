"""Expiry (issue 10, DESIGN §2.3): on a controller at UTC+14 (Pacific/Kiritimati), with the
emulator's clock shifted, no token dies in Jenkins before the daemon's deadline, and the
prune revokes exactly the expired tokens of ours.
"""
import datetime
import os
import re
import time
import unittest
import zoneinfo

from rotation_rig import RigTest, parse_time

ZONE = "Pacific/Kiritimati"


class ExpiryTest(RigTest):
    EMULATOR = {"version": "2.560", "timezone": ZONE}

    def setUp(self):
        self.addCleanup(self.reset_clock)

    def reset_clock(self):
        shift = self.emu.shift_clock()["shift_seconds"]
        if shift:
            self.emu.shift_clock(seconds=-shift)

    def shift_to(self, instant):
        """Moves the emulator's clock so that its now is ``instant`` (unix seconds)."""
        current = self.emu.shift_clock()["shift_seconds"]
        self.emu.shift_clock(seconds=int(instant - time.time()) - current)

    def rig(self, tag, n=1, **kw):
        kw.setdefault("lifetime", "2d")
        return super().rig(tag, n, schedule="every 1d", failure_budget="1h", **kw)

    def jenkins_end(self, expiration):
        """The first instant a token with Jenkins expiry date ``expiration`` is dead: the
        local midnight after that day in the controller's zone."""
        day = datetime.date.fromisoformat(expiration) + datetime.timedelta(days=1)
        return datetime.datetime.combine(day, datetime.time(0),
                                         tzinfo=zoneinfo.ZoneInfo(ZONE)).timestamp()

    def assert_alive_until_deadline(self, rig, skew):
        """The token in the file sink still authenticates when the daemon's clock reaches
        two minutes before its deadline (Jenkins' clock then reads deadline + skew)."""
        u = rig.users[0]
        env, token = rig.open_envelope(os.path.join(rig.out, u + ".json"))
        deadline = parse_time(env["expires"])
        self.assertIsNotNone(env["jenkins_expires"], "2.560 has expiring tokens")
        self.assertTrue(env["jenkins_expires"].endswith("+14:00"), env["jenkins_expires"])
        self.assertGreaterEqual(parse_time(env["jenkins_expires"]), deadline + skew - 1)
        # What Jenkins stores, read back: its last valid day ends after the deadline.
        (listed,) = [t for t in rig.jenkins_tokens(u) if t["uuid"] == env["token_uuid"]]
        self.assertGreaterEqual(self.jenkins_end(listed["expiration"]), deadline + skew)
        self.shift_to(deadline + skew - 120)
        self.assertEqual(rig.whoami(u, token), (200, u),
                         "dead in Jenkins before the daemon's deadline %s (Jenkins expiry %s)"
                         % (env["expires"], listed["expiration"]))
        # And Jenkins does enforce it: a day after its expiry the token is refused.
        self.shift_to(self.jenkins_end(listed["expiration"]) + 60)
        self.assertEqual(rig.whoami(u, token)[0], 401)
        self.reset_clock()

    def test_no_token_dies_in_jenkins_before_the_daemons_deadline(self):
        rig = self.rig("xdead")
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        self.assert_alive_until_deadline(rig, skew=0)

    def test_a_controller_40_days_ahead_still_rotates(self):
        # Issue 19 #11: with the expiry computed on our clock every token was born expired
        # there ("Jenkins refused the new token (401)"), pass after pass.
        self.emu.shift_clock(days=40)
        rig = self.rig("xahead")
        u = rig.users[0]
        r = rig.once()
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, rig.log())
        # Once per pass; measured to within half the probe's latency.
        self.assertEqual(len(re.findall(r"Jenkins' clock is 40d(?:\d+s)? ahead of ours", out)), 1,
                         out)
        env, token = rig.open_envelope(os.path.join(rig.out, u + ".json"))
        self.assertEqual(rig.whoami(u, token), (200, u))
        # Jenkins' expiry is its own now plus the lifetime: 40 days past our deadline.
        self.assertGreaterEqual(parse_time(env["jenkins_expires"]),
                                parse_time(env["expires"]) + 40 * 86400 - 60)
        (listed,) = [t for t in rig.jenkins_tokens(u) if t["uuid"] == env["token_uuid"]]
        self.assertGreaterEqual(self.jenkins_end(listed["expiration"]),
                                parse_time(env["expires"]) + 40 * 86400 - 60)
        # A second pass, forced: rotates again, no refusal.
        r = rig.once("--force")
        self.assertEqual(r.returncode, 0, rig.log())
        rig.check_invariants(self)

    def test_prune_revokes_exactly_the_expired_tokens_of_ours(self):
        # xprune-0 rotates twice: a 2-day token, then (lifetime raised to 10 days) a 10-day
        # one; the 2-day token is `previous`, retiring after a 20 h grace by the daemon's
        # clock. Four days later by Jenkins' clock it is expired there: the prune takes it,
        # and nothing else. (Only the emulator's clock moves, as a controller's host clock
        # would: its stubs and its scripts read it; the daemon mints nothing here.)
        rig = self.rig("xprune", n=2, grace="20h", user_extra={"xprune-1": "lifetime: 10d"})
        short, long_ = rig.users
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        first = rig.open_envelope(os.path.join(rig.out, short + ".json"))[0]
        kept = rig.open_envelope(os.path.join(rig.out, long_ + ".json"))[0]
        rig.edit_config("lifetime: 2d", "lifetime: 10d")
        r = rig.once(short)
        self.assertEqual(r.returncode, 0, rig.log())
        second = rig.open_envelope(os.path.join(rig.out, short + ".json"))[0]
        self.assertEqual(rig.query("SELECT role FROM tokens WHERE uuid = ?", first["token_uuid"]),
                         [("previous",)])
        # Tokens that are not ours and will be expired too: a person's, another instance's.
        tomorrow = (datetime.date.fromisoformat(self.emu.state()["today"])
                    + datetime.timedelta(days=1)).isoformat()
        other = "deadbeef" if rig.instance_id() != "deadbeef" else "feedface"
        foreign = [rig.plant(short, "hand-expiring", expires=tomorrow),
                   rig.plant(short, "rotator-%s-000001" % other, expires=tomorrow)]
        since = len(self.emu.events())

        self.emu.shift_clock(days=4)  # past the first token's Jenkins expiry only
        (t,) = [t for t in rig.jenkins_tokens(short) if t["uuid"] == first["token_uuid"]]
        self.assertLess(self.jenkins_end(t["expiration"]), time.time() + 4 * 86400)
        r = rig.once()
        self.assertEqual(r.returncode, 0, rig.log())
        revoked = [e["uuid"] for e in self.emu.events()[since:] if e["event"] == "token_revoked"]
        self.assertEqual(revoked, [first["token_uuid"]],
                         "exactly the expired token of ours goes\n" + rig.log())
        live = {t["uuid"] for u in rig.users for t in rig.jenkins_tokens(u)}
        self.assertIn(second["token_uuid"], live)
        self.assertIn(kept["token_uuid"], live)
        for uuid in foreign:
            self.assertIn(uuid, live)
        self.reset_clock()
        rig.check_invariants(self)


if __name__ == "__main__":
    unittest.main()
