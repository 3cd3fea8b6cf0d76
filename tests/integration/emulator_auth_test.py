"""Authentication, permissions, CSRF crumbs, REST token endpoints and the event log."""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from emulator import Emulator  # noqa: E402

NEW_TOKEN = ('def u = User.getById("%s", false)\n'
             'def r = u.getProperty(jenkins.security.ApiTokenProperty).generateNewToken("%s")\n'
             'return r.tokenUuid + " " + r.plainValue')


class AuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(version="2.560", users=["alice", "bob"])
        cls.emu.create_user("root2", admin=True, password="s3cret:with:colons")
        cls.emu.create_user("ghost", realm=False)

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop(remove=True)

    def new_token(self, user, name):
        status, body = self.emu.script(NEW_TOKEN % (user, name))
        self.assertEqual(status, 200, body)
        uuid, value = body[len("Result: "):].split()
        return uuid, value

    def test_anonymous_gets_403_without_challenge(self):
        for r in (self.emu.post("/scriptText", {"script": "1"}, auth=False),
                  self.emu.get("/scriptText", auth=False),
                  self.emu.get("/api/json", auth=False)):
            self.assertEqual(r.status, 403)
            self.assertNotIn("WWW-Authenticate", r.headers)
        r = self.emu.get("/api/json", auth=False, headers={"X-Requested-With": "XMLHttpRequest"})
        self.assertEqual(r.status, 403)
        self.assertNotIn("Authentication required", r.text)
        r = self.emu.get("/scriptText?script=1", auth=False)
        self.assertEqual(r.status, 403)
        self.assertEqual(r.headers["X-Jenkins"], "2.560")
        self.assertIn("Authentication required", r.text)
        self.assertIsNone(r.headers["X-You-Are-Authenticated-As"])

    def test_non_admin_gets_403_with_permission_headers_even_on_get(self):
        _, token = self.new_token("alice", "t-nonadmin")
        for r in (self.emu.post("/scriptText", {"script": "1"}, auth=("alice", token)),
                  self.emu.get("/scriptText", auth=("alice", token))):
            self.assertEqual(r.status, 403)
            self.assertEqual(r.headers["X-You-Are-Authenticated-As"], "alice")
            self.assertEqual(r.headers["X-Required-Permission"], "hudson.model.Hudson.Administer")
            self.assertIn("alice is missing the Overall/Administer permission", r.text)

    def test_bad_credentials_get_401_with_challenge(self):
        for auth in (("admin", "11" + "0" * 32), ("admin", "wrong"), ("nobody", "x"), ("", "")):
            r = self.emu.post("/scriptText", {"script": "1"}, auth=auth)
            self.assertEqual(r.status, 401, auth)
            self.assertEqual(r.headers["WWW-Authenticate"], 'Basic realm="Jenkins"')
            self.assertIsNone(r.headers["X-Jenkins"])

    def test_token_with_other_version_prefix_still_matches(self):
        # Jenkins drops the two version characters of a 34-char token without checking them.
        _, token = self.new_token("bob", "t-prefix")
        self.assertEqual(self.emu.get("/whoAmI/api/json", auth=("bob", "99" + token[2:])).status, 200)
        self.assertEqual(self.emu.get("/whoAmI/api/json", auth=("bob", token[:2] + token[2:].upper())).status, 401)

    def test_user_ids_are_case_insensitive(self):
        _, token = self.new_token("bob", "t-case")
        r = self.emu.get("/whoAmI/api/json", auth=("BOB", token))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["name"], "bob")

    def test_token_of_user_outside_the_realm_gives_500(self):
        _, token = self.new_token("ghost", "t-ghost")
        self.assertEqual(self.emu.get("/whoAmI/api/json", auth=("ghost", token)).status, 500)

    def test_whoami(self):
        r = self.emu.get("/whoAmI/api/json", auth=False)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"_class": "hudson.security.WhoAmI", "anonymous": True, "authenticated": True,
                                    "authorities": ["anonymous"], "name": "anonymous"})
        j = self.emu.get("/whoAmI/api/json").json()
        self.assertEqual((j["name"], j["anonymous"], j["authenticated"]), ("admin", False, True))

    def test_api_json_me_and_user(self):
        r = self.emu.get("/api/json")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["X-Jenkins"], "2.560")
        self.assertRegex(r.headers["X-Jenkins-Session"], r"^[0-9a-f]{8}$")
        self.assertEqual(r.json()["_class"], "hudson.model.Hudson")
        self.assertEqual(self.emu.get("/me/api/json").json()["id"], "admin")
        self.assertEqual(self.emu.get("/user/alice/api/json").json()["id"], "alice")
        self.assertEqual(self.emu.get("/user/nosuchuser/api/json").status, 404)
        self.assertEqual(self.emu.get("/me/api/json", auth=False).status, 403)

    def test_password_post_needs_a_crumb_bound_to_session_and_user(self):
        emu = self.emu
        pw = ("root2", "s3cret:with:colons")
        r = emu.post("/scriptText", {"script": "print 1"}, auth=pw)
        self.assertEqual(r.status, 403)
        self.assertIn("No valid crumb was included in the request", r.text)

        c = emu.get("/crumbIssuer/api/json", auth=pw)
        self.assertEqual(c.status, 200)
        self.assertEqual(c.headers["Content-Type"], "application/json;charset=UTF-8")
        j = c.json()
        self.assertEqual(j["_class"], "hudson.security.csrf.DefaultCrumbIssuer")
        self.assertEqual(j["crumbRequestField"], "Jenkins-Crumb")
        self.assertRegex(j["crumb"], r"^[0-9a-f]{64}$")
        cookie = c.headers["Set-Cookie"].split(";")[0]
        self.assertRegex(cookie, r"^JSESSIONID\.[0-9a-f]{8}=")

        ok = emu.post("/scriptText", {"script": "print 1"}, auth=pw,
                      headers={"Jenkins-Crumb": j["crumb"], "Cookie": cookie})
        self.assertEqual((ok.status, ok.text), (200, "1"))
        # As a form field too.
        ok = emu.post("/scriptText", {"script": "print 2", "Jenkins-Crumb": j["crumb"]}, auth=pw,
                      headers={"Cookie": cookie})
        self.assertEqual((ok.status, ok.text), (200, "2"))
        # Without the session cookie, or for another user, the crumb is worthless.
        self.assertEqual(emu.post("/scriptText", {"script": "1"}, auth=pw,
                                  headers={"Jenkins-Crumb": j["crumb"]}).status, 403)
        self.assertEqual(emu.post("/scriptText", {"script": "1"}, auth=("alice", "alice"),
                                  headers={"Jenkins-Crumb": j["crumb"], "Cookie": cookie}).status, 403)
        # The xpath form gives the header line directly.
        x = emu.get("/crumbIssuer/api/xml?xpath=concat(//crumbRequestField,%22:%22,//crumb)", auth=pw,
                    headers={"Cookie": cookie})
        self.assertEqual((x.status, x.text), (200, "Jenkins-Crumb:" + j["crumb"]))
        # An API token needs no crumb (ApiCrumbExclusion); GET never does.
        self.assertEqual(emu.post("/scriptText", {"script": "1"}).status, 200)
        self.assertEqual(emu.get("/crumbIssuer/api/json", auth=False).status, 403)

    def test_rest_generate_rename_revoke(self):
        emu = self.emu
        _, token = self.new_token("alice", "t-rest")
        base = "/user/alice/descriptorByName/jenkins.security.ApiTokenProperty/"
        auth = ("alice", token)
        self.assertEqual(emu.get(base + "generateNewToken", auth=auth).status, 405)
        self.assertEqual(emu.get(base + "generateNewToken", auth=auth).headers["Allow"], "POST")
        r = emu.post(base + "generateNewToken", {"newTokenName": "via-rest"}, auth=auth)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["Content-Type"], "application/json; charset=UTF-8")
        j = r.json()
        self.assertEqual(j["status"], "ok")
        self.assertEqual(j["data"]["tokenName"], "via-rest")
        self.assertEqual(j["data"]["expirationDate"], "never")
        new_value, new_uuid = j["data"]["tokenValue"], j["data"]["tokenUuid"]
        self.assertRegex(new_value, r"^11[0-9a-f]{32}$")
        self.assertEqual(emu.get("/whoAmI/api/json", auth=("alice", new_value)).status, 200)

        # The admin may not generate for alice, and gets an empty 403.
        r = emu.post(base + "generateNewToken", {"newTokenName": "x"})
        self.assertEqual((r.status, r.body), (403, b""))
        # bob may not revoke alice's tokens.
        _, bob = self.new_token("bob", "t-bob")
        self.assertEqual(emu.post(base + "revoke", {"tokenUuid": new_uuid}, auth=("bob", bob)).status, 403)

        r = emu.post(base + "rename", {"tokenUuid": new_uuid, "newName": "renamed"}, auth=auth)
        self.assertEqual(r.json(), {"status": "ok"})
        r = emu.post(base + "rename", {"tokenUuid": "nope", "newName": "renamed"}, auth=auth)
        self.assertEqual((r.status, r.json()["status"]), (200, "error"))
        self.assertEqual(emu.post(base + "revoke", {"tokenUuid": ""}, auth=auth).status, 400)
        self.assertEqual(emu.post(base + "revoke", {"tokenUuid": "unknown"}, auth=auth).status, 200)
        r = emu.post(base + "revoke", {"tokenUuid": new_uuid})  # the admin may revoke
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertEqual(emu.get("/whoAmI/api/json", auth=("alice", new_value)).status, 401)

        r = emu.post(base + "generateNewToken", {"newTokenName": "old", "expirationDuration": "custom",
                                                 "tokenExpiration": "2001-01-01"}, auth=auth)
        self.assertEqual(r.json(), {"status": "error", "message": "Expiration date is in the past."})
        r = emu.post(base + "generateNewToken", {"expirationDuration": "bogus"}, auth=auth)
        self.assertEqual(r.status, 500)
        r = emu.post(base + "addFixedToken", {"newTokenName": "fixed", "newTokenPlainValue": "11" + "ab" * 16},
                     auth=auth)
        self.assertEqual(r.json()["status"], "ok")
        self.assertEqual(emu.get("/whoAmI/api/json", auth=("alice", "11" + "ab" * 16)).status, 200)
        self.assertEqual(emu.post("/user/nosuch/descriptorByName/jenkins.security.ApiTokenProperty/revoke",
                                  {"tokenUuid": "x"}).status, 404)

    def test_event_log(self):
        emu = self.emu
        uuid, token = self.new_token("bob", "t-events")
        emu.get("/whoAmI/api/json", auth=("bob", token))
        emu.get("/whoAmI/api/json", auth=("bob", "bad"))
        emu.script('User.getById("bob", false).getProperty(jenkins.security.ApiTokenProperty).revokeToken("%s")'
                   % uuid)
        ev = [e for e in emu.events() if e["user"] == "bob"]
        kinds = [(e["event"], e["uuid"]) for e in ev]
        created = kinds.index(("token_created", uuid))
        login = kinds.index(("login", uuid), created)
        failed = kinds.index(("login_failed", None), login)
        kinds.index(("token_revoked", uuid), failed)
        for e in ev:
            self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
        self.assertEqual([e["name"] for e in ev if e["uuid"] == uuid and e["event"] == "token_created"],
                         ["t-events"])

    def test_control_api_needs_the_admin(self):
        self.assertEqual(self.emu.get("/__emu/state", auth=False).status, 403)
        self.assertEqual(self.emu.get("/__emu/state", auth=("alice", "alice")).status, 403)
        self.assertEqual(self.emu.get("/__emu/state", auth=("admin", "nope")).status, 401)

    def test_state_never_shows_token_values(self):
        _, token = self.new_token("alice", "t-secret")
        r = self.emu.get("/__emu/state")
        self.assertNotIn(token, r.text)
        self.assertNotIn(token[2:], r.text)
        self.assertTrue(re.search(r'"uuid":"[0-9a-f-]{36}"', r.text))


if __name__ == "__main__":
    unittest.main()
