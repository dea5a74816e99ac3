"""`petrel serve`: the REST API, sessions, CSRF, the console WebSocket and
the metrics history over the VMs of a state directory.

One server per module (its own PETREL_HOME and HOME).  Without a VMM:
authentication (401 for the API, the login page and its assets only,
cookies HttpOnly and SameSite=Strict), CSRF (403), bad input (413 for an
oversized body, 400 for bad JSON and unknown fields, markup in names
refused, no path escaping web/), a VM created, listed and deleted.  With
one Linux boot: create, start, two console WebSockets seeing the same
`uname -m` -> riscv64, a malformed frame closed with 1002 while the
server and the VM go on, a WebSocket from a foreign Origin refused, the
rrd series getting points, pause/resume, stop, delete.  Last, the login
rate limit (429).  And a second server on a non-loopback address: a
self-signed certificate made, HTTPS answering, Secure cookies."""

import base64
import http.client
import json
import os
import re
import socket
import struct
import subprocess
import time

import pytest

from api_helpers import serve_started
from petrel_helpers import check, fail, require_guest, require_tools

BOOT_TIMEOUT = 300
PROMPT = "petrel:/# "


class Server:
    def __init__(self, proc, host, port, token, home):
        self.proc, self.host, self.port, self.token, self.home = proc, host, port, token, home
        self.cookies = {}
        self.csrf = None

    def request(self, method, path, body=None, headers=None, auth=True, raw=None):
        c = http.client.HTTPConnection(self.host, self.port, timeout=240)
        h = dict(headers or {})
        if auth and self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None and "Content-Type" not in h:
            h["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        text = r.read()
        c.close()
        return r.status, r.headers, text

    def api(self, method, path, body=None, want=200, csrf=True):
        h = {"X-CSRF-Token": self.csrf} if csrf and method not in ("GET", "HEAD") else {}
        st, _, text = self.request(method, "/api/v1" + path, body, h)
        check(st == want, f"{method} {path}: status {st}, expected {want}: {text[:300]!r}")
        return json.loads(text) if text else None

    def login(self):
        st, hdrs, text = self.request("POST", "/login", {"token": self.token}, auth=False)
        check(st == 200, f"login: {st} {text!r}")
        for c in hdrs.get_all("Set-Cookie"):
            k, v = c.split(";")[0].split("=", 1)
            self.cookies[k] = v
        self.csrf = json.loads(text)["csrf"]
        return hdrs


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    require_guest()
    with serve_started(tmp_path_factory.mktemp("serve")) as up:
        s = Server(up.proc, up.host, up.port, up.token, up.home)
        s.env, s.binary = up.env, up.binary
        yield s


# --- a small WebSocket client (RFC 6455) -------------------------------------------

class WS:
    def __init__(self, srv, path, origin=True):
        self.sock = socket.create_connection((srv.host, srv.port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        hdr = (f"GET {path} HTTP/1.1\r\nHost: {srv.host}:{srv.port}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               f"Cookie: petrel_session={srv.cookies['petrel_session']}\r\n")
        if origin:
            hdr += f"Origin: {origin if isinstance(origin, str) else f'http://{srv.host}:{srv.port}'}\r\n"
        self.sock.sendall((hdr + "\r\n").encode())
        resp = b""
        while b"\r\n\r\n" not in resp:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            resp += chunk
        head, _, self.buf = resp.partition(b"\r\n\r\n")
        self.status = int(head.split()[1]) if head else 0
        self.head = head.decode(errors="replace")
        self.out = b""

    def send(self, data, opcode=2, mask=True):
        b = bytes([0x80 | opcode])
        n = len(data)
        mbit = 0x80 if mask else 0
        if n < 126:
            b += bytes([mbit | n])
        elif n < 65536:
            b += bytes([mbit | 126]) + struct.pack(">H", n)
        else:
            b += bytes([mbit | 127]) + struct.pack(">Q", n)
        if mask:
            m = os.urandom(4)
            b += m + bytes(c ^ m[i % 4] for i, c in enumerate(data))
        else:
            b += data
        self.sock.sendall(b)

    def frame(self, timeout):
        """(opcode, payload), or None at timeout / end."""
        self.sock.settimeout(timeout)
        def need(n):
            while len(self.buf) < n:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError
                self.buf += chunk
        try:
            need(2)
            op, n = self.buf[0] & 15, self.buf[1] & 127
            hl = 2
            if n == 126:
                need(4)
                n, hl = struct.unpack(">H", self.buf[2:4])[0], 4
            elif n == 127:
                need(10)
                n, hl = struct.unpack(">Q", self.buf[2:10])[0], 10
            need(hl + n)
            payload, self.buf = self.buf[hl:hl + n], self.buf[hl + n:]
            return op, payload
        except (socket.timeout, EOFError):
            return None

    def read_until(self, text, timeout):
        deadline = time.monotonic() + timeout
        while text.encode() not in self.out and time.monotonic() < deadline:
            f = self.frame(min(5, max(0.1, deadline - time.monotonic())))
            if f and f[0] == 2:
                self.out += f[1]
            elif f and f[0] == 8:
                break
        return text.encode() in self.out

    def close(self):
        self.sock.close()


# --- without a VMM -------------------------------------------------------------------

def test_auth_and_csrf(srv):
    st, _, _ = srv.request("GET", "/api/v1/vms")
    check(st == 401, f"unauthenticated API request: {st}, expected 401")
    st, h, _ = srv.request("GET", "/")
    check(st == 303 and h["Location"] == "/login", f"unauthenticated page: {st} {h['Location']}")
    st, _, _ = srv.request("GET", "/app.js")
    check(st == 303, f"unauthenticated asset other than the login page's: {st}")
    st, h, text = srv.request("GET", "/login")
    check(st == 200 and b"<form" in text and "nosniff" in h["X-Content-Type-Options"],
          f"login page: {st}")
    for asset in ("/style.css", "/login.js"):
        st, _, _ = srv.request("GET", asset)
        check(st == 200, f"login asset {asset}: {st}")
    st, _, _ = srv.request("POST", "/login", {"token": "0" * 48}, auth=False)
    check(st == 401, f"wrong token: {st}, expected 401")
    h = srv.login()
    sess = [c for c in h.get_all("Set-Cookie") if c.startswith("petrel_session=")][0]
    check("HttpOnly" in sess and "SameSite=Strict" in sess, f"session cookie: {sess}")
    st, _, text = srv.request("GET", "/")
    check(st == 200 and b'api("GET", "/vms")' in srv.request("GET", "/app.js")[2],
          f"logged in, the page: {st}")
    # state-changing requests need the CSRF token
    st, _, _ = srv.request("POST", "/api/v1/vms", {"name": "nocsrf"})
    check(st == 403, f"POST without X-CSRF-Token: {st}, expected 403")
    st, _, _ = srv.request("POST", "/api/v1/vms", {"name": "nocsrf"},
                           {"X-CSRF-Token": "f" * 64})
    check(st == 403, f"POST with a wrong X-CSRF-Token: {st}, expected 403")
    st, _, _ = srv.request("DELETE", "/api/v1/vms/nocsrf")
    check(st == 403, f"DELETE without X-CSRF-Token: {st}, expected 403")
    check(not (srv.home / "vms" / "nocsrf").exists(), "a refused request created a VM")
    check(srv.api("GET", "/session")["csrf"] == srv.csrf, "GET /api/v1/session")


def test_bad_input(srv):
    if not srv.csrf:
        srv.login()
    big = json.dumps({"name": "big", "pad": "x" * 70000})
    st, _, text = srv.request("POST", "/api/v1/vms", raw=big,
                              headers={"X-CSRF-Token": srv.csrf})
    check(st == 413, f"70 kB body: {st}, expected 413 ({text[:200]!r})")
    # chunked, no Content-Length
    c = http.client.HTTPConnection(srv.host, srv.port, timeout=30)
    c.putrequest("POST", "/api/v1/vms")
    c.putheader("Transfer-Encoding", "chunked")
    c.putheader("X-CSRF-Token", srv.csrf)
    c.putheader("Cookie", f"petrel_session={srv.cookies['petrel_session']}")
    c.endheaders()
    for _ in range(20):
        c.send(b"1000\r\n" + b"y" * 0x1000 + b"\r\n")
    c.send(b"0\r\n\r\n")
    r = c.getresponse()
    check(r.status == 413, f"chunked 80 kB body: {r.status}, expected 413")
    c.close()
    for body, want in ((None, "missing"), ({"name": "a", "bogus": 1}, "unknown field"),
                       ({"name": "<b>x</b>"}, "invalid VM name"),
                       ({"name": "a", "vcpus": "--help"}, "not starting with '-'"),
                       ({"name": "a", "network": "tap:x,y"}, "network")):
        st, _, text = srv.request("POST", "/api/v1/vms", raw=json.dumps(body) if body else "{",
                                  headers={"X-CSRF-Token": srv.csrf})
        check(st == 400, f"bad create {body}: {st}, expected 400: {text!r}")
    st, _, text = srv.request("GET", "/api/v1/vms/%3Cscript%3E")
    check(st == 404 and b"<script>" not in text, f"markup in a VM name: {st} {text!r}")
    for path in ("/../etc/passwd", "/.git/config", "/%2e%2e/Makefile"):
        st, _, _ = srv.request("GET", path)
        check(st == 404, f"{path}: {st}, expected 404")
    st, _, _ = srv.request("GET", "/api/v1/vms/nosuchvm")
    check(st == 404, f"a VM that does not exist: {st}")
    # the server still answers
    check(isinstance(srv.api("GET", "/vms"), list), "list after bad input")


def test_create_list_delete(srv):
    if not srv.csrf:
        srv.login()
    r = srv.api("POST", "/vms", {"name": "cold1", "vcpus": 2, "memory": "128M",
                                 "network": "none"}, want=201)
    check("created cold1" in r.get("message", ""), f"create message: {r}")
    srv.api("POST", "/vms", {"name": "cold1"}, want=409)
    vms = {v["name"]: v for v in srv.api("GET", "/vms")}
    check(vms["cold1"]["vcpus"] == 2 and vms["cold1"]["memory_mib"] == 128 and
          vms["cold1"]["state"] == "stopped", f"listed: {vms}")
    info = srv.api("GET", "/vms/cold1")
    check(info["definition"]["devices"] == ["virtio-rng"] or
          all("virtio-net" not in d for d in info["definition"]["devices"]),
          f"network none: {info['definition']['devices']}")
    srv.api("POST", "/vms/cold1/pause", want=409)
    srv.api("DELETE", "/vms/cold1")
    check(not (srv.home / "vms" / "cold1").exists(), "deleted VM's directory")
    srv.api("DELETE", "/vms/cold1", want=404)


# --- one boot ------------------------------------------------------------------------

def test_vm_console_rrd(srv):
    if not srv.csrf:
        srv.login()
    srv.api("POST", "/vms", {"name": "web1", "memory": "256M"}, want=201)
    try:
        srv.api("POST", "/vms/web1/start")
        vms = {v["name"]: v for v in srv.api("GET", "/vms")}
        check(vms["web1"]["state"] in ("running", "starting"), f"after start: {vms['web1']}")
        bad = WS(srv, "/api/v1/vms/web1/console", origin="http://evil.example")
        check(bad.status == 403, f"WebSocket from a foreign Origin: {bad.status}")
        bad.close()
        a = WS(srv, "/api/v1/vms/web1/console")
        check(a.status == 101, f"console upgrade: {a.head}")
        b = WS(srv, "/api/v1/vms/web1/console")
        check(b.status == 101, f"second console: {b.head}")
        a.send(b'{"type":"resize","cols":120,"rows":40}', opcode=1)
        deadline = time.monotonic() + BOOT_TIMEOUT
        while not a.read_until(PROMPT, 10):
            a.send(b"\n")
            if time.monotonic() > deadline:
                fail("no shell prompt on the console WebSocket", a.out[-2000:].decode(errors="replace"))
        a.out = b.out = b""
        a.send(b"uname -m\n")
        check(a.read_until("riscv64", 60), "uname -m on the console WebSocket",
              a.out.decode(errors="replace"))
        check(b.read_until("riscv64", 30), "the second viewer sees the same output",
              b.out.decode(errors="replace"))
        # a malformed frame (client frames must be masked): closed with 1002
        b.send(b"x", mask=False)
        f = b.frame(10)
        while f and f[0] == 2:          # console output still queued before the close
            f = b.frame(10)
        check(f and f[0] == 8 and struct.unpack(">H", f[1][:2])[0] == 1002,
              f"unmasked frame: expected close 1002, got {f}")
        b.close()
        a.close()
        # the server and the VM go on; rrd points come in
        deadline = time.monotonic() + 30
        while True:
            rrd = srv.api("GET", "/vms/web1/rrd")
            if len([c for c in rrd["cpu"] if c is not None]) >= 2:
                break
            if time.monotonic() > deadline:
                fail(f"rrd series got no points: {rrd}")
            time.sleep(1)
        check(len(rrd["t"]) == len(rrd["mem_bytes"]) and all(m and m > 0 for m in rrd["mem_bytes"]),
              f"rrd memory series: {rrd}")
        check(all(0 <= c <= 1.5 for c in rrd["cpu"] if c is not None), f"rrd cpu: {rrd['cpu']}")
        vms = {v["name"]: v for v in srv.api("GET", "/vms")}
        check(vms["web1"]["state"] == "running" and vms["web1"]["mem_bytes"],
              f"running with metrics after the WebSockets closed: {vms['web1']}")
        srv.api("POST", "/vms/web1/pause")
        check(srv.api("GET", "/vms/web1")["state"] == "paused", "paused")
        srv.api("POST", "/vms/web1/resume")
        srv.api("DELETE", "/vms/web1", want=409)
        srv.api("POST", "/vms/web1/stop", {"timeout_s": 20})
        check(srv.api("GET", "/vms/web1")["state"] == "stopped", "stopped")
        c = WS(srv, "/api/v1/vms/web1/console")
        check(c.status == 409, f"console of a stopped VM: {c.status}")
        c.close()
    finally:
        srv.request("POST", "/api/v1/vms/web1/kill", headers={"X-CSRF-Token": srv.csrf})
    srv.api("DELETE", "/vms/web1")
    check(srv.api("GET", "/vms") == [], "no VMs left")


# --- last: the login rate limit --------------------------------------------------------

def test_login_rate_limit(srv):
    if not srv.csrf:
        srv.login()
    codes = [srv.request("POST", "/login", {"token": "1" * 48}, auth=False)[0]
             for _ in range(6)]
    # test_auth_and_csrf failed once already: at most 5 failures a minute
    n401 = codes.index(429) if 429 in codes else len(codes)
    check(1 <= n401 <= 5 and codes[:n401] == [401] * n401 and
          codes[n401:] == [429] * (6 - n401), f"failed logins: {codes}")
    st, h, _ = srv.request("POST", "/login", {"token": srv.token}, auth=False)
    check(st == 429 and int(h["Retry-After"]) > 0, f"right token while limited: {st}")
    check(isinstance(srv.api("GET", "/vms"), list), "an existing session still works")


def test_tls_self_signed(srv, tmp_path):
    """A non-loopback --listen without a certificate gets a self-signed one
    (made with openssl in STATE/serve/); cookies are Secure; plain HTTP is
    not answered."""
    import ssl
    require_tools("openssl")
    proc = subprocess.Popen([srv.binary, "serve", "--listen", "0.0.0.0:0"], env=srv.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out = ""
        while "token=" not in out:
            line = proc.stdout.readline()
            if not line:
                fail("petrel serve --listen 0.0.0.0:0 printed no URL", proc.stderr.read())
            out += line
        m = re.search(r"https://[^:]+:(\d+)/\?token=([0-9a-f]+)", out)
        check(m and "self-signed certificate" in out, f"TLS start-up: {out}")
        check(oct((srv.home / "serve" / "key.pem").stat().st_mode & 0o777) == "0o600",
              "the key is 0600")
        ctx = ssl._create_unverified_context()
        c = http.client.HTTPSConnection("127.0.0.1", int(m.group(1)), context=ctx, timeout=30)
        c.request("GET", "/api/v1/vms")
        r = c.getresponse()
        r.read()
        check(r.status == 401, f"HTTPS unauthenticated: {r.status}")
        c.request("POST", "/login", json.dumps({"token": m.group(2)}),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        cookies = r.headers.get_all("Set-Cookie")
        check(r.status == 200 and all("Secure" in x for x in cookies),
              f"HTTPS login: {r.status} {cookies}")
        p = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=10)
        try:
            p.request("GET", "/login")
            st = p.getresponse().status
        except (ConnectionError, http.client.HTTPException, OSError):
            st = None
        check(st is None or st >= 400, f"plain HTTP on the TLS port: {st}")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
