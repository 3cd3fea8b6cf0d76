"""Version gating (2.250, 2.547, 2.560) and token expiry in the JVM's time zone."""

import datetime
import os
import sys
import unittest
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from emulator import Emulator  # noqa: E402

PROP = 'def u = User.getById("svc", false)\ndef p = u.getProperty(jenkins.security.ApiTokenProperty)\n'


class ExpiryTokyoTest(unittest.TestCase):
    """2.560 with --timezone Asia/Tokyo: a token is valid through its expiration day, local time."""

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(version="2.560", timezone="Asia/Tokyo", users=["svc"])

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop(remove=True)

    def test_token_dies_at_local_midnight(self):
        emu = self.emu
        state = emu.state()
        self.assertEqual(state["timezone"], "Asia/Tokyo")
        tokyo_now = datetime.datetime.now(ZoneInfo("Asia/Tokyo"))
        today = datetime.date.fromisoformat(state["today"])
        self.assertEqual(today, tokyo_now.date())
        status, body = emu.script(
            PROP + 'def r = p.generateNewToken("expiring", java.time.LocalDate.parse("%s"))\n'
                   'return r.plainValue + " " + r.expirationDate + " " + r.aboutToExpire' % today.isoformat())
        self.assertEqual(status, 200, body)
        token, exp_text = body[len("Result: "):].strip().split(" ", 1)
        self.assertTrue(exp_text.endswith(" true"), exp_text)  # about to expire: within 7 days
        self.assertNotEqual(exp_text.split(" ")[0], "Never")
        self.assertEqual(emu.get("/whoAmI/api/json", auth=("svc", token)).status, 200)

        midnight = datetime.datetime.combine(today + datetime.timedelta(days=1), datetime.time(0),
                                             ZoneInfo("Asia/Tokyo"))
        # Local midnight in Tokyo is 15:00 UTC, so this cut-off is not the UTC day boundary.
        self.assertEqual(midnight.astimezone(datetime.timezone.utc).hour, 15)
        to_midnight = (midnight - datetime.datetime.now(ZoneInfo("Asia/Tokyo"))).total_seconds()
        moved = emu.shift_clock(seconds=int(to_midnight) - 30)
        self.assertEqual(moved["today"], today.isoformat())
        self.assertEqual(emu.get("/whoAmI/api/json", auth=("svc", token)).status, 200)
        moved = emu.shift_clock(seconds=60)
        self.assertEqual(moved["today"], (today + datetime.timedelta(days=1)).isoformat())
        self.assertEqual(emu.get("/whoAmI/api/json", auth=("svc", token)).status, 401)

        # Still listed, flagged expired.
        status, body = emu.script(PROP + 'def t = p.tokenList.find { it.name == "expiring" }\n'
                                         'return [t.expired, t.aboutToExpire]')
        self.assertEqual(body, "Result: [true, true]\n")
        names = [t["name"] for u in emu.state()["users"] if u["id"] == "svc" for t in u["tokens"]]
        self.assertIn("expiring", names)

        # A whole day later a token created now with a 1-day REST expiry is still valid today.
        emu.shift_clock(days=1)
        r = emu.post("/user/svc/descriptorByName/jenkins.security.ApiTokenProperty/generateNewToken",
                     {"newTokenName": "rest", "expirationDuration": "1"}, auth=("svc", "svc"),
                     headers=self.crumb_headers(("svc", "svc")))
        self.assertEqual(r.status, 200, r.text)
        self.assertNotEqual(r.json()["data"]["expirationDate"], "never")
        self.assertEqual(emu.get("/whoAmI/api/json", auth=("svc", r.json()["data"]["tokenValue"])).status, 200)

    def crumb_headers(self, auth):
        c = self.emu.get("/crumbIssuer/api/json", auth=auth)
        return {"Jenkins-Crumb": c.json()["crumb"], "Cookie": c.headers["Set-Cookie"].split(";")[0]}


class Version2547Test(unittest.TestCase):
    """2.547: helpers exist, the expiring overloads do not."""

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(version="2.547", users=["svc"])

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop(remove=True)

    def test_expiring_overload_is_a_missing_method(self):
        status, body = self.emu.script(PROP + 'p.generateNewToken("x", java.time.LocalDate.now())')
        self.assertEqual(status, 200)
        first = body.splitlines()[0]
        self.assertEqual(first, "groovy.lang.MissingMethodException: No signature of method: "
                                "jenkins.security.ApiTokenProperty.generateNewToken() is applicable for argument "
                                "types: (java.lang.String, java.time.LocalDate) values: "
                                "[x, %s]" % first.rsplit("[x, ", 1)[1][:-1])
        self.assertIn("Possible solutions: generateNewToken(java.lang.String)", body)
        self.assertIn("\n\tat ", body)

    def test_reflection_agrees(self):
        status, body = self.emu.script(
            'try { jenkins.security.ApiTokenProperty.class.getMethod("generateNewToken", String, '
            'java.time.LocalDate); "present" } catch (NoSuchMethodException e) { "absent" }')
        self.assertEqual(body, "Result: absent\n")

    def test_plain_helper_works_and_has_no_expiration_fields(self):
        status, body = self.emu.script(PROP + 'def r = p.generateNewToken("plain")\n'
                                              'return r.getClass().name + " " + r.plainValue')
        cls, value = body[len("Result: "):].split()
        self.assertEqual(cls, "jenkins.security.apitoken.TokenUuidAndPlainValue")
        self.assertEqual(self.emu.get("/whoAmI/api/json", auth=("svc", value)).status, 200)
        status, body = self.emu.script(PROP + 'p.tokenList[0].expired')
        self.assertTrue(body.startswith("groovy.lang.MissingFieldException")
                        or body.startswith("groovy.lang.MissingPropertyException"), body)
        self.assertEqual(self.emu.get("/api/json").headers["X-Jenkins"], "2.547")


class Version2250Test(unittest.TestCase):
    """2.250: no ApiTokenProperty helpers; tokenStore + user.save() is the way."""

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(version="2.250", users=["svc"])

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop(remove=True)

    def test_helpers_are_absent(self):
        for call in ('p.generateNewToken("x")', 'p.revokeAllTokens()', 'p.addFixedNewToken("n", "11" + "a" * 32)'):
            status, body = self.emu.script(PROP + call)
            self.assertTrue(body.startswith("groovy.lang.MissingMethodException: No signature of method: "
                                            "jenkins.security.ApiTokenProperty."), body)
        status, body = self.emu.script("Class.forName('jenkins.security.apitoken.TokenUuidAndPlainValue')")
        self.assertTrue(body.startswith("java.lang.ClassNotFoundException"), body)

    def test_token_store_and_save_persist(self):
        emu = self.emu
        status, body = emu.script(PROP + 'def r = p.tokenStore.generateNewToken("old-style")\nu.save()\n'
                                         'return r.getClass().name + " " + r.plainValue')
        cls, value = body[len("Result: "):].split()
        self.assertEqual(cls, "jenkins.security.apitoken.ApiTokenStore$TokenUuidAndPlainValue")
        self.assertEqual(emu.get("/whoAmI/api/json", auth=("svc", value)).status, 200)
        emu.restart()
        self.assertEqual(emu.get("/whoAmI/api/json", auth=("svc", value)).status, 200)
        self.assertEqual(emu.post("/computer/(master)/scriptText", {"script": "print 1"}).text, "1")
        base = "/user/svc/descriptorByName/jenkins.security.ApiTokenProperty/"
        self.assertEqual(emu.post(base + "revokeAll", {}, auth=("svc", value)).status, 404)
        r = emu.post(base + "generateNewToken", {"newTokenName": "r"}, auth=("svc", value))
        self.assertEqual(sorted(r.json()["data"]), ["tokenName", "tokenUuid", "tokenValue"])


if __name__ == "__main__":
    unittest.main()
