"""The client commands against the real daemon (issue 16): the real binary as daemon and
as client, the emulator running our Groovy, real sinks, a real control socket."""
import json
import os
import signal
import socket
import subprocess
import threading
import time
import unittest

from rotation_rig import BIN, RigTest, binary_has_crash_points


def daemon_available():
    r = subprocess.run([BIN, "daemon", "--help"], capture_output=True, text=True, timeout=30)
    return r.returncode == 0


def raw_request(path, line, timeout=5.0):
    """One request on a fresh connection; (answer dict, seconds it took)."""
    start = time.monotonic()
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall(line)
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return json.loads(data), time.monotonic() - start


@unittest.skipUnless(os.path.exists(BIN) and daemon_available(), "no daemon command in this build")
class ControlTest(RigTest):
    def start_daemon(self, rig, env=None):
        log = open(os.path.join(rig.dir, "daemon.log"), "w")
        self.addCleanup(log.close)
        e = dict(os.environ)
        e.update(env or {})
        proc = subprocess.Popen([BIN, "daemon", "-c", rig.config], stdout=log, stderr=log, env=e)

        def stop():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.addCleanup(stop)
        rig.daemon_log = log.name
        rig.socket = os.path.join(rig.dir, "control.sock")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.assertIsNone(proc.poll(), "the daemon exited:\n" + self.daemon_log(rig))
            if os.path.exists(rig.socket):
                try:
                    answer, _ = raw_request(rig.socket, b'{"v":1,"cmd":"status"}\n')
                    if answer.get("ok"):
                        return proc
                except OSError:
                    pass
            time.sleep(0.1)
        self.fail("the daemon never answered status\n" + self.daemon_log(rig))

    @staticmethod
    def daemon_log(rig):
        with open(rig.daemon_log) as f:
            return f.read()

    def status(self, rig):
        r = rig.run("status", "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return json.loads(r.stdout)

    def slots(self, rig):
        return {s["user"]: s for s in self.status(rig)["slots"]}

    def wait_until(self, rig, what, predicate, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            slots = self.slots(rig)
            if predicate(slots):
                return slots
            time.sleep(0.2)
        self.fail("%s: never happened; status: %s\n%s"
                  % (what, json.dumps(self.status(rig), indent=1), self.daemon_log(rig)))

    def rotated_once(self, rig):
        """Waits for the first pass: every new slot is due at once."""
        return self.wait_until(rig, "first rotation", lambda s: all(
            s[u]["current_token"] and s[u]["last_result"] == "committed" for u in rig.users))

    def assert_no_secret(self, rig, text):
        for u in rig.users:
            for path in rig.sink_files(u):
                _, token = rig.open_envelope(path)
                if token:
                    self.assertNotIn(token, text)

    def test_rotate_one_slot_waits_for_its_commit(self):
        rig = self.rig("ctl-rot", n=2)
        proc = self.start_daemon(rig)
        before = self.rotated_once(rig)
        a, b = rig.users
        r = rig.run("rotate", a, "--wait")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.daemon_log(rig))
        self.assertIn("emu/%s" % a, r.stdout)
        self.assertIn("committed", r.stdout)
        after = self.slots(rig)
        self.assertNotEqual(after[a]["current_token"], before[a]["current_token"])
        self.assertEqual(after[b]["current_token"], before[b]["current_token"])
        self.assertIn(after[a]["current_token"], r.stdout)
        rig.check_invariants(self)
        # status --json reflects it: the documented fields, the daemon's own pid.
        status = self.status(rig)
        self.assertEqual(status["daemon"]["pid"], proc.pid)
        self.assertEqual(status["daemon"]["config"], rig.config)
        for key in ("version", "uptime_s", "config_loaded", "last_reload", "passes_running"):
            self.assertIn(key, status["daemon"])
        [controller] = status["controllers"]
        self.assertEqual(controller["name"], "emu")
        self.assertTrue(controller["reachable"])
        slot = {s["user"]: s for s in status["slots"]}[a]
        self.assertEqual(slot["slot"], "emu/%s" % a)
        self.assertEqual(slot["state"], "ok")
        self.assertEqual(slot["last_result"], "committed")
        self.assertTrue(slot["next_run"].endswith("Z"))
        self.assertEqual(slot["consecutive_failures"], 0)
        # The human table fits 100 columns.
        r = rig.run("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(all(len(line) <= 100 for line in r.stdout.splitlines()), r.stdout)
        self.assertIn("emu/%s" % a, r.stdout)
        # history: the slot's events, newest first, never a secret.
        r = rig.run("history", a, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        events = json.loads(r.stdout)["events"]
        self.assertTrue(events)
        self.assertTrue(all(e["slot"] == "emu/%s" % a for e in events), events)
        times = [e["time"] for e in events]
        self.assertEqual(times, sorted(times, reverse=True))
        r2 = rig.run("history", a)
        self.assertEqual(r2.returncode, 0, r2.stderr)
        for text in (r.stdout, r2.stdout, json.dumps(status)):
            self.assert_no_secret(rig, text)

    def test_rotate_all_and_prune(self):
        rig = self.rig("ctl-all", n=2)
        self.start_daemon(rig)
        before = self.rotated_once(rig)
        r = rig.run("rotate", "--all")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for u in rig.users:
            self.assertIn("queued emu/%s" % u, r.stdout)
        self.wait_until(rig, "rotate --all", lambda s: all(
            s[u]["current_token"] != before[u]["current_token"]
            and s[u]["last_result"] == "committed" for u in rig.users))
        r = rig.run("prune", "--wait")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"revoked \d+ token\(s\)")
        r = rig.run("prune")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("prune queued", r.stdout)
        rig.check_invariants(self)

    def test_unknown_slot_is_named_and_nothing_is_queued(self):
        rig = self.rig("ctl-unk", n=1)
        self.start_daemon(rig)
        self.rotated_once(rig)
        r = rig.run("rotate", "nobody-here", rig.users[0])
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("unknown slot: nobody-here", r.stderr)
        # plan through the daemon: its schedule, the runs asked for.
        r = rig.run("plan", "--daemon", "--count", "3", "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        [slot] = json.loads(r.stdout)["slots"]
        self.assertEqual(slot["slot"], "emu/%s" % rig.users[0])
        self.assertEqual(len(slot["runs"]), 3)
        r = rig.run("plan", "--daemon")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("emu/%s  schedule \"every 7d\"" % rig.users[0], r.stdout)

    def test_reload_with_a_broken_config_exits_78_and_the_daemon_keeps_running(self):
        rig = self.rig("ctl-rel", n=1)
        proc = self.start_daemon(rig)
        self.rotated_once(rig)
        rig.edit_config("lifetime: 30d", "lifetime: forever")
        r = rig.run("reload")
        self.assertEqual(r.returncode, 78, r.stdout + r.stderr)
        self.assertRegex(r.stderr, r"%s:\d+:\d+: .*lifetime" % rig.config)
        self.assertIsNone(proc.poll())
        status = self.status(rig)
        self.assertFalse(status["daemon"]["last_reload"]["ok"])
        rig.edit_config("lifetime: forever", "lifetime: 30d")
        r = rig.run("reload")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("reloaded", r.stdout)

    def flood(self, rig):
        """50 peers that connect and send nothing, and one that sends 1 MiB without a
        newline; returns a function that ends them and returns the big peer's answer."""
        silent = []
        for _ in range(50):
            s = socket.socket(socket.AF_UNIX)
            s.connect(rig.socket)
            silent.append(s)
        big = socket.socket(socket.AF_UNIX)
        big.connect(rig.socket)
        answer = {}

        def send():
            try:
                big.sendall(b"x" * (1024 * 1024))
            except OSError:
                pass  # cut at 64 KiB: the daemon closed
            data = b""
            while not data.endswith(b"\n"):
                try:
                    chunk = big.recv(4096)
                except OSError:
                    break
                if not chunk:
                    break
                data += chunk
            answer["big"] = data
        t = threading.Thread(target=send)
        t.start()

        def end():
            t.join(10)
            for s in silent:
                s.close()
            big.close()
            return answer.get("big", b"")
        return end

    def assert_status_answers_fast(self, rig, times=5):
        for _ in range(times):
            status, took = raw_request(rig.socket, b'{"v":1,"cmd":"status"}\n')
            self.assertTrue(status["ok"])
            self.assertLess(took, 0.1)

    def test_stalled_peers_do_not_delay_status(self):
        rig = self.rig("ctl-dos", n=1)
        self.start_daemon(rig)
        self.rotated_once(rig)
        end = self.flood(rig)
        try:
            self.assert_status_answers_fast(rig)
        finally:
            big = end()
        self.assertIn(b"request over 65536 bytes", big)

    @unittest.skipUnless(binary_has_crash_points(), "needs a -DJTR_CRASH_POINTS=ON build "
                         "(the clock hook makes a rotation due without waiting a day)")
    def test_stalled_peers_do_not_delay_a_scheduled_rotation(self):
        rig = self.rig("ctl-dos-sched", n=1, schedule="every 1d")
        rig.edit_config("state_dir:", "catch_up_spread: 1s\nstate_dir:")  # no spread to wait
        clock = os.path.join(rig.dir, "clock")
        with open(clock, "w") as f:
            f.write("0\n")
        self.start_daemon(rig, env={"JTR_CLOCK_FILE": clock, "JTR_MAX_SLEEP_S": "1"})
        user = rig.users[0]
        first = self.rotated_once(rig)[user]["current_token"]
        end = self.flood(rig)
        try:
            self.assert_status_answers_fast(rig, times=2)
            # A day and a bit later by the daemon's clock the slot is due: the scheduler
            # rotates it while the stalled peers are still connected.
            with open(clock, "w") as f:
                f.write("%d\n" % (86400 + 7200))
            jumped = time.monotonic()
            rotated = None
            while time.monotonic() - jumped < 20:
                status, took = raw_request(rig.socket, b'{"v":1,"cmd":"status"}\n')
                self.assertLess(took, 0.1)
                slot = status["slots"][0]
                if slot["current_token"] != first and slot["last_result"] == "committed":
                    rotated = time.monotonic() - jumped
                    break
                time.sleep(0.1)
        finally:
            big = end()
        self.assertIsNotNone(rotated, "no scheduled rotation under the flood\n"
                             + self.daemon_log(rig))
        self.assertLess(rotated, 10)
        self.assertIn(b"request over 65536 bytes", big)
        history = rig.run("history", user, "--json")
        self.assertEqual(history.returncode, 0, history.stderr)
        committed = [e for e in json.loads(history.stdout)["events"] if e["event"] == "committed"]
        self.assertEqual(len(committed), 2, "one scheduled rotation after the first")

if __name__ == "__main__":
    unittest.main()
