"""Helpers for the check-config --connect tests: a config for given controllers, the
binary's run, and small loopback servers (a redirecting/oversized HTTP server, a TCP
forwarder on another loopback address)."""

import http.server
import os
import shutil
import socket
import subprocess
import tempfile
import threading

SOURCE = os.environ.get("JTR_SOURCE_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BIN = os.environ.get("JTR_BIN", os.path.join(SOURCE, "build", "jenkins-token-rotator"))


class Workspace:
    """A temporary directory holding a config, its token files and a recipient key."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="jtr-connect-")
        shutil.copy(os.path.join(SOURCE, "conf", "recipients", "deploy.pub"),
                    os.path.join(self.dir, "deploy.pub"))
        os.chmod(os.path.join(self.dir, "deploy.pub"), 0o644)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def token_file(self, name, value):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(value + "\n")
        os.chmod(path, 0o600)
        return path

    def config(self, controllers, retry="{attempts: 3, initial: 0s, max: 1s}"):
        """controllers: dicts with name, url, admin_user, token, optional ca_file/timeout."""
        lines = ["state_dir: %s/state" % self.dir, "retry: %s" % retry, "controllers:"]
        for c in controllers:
            lines += ["  - name: %s" % c["name"],
                      "    url: %s" % c["url"],
                      "    admin_user: %s" % c["admin_user"],
                      "    admin_token_file: %s" % self.token_file(c["name"] + ".token", c["token"])]
            if c.get("ca_file"):
                lines.append("    ca_file: %s" % c["ca_file"])
            if c.get("timeout"):
                lines.append("    timeout: %s" % c["timeout"])
        lines += ["recipients:", "  deploy: %s/deploy.pub" % self.dir, "users:"]
        for c in controllers:
            lines += ["  - user: svc-%s" % c["name"],
                      "    controller: %s" % c["name"],
                      "    sinks:",
                      "      - {type: file, path: %s/%s.json, recipients: [deploy]}"
                      % (self.dir, c["name"])]
        path = os.path.join(self.dir, "config.yaml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(path, 0o600)
        return path

    def connect(self, controllers, **kw):
        """Runs check-config --connect; returns (exit code, {controller: line}, stdout)."""
        r = subprocess.run([BIN, "check-config", "-c", self.config(controllers, **kw), "--connect"],
                           capture_output=True, text=True, timeout=120)
        lines = {}
        for line in r.stdout.splitlines():
            name, _, rest = line.partition(": ")
            lines[name] = rest
        return r.returncode, lines, r.stdout + r.stderr


def emulator_controller(emu, name="ci", **extra):
    c = {"name": name, "url": emu.url, "admin_user": emu.admin_user, "token": emu.admin_token,
         "ca_file": emu.ca_file}
    c.update(extra)
    return c


class CannedServer:
    """A loopback HTTP server answering every request with one canned answer."""

    def __init__(self, status, headers=(), body=b""):
        outer = self
        self.requests = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                outer.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Forwarder:
    """Listens on `address` (another loopback address) and pipes bytes to target_port on
    127.0.0.1, so a client reaches the emulator under a name its certificate lacks."""

    def __init__(self, address, target_port):
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind((address, 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.target_port = target_port
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self):
        self.sock.close()
