"""The script console of the emulator: the how-to flow, output format, persistence."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from emulator import Emulator  # noqa: E402

HOWTO = """\
import hudson.model.*
import jenkins.model.*
import jenkins.security.*
import jenkins.security.apitoken.*

def userName = "%(user)s"
def tokenName = "%(token)s"
def user = User.get(userName, false)
if (user == null) {
    throw new IllegalArgumentException("User: ${userName} does not exist")
}
def apiTokenProperty = user.getProperty(ApiTokenProperty.class)
if (apiTokenProperty == null) {
    throw new IllegalStateException("User: ${userName} does not have API token property")
}
def result = apiTokenProperty.tokenStore.generateNewToken(tokenName)
%(save)s
return result.plainValue
"""

REVOKE = """\
import hudson.model.*
import jenkins.security.*
def user = User.getById("%(user)s", false)
def prop = user.getProperty(ApiTokenProperty.class)
def t = prop.tokenList.find { it.name == "%(token)s" }
prop.revokeToken(t.uuid)
return t.uuid
"""


def howto(user, token, save=True):
    return HOWTO % {"user": user, "token": token, "save": "user.save()" if save else ""}


def token_of(body):
    assert body.startswith("Result: 11"), body
    value = body[len("Result: "):].strip()
    assert len(value) == 34 and all(c in "0123456789abcdef" for c in value[2:]), value
    return value


class HowToFlowTest(unittest.TestCase):
    """The original how-to script, end to end, across restarts."""

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(version="2.560", users=["jenkins_user", "other"])

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop(remove=True)

    def whoami(self, user, token):
        return self.emu.get("/whoAmI/api/json", auth=(user, token))

    def test_token_from_howto_authenticates_and_survives_restart_until_revoked(self):
        emu = self.emu
        status, body = emu.script(howto("jenkins_user", "Test Token"))
        self.assertEqual(status, 200)
        self.assertRegex(body, r"^Result: 11[0-9a-f]{32}\n$")
        token = token_of(body)

        r = self.whoami("jenkins_user", token)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["name"], "jenkins_user")
        self.assertFalse(r.json()["anonymous"])

        wrong = token[:-1] + ("0" if token[-1] != "0" else "1")
        r = self.whoami("jenkins_user", wrong)
        self.assertEqual(r.status, 401)
        self.assertEqual(r.headers["WWW-Authenticate"], 'Basic realm="Jenkins"')
        # A token belongs to its user only.
        self.assertEqual(self.whoami("other", token).status, 401)

        old_session = emu.get("/api/json").headers["X-Jenkins-Session"]
        emu.restart()
        self.assertNotEqual(emu.get("/api/json").headers["X-Jenkins-Session"], old_session)
        self.assertEqual(self.whoami("jenkins_user", token).status, 200)

        status, body = emu.script(REVOKE % {"user": "jenkins_user", "token": "Test Token"})
        self.assertEqual(status, 200, body)
        self.assertTrue(body.startswith("Result: "), body)
        self.assertEqual(self.whoami("jenkins_user", token).status, 401)
        emu.restart()
        self.assertEqual(self.whoami("jenkins_user", token).status, 401)

    def test_token_without_user_save_is_lost_on_restart(self):
        emu = self.emu
        status, body = emu.script(howto("other", "Unsaved", save=False))
        self.assertEqual(status, 200)
        token = token_of(body)
        self.assertEqual(self.whoami("other", token).status, 200)
        emu.restart()
        self.assertEqual(self.whoami("other", token).status, 401)
        names = [t["name"] for u in emu.state()["users"] if u["id"] == "other" for t in u["tokens"]]
        self.assertNotIn("Unsaved", names)

    def test_concurrent_generation_keeps_every_token(self):
        from concurrent.futures import ThreadPoolExecutor
        script = ('def u = User.getById("other", false)\n'
                  'u.getProperty(ApiTokenProperty.class).generateNewToken("conc-%d").plainValue')
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: self.emu.script("import jenkins.security.*\n" + script % i),
                                    range(32)))
        tokens = [token_of(body) for status, body in results]
        self.assertEqual(len(set(tokens)), 32)
        self.emu.restart()
        for t in tokens:
            self.assertEqual(self.whoami("other", t).status, 200)

    def test_unknown_user_throws_with_trace_and_200(self):
        status, body = self.emu.script(howto("nobody", "x"))
        self.assertEqual(status, 200)
        self.assertTrue(body.startswith("java.lang.IllegalArgumentException: User: nobody does not exist\n"), body)
        self.assertIn("\tat ", body)
        self.assertNotIn("Result:", body)

    def test_token_login_updates_usage_statistics(self):
        emu = self.emu
        token = token_of(emu.script(howto("jenkins_user", "Stats"))[1])
        for _ in range(3):
            self.assertEqual(self.whoami("jenkins_user", token).status, 200)
        user = [u for u in emu.state()["users"] if u["id"] == "jenkins_user"][0]
        t = [t for t in user["tokens"] if t["name"] == "Stats"][0]
        self.assertEqual(t["useCounter"], 3)
        self.assertIsNotNone(t["lastUseDate"])
        status, body = emu.script(
            'def p = User.getById("jenkins_user", false).getProperty(jenkins.security.ApiTokenProperty)\n'
            'def i = p.tokenList.find { it.name == "Stats" }\n'
            'return [i.useCounter, i.isLegacy, i.expired, i.expirationDate]')
        self.assertEqual(body, "Result: [3, false, false, never]\n")


class ScriptConsoleFormatTest(unittest.TestCase):
    """Reference §1: status codes and the exact body of /scriptText."""

    @classmethod
    def setUpClass(cls):
        cls.emu = Emulator(version="2.560")

    @classmethod
    def tearDownClass(cls):
        cls.emu.stop(remove=True)

    def test_output_then_result_with_java_string_value(self):
        self.assertEqual(self.emu.script('println "a"; print "b"; [x: 1]'), (200, "a\nbResult: {x=1}\n"))
        self.assertEqual(self.emu.script("[1, 2]"), (200, "Result: [1, 2]\n"))
        self.assertEqual(self.emu.script("print 'hello'"), (200, "hello"))
        self.assertEqual(self.emu.script("null"), (200, ""))
        r = self.emu.post("/scriptText", {"script": "1"})
        self.assertEqual(r.headers["Content-Type"], "text/plain;charset=UTF-8")
        self.assertIsNone(r.headers["X-Jenkins"])

    def test_scripts_read_the_shifted_clock(self):
        # A shifted emulator is a controller whose host clock is off: its scripts see it.
        import time
        self.emu.shift_clock(days=40)
        try:
            status, body = self.emu.script(
                "[System.currentTimeMillis(), java.time.Instant.now().toEpochMilli(), "
                "java.time.ZonedDateTime.now(java.time.ZoneId.of('UTC')).toInstant().toEpochMilli(), "
                "java.time.LocalDate.now().toString()]")
            self.assertEqual(status, 200, body)
            millis, instant, zoned, today = body[len("Result: ["):-2].split(", ")
            ahead = 40 * 86400 * 1000
            for value in (millis, instant, zoned):
                self.assertAlmostEqual(int(value) - time.time() * 1000, ahead, delta=60000, msg=body)
            self.assertEqual(today, self.emu.state()["today"])
        finally:
            self.emu.shift_clock(days=-40)
        status, body = self.emu.script("System.currentTimeMillis()")
        self.assertAlmostEqual(int(body[len("Result: "):]), time.time() * 1000, delta=60000)

    def test_star_imports_and_version(self):
        self.assertEqual(self.emu.script("Jenkins.get().getVersion().toString() + ' ' + Jenkins.VERSION"),
                         (200, "Result: 2.560 2.560\n"))
        self.assertEqual(self.emu.script("User.current().id"), (200, "Result: admin\n"))

    def test_system_out_goes_to_the_log_not_the_answer(self):
        # 200 KB on System.out: the emulator must neither answer it nor block on a full pipe.
        self.assertEqual(self.emu.script('System.out.println("x" * 200000); print "ok"'), (200, "ok"))

    def test_compile_error_is_200_with_trace(self):
        status, body = self.emu.script("def x = ")
        self.assertEqual(status, 200)
        self.assertTrue(body.startswith("org.codehaus.groovy.control.MultipleCompilationErrorsException"), body)

    def test_typo_in_a_stub_method_fails_like_jenkins(self):
        status, body = self.emu.script(
            'User.getById("admin", false).getProperty(jenkins.security.ApiTokenProperty).generateNewTokn("x")')
        self.assertEqual(status, 200)
        self.assertTrue(body.startswith("groovy.lang.MissingMethodException: No signature of method: "
                                        "jenkins.security.ApiTokenProperty.generateNewTokn()"), body)

    def test_emulator_internals_are_invisible_to_scripts(self):
        status, body = self.emu.script("Class.forName('emu.core.Emu')")
        self.assertTrue(body.startswith("java.lang.ClassNotFoundException: emu.core.Emu"), body)

    def test_nested_cause_printed_innermost_first(self):
        status, body = self.emu.script(
            'throw new RuntimeException("outer", new IllegalStateException("inner"))')
        self.assertEqual(status, 200)
        self.assertTrue(body.startswith("java.lang.IllegalStateException: inner\n"), body)
        self.assertIn("\nCaused: java.lang.RuntimeException: outer\n", body)
        self.assertTrue(body.endswith("\n") and not body.endswith("\n\n"))

    def test_get_with_script_is_405_and_without_script_is_empty_200(self):
        r = self.emu.get("/scriptText?script=1")
        self.assertEqual(r.status, 405)
        self.assertNotIn("Allow", r.headers)
        r = self.emu.get("/scriptText")
        self.assertEqual((r.status, r.body), (200, b""))
        r = self.emu.post("/scriptText", {})
        self.assertEqual((r.status, r.body), (200, b""))

    def test_script_in_query_string_of_a_post(self):
        r = self.emu.post("/scriptText?script=print%201", b"")
        self.assertEqual((r.status, r.text), (200, "1"))

    def test_built_in_node_script_console(self):
        r = self.emu.post("/computer/(built-in)/scriptText", {"script": "print 2"})
        self.assertEqual((r.status, r.text), (200, "2"))

    def test_scripts_are_recorded_by_sha256(self):
        import hashlib
        text = "print 'recorded %d'" % os.getpid()
        self.emu.script(text)
        shas = [s["sha256"] for s in self.emu.scripts()]
        self.assertEqual(shas[-1], hashlib.sha256(text.encode()).hexdigest())


if __name__ == "__main__":
    unittest.main()
