"""A rotation rig for the failure and recovery tests (issue 10): one temporary directory
with a state dir, a recipient key, file and exec sinks, a config for the emulator, and the
checks of DESIGN §1 that every test asserts after its passes:

- every slot has exactly one current token, it authenticates as its user, and every sink
  holds it (envelopes opened with PyNaCl);
- no token of ours lives in Jenkins that the state database does not account for;
- no token a sink ever held was revoked before its successor reached every sink.

Not a test module itself (no ``_test`` suffix): the *_test.py files import it.
"""
import base64
import datetime
import json
import os
import sqlite3
import subprocess
import tempfile
import time

import nacl.public

from emulator import EmulatorTestCase

BIN = os.environ.get("JTR_BIN", "build/jenkins-token-rotator")
OPEN_STATES = ("planned", "minted", "verified", "delivering")


def parse_time(text):
    """An ISO 8601 instant from the emulator (any offset) as unix seconds."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def make_rig_dirs(rig, prefix):
    """Gives ``rig`` what every rig has: a temporary directory ``dir`` (0755, removed with
    ``tmp``), ``state_dir`` (0700) and ``out`` in it, and a recipient key ``key`` whose
    public half is in ``dir``/deploy.pub. Returns that file's path."""
    rig.tmp = tempfile.TemporaryDirectory(prefix=prefix)
    d = rig.dir = rig.tmp.name
    os.chmod(d, 0o755)
    rig.state_dir = os.path.join(d, "state")
    os.mkdir(rig.state_dir, 0o700)
    rig.out = os.path.join(d, "out")
    os.mkdir(rig.out, 0o755)
    rig.key = nacl.public.PrivateKey.generate()
    pub = os.path.join(d, "deploy.pub")
    with open(pub, "w") as f:
        f.write(base64.b64encode(bytes(rig.key.public_key)).decode() + "\n")
    return pub


def binary_has_crash_points(path=BIN):
    """True when the binary was built with -DJTR_CRASH_POINTS=ON (its abort message is in it)."""
    with open(path, "rb") as f:
        return b"crash point" in f.read()


class RigTest(EmulatorTestCase):
    """Base of the rotation tests: one emulator (EMULATOR's options) for the class, and
    rigs made per test, their users created in it and their directories cleaned up."""

    def make_rig(self, users, **kw):
        for u in users:
            self.emu.create_user(u)
        rig = Rig(self.emu, users, **kw)
        self.addCleanup(rig.cleanup)
        return rig

    def rig(self, tag, n=2, **kw):
        """A rig for n fresh users named TAG-0 … TAG-(n-1)."""
        return self.make_rig(["%s-%d" % (tag, i) for i in range(n)], **kw)


class Rig:
    """One configuration of the daemon against ``emu`` for ``users`` (created by the caller).

    sinks: a list of "file", "exec", "exec-switch" (fails while break_switch(True) holds),
    "exec-flaky" (fails on its first ``flaky_failures``
    runs per user, then works) or "exec-broken" (always exits 1). ``user_extra`` is YAML
    text added to every user entry (e.g. ``"prune: all"``), or a dict of it per user.
    """

    def __init__(self, emu, users, sinks=("file", "exec"), batch_size=2, grace="0s",
                 lifetime="30d", failure_budget="1d", schedule="every 7d", retry=None,
                 token_prefix=None, user_extra=None, flaky_failures=1, timeout="30s"):
        self.emu = emu
        self.users = list(users)
        self.sinks = list(sinks)
        self.lifetime = lifetime
        pub = make_rig_dirs(self, "jtr-rig-")
        d = self.dir
        token_file = os.path.join(d, "admin-token")
        with open(token_file, "w") as f:
            f.write(emu.admin_token + "\n")
        os.chmod(token_file, 0o600)
        hooks = os.path.join(d, "hooks")
        os.mkdir(hooks, 0o755)
        self.hook_log = os.path.join(self.out, "hook.log")
        # Every hook logs "TIME USER TOKEN_NAME TOKEN_UUID OUTCOME" so tests can order
        # deliveries against the emulator's revocations.
        log_line = 'echo "$(date +%%s.%%N) $JTR_USER $JTR_TOKEN_NAME $JTR_TOKEN_UUID %s" >> ' + \
            self.hook_log + "\n"
        # A hook installs only an envelope that parses whole, as a careful consumer does
        # (yaml(5), exec sinks): a daemon killed before or while it writes leaves the
        # hook's stdin short, and that must not replace the token the sink held.
        install = ("cat > {out}/$JTR_USER.exec.json.tmp\n"
                   "/usr/bin/python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "
                   "{out}/$JTR_USER.exec.json.tmp 2>/dev/null || exit 1\n"
                   "mv {out}/$JTR_USER.exec.json.tmp {out}/$JTR_USER.exec.json\n").format(out=self.out)
        failed = (log_line % "failed").strip() + ";"
        scripts = {
            "exec": "#!/bin/sh\nset -eu\n" + install + log_line % "ok",
            "exec-flaky": "#!/bin/sh\nset -eu\nn=%s/$JTR_USER.flaky\n"
                          "c=$(cat $n 2>/dev/null || echo 0); echo $((c + 1)) > $n\n"
                          "if [ \"$c\" -lt %d ]; then cat > /dev/null; %s exit 1; fi\n"
                          % (self.out, flaky_failures, failed) + install + log_line % "ok",
            "exec-broken": "#!/bin/sh\ncat > /dev/null\n" + log_line % "failed" + "exit 1\n",
            "exec-switch": "#!/bin/sh\nset -eu\nif [ -e %s/BROKEN ]; then cat > /dev/null; %s exit 1; fi\n"
                           % (self.out, failed) + install + log_line % "ok",
        }
        sink_yaml = []
        for kind in self.sinks:
            if kind == "file":
                sink_yaml.append("{type: file, path: %s/%%(user)s.json, recipients: [deploy]}"
                                 % self.out)
            else:
                hook = os.path.join(hooks, kind)
                if not os.path.exists(hook):
                    with open(hook, "w") as f:
                        f.write(scripts[kind])
                    os.chmod(hook, 0o755)
                sink_yaml.append("{type: exec, command: [%s], recipients: [deploy], timeout: 10s}"
                                 % hook)
        entries = []
        for u in self.users:
            e = "  - user: %s\n    controller: emu\n" % u
            extra = user_extra.get(u) if isinstance(user_extra, dict) else user_extra
            if extra:
                e += "    %s\n" % extra
            e += "    sinks:\n" + "".join("      - %s\n" % (s % {"user": u}) for s in sink_yaml)
            entries.append(e)
        defaults = "schedule: %s, lifetime: %s, grace: %s, failure_budget: %s" % (
            schedule, lifetime, grace, failure_budget)
        if token_prefix:
            defaults += ", token_prefix: %s" % token_prefix
        self.config = os.path.join(d, "config.yaml")
        with open(self.config, "w") as f:
            f.write("state_dir: %s\ncontrol: {socket: %s/control.sock}\n" % (self.state_dir, d))
            if retry:
                f.write("retry: %s\n" % retry)
            f.write("controllers:\n  - name: emu\n    url: %s\n    admin_user: %s\n"
                    "    admin_token_file: %s\n    batch_size: %d\n    timeout: %s\n"
                    % (emu.url, emu.admin_user, token_file, batch_size, timeout))
            f.write("recipients:\n  deploy: %s\n" % pub)
            f.write("defaults: {%s}\n" % defaults)
            f.write("users:\n" + "".join(entries))
        os.chmod(self.config, 0o600)
        self.outputs = []
        self.held = {}  # uuid -> user, for every token a sink was seen holding
        self.file_times = {}  # uuid -> mtime of the file sink when first seen holding it
        self.revoked_by_test = set()  # uuids a test revoked in Jenkins itself
        self.not_ours = set()  # uuids of tokens named like ours that a test knows are not

    def cleanup(self):
        self.tmp.cleanup()

    def edit_config(self, old, new):
        """Replaces text in the config file (e.g. a policy in ``defaults``)."""
        with open(self.config) as f:
            text = f.read()
        if old not in text:
            raise AssertionError("%r is not in the config" % old)
        with open(self.config, "w") as f:
            f.write(text.replace(old, new))

    # ---- running the binary
    def run(self, *args, env=None, timeout=120):
        e = dict(os.environ)
        e.pop("JTR_CRASH_AT", None)
        e.update(env or {})
        r = subprocess.run([BIN, *args, "-c", self.config], capture_output=True, text=True,
                           timeout=timeout, env=e)
        self.outputs.append(r.stdout + r.stderr)
        return r

    def once(self, *args, env=None):
        r = self.run("once", *args, env=env)
        self.snapshot_sinks()
        return r

    def plan(self):
        r = self.run("plan", "--json", "--count", "1")
        if r.returncode != 0:
            raise AssertionError("plan failed: " + r.stdout + r.stderr)
        return {s["user"]: s for s in json.loads(r.stdout)["slots"]}

    # ---- sinks
    def open_envelope(self, path):
        """(envelope dict, plain token) of a sealed envelope file, or (None, None) when
        there is no such file (missing, or a test put a directory in its place)."""
        if not os.path.isfile(path):
            return None, None
        with open(path) as f:
            env = json.load(f)
        box = nacl.public.SealedBox(self.key)
        return env, box.decrypt(base64.b64decode(env["sealed"][0]["ciphertext"])).decode()

    def sink_files(self, user):
        files = []
        if "file" in self.sinks:
            files.append(os.path.join(self.out, user + ".json"))
        if self.has_exec():
            files.append(os.path.join(self.out, user + ".exec.json"))
        return files

    def has_exec(self):
        """Whether a sink writes USER.exec.json (the exec hooks that can succeed)."""
        return any(s in ("exec", "exec-flaky", "exec-switch") for s in self.sinks)

    def break_switch(self, broken):
        """Makes the "exec-switch" hook fail (True) or work (False)."""
        path = os.path.join(self.out, "BROKEN")
        if broken:
            open(path, "w").close()
        elif os.path.exists(path):
            os.unlink(path)

    def snapshot_sinks(self):
        """Remembers which token each sink holds now (a sink's history is what we saw)."""
        for u in self.users:
            for path in self.sink_files(u):
                env, _ = self.open_envelope(path)
                if env:
                    self.held[env["token_uuid"]] = u
                    if path.endswith("/%s.json" % u):
                        self.file_times.setdefault(env["token_uuid"], os.stat(path).st_mtime)

    def hook_entries(self):
        """[(time, user, token name, uuid, outcome)] from the exec hooks' log."""
        if not os.path.exists(self.hook_log):
            return []
        out = []
        with open(self.hook_log) as f:
            for line in f:
                p = line.split()
                if len(p) == 5:
                    out.append((float(p[0]), p[1], p[2], p[3], p[4]))
        return out

    def whoami(self, user, token):
        r = self.emu.get("/whoAmI/api/json", auth=(user, token))
        return r.status, (r.json().get("name") if r.status == 200 else None)

    # ---- the state database, read-only
    def db(self):
        return sqlite3.connect("file:%s?mode=ro" % os.path.join(self.state_dir, "state.db"),
                               uri=True)

    def query(self, sql, *params):
        c = self.db()
        try:
            return c.execute(sql, params).fetchall()
        finally:
            c.close()

    def instance_id(self):
        return self.query("SELECT instance_id FROM instance")[0][0]

    def prefix(self):
        return "rotator-%s-" % self.instance_id()

    def plant(self, user, name, expires=None):
        """Makes a token in Jenkins as a person or another tool would (admin script);
        ``expires`` is a local date "yyyy-mm-dd" (2.548+). Returns its uuid."""
        call = 'generateNewToken("%s")' % name
        if expires:
            call = 'generateNewToken("%s", java.time.LocalDate.parse("%s"))' % (name, expires)
        status, body = self.emu.script(
            'def p = User.getById("%s", false).getProperty(jenkins.security.ApiTokenProperty)\n'
            'def t = p.%s\nprintln "UUID=" + t.tokenUuid' % (user, call))
        for line in body.splitlines():
            if line.startswith("UUID="):
                return line[5:]
        raise AssertionError("planting %s failed: %d %s" % (name, status, body))

    def token_as_user(self, user, token, name):
        """Makes a token as ``user`` itself through REST, authenticated by its own API token
        ``token`` (what a consumer holds): the attacker of issue 19 #2. Returns its uuid."""
        r = self.emu.post("/user/%s/descriptorByName/jenkins.security.ApiTokenProperty/"
                          "generateNewToken" % user, {"newTokenName": name}, auth=(user, token))
        if r.status != 200:
            raise AssertionError("%s making %s: HTTP %d %s" % (user, name, r.status, r.text))
        uuid = r.json()["data"]["tokenUuid"]
        self.not_ours.add(uuid)
        return uuid

    def backup_state(self, path):
        """A consistent copy of state.db (SQLite's backup API), as an operator's backup."""
        src = sqlite3.connect(os.path.join(self.state_dir, "state.db"))
        dst = sqlite3.connect(path)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()

    def restore_state(self, path):
        """Puts a backup made by backup_state back in place (no daemon may run)."""
        db = os.path.join(self.state_dir, "state.db")
        for suffix in ("-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        with open(path, "rb") as f, open(db + ".tmp", "wb") as g:
            g.write(f.read())
        os.chmod(db + ".tmp", 0o600)
        os.replace(db + ".tmp", db)

    def revoke_in_jenkins(self, user, uuid):
        """Revokes a token behind the daemon's back, as an admin would in the web UI."""
        r = self.emu.post("/user/%s/descriptorByName/jenkins.security.ApiTokenProperty/revoke"
                          % user, {"tokenUuid": uuid})
        if r.status != 200:
            raise AssertionError("revoking %s of %s: HTTP %d" % (uuid, user, r.status))
        self.revoked_by_test.add(uuid)

    def jenkins_tokens(self, user):
        """The user's live tokens in the emulator: [{uuid, name, creation, expiration, ...}]."""
        for u in self.emu.state()["users"]:
            if u["id"].lower() == user.lower():
                return u["tokens"]
        return []

    # ---- DESIGN §1 checks
    def check_invariants(self, test, allow_open=False):
        """Asserts the three promises the crash matrix and the fault tests share."""
        self.snapshot_sinks()
        prefix = self.prefix()
        now = time.time()
        for u in self.users:
            current = self.query(
                "SELECT t.uuid, a.token_name FROM tokens t JOIN attempts a ON a.seq = t.seq "
                "JOIN slots s ON s.id = t.slot_id WHERE s.user_display = ? AND t.role = 'current'",
                u)
            test.assertEqual(len(current), 1, "%s: current tokens in the state: %r\n%s"
                             % (u, current, self.log()))
            cur_uuid, cur_name = current[0]
            tokens = None
            for path in self.sink_files(u):
                env, token = self.open_envelope(path)
                test.assertIsNotNone(env, "%s: %s is empty" % (u, path))
                test.assertEqual(env["token_uuid"], cur_uuid,
                                 "%s: %s holds %s, the current token is %s\n%s"
                                 % (u, path, env["token_name"], cur_name, self.log()))
                if tokens is not None:
                    test.assertEqual(token, tokens, "%s: the sinks hold different tokens" % u)
                tokens = token
                test.assertEqual(self.whoami(u, token), (200, u),
                                 "%s: the token in %s does not authenticate" % (u, path))
            # Every live token of ours is accounted for by the state database.
            for t in self.jenkins_tokens(u):
                if not t["name"].startswith(prefix) or t["uuid"] in self.not_ours:
                    continue
                row = self.query("SELECT t.role, t.retire_at, a.state FROM tokens t JOIN attempts a "
                                 "ON a.seq = t.seq WHERE t.uuid = ?", t["uuid"])
                test.assertTrue(row, "%s: %s (%s) lives in Jenkins, unknown to the state\n%s"
                                % (u, t["name"], t["uuid"], self.log()))
                role, retire_at, state = row[0]
                ok = (role == "current"
                      or (role == "previous" and retire_at is not None and retire_at > now)
                      or (allow_open and state in OPEN_STATES))
                test.assertTrue(ok, "%s: %s lives in Jenkins as role=%s retire_at=%s attempt=%s\n%s"
                                % (u, t["name"], role, retire_at, state, self.log()))
        self.check_revocation_order(test)

    def check_revocation_order(self, test):
        """No token a sink held was revoked before its successor (the slot's next committed
        token) reached every sink: exec deliveries come from the hook log, file deliveries
        from the file's mtime seen while it held that token."""
        events = self.emu.events()
        hooks = self.hook_entries()
        for e in events:
            if (e["event"] != "token_revoked" or e["uuid"] not in self.held
                    or e["uuid"] in self.revoked_by_test):
                continue
            u = self.held[e["uuid"]]
            t_revoked = parse_time(e["time"])
            succ = self.query(
                "SELECT t.uuid, a.token_name FROM tokens t JOIN attempts a ON a.seq = t.seq "
                "WHERE a.state = 'committed' AND t.slot_id = (SELECT slot_id FROM tokens "
                "WHERE uuid = ?) AND t.seq > (SELECT seq FROM tokens WHERE uuid = ?) "
                "ORDER BY t.seq LIMIT 1", e["uuid"], e["uuid"])
            test.assertTrue(succ, "%s: %s was held by a sink, revoked, and nothing replaced it\n%s"
                            % (u, e["name"], self.log()))
            s_uuid, s_name = succ[0]
            if "file" in self.sinks:
                test.assertIn(s_uuid, self.file_times,
                              "%s: the file sink was never seen holding %s" % (u, s_name))
                test.assertGreaterEqual(t_revoked, self.file_times[s_uuid],
                                        "%s: %s revoked before the file sink got %s\n%s"
                                        % (u, e["name"], s_name, self.log()))
            if self.has_exec():
                times = [h[0] for h in hooks if h[1] == u and h[3] == s_uuid and h[4] == "ok"]
                test.assertTrue(times, "%s: the exec sink never got %s" % (u, s_name))
                test.assertGreaterEqual(t_revoked, min(times),
                                        "%s: %s revoked before the exec sink got %s\n%s"
                                        % (u, e["name"], s_name, self.log()))

    def log(self):
        """The outputs of the runs so far, for failure messages."""
        return "\n----\n".join(self.outputs)[-6000:]
