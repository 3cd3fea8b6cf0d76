"""Permanent slot errors (issue 10, DESIGN §2.2 "Slot errors"): a user Jenkins does not
know, and one outside the security realm (login answers 500), back off for hours without
churn, while the other slots of the same batch rotate as usual."""
import datetime
import hashlib
import os
import time
import unittest

from rotation_rig import Rig, RigTest

OK = "se-ok"
GHOST = "se-ghost"  # in Jenkins, not in the realm: /whoAmI as its token gives 500
MISSING = "se-missing"  # never created in Jenkins


def utc(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class SlotErrorsTest(RigTest):
    EMULATOR = {"version": "2.560", "users": [OK]}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.emu.create_user(GHOST, realm=False)

    def minted_for(self, user):
        return [e for e in self.emu.events() if e["event"] == "token_created" and e["user"] == user]

    def test_unknown_and_realmless_users_back_off_for_hours_without_churn(self):
        rig = Rig(self.emu, [OK, GHOST, MISSING], sinks=("file",), batch_size=3)
        self.addCleanup(rig.cleanup)  # its users exist already (or must not)
        started = time.time()
        r = rig.once()
        self.assertEqual(r.returncode, 1, rig.log())
        out = r.stdout + r.stderr
        self.assertIn("%s: mint for %s: unknown_user" % ("emu/" + MISSING, MISSING), out)
        self.assertIn("emu/%s: verify:" % GHOST, out)

        plan = rig.plan()
        self.assertEqual(plan[OK]["state"]["current_token"][:len(rig.prefix())], rig.prefix())
        for u in (GHOST, MISSING):
            backoff = plan[u]["state"]["backoff_until"]
            self.assertIsNotNone(backoff, plan[u])
            # DESIGN §2.2: "backoff up to 6 h": the first failure already waits the maximum.
            self.assertGreater(utc(backoff), started + 5.9 * 3600, plan[u])
            self.assertLess(utc(backoff), time.time() + 6 * 3600 + 60, plan[u])
        # The ghost's token was minted, failed verification, and is gone again.
        self.assertEqual(len(self.minted_for(GHOST)), 1)
        self.assertEqual([t for t in rig.jenkins_tokens(GHOST)
                          if t["name"].startswith(rig.prefix())], [])

        self.assertIn(self.mint_template(), [s["template_sha256"] for s in self.emu.scripts()])

        # Passes within the backoff leave both alone: no mint, no new token, no error.
        scripts_before = len(self.emu.scripts())
        for _ in range(2):
            r = rig.once()
            self.assertEqual(r.returncode, 0, rig.log())
        self.assertEqual(len(self.minted_for(GHOST)), 1)
        mints = [s for s in self.emu.scripts()[scripts_before:]
                 if s["template_sha256"] == self.mint_template()]
        self.assertEqual(mints, [], "a pass within the backoff minted again")
        states = rig.query("SELECT a.state, count(*) FROM attempts a JOIN slots s ON "
                           "s.id = a.slot_id WHERE s.user_display IN (?, ?) GROUP BY a.state",
                           GHOST, MISSING)
        self.assertEqual(dict(states), {"failed": 2}, "one failed attempt each, nothing more")
        # The healthy slot was not held back by its neighbours.
        rig.users = [OK]
        rig.check_invariants(self)

    @staticmethod
    def mint_template():
        """The SHA-256 of the mint script as embedded: the emulator logs each compiled
        script's with its payload masked (template_sha256)."""
        path = os.path.join(os.environ.get("JTR_SOURCE_DIR", "."), "daemon", "jenkins",
                            "scripts", "mint.groovy")
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

if __name__ == "__main__":
    unittest.main()
