"""Signed envelopes (issue 19 #3), echoed values (#5) and checked stdout (#9), on the real binary.

Envelopes are made and signed by PyNaCl (nacl.public.SealedBox, nacl.signing.SigningKey from
the seed `keygen --sign` wrote) over the bytes docs/envelope.md defines, so the binary is
checked against a second implementation of the format, not against itself.
"""

import base64
import copy
import hashlib
import json
import os
import secrets
import struct
import subprocess
import tempfile
import unittest

from nacl.public import PrivateKey, SealedBox
from nacl.signing import SigningKey

BIN = os.environ["JTR_BIN"]


def b64(raw):
    return base64.b64encode(bytes(raw)).decode()


def key_id(public_key):
    return hashlib.sha256(bytes(public_key)).hexdigest()[:8]


def field(b):
    return struct.pack(">Q", len(b)) + b


def signed_bytes(env):
    m = b"jenkins-token-rotator/v1 signature\0"
    for k in ("format", "controller", "url", "user", "token_name", "token_uuid", "created",
              "expires"):
        m += field(env[k].encode())
    je = env["jenkins_expires"]
    m += b"\0" if je is None else b"\1" + field(je.encode())
    m += struct.pack(">Q", len(env["sealed"]))
    for e in env["sealed"]:
        m += field(e["recipient"].encode()) + field(e["key_id"].encode())
        m += field(e["alg"].encode()) + field(base64.b64decode(e["ciphertext"]))
    return m + field(b"ed25519") + field(env["signature"]["key_id"].encode())


class SignatureTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="jtr-sign-")
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.name
        self.token = ("11" + secrets.token_hex(16)).encode()
        self.mine = PrivateKey.generate()
        self.key_file = self.write("mine.key", b64(self.mine) + "\n")
        # The signing key pair from the binary itself.
        self.sign_file = os.path.join(self.dir, "sign.key")
        r = self.run_bin("keygen", "--sign", "--out", self.sign_file)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.pub_text = r.stdout.decode()
        self.verify_file = self.write("sign.pub", self.pub_text, 0o644)
        with open(self.sign_file) as f:
            seed = f.read()
        self.assertTrue(seed.startswith("ed25519-sign:") and seed.endswith("\n"))
        self.signer = SigningKey(base64.b64decode(seed[len("ed25519-sign:"):-1], validate=True))

    def write(self, name, content, mode=0o600):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(content if isinstance(content, bytes) else content.encode())
        os.chmod(path, mode)
        return path

    def run_bin(self, *args, stdin=b"", stdout=subprocess.PIPE):
        return subprocess.run([BIN, *args], input=stdin, stdout=stdout, stderr=subprocess.PIPE,
                              timeout=30, check=False)

    def envelope(self, plain=None, **changes):
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
            "sealed": [{
                "recipient": "deploy",
                "key_id": key_id(self.mine.public_key),
                "alg": "crypto_box_seal",
                "ciphertext": b64(SealedBox(self.mine.public_key).encrypt(
                    self.token if plain is None else plain)),
            }],
        }
        env.update(changes)
        return env

    def sign(self, env, signer=None):
        signer = signer or self.signer
        env = copy.deepcopy(env)
        env["signature"] = {"alg": "ed25519", "key_id": key_id(signer.verify_key), "sig": ""}
        env["signature"]["sig"] = b64(signer.sign(signed_bytes(env)).signature)
        return env

    def decrypt(self, env, *extra):
        path = self.write("env.json", json.dumps(env) if isinstance(env, dict) else env)
        return self.run_bin("decrypt", "--key", self.key_file, *extra, path)

    def assert_refused(self, r, *expected):
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, b"")
        self.assertNotIn(self.token, r.stderr)
        line = r.stderr.decode()
        self.assertEqual(line.count("\n"), 1, line)
        for e in expected:
            self.assertIn(e, line)
        return line

    def test_keygen_sign_makes_a_0600_key_and_prints_its_verify_key(self):
        self.assertEqual(os.stat(self.sign_file).st_mode & 0o777, 0o600)
        self.assertEqual(self.pub_text,
                         "ed25519-verify:" + b64(self.signer.verify_key) + "\n")
        r = self.run_bin("keygen", "--sign", "--out", self.sign_file)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"already exists; refusing to overwrite", r.stderr)
        with open(self.sign_file, "rb") as f:
            r = self.run_bin("pubkey", stdin=f.read())
        self.assertEqual(r.stdout.decode(), self.pub_text)

    def test_a_signed_envelope_decrypts_with_verify_key(self):
        r = self.decrypt(self.sign(self.envelope()), "--verify-key", self.verify_file)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, self.token + b"\n")
        # Without --verify-key a signed envelope opens as before.
        self.assertEqual(self.decrypt(self.sign(self.envelope())).stdout, self.token + b"\n")

    def test_unsigned_other_key_and_every_changed_field_are_refused(self):
        self.assert_refused(self.decrypt(self.envelope(), "--verify-key", self.verify_file),
                            "the envelope is not signed")
        other = SigningKey.generate()
        self.assert_refused(
            self.decrypt(self.sign(self.envelope(), other), "--verify-key", self.verify_file),
            f"signed by key_id {key_id(other.verify_key)}")
        signed = self.sign(self.envelope())
        changes = {
            "controller": lambda e: e.update(controller="ci2"),
            "url": lambda e: e.update(url="https://evil.example.com/"),
            "user": lambda e: e.update(user="svc-other"),
            "token_name": lambda e: e.update(token_name="rotator-5f2a9c1e-000043"),
            "token_uuid": lambda e: e.update(token_uuid="1" + e["token_uuid"][1:]),
            "created": lambda e: e.update(created="2026-11-27T03:00:13Z"),
            "expires": lambda e: e.update(expires="2027-12-27T03:00:12Z"),
            "jenkins_expires": lambda e: e.update(jenkins_expires=None),
            "recipient": lambda e: e["sealed"][0].update(recipient="mallory"),
            "ciphertext": lambda e: e["sealed"][0].update(
                ciphertext=b64(SealedBox(self.mine.public_key).encrypt(self.token))),
            "added entry": lambda e: e["sealed"].append(dict(e["sealed"][0], recipient="x")),
            "sig": lambda e: e["signature"].update(
                sig=b64(bytes([base64.b64decode(e["signature"]["sig"])[0] ^ 1]) +
                        base64.b64decode(e["signature"]["sig"])[1:])),
        }
        for name, change in changes.items():
            with self.subTest(field=name):
                env = copy.deepcopy(signed)
                change(env)
                self.assert_refused(self.decrypt(env, "--verify-key", self.verify_file),
                                    "the signature does not verify")
        # The verify key file must not be writable by others, and must be a verify key.
        os.chmod(self.verify_file, 0o666)
        self.assert_refused(self.decrypt(signed, "--verify-key", self.verify_file),
                            "not writable by group or others")
        self.assert_refused(self.decrypt(signed, "--verify-key", self.sign_file),
                            "found a private signing key")

    def test_a_plaintext_that_is_not_a_jenkins_token_is_not_printed(self):
        for plain in (b"\x1b]0;pwned\x07\x1b[2J", b"11" + b"A" * 32, b"11abc", b"x" * 34,
                      self.token + b"\n"):
            with self.subTest(plain=plain):
                line = self.assert_refused(self.decrypt(self.envelope(plain)),
                                           "is not a Jenkins API token", "not printed")
                self.assertNotIn("\x1b", line)
                line = self.assert_refused(
                    self.decrypt(self.sign(self.envelope(plain)), "--verify-key",
                                 self.verify_file), "is not a Jenkins API token")

    def test_echoed_values_are_quoted_escaped_and_cut(self):
        cases = {
            "newline": ("format", "x\nINFO forged line"),
            "title escape": ("created", "\x1b]0;pwned\x07"),
            "colour": ("format", "\x1b[31mred\x1b[0m"),
            "long": ("created", "9" * (900 * 1024)),
            "unknown field with ESC": ("x\x1b[2J", 1),
        }
        for name, (key, value) in cases.items():
            with self.subTest(case=name):
                env = self.envelope()
                env[key] = value
                line = self.assert_refused(self.decrypt(env))
                self.assertNotIn("\x1b", line)
                self.assertNotIn("\x07", line)
                self.assertLess(len(line), 1000, line[:300])
        # Invalid UTF-8 and raw control bytes inside the JSON text itself.
        raw = json.dumps(self.envelope()).encode().replace(b'"ci"', b'"c\xff\x1b]0;t\x07"')
        line = self.assert_refused(self.decrypt(raw))
        self.assertNotIn("\x1b", line)
        self.assertIn("malformed JSON", line)
        line = self.assert_refused(self.decrypt(dict(self.envelope(), created="9" * 900)))
        self.assertIn('"' + "9" * 200 + '"…(900 bytes)', line)
        line = self.assert_refused(self.decrypt(dict(self.envelope(), format="a\nb")))
        self.assertIn('unknown format "a\\nb"', line)

    def test_stdout_failures_exit_1(self):
        with open("/dev/full", "wb") as full:
            out = os.path.join(self.dir, "lost.key")
            for args in (["keygen", "--out", out], ["keygen", "--sign", "--out", out]):
                with self.subTest(args=args):
                    r = self.run_bin(*args, stdout=full)
                    self.assertEqual(r.returncode, 1, r.stderr)
                    self.assertIn(b"stdout: cannot write", r.stderr)
                    self.assertIn(b"removed " + out.encode(), r.stderr)
                    self.assertFalse(os.path.exists(out))
            with open(self.key_file, "rb") as f:
                r = self.run_bin("pubkey", stdin=f.read(), stdout=full)
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"stdout: cannot write", r.stderr)
            path = self.write("env.json", json.dumps(self.envelope()))
            r = self.run_bin("decrypt", "--key", self.key_file, path, stdout=full)
            self.assertEqual(r.returncode, 1)
            self.assertIn(b"stdout: cannot write", r.stderr)
            self.assertNotIn(self.token, r.stderr)


if __name__ == "__main__":
    unittest.main()
