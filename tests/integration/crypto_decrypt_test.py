"""decrypt opens envelopes sealed by PyNaCl (Debian python3-nacl); every failure is distinct.

Every run's stdout and stderr and every file left in the test directory are scanned for the
plain token: it may appear only on the stdout of a successful decrypt.
"""

import base64
import hashlib
import json
import os
import secrets
import subprocess
import tempfile
import unittest

from nacl.public import PrivateKey, PublicKey, SealedBox

BIN = os.environ["JTR_BIN"]


def b64(raw):
    return base64.b64encode(bytes(raw)).decode()


def key_id(public_key):
    return hashlib.sha256(bytes(public_key)).hexdigest()[:8]


def envelope(token, recipients, **changes):
    """An envelope as DESIGN §6, sealed by PyNaCl for each (name, PrivateKey)."""
    env = {
        "format": "jenkins-token-rotator/v1",
        "controller": "ci",
        "url": "https://jenkins.example.com/",
        "user": "svc-deploy",
        "token_name": "rotator-5f2a9c1e-000042",
        "token_uuid": "0b1c8e6a-8f4e-4d55-9a51-2f5b0c6d7e8f",
        "created": "2026-11-27T03:00:12Z",
        "expires": "2026-12-27T03:00:12Z",
        "jenkins_expires": "2026-12-28T00:00:00+09:00",
        "sealed": [
            {
                "recipient": name,
                "key_id": key_id(key.public_key),
                "alg": "crypto_box_seal",
                "ciphertext": b64(SealedBox(key.public_key).encrypt(token)),
            }
            for name, key in recipients
        ],
    }
    env.update(changes)
    return env


class DecryptTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="jtr-decrypt-")
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.name
        # Shaped like a Jenkins API token: "11" + 32 hex digits.
        self.token = ("11" + secrets.token_hex(16)).encode()
        self.mine = PrivateKey.generate()
        self.other = PrivateKey.generate()
        self.key_file = self.write("mine.key", b64(self.mine) + "\n", 0o600)
        self.runs = []
        self.addCleanup(self.scan_for_token)

    def write(self, name, content, mode=0o600):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(content if isinstance(content, bytes) else content.encode())
        os.chmod(path, mode)
        return path

    def write_envelope(self, env, name="env.json"):
        return self.write(name, json.dumps(env) if isinstance(env, dict) else env)

    def run_bin(self, *args, stdin=b""):
        r = subprocess.run([BIN, *args], input=stdin, capture_output=True, timeout=30,
                           check=False)
        self.runs.append((args, r))
        return r

    def scan_for_token(self):
        for args, r in self.runs:
            self.assertNotIn(self.token, r.stderr, args)
            if not (args[0] == "decrypt" and r.returncode == 0):
                self.assertNotIn(self.token, r.stdout, args)
        for name in os.listdir(self.dir):
            with open(os.path.join(self.dir, name), "rb") as f:
                self.assertNotIn(self.token, f.read(), name)

    def both(self):
        return envelope(self.token, [("deploy", self.other), ("deploy-next", self.mine)])

    def assert_fails(self, r, *expected):
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, b"")
        line = r.stderr.decode()
        self.assertTrue(line.startswith("jenkins-token-rotator: decrypt: "), line)
        self.assertEqual(line.count("\n"), 1, line)
        for e in expected:
            self.assertIn(e, line)
        return line

    def test_opens_the_entry_for_its_key_from_a_file_and_from_stdin(self):
        path = self.write_envelope(self.both())
        for args, stdin in (([path], b""), (["-"], self.read(path)), ([], self.read(path))):
            with self.subTest(args=args):
                r = self.run_bin("decrypt", "--key", self.key_file, *args, stdin=stdin)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout, self.token + b"\n")
                self.assertEqual(r.stderr, b"")

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def test_opens_with_a_key_made_by_keygen(self):
        key_path = os.path.join(self.dir, "keygen.key")
        made = self.run_bin("keygen", "--out", key_path)
        self.assertEqual(made.returncode, 0, made.stderr)
        public = base64.b64decode(made.stdout.strip(), validate=True)
        env = self.both()
        env["sealed"].append({
            "recipient": "ops",
            "key_id": hashlib.sha256(public).hexdigest()[:8],
            "alg": "crypto_box_seal",
            "ciphertext": b64(SealedBox(PublicKey(public)).encrypt(self.token)),
        })
        r = self.run_bin("decrypt", "--key", key_path, self.write_envelope(env))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, self.token + b"\n")

    def test_jenkins_expires_may_be_null(self):
        env = self.both()
        env["jenkins_expires"] = None
        r = self.run_bin("decrypt", "--key", self.key_file, self.write_envelope(env))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, self.token + b"\n")

    def test_each_failure_has_its_own_message(self):
        only_other = envelope(self.token, [("deploy", self.other)])
        tampered = self.both()
        raw = bytearray(base64.b64decode(tampered["sealed"][1]["ciphertext"]))
        raw[40] ^= 0x01
        tampered["sealed"][1]["ciphertext"] = b64(raw)
        cases = {
            "wrong key": (only_other, [
                f"no sealed entry for this key (key_id {key_id(self.mine.public_key)})",
                f"deploy ({key_id(self.other.public_key)})"]),
            "tampered": (tampered, [
                "sealed[1] (recipient deploy-next", "does not open with this key", "tampered"]),
            "unknown format": (dict(self.both(), format="jenkins-token-rotator/v9"), [
                'unknown format "jenkins-token-rotator/v9"']),
            "malformed JSON": (json.dumps(self.both())[:-1], ["malformed JSON"]),
            "wrong alg": (self.edited(lambda e: e["sealed"][1].update(alg="x25519")), [
                'sealed[1].alg: unsupported algorithm: expected "crypto_box_seal", found "x25519"']),
            "empty sealed": (dict(self.both(), sealed=[]), [
                "sealed: expected at least one sealed entry"]),
            "bad base64": (self.edited(lambda e: e["sealed"][0].update(ciphertext="!!!!")), [
                "sealed[0].ciphertext: expected standard base64"]),
            "missing field": (self.edited(lambda e: e.pop("token_uuid")), ["token_uuid: missing"]),
            "mistyped field": (dict(self.both(), user=["svc"]), [
                "user: expected a string, found array"]),
        }
        lines = {}
        for name, (env, expected) in cases.items():
            with self.subTest(case=name):
                path = self.write_envelope(env, "case.json")
                lines[name] = self.assert_fails(
                    self.run_bin("decrypt", "--key", self.key_file, path), f"{path}: ", *expected)
        self.assertEqual(len(set(lines.values())), len(cases), lines)

    def edited(self, edit):
        env = self.both()
        edit(env)
        return env

    def test_stdin_errors_are_named_stdin(self):
        r = self.run_bin("decrypt", "--key", self.key_file, stdin=b"{not json")
        self.assert_fails(r, "stdin: malformed JSON")

    def test_usage_errors_exit_2(self):
        path = self.write_envelope(self.both())
        r = self.run_bin("decrypt", path)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"--key FILE is required", r.stderr)
        r = self.run_bin("decrypt", "--key", self.key_file, path, path)
        self.assertEqual(r.returncode, 2)
        r = self.run_bin("decrypt", "--key")
        self.assertEqual(r.returncode, 2)

    def test_the_private_key_file_mode_is_checked(self):
        path = self.write_envelope(self.both())
        for mode in (0o644, 0o640, 0o604):
            with self.subTest(mode=oct(mode)):
                os.chmod(self.key_file, mode)
                self.assert_fails(self.run_bin("decrypt", "--key", self.key_file, path),
                                  f"private key file {self.key_file}: expected mode 0600 or "
                                  f"stricter, found mode {mode:04o}")
        os.chmod(self.key_file, 0o400)
        r = self.run_bin("decrypt", "--key", self.key_file, path)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_key_and_envelope_file_errors_name_the_file(self):
        path = self.write_envelope(self.both())
        missing = os.path.join(self.dir, "missing.key")
        self.assert_fails(self.run_bin("decrypt", "--key", missing, path),
                          f"private key file {missing}: cannot open")
        bad_key = self.write("bad.key", "not a key\n", 0o600)
        line = self.assert_fails(self.run_bin("decrypt", "--key", bad_key, path),
                                 f"private key file {bad_key}: expected one line of standard base64")
        self.assertNotIn("not a key", line)
        missing_env = os.path.join(self.dir, "missing.json")
        self.assert_fails(self.run_bin("decrypt", "--key", self.key_file, missing_env),
                          f"{missing_env}: cannot open")
        huge = self.write("huge.json", b" " * (1024 * 1024 + 1))
        self.assert_fails(self.run_bin("decrypt", "--key", self.key_file, huge),
                          f"{huge}: expected an envelope of at most 1 MiB")
        self.assert_fails(self.run_bin("decrypt", "--key", self.key_file, self.dir),
                          f"{self.dir}: cannot read")


if __name__ == "__main__":
    unittest.main()
