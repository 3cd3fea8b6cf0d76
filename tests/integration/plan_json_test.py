"""`plan` on a real config: the table and --json agree, and both match runs computed
here independently (Python's zoneinfo and our own definition of the jitter hash)."""

import datetime
import json
import os
import shutil
import subprocess
import tempfile
import unittest
import zoneinfo

BIN = os.environ["JTR_BIN"]
NOW = "2026-03-28T12:00:00Z"

CONFIG = """\
controllers:
  - name: ci
    url: https://jenkins.example.com/
    admin_user: admin
    admin_token_file: admin-token
recipients:
  deploy: deploy.pub
defaults:
  jitter: 30m
users:
  - user: svc-weekly
    controller: ci
    sinks: [{type: file, path: out-a.json, recipients: [deploy]}]
  - user: svc-berlin
    controller: ci
    schedule: "30 2 * * *"
    timezone: Europe/Berlin
    jitter: 0s
    sinks: [{type: file, path: out-b.json, recipients: [deploy]}]
  - user: svc-ny
    controller: ci
    schedule: "0 9 * * MON-FRI"
    timezone: America/New_York
    jitter: 0s
    sinks: [{type: file, path: out-c.json, recipients: [deploy]}]
  - user: svc-hourly
    controller: ci
    schedule: "15 * * * *"
    timezone: Europe/Berlin
    sinks: [{type: file, path: out-d.json, recipients: [deploy]}]
"""


def stable_hash(text):
    """FNV-1a 64 then the SplitMix64 finalizer, as daemon/schedule/jitter.hpp defines it."""
    mask = (1 << 64) - 1
    h = 0xCBF29CE484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001B3) & mask
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & mask
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & mask
    return h ^ (h >> 31)


def utc(t):
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class PlanTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="jtr-plan-")
        self.addCleanup(shutil.rmtree, self.dir)
        self.write("admin-token", "11aabbccddeeff00112233445566778899\n", 0o600)
        self.write("deploy.pub", "fCTGSPWSdCNJ0GEr2pDMz9ecEwAeQUbzKDkJsXCPtXs=\n", 0o644)
        self.config = self.write("config.yaml", CONFIG, 0o600)

    def write(self, name, text, mode):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def plan(self, *args, now=NOW):
        env = dict(os.environ, JTR_NOW=now)
        return subprocess.run([BIN, "plan", "-c", self.config, *args], env=env,
                              capture_output=True, text=True, timeout=30)

    def json_plan(self, *args):
        r = self.plan("--json", *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_json_agrees_with_the_table(self):
        doc = self.json_plan()
        table = self.plan()
        self.assertEqual(table.returncode, 0, table.stderr)
        # Table: a header line per slot ("ci/user  schedule ..."), then "  LOCAL  UTC" lines.
        parsed = {}
        current = None
        for line in table.stdout.splitlines()[1:]:
            if not line:
                continue
            if not line.startswith(" "):
                current = line.split()[0]
                parsed[current] = {"header": line, "runs": []}
            else:
                parsed[current]["runs"].append(line.split()[-1])
        self.assertEqual(doc["now"], NOW)
        self.assertEqual([s["slot"] for s in doc["slots"]], list(parsed))
        for s in doc["slots"]:
            self.assertEqual(s["slot"], f'{s["controller"]}/{s["user"]}')
            self.assertEqual(len(s["runs"]), 5)
            self.assertEqual(s["runs"], parsed[s["slot"]]["runs"])
            self.assertIn(f'schedule "{s["schedule"]}"  timezone {s["timezone"]}',
                          parsed[s["slot"]]["header"])

    def test_runs_match_an_independent_computation(self):
        slots = {s["user"]: s for s in self.json_plan("--count", "7")["slots"]}
        # Jitter: the documented hash of "controller/user" modulo the span.
        self.assertEqual(slots["svc-weekly"]["jitter_seconds"], stable_hash("ci/svc-weekly") % 1800)
        self.assertEqual(slots["svc-hourly"]["jitter_seconds"], stable_hash("ci/svc-hourly") % 1800)
        self.assertEqual(slots["svc-berlin"]["jitter_seconds"], 0)

        # every 7d without history: the first instant >= now at the slot's phase.
        now = datetime.datetime(2026, 3, 28, 12, tzinfo=datetime.timezone.utc)
        j = slots["svc-weekly"]["jitter_seconds"]
        first = now + datetime.timedelta(seconds=(j - int(now.timestamp())) % 1800)
        self.assertEqual(slots["svc-weekly"]["runs"],
                         [utc(first + datetime.timedelta(days=7 * i)) for i in range(7)])

        # 02:30 Berlin: 2026-03-29 has no 02:30, so that run is at the jump (03:00 CEST).
        berlin = zoneinfo.ZoneInfo("Europe/Berlin")
        expected = [utc(datetime.datetime(2026, 3, 29, 3, 0, tzinfo=berlin))]
        expected += [utc(datetime.datetime(2026, 3, d, 2, 30, tzinfo=berlin)) for d in (30, 31)]
        expected += [utc(datetime.datetime(2026, 4, d, 2, 30, tzinfo=berlin)) for d in (1, 2, 3, 4)]
        self.assertEqual(slots["svc-berlin"]["runs"], expected)
        self.assertEqual(expected[0], "2026-03-29T01:00:00Z")

        # Weekdays 09:00 New York (already on EDT since March 8); the 28th is a Saturday.
        ny = zoneinfo.ZoneInfo("America/New_York")
        days = [30, 31, (4, 1), (4, 2), (4, 3), (4, 6), (4, 7)]
        expected = [utc(datetime.datetime(2026, *(d if isinstance(d, tuple) else (3, d)), 9,
                                          tzinfo=ny)) for d in days]
        self.assertEqual(slots["svc-ny"]["runs"], expected)

        # 15 past every real hour, shifted by the slot's jitter; across the spring-forward
        # night the local 02:15 does not exist, and the runs stay one real hour apart.
        runs = [datetime.datetime.strptime(r, "%Y-%m-%dT%H:%M:%SZ") for r in
                self.json_plan("--count", "30")["slots"][3]["runs"]]
        gaps = {(b - a).total_seconds() for a, b in zip(runs, runs[1:])}
        self.assertEqual(gaps, {3600.0})

    def test_bad_input_is_refused_with_the_right_exit_code(self):
        r = self.plan(now="yesterday")
        self.assertEqual(r.returncode, 2)
        self.assertIn('JTR_NOW: expected an RFC 3339 time', r.stderr)
        r = self.plan("--count", "0")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--count: expected a number from 1 to 1000", r.stderr)
        self.write("config.yaml", CONFIG.replace("Europe/Berlin", "Europe/Atlantis", 1), 0o600)
        r = self.plan()
        self.assertEqual(r.returncode, 78)
        self.assertEqual(r.stderr.strip(),
                         f"{self.config}:17:15: users[1].timezone: expected an IANA time zone "
                         'name such as Europe/Berlin or UTC, found "Europe/Atlantis"')
        self.assertEqual(r.stdout, "")


if __name__ == "__main__":
    unittest.main()
