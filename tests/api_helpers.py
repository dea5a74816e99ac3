"""A generic HTTP/1.1 client over a unix socket (Python's http.client) and a
VMM process with its API and console sockets, for the API tests.

Nothing here knows Petrel's API: requests are plain method + path + JSON."""

import contextlib
import http.client
import json
import os
import re
import socket
import subprocess
import time
from types import SimpleNamespace

from petrel_helpers import (SANITIZER_MARKERS, check, fail, kill_group, petrel_env,
                            require_petrel, require_tools)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def api(sock, method, path, body=None, raw=None, timeout=30):
    """One request on a fresh connection: (status, parsed JSON or text)."""
    c = UnixHTTPConnection(sock, timeout)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json"} if data is not None else {}
    c.request(method, path, body=data, headers=headers)
    r = c.getresponse()
    text = r.read().decode(errors="replace")
    c.close()
    try:
        return r.status, json.loads(text) if text else None
    except ValueError:
        return r.status, text


def wait_for_socket(path, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                s.close()
                return
            except OSError:
                pass
        if proc.poll() is not None:
            raise AssertionError(f"the VMM exited ({proc.returncode}) before {path} appeared")
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear within {timeout} s")


class Console:
    """The VM's serial console over --console-sock."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""

    def send(self, text):
        self.s.sendall(text.encode())

    def expect(self, marker, timeout=60):
        """Read until marker (bytes or str) appears after what was consumed;
        returns the text up to and including it."""
        if isinstance(marker, str):
            marker = marker.encode()
        deadline = time.monotonic() + timeout
        while marker not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"console: {marker!r} not seen in {timeout} s; "
                                     f"last output: {self.buf[-2000:]!r}")
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise AssertionError(f"console closed before {marker!r}; "
                                     f"last output: {self.buf[-2000:]!r}")
            self.buf += chunk
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out.decode(errors="replace")

    def close(self):
        self.s.close()


class Vmm:
    """`petrel run --api-sock ... --console-sock ...` in its own process group."""

    def __init__(self, flavor, tmp_path, args=(), name="vm"):
        self.petrel = require_petrel(flavor)
        self.api_sock = str(tmp_path / f"{name}.api")
        self.console_sock = str(tmp_path / f"{name}.console")
        self.log = tmp_path / f"{name}.vmm.log"
        self.proc = subprocess.Popen(
            [self.petrel, "run", "--api-sock", self.api_sock, "--console-sock",
             self.console_sock, *args],
            stdin=subprocess.DEVNULL, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,
            env=petrel_env(flavor), start_new_session=True)
        wait_for_socket(self.api_sock, self.proc)

    def api(self, method, path, body=None, **kw):
        return api(self.api_sock, method, path, body, **kw)

    def console(self):
        wait_for_socket(self.console_sock, self.proc)
        return Console(self.console_sock)

    def wait(self, timeout=60):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.proc)
            raise AssertionError(f"the VMM did not exit within {timeout} s")

    def output(self):
        return self.log.read_text(errors="replace")

    def kill(self):
        if self.proc.poll() is None:
            kill_group(self.proc)
            self.proc.wait()


@contextlib.contextmanager
def serve_started(base):
    """`petrel serve` on a free loopback port, sampling every second, with
    PETREL_HOME base/state and HOME base/home (an ssh key made there for
    `petrel vm create`).  Yields url (http://HOST:PORT), host, port, token,
    home, env, binary and proc.  On the way out every VMM it started is
    killed, the server is stopped and its stderr must hold no sanitizer
    report."""
    require_tools("ssh-keygen")
    binary = require_petrel("default")
    (base / "home" / ".ssh").mkdir(parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    str(base / "home" / ".ssh" / "id_ed25519")], check=True)
    env = petrel_env("default", {"PETREL_HOME": str(base / "state"), "HOME": str(base / "home")})
    proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--sample-interval", "1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    m = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not m:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"open (http://([^/:]+):(\d+))/\?token=([0-9a-f]+)", line)
    if not m:
        proc.kill()
        fail("petrel serve printed no URL", proc.stderr.read())
    home = base / "state"
    try:
        yield SimpleNamespace(url=m.group(1), host=m.group(2), port=int(m.group(3)),
                              token=m.group(4), home=home, env=env, binary=binary, proc=proc)
    finally:
        for vm in (home / "vms").glob("*/run.json"):
            try:
                os.kill(json.loads(vm.read_text())["pid"], 9)
            except (ProcessLookupError, KeyError, ValueError, TypeError):
                pass
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        for marker in SANITIZER_MARKERS:
            check(marker not in err, f"sanitizer report in petrel serve ({marker})", err)
