#!/usr/bin/python3
"""vsock throughput next to the NAT's: the same guest, the same amount of
data, both directions, over virtio-vsock (Firecracker's hybrid model: a
host unix socket) and over virtio-net on user-mode NAT (libslirp, a host
TCP port forwarded to the guest and the guest connecting out to 10.0.2.2).

    bench/vsock.py [--mib N] [--runs R]

One default riscv64 guest (initramfs), 512 MiB, one vsock and one NIC.

  host->guest  the host writes N MiB and shuts its side; the guest's reader
               (vsock-test listen / busybox nc -l) discards it and exits;
               time from the first byte written to the guest's close
  guest->host  the guest pipes N MiB from /dev/zero (dd bs=64k) into
               vsock-test connect 2 PORT / nc 10.0.2.2 PORT; time from the
               host's accept to EOF

Figures are MiB/s, the median of R runs.  The guest runs on Petrel's
interpreter, so both transports are bounded by guest CPU time; the ratio
between them is the figure that carries to other machines.

Environment: PETREL (default build/petrel), PETREL_GUEST_DIR (default
build/guest).  Needs /usr/bin/python3 with pytest (the test helpers).
"""

import argparse
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from api_helpers import Vmm  # noqa: E402

PROMPT = "petrel:/# "
MiB = 1 << 20
VPORT_IN, VPORT_OUT = 6000, 6001


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def send_all_then_wait_close(s, total):
    """Write total bytes, shut the write side, wait for the peer to close.
    Returns the seconds from the first write to the close."""
    chunk = bytes(256 << 10)
    t0 = time.monotonic()
    left = total
    while left:
        n = s.send(chunk[:min(left, len(chunk))])
        left -= n
    s.shutdown(socket.SHUT_WR)
    while True:
        try:
            if not s.recv(65536):
                break
        except ConnectionResetError:
            break
    return time.monotonic() - t0


def receive_until_eof(listener, result):
    conn, _ = listener.accept()
    t0 = time.monotonic()
    got = 0
    while True:
        b = conn.recv(1 << 20)
        if not b:
            break
        got += len(b)
    result.append((got, time.monotonic() - t0))
    conn.close()


def vsock_connect(uds, port):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(120)
    s.connect(uds)
    s.sendall(f"CONNECT {port}\n".encode())
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            raise RuntimeError(f"vsock CONNECT {port}: closed ({line!r})")
        line += b
    if not line.startswith(b"OK "):
        raise RuntimeError(f"vsock CONNECT {port}: {line!r}")
    return s


def wait_listening(con, what, port):
    """Poll until the guest's listener is up (netstat/ss are not there:
    /proc/net/tcp{,6} for TCP (busybox nc listens on a dual-stack socket); for vsock a short sleep)."""
    if what == "tcp":
        hexport = f":{port:04X}"
        for _ in range(100):
            con.send(f"cat /proc/net/tcp /proc/net/tcp6 | grep -c '{hexport} 0*:0000 0A'; "
                     "echo @@$((0))E\n")
            out = con.expect("@@0E", 30)
            if "\n1\n" in out.replace("\r", ""):
                con.expect(PROMPT)
                return
            con.expect(PROMPT)
            time.sleep(0.1)
        raise RuntimeError(f"the guest's nc never listened: {out!r}")
    time.sleep(0.5)


def host_to_guest(vmm, con, uds, transport, total, hostport):
    if transport == "vsock":
        con.send(f"(vsock-test listen {VPORT_IN} >/dev/null; echo @@$((0))D) &\n")
        con.expect(PROMPT)
        wait_listening(con, "vsock", VPORT_IN)
        s = vsock_connect(uds, VPORT_IN)
    else:
        con.send("(nc -l -p 7000 >/dev/null; echo @@$((0))D) &\n")
        con.expect(PROMPT)
        wait_listening(con, "tcp", 7000)
        s = socket.create_connection(("127.0.0.1", hostport), timeout=120)
    secs = send_all_then_wait_close(s, total)
    s.close()
    con.expect("@@0D", 120)
    return total / MiB / secs


def guest_to_host(vmm, con, uds, transport, total):
    result = []
    if transport == "vsock":
        path = f"{uds}_{VPORT_OUT}"
        if os.path.exists(path):
            os.unlink(path)
        lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lst.bind(path)
        cmd = f"vsock-test connect 2 {VPORT_OUT}"
    else:
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        cmd = f"nc 10.0.2.2 {lst.getsockname()[1]}"
    lst.listen(1)
    t = threading.Thread(target=receive_until_eof, args=(lst, result))
    t.start()
    count = total // (64 << 10)
    con.send(f"dd if=/dev/zero bs=64k count={count} 2>/dev/null | {cmd}; echo @@$((0))D\n")
    t.join(300)
    con.expect("@@0D", 120)
    con.expect(PROMPT)
    lst.close()
    got, secs = result[0]
    if got != total:
        raise RuntimeError(f"{transport} guest->host: {got} bytes, want {total}")
    return total / MiB / secs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=32)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    total = args.mib * MiB
    hostport = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        uds = str(tmp / "v.sock")
        vmm = Vmm("default", tmp, ["--boot", "--memory", "512M",
                                   "--device", f"virtio-vsock,cid=3,uds={uds}",
                                   "--device", f"virtio-net,hostfwd=tcp:127.0.0.1:{hostport}-:7000"])
        try:
            con = vmm.console()
            con.expect(PROMPT, timeout=180)
            # the NIC's address comes by DHCP in the background
            con.send("for i in $(seq 100); do ip -4 addr show eth0 | grep -q 10.0.2 && break; "
                     "sleep 0.2; done; echo @@$((0))N\n")
            con.expect("@@0N", 60)
            con.expect(PROMPT)
            rows = []
            for transport in ("vsock", "nat"):
                h2g = [host_to_guest(vmm, con, uds, transport, total, hostport)
                       for _ in range(args.runs)]
                g2h = [guest_to_host(vmm, con, uds, transport, total) for _ in range(args.runs)]
                rows.append((transport, statistics.median(h2g), statistics.median(g2h)))
        finally:
            vmm.kill()
    print(f"\n{args.mib} MiB per transfer, median of {args.runs} runs (MiB/s)")
    print(f"{'transport':<10} {'host->guest':>12} {'guest->host':>12}")
    for t, a, b in rows:
        print(f"{t:<10} {a:12.1f} {b:12.1f}")
    (va, vb), (na, nb) = (rows[0][1:], rows[1][1:])
    print(f"vsock / NAT: {va / na:.2f}x host->guest, {vb / nb:.2f}x guest->host")


if __name__ == "__main__":
    main()
