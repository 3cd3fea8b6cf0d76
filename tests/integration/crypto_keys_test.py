"""keygen and pubkey against PyNaCl (Debian python3-nacl), a consumer nobody here wrote."""

import base64
import os
import stat
import subprocess
import tempfile
import unittest

from nacl.public import PrivateKey

BIN = os.environ["JTR_BIN"]


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def b64(raw):
    return base64.b64encode(bytes(raw)).decode()


class KeysTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="jtr-keys-")
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.name

    def run_bin(self, *args, stdin=b"", umask=0o022):
        return subprocess.run([BIN, *args], input=stdin, capture_output=True, timeout=30,
                              umask=umask, check=False)

    def test_keygen_writes_a_0600_key_and_prints_its_public_key(self):
        out = os.path.join(self.dir, "deploy.key")
        r = self.run_bin("keygen", "--out", out, umask=0)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, b"")
        st = os.stat(out)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        text = read_bytes(out)
        self.assertTrue(text.endswith(b"\n") and text.count(b"\n") == 1, text)
        raw = base64.b64decode(text.rstrip(b"\n"), validate=True)
        self.assertEqual(len(raw), 32)
        self.assertEqual(r.stdout.decode(), b64(PrivateKey(raw).public_key) + "\n")
        # The private key never reaches stdout or stderr.
        self.assertNotIn(text.rstrip(b"\n"), r.stdout + r.stderr)

    def test_keygen_makes_a_different_key_each_time(self):
        a = self.run_bin("keygen", "--out", os.path.join(self.dir, "a.key"))
        b = self.run_bin("keygen", "--out", os.path.join(self.dir, "b.key"))
        self.assertEqual((a.returncode, b.returncode), (0, 0))
        self.assertNotEqual(a.stdout, b.stdout)

    def test_keygen_never_overwrites(self):
        out = os.path.join(self.dir, "deploy.key")
        first = self.run_bin("keygen", "--out", out)
        self.assertEqual(first.returncode, 0, first.stderr)
        before = read_bytes(out)
        again = self.run_bin("keygen", "--out", out)
        self.assertEqual(again.returncode, 1)
        self.assertEqual(again.stdout, b"")
        self.assertIn(f"{out} already exists; refusing to overwrite".encode(), again.stderr)
        self.assertEqual(read_bytes(out), before)

        other = os.path.join(self.dir, "notes.txt")
        with open(other, "w") as f:
            f.write("precious\n")
        r = self.run_bin("keygen", "--out", other)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(read_bytes(other), b"precious\n")

    def test_keygen_does_not_follow_a_planted_symlink(self):
        target = os.path.join(self.dir, "elsewhere.key")
        link = os.path.join(self.dir, "deploy.key")
        os.symlink(target, link)
        r = self.run_bin("keygen", "--out", link)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"already exists", r.stderr)
        self.assertFalse(os.path.exists(target))

    def test_keygen_usage_and_io_errors(self):
        r = self.run_bin("keygen")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"--out FILE is required", r.stderr)
        r = self.run_bin("keygen", "--out", os.path.join(self.dir, "k"), "extra")
        self.assertEqual(r.returncode, 2)
        missing_dir = os.path.join(self.dir, "no-such-dir", "k")
        r = self.run_bin("keygen", "--out", missing_dir)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"cannot create {missing_dir}: No such file or directory".encode(), r.stderr)

    def test_pubkey_agrees_with_pynacl(self):
        for newline in (b"\n", b""):
            for _ in range(5):
                key = PrivateKey.generate()
                r = self.run_bin("pubkey", stdin=b64(key).encode() + newline)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout.decode(), b64(key.public_key) + "\n")
                self.assertEqual(r.stderr, b"")

    def test_pubkey_of_a_keygen_key_is_what_keygen_printed(self):
        out = os.path.join(self.dir, "deploy.key")
        made = self.run_bin("keygen", "--out", out)
        self.assertEqual(made.returncode, 0, made.stderr)
        r = self.run_bin("pubkey", stdin=read_bytes(out))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, made.stdout)

    def test_pubkey_rejects_what_is_not_a_key(self):
        key = b64(PrivateKey.generate()).encode()
        cases = {
            b"": b"found nothing",
            key + b"\n\n": b"more than one line",
            key + b"\r\n": b"not standard base64",
            key[:-1]: b"not standard base64",
            base64.b64encode(b"x" * 31): b"found base64 of 31 bytes",
            b"A" * 5000: b"expected at most 4096 bytes",
        }
        for stdin, expected in cases.items():
            with self.subTest(stdin=stdin[:20]):
                r = self.run_bin("pubkey", stdin=stdin)
                self.assertEqual(r.returncode, 1)
                self.assertEqual(r.stdout, b"")
                self.assertIn(b"pubkey: stdin", r.stderr)
                self.assertIn(expected, r.stderr)
                if len(stdin) > 8:
                    self.assertNotIn(stdin[:8], r.stderr)
        r = self.run_bin("pubkey", "some-file")
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
