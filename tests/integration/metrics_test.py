"""Observability (issue 17): the daemon's /metrics after real passes, checked by promtool and
scraped by a real Prometheus server (both extracted from Debian's `prometheus` package by
tests/install-deps), and `notify:` events at an http target: one failure event for a slot
whose mint Jenkins refuses three passes in a row, one recovery event after. Neither /metrics
nor an event holds a minted token or the admin token (the emulator records every value).
"""
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

from rotation_rig import BIN, RigTest

PROMTOOL = os.environ.get("JTR_PROMTOOL", "/var/cache/jtr-prometheus/usr/bin/promtool")
PROMETHEUS = os.environ.get("JTR_PROMETHEUS", "/var/cache/jtr-prometheus/usr/bin/prometheus")
MINT = "JTR-TOKEN"  # text only the mint script carries


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=10):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


class Hook(http.server.BaseHTTPRequestHandler):
    """Records every request's headers and body; answers 204."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        self.server.received.append({"path": self.path, "headers": dict(self.headers),
                                     "body": body})
        self.send_response(204)
        self.end_headers()

    do_PUT = do_POST

    def log_message(self, *args):
        pass


class Daemon:
    def __init__(self, rig):
        self.rig = rig
        self.errpath = os.path.join(rig.dir, "daemon.log")
        self.err = open(self.errpath, "w")
        env = dict(os.environ)
        for k in ("JTR_CRASH_AT", "NOTIFY_SOCKET", "WATCHDOG_USEC", "LISTEN_FDS"):
            env.pop(k, None)
        self.proc = subprocess.Popen([BIN, "daemon", "-c", rig.config], stdout=subprocess.DEVNULL,
                                     stderr=self.err, env=env)

    def log(self):
        with open(self.errpath) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.err.close()


class MetricsTest(RigTest):
    @classmethod
    def setUpClass(cls):
        # Every minted value is recorded outside the rigs, so the tests can scan for them.
        cls.record_dir = tempfile.TemporaryDirectory()
        cls.record = os.path.join(cls.record_dir.name, "minted")
        old = os.environ.get("EMU_JAVA_OPTS")
        os.environ["EMU_JAVA_OPTS"] = "-Demu.recordTokens=" + cls.record
        try:
            super().setUpClass()
        finally:
            if old is None:
                del os.environ["EMU_JAVA_OPTS"]
            else:
                os.environ["EMU_JAVA_OPTS"] = old

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.record_dir.cleanup()

    def setUp(self):
        self.emu.clear_faults()

    def tearDown(self):
        self.emu.clear_faults()

    def secrets(self):
        with open(self.record) as f:
            values = [v for v in f.read().split() if v]
        return values + [self.emu.admin_token]

    def assert_no_secret(self, text, where):
        for v in self.secrets():
            self.assertNotIn(v, text, "a token or the admin token in %s" % where)

    def start(self, rig):
        d = Daemon(rig)
        self.addCleanup(lambda: d.proc.poll() is None and d.stop())
        return d

    def commits(self, rig):
        return {u: rig.query("SELECT COUNT(*) FROM attempts a JOIN slots s ON s.id = a.slot_id "
                             "WHERE s.user_display = ? AND a.state = 'committed'", u)[0][0]
                for u in rig.users}

    def wait_for(self, what, check, daemon, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if check():
                    return
            except Exception:  # the database may not exist yet
                pass
            if daemon.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.fail("%s: not after %ss\n%s" % (what, timeout, daemon.log()[-4000:]))

    def with_metrics(self, rig):
        port = free_port()
        with open(rig.config, "a") as f:
            f.write("metrics: {listen: 127.0.0.1:%d}\n" % port)
        return "http://127.0.0.1:%d" % port

    # ------------------------------------------------------------------------------------
    def test_a_live_scrape_passes_promtool_and_prometheus_stores_every_slot(self):
        rig = self.rig("mx-scrape", 3)
        base = self.with_metrics(rig)
        d = self.start(rig)
        self.wait_for("every slot committed",
                      lambda: all(n >= 1 for n in self.commits(rig).values()), d)

        # The last success lands in the metrics once the pass ends.
        def scraped():
            status, headers, text = http_get(base + "/metrics")
            self.assertEqual(status, 200)
            return text if len(re.findall(r"^jtr_slot_last_success_timestamp_seconds\{",
                                          text, re.M)) == 3 else None
        self.wait_for("3 last-success series", lambda: scraped() is not None, d)
        status, headers, text = http_get(base + "/metrics")
        self.assertEqual(headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
        check = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                               text=True, timeout=30)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.assertEqual(check.stdout + check.stderr, "", "promtool has remarks")
        for u in rig.users:
            labels = '{controller="emu",user="%s"}' % u
            self.assertRegex(text, r"jtr_slot_last_success_timestamp_seconds%s 1\d{9}\n"
                             % re.escape(labels))
            self.assertIn('jtr_slot_state{controller="emu",user="%s",state="ok"} 1' % u, text)
            self.assertRegex(text, r"jtr_slot_token_expiry_timestamp_seconds%s \d+\n"
                             % re.escape(labels))
            self.assertRegex(text, r"jtr_slot_next_rotation_timestamp_seconds%s \d+\n"
                             % re.escape(labels))
        self.assertRegex(text, r'jtr_rotations_total\{controller="emu",result="committed"\} [1-9]')
        self.assertIn('jtr_controller_up{controller="emu"} 1', text)
        self.assertIn("jtr_config_last_reload_successful 1", text)
        self.assert_no_secret(text, "/metrics")
        self.assertEqual(http_get(base + "/other")[0], 404)
        self.assertRegex(d.log(), r"serving GET /metrics on 127\.0\.0\.1:\d+")

        # A real Prometheus scrapes it; its API answers the last-success series of every slot.
        tmp = tempfile.TemporaryDirectory(prefix="jtr-prom-")
        self.addCleanup(tmp.cleanup)
        prom_port = free_port()
        config = os.path.join(tmp.name, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                    "rule_files: [%s]\n"
                    "scrape_configs:\n"
                    "  - job_name: jenkins-token-rotator\n"
                    "    static_configs: [{targets: ['%s']}]\n"
                    % (os.path.join(os.environ.get("JTR_SOURCE_DIR", "../.."), "conf",
                                    "prometheus", "jenkins-token-rotator.rules.yaml"),
                       base[len("http://"):]))
        plog = open(os.path.join(tmp.name, "prometheus.log"), "w")
        prom = subprocess.Popen([PROMETHEUS, "--config.file=" + config,
                                 "--storage.tsdb.path=" + os.path.join(tmp.name, "data"),
                                 "--web.listen-address=127.0.0.1:%d" % prom_port],
                                stdout=plog, stderr=subprocess.STDOUT)

        def stop_prometheus():
            prom.terminate()
            try:
                prom.wait(20)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
            plog.close()
        self.addCleanup(stop_prometheus)
        api = "http://127.0.0.1:%d/api/v1/query?query=" % prom_port
        found = {}

        def stored():
            status, _, body = http_get(api + urllib.parse.quote(
                "jtr_slot_last_success_timestamp_seconds"))
            if status != 200:
                return False
            for r in json.loads(body)["data"]["result"]:
                found[r["metric"]["user"]] = float(r["value"][1])
            return set(found) == set(rig.users)
        self.wait_for("Prometheus holds every slot's last success", stored, d, timeout=60)
        for u in rig.users:
            self.assertGreater(found[u], time.time() - 600, u)
        status, _, body = http_get(api + urllib.parse.quote('up{job="jenkins-token-rotator"}'))
        self.assertEqual(json.loads(body)["data"]["result"][0]["value"][1], "1")
        # The shipped rules load into the real server and nothing fires on a healthy daemon.
        status, _, body = http_get("http://127.0.0.1:%d/api/v1/rules" % prom_port)
        rules = [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
        self.assertEqual(len(rules), 8)
        self.assertTrue(all(r["health"] == "ok" for r in rules), rules)
        # absent(up) holds until the first scrape lands, so JtrDaemonNotScraped may be
        # pending (for: 10m) from Prometheus's first evaluation; nothing may fire.
        self.assertEqual([r["name"] for r in rules if r["state"] == "firing"], [])
        self.assertEqual(d.stop(), 0, d.log())

    def test_three_refused_mints_send_one_failure_and_one_recovery(self):
        hook = http.server.HTTPServer(("127.0.0.1", 0), Hook)
        hook.received = []
        threading.Thread(target=hook.serve_forever, daemon=True).start()
        self.addCleanup(hook.server_close)
        self.addCleanup(hook.shutdown)
        rig = self.rig("mx-notify", 2)
        base = self.with_metrics(rig)
        with open(rig.config, "a") as f:
            f.write("notify:\n  - {type: http, url: 'http://127.0.0.1:%d/hook', method: POST,"
                    " timeout: 5s, headers: {Authorization: Bearer hook-secret-123}}\n"
                    % hook.server_port)
        d = self.start(rig)
        self.wait_for("every slot committed",
                      lambda: all(n >= 1 for n in self.commits(rig).values()), d)
        failing = rig.users[0]

        def failed_attempts():
            return rig.query("SELECT COUNT(*) FROM attempts a JOIN slots s ON s.id = a.slot_id "
                             "WHERE s.user_display = ? AND a.state = 'failed'", failing)[0][0]

        # Jenkins refuses every mint (403) for three forced passes in a row.
        self.emu.fault("/scriptText", "status", count=1000, match=MINT, status=403)
        for n in range(1, 4):
            d.proc.send_signal(signal.SIGUSR1)
            self.wait_for("failed attempt %d" % n, lambda: failed_attempts() >= n, d)
        self.wait_for("3 consecutive failures in /metrics", lambda: (
            'jtr_slot_consecutive_failures{controller="emu",user="%s"} 3' % failing
            in http_get(base + "/metrics")[2]), d)
        self.emu.clear_faults()
        before = self.commits(rig)[failing]
        d.proc.send_signal(signal.SIGUSR1)
        self.wait_for("a commit after the faults", lambda: self.commits(rig)[failing] > before, d)
        self.wait_for("the recovery event", lambda: any(
            json.loads(r["body"])["event"] == "slot_recovered" for r in hook.received), d,
            timeout=30)
        time.sleep(1)  # anything sent twice would have arrived by now

        events = [json.loads(r["body"]) for r in hook.received]
        mine = [e for e in events if e.get("user") == failing]
        self.assertEqual([e["event"] for e in mine], ["slot_failed", "slot_recovered"], events)
        failed, recovered = mine
        self.assertEqual(failed["format"], "jenkins-token-rotator/event/v1")
        self.assertEqual(failed["slot"], "emu/" + failing)
        self.assertEqual(recovered["failed_passes"], 3)
        self.assertRegex(recovered["new_token"], r"^rotator-")
        # Its neighbour was refused too (SIGUSR1 rotates every slot): one streak each.
        other = [e["event"] for e in events if e.get("user") == rig.users[1]]
        self.assertEqual(other, ["slot_failed", "slot_recovered"], events)
        for r in hook.received:
            self.assertEqual(r["path"], "/hook")
            self.assertEqual(r["headers"]["Content-Type"], "application/json")
            self.assertEqual(r["headers"]["Idempotency-Key"], json.loads(r["body"])["id"])
            self.assert_no_secret(r["body"], "a notification")
            self.assertNotIn("hook-secret-123", r["body"])
        self.assertNotIn("hook-secret-123", d.log())
        self.assert_no_secret(http_get(base + "/metrics")[2], "/metrics")
        self.assertEqual(d.stop(), 0, d.log())


if __name__ == "__main__":
    unittest.main()
