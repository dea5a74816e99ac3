"""virtio-vsock end to end on the riscv64 Linux guest, Firecracker's hybrid
model (src/virtio/virtio_vsock.c), with the guest's vsock-test
(images/vsock-test.c):

- the device comes from the API (PUT /vsock before InstanceStart), and a
  PUT /vsock after the start or with a reserved CID is refused;
- host -> guest: the guest listens (vsock-test echo), a host client writes
  `CONNECT <port>\\n` to the unix socket, reads `OK <port>\\n`, and data goes
  both ways (a small message and 256 KiB, more than one credit window);
- guest -> host: the host listens on `<uds>_<port>`, the guest connects to
  CID 2, data both ways, the end of input (SHUTDOWN) reaches the host;
- a bad client line (`CONNECT abc`) and a port nobody listens on close the
  client, and the device goes on;
- a snapshot taken with a connection open, restored: the guest hears of the
  transport reset (its echo server leaves the dead connection) and new
  connections work;
- a --config-file "vsock" section becomes the device (its errors name it).

One guest boots for the module; the restore is a second VMM.
"""

import json
import os
import socket
import time

import pytest

from api_helpers import Vmm
from petrel_helpers import check, fail, require_guest, run_petrel

PROMPT = "petrel:/# "
CID = 3
ECHO_PORT = 1234


def _value(con, cmd, timeout=60):
    """The output of cmd, between markers the echoed command line does not
    contain ($((0)) expands only in the output)."""
    con.send(f"echo @@$((0))B; {cmd}; echo @@$((0))E\n")
    out = con.expect("@@0E", timeout)
    if "@@0B" not in out:
        fail(f"no fenced output for {cmd!r} in {out!r}")
    return out.split("@@0B")[-1].rsplit("@@0E", 1)[0].strip()


def _connect(uds, port, timeout=20):
    """A host client through CONNECT/OK: (socket, the OK line)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(uds)
    s.sendall(f"CONNECT {port}\n".encode())
    line = b""
    try:
        while not line.endswith(b"\n"):
            b = s.recv(1)
            if not b:
                break
            line += b
    except (socket.timeout, ConnectionResetError):
        pass
    return s, line.decode(errors="replace")


def _recv_exactly(s, n):
    buf = bytearray()
    while len(buf) < n:
        b = s.recv(min(65536, n - len(buf)))
        if not b:
            break
        buf += b
    return bytes(buf)


def _closed(s):
    """Whether the peer closed s (EOF or a reset) within its timeout."""
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True


@pytest.fixture(scope="module")
def vm(tmp_path_factory):
    """One guest with virtio-vsock from PUT /vsock and an echo server on
    ECHO_PORT: (tmp, vmm, console, uds)."""
    require_guest()
    tmp = tmp_path_factory.mktemp("vsock")
    uds = str(tmp / "v.sock")
    vmm = Vmm("default", tmp, ["--memory", "256M"])
    try:
        st, body = vmm.api("PUT", "/vsock", {"guest_cid": 2, "uds_path": uds})
        check(st == 400 and "guest_cid" in str(body), f"PUT /vsock cid 2: {st} {body!r}")
        st, body = vmm.api("PUT", "/vsock", {"vsock_id": "vsock0", "guest_cid": CID + 1,
                                             "uds_path": uds + ".old"})
        check(st == 204, f"PUT /vsock: {st} {body!r}")
        # a second PUT replaces the first
        st, body = vmm.api("PUT", "/vsock", {"guest_cid": CID, "uds_path": uds})
        check(st == 204, f"PUT /vsock again: {st} {body!r}")
        st, body = vmm.api("PUT", "/actions", {"action_type": "InstanceStart"})
        check(st == 204, f"InstanceStart: {st} {body!r}")
        st, body = vmm.api("PUT", "/vsock", {"guest_cid": 5, "uds_path": uds + ".late"})
        check(st == 400, f"PUT /vsock after the start: {st} {body!r}")
        con = vmm.console()
        con.expect(PROMPT, timeout=120)
        check(not os.path.exists(uds + ".old"), "the replaced vsock's socket exists")
        check(_value(con, "cat /sys/class/vsock/vsock/local_cid 2>/dev/null || "
                          "dmesg | grep -c vsock") != "", "no vsock in the guest")
        con.send(f"vsock-test echo {ECHO_PORT} >/dev/null 2>&1 &\n")
        con.expect(PROMPT)
        yield tmp, vmm, con, uds
    finally:
        vmm.kill()


def test_host_to_guest(vm):
    tmp, vmm, con, uds = vm
    deadline = time.monotonic() + 20
    while True:     # the echo server may take a moment to listen
        s, line = _connect(uds, ECHO_PORT)
        if line.startswith("OK "):
            break
        s.close()
        check(time.monotonic() < deadline, f"no OK from the guest's echo server: {line!r}")
        time.sleep(0.3)
    try:
        check(int(line.split()[1]) >= 1 << 30, f"OK line {line!r}")
        s.sendall(b"hello vsock\n")
        check(_recv_exactly(s, 12) == b"hello vsock\n", "echo of a short message")
        data = os.urandom(256 << 10)
        s.sendall(data)
        back = _recv_exactly(s, len(data))
        check(back == data, f"256 KiB echoed: got {len(back)} bytes, equal {back == data}")
    finally:
        s.close()


def test_guest_to_host(vm):
    tmp, vmm, con, uds = vm
    lpath = f"{uds}_5000"
    l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    l.bind(lpath)
    l.listen(1)
    l.settimeout(30)
    try:
        con.send("echo ping-from-guest | vsock-test connect 2 5000; "
                  "echo RC$((0))=$?\n")
        c, _ = l.accept()
        c.settimeout(20)
        got = b""
        while True:         # until the guest's end of input (SHUTDOWN)
            b = c.recv(4096)
            if not b:
                break
            got += b
        check(got == b"ping-from-guest\n", f"the host read {got!r}")
        c.sendall(b"pong-from-host\n")
        c.close()
        out = con.expect("RC0=", timeout=30) + con.expect("\n", 10)
        check("pong-from-host" in out, f"the guest did not print the host's reply: {out!r}")
        check("RC0=0" in out, f"vsock-test connect failed: {out!r}")
        con.expect(PROMPT)
        # nobody listens on another host port: the guest's connect fails
        out = _value(con, "vsock-test connect 2 5001 </dev/null; echo rc=$?")
        check("rc=1" in out, f"connect to a port nobody listens on: {out!r}")
    finally:
        l.close()
        os.unlink(lpath)


def test_bad_clients(vm):
    tmp, vmm, con, uds = vm
    for line in (b"CONNECT abc\n", b"HELLO\n", b"CONNECT " + b"9" * 40):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(uds)
        s.sendall(line)
        check(_closed(s), f"{line!r}: the client was not closed")
        s.close()
    s, line = _connect(uds, 4321)       # nobody listens there in the guest
    check(line == "" and _closed(s), f"CONNECT to a closed port: {line!r}")
    s.close()
    # the device and the guest go on
    s, line = _connect(uds, ECHO_PORT)
    check(line.startswith("OK "), f"after bad clients: {line!r}")
    s.sendall(b"still here")
    check(_recv_exactly(s, 10) == b"still here", "echo after bad clients")
    s.close()
    check(vmm.proc.poll() is None, "the VMM exited")
    check("bad line from a host client" in vmm.output(), "no log line for the bad line")


def test_snapshot_resets_connections(vm):
    tmp, vmm, con, uds = vm
    s, line = _connect(uds, ECHO_PORT)      # open across the snapshot
    check(line.startswith("OK "), f"before the snapshot: {line!r}")
    s.sendall(b"x")
    check(_recv_exactly(s, 1) == b"x", "echo before the snapshot")
    snap = tmp / "snap"
    snap.mkdir()
    st, body = vmm.api("PATCH", "/vm", {"state": "Paused"})
    check(st == 204, f"pause: {st} {body!r}")
    st, body = vmm.api("PUT", "/snapshot/create", {"snapshot_type": "Full",
                                                   "snapshot_path": str(snap / "state"),
                                                   "mem_file_path": str(snap / "memory")})
    check(st == 204, f"snapshot/create: {st} {body!r}")
    vmm.kill()
    s.close()
    r = Vmm("default", tmp, ["--restore", str(snap)], name="restored")
    try:
        rc = r.console()
        # the echo server still serves the connection from before the
        # snapshot unless the guest heard of the transport reset
        deadline = time.monotonic() + 30
        while True:
            s, line = _connect(uds, ECHO_PORT, timeout=5)
            try:
                check(line.startswith("OK "), f"after the restore: {line!r}")
                s.sendall(b"after restore")
                if _recv_exactly(s, 13) == b"after restore":
                    break
            except socket.timeout:
                pass
            finally:
                s.close()
            check(time.monotonic() < deadline, "no echo after the restore: the guest's "
                  "server still holds the connection from before the snapshot")
        check(_value(rc, "echo alive") == "alive", "the restored guest's shell")
    finally:
        r.kill()


def test_config_file_vsock(tmp_path):
    """A --config-file "vsock" section becomes the device: a socket path in a
    directory that does not exist fails at start, naming it."""
    require_guest()
    cfg = {"machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
           "vsock": {"guest_cid": 3, "uds_path": str(tmp_path / "nodir" / "v.sock")}}
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(cfg))
    r = run_petrel("default", ["run", "--config-file", str(path), "--no-api"], timeout=30)
    check(r.returncode == 1 and "virtio-vsock" in r.stderr and "nodir" in r.stderr,
          "a config file's vsock section must become the device", r)
    cfg["vsock"] = {"guest_cid": 1, "uds_path": "x"}
    path.write_text(json.dumps(cfg))
    r = run_petrel("default", ["run", "--config-file", str(path), "--no-api"], timeout=30)
    check(r.returncode == 1 and "vsock" in r.stderr and "guest_cid" in r.stderr,
          "a bad vsock section must fail naming the field", r)
