"""`once` signs every envelope with `signing_key` (issue 19 #3): a consumer's
`decrypt --verify-key` accepts what the daemon delivered and refuses it once a field
is changed."""
import base64
import json
import os
import subprocess
import unittest

from rotation_rig import BIN, RigTest


class OnceSigningTest(RigTest):
    def test_delivered_envelopes_carry_a_signature_consumers_verify(self):
        rig = self.rig("sign", n=1, sinks=("file",))
        key = os.path.join(rig.dir, "signing.key")
        made = subprocess.run([BIN, "keygen", "--sign", "--out", key], capture_output=True,
                              text=True, timeout=30)
        self.assertEqual(made.returncode, 0, made.stderr)
        verify_pub = os.path.join(rig.dir, "signing.pub")
        with open(verify_pub, "w") as f:
            f.write(made.stdout)
        with open(rig.config, "a") as f:
            f.write("signing_key: %s\n" % key)
        r = rig.once()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        user = rig.users[0]
        path = os.path.join(rig.out, user + ".json")
        env, token = rig.open_envelope(path)
        self.assertIn("signature", env)
        consumer = os.path.join(rig.dir, "deploy.key")
        with open(consumer, "w") as f:
            f.write(base64.b64encode(bytes(rig.key)).decode() + "\n")
        os.chmod(consumer, 0o600)
        ok = subprocess.run([BIN, "decrypt", "--key", consumer, "--verify-key", verify_pub, path],
                            capture_output=True, text=True, timeout=30)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.assertEqual(ok.stdout.strip(), token)

        env["user"] = "someone-else"
        forged = os.path.join(rig.dir, "forged.json")
        with open(forged, "w") as f:
            json.dump(env, f)
        bad = subprocess.run([BIN, "decrypt", "--key", consumer, "--verify-key", verify_pub,
                              forged], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(bad.returncode, 0)
        self.assertNotIn(token, bad.stdout + bad.stderr)


if __name__ == "__main__":
    unittest.main()
