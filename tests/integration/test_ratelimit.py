"""Disk rate limits (token buckets, core/ratelimit.h) on the riscv64 guest:
the guest's own dd with direct I/O measures what virtio-blk lets through.

One guest boots for the module with `--disk DISK,bps=4M` (a qcow2 disk, so
the VM can be snapshotted) and `--device virtio-net,rx_bps=256K`, and:
  - reads and writes hold 4 MiB/s within 5% (the bucket is drained by a
    first dd, then a long-enough dd is timed between two console markers);
  - PATCH /drives/{id} while running changes the live limiter: 8 MiB/s,
    then 100 operations per second (4 KiB reads), then no limit at all;
  - bad rate_limiter bodies are 400 naming the field; bad --disk options
    one line on stderr;
  - a snapshot restored with `petrel run --restore` keeps the limit the
    PATCH set (GET /vm/config shows it and dd measures it).
  - the card's receive limit holds for a wget from a host HTTP server, and
    after a PATCH the transmit limit for busybox nc to a host socket: the
    rate is the card's own byte counters (GET /petrel/metrics, frames with
    their headers, what the limiter charges) between two console markers,
    within 5%.
All traffic stays on the host's loopback (the NAT's 10.0.2.2).
"""

import functools
import http.server
import os
import socket
import threading
import time

import pytest

from api_helpers import Vmm
from petrel_helpers import assert_one_line_error, check, require_guest, run_petrel

PROMPT = "petrel:/# "
MiB = 1 << 20
TOLERANCE = 0.05


def _shell(con, cmd, timeout=60):
    con.send(cmd + "\n")
    return con.expect(PROMPT, timeout=timeout)


def _timed(con, drain, measure, timeout=60):
    """Run drain, then measure, in one command line; seconds measure took
    (between two markers the echoed command line does not contain)."""
    con.send(f"{drain} 2>/dev/null; echo @@$((1))M; {measure}; echo @@$((1))E\n")
    con.expect("@@1M", timeout)
    t0 = time.monotonic()
    out = con.expect("@@1E", timeout)
    t1 = time.monotonic()
    con.expect(PROMPT, 10)
    return t1 - t0, out


def _rate_check(what, amount, seconds, want):
    got = amount / seconds
    print(f"{what}: {got:.1f}/s, limit {want}/s ({100 * (got - want) / want:+.2f}%)")
    check(abs(got - want) <= TOLERANCE * want,
          f"{what}: {got:.1f}/s measured ({amount} in {seconds:.3f} s), limit {want}/s "
          f"(tolerance {TOLERANCE:.0%})")
    return got


def _ok(st, body, what):
    check(st == 204, f"{what}: {st} {body!r}")


def _bucket(size, refill_ms=1000):
    return {"size": size, "refill_time": refill_ms}


@pytest.fixture(scope="module")
def guest(tmp_path_factory):
    require_guest()
    tmp = tmp_path_factory.mktemp("rl")
    disk = tmp / "data.qcow2"
    r = run_petrel("default", ["img", "create", "-f", "qcow2", str(disk), "256M"], timeout=60)
    check(r.returncode == 0, f"img create: {r.stderr}")
    vmm = Vmm("default", tmp, ["--boot", "--memory", "256M", "--disk", f"{disk},bps=4M",
                               "--device", "virtio-net,rx_bps=256K"])
    try:
        con = vmm.console()
        con.expect(PROMPT, timeout=180)
        yield tmp, vmm, con
    finally:
        vmm.kill()


def test_read_and_write_hold_the_limit(guest):
    _, vmm, con = guest
    # the bucket starts full (one second's worth): a first dd empties it
    secs, out = _timed(con, "dd if=/dev/vda of=/dev/null bs=256k count=24 iflag=direct",
                       "dd if=/dev/vda of=/dev/null bs=256k count=64 iflag=direct")
    check("64+0 records out" in out, f"dd read: {out!r}")
    _rate_check("read at bps=4M", 16 * MiB, secs, 4 * MiB)
    secs, out = _timed(con, "dd if=/dev/zero of=/dev/vda bs=256k count=8 oflag=direct",
                       "dd if=/dev/zero of=/dev/vda bs=256k count=40 seek=8 oflag=direct")
    check("40+0 records out" in out, f"dd write: {out!r}")
    _rate_check("write at bps=4M", 10 * MiB, secs, 4 * MiB)


def test_patch_changes_the_live_limit(guest):
    _, vmm, con = guest
    _ok(*vmm.api("PATCH", "/drives/disk0", {"drive_id": "disk0", "rate_limiter": {
        "bandwidth": _bucket(8 * MiB)}}), "PATCH bandwidth 8M")
    secs, _ = _timed(con, "dd if=/dev/vda of=/dev/null bs=256k count=40 iflag=direct",
                     "dd if=/dev/vda of=/dev/null bs=256k count=64 iflag=direct")
    _rate_check("read after PATCH to 8 MiB/s", 16 * MiB, secs, 8 * MiB)

    # operations only: 100 per second, 4 KiB reads
    _ok(*vmm.api("PATCH", "/drives/disk0", {"drive_id": "disk0", "rate_limiter": {
        "bandwidth": _bucket(0, 0), "ops": _bucket(100)}}), "PATCH ops 100/s")
    secs, out = _timed(con, "dd if=/dev/vda of=/dev/null bs=4k count=110 iflag=direct",
                       "dd if=/dev/vda of=/dev/null bs=4k count=200 skip=200 iflag=direct")
    check("200+0 records out" in out, f"dd 4k: {out!r}")
    _rate_check("4 KiB reads at 100 ops/s", 200, secs, 100)

    # no limit: much faster than any of the above
    _ok(*vmm.api("PATCH", "/drives/disk0", {"drive_id": "disk0", "rate_limiter": {
        "ops": _bucket(0, 0)}}), "PATCH off")
    st, cfg = vmm.api("GET", "/vm/config")
    check(st == 200 and "rate_limiter" not in cfg["drives"][0], f"no limiter left: {cfg!r}")
    secs, _ = _timed(con, "true", "dd if=/dev/vda of=/dev/null bs=256k count=64 iflag=direct")
    check(16 * MiB / secs > 12 * MiB, f"unlimited read: {16 / secs:.1f} MiB/s")


def test_bad_input(guest):
    _, vmm, _ = guest
    bad = [
        ({"bandwidth": {"size": -1, "refill_time": 100}}, "rate_limiter.bandwidth.size"),
        ({"bandwidth": {"size": 1 << 62, "refill_time": 100}}, "rate_limiter.bandwidth.size"),
        ({"ops": {"size": 5}}, "rate_limiter.ops: missing field `refill_time`"),
        ({"ops": {"size": 5, "refill_time": 1, "burst": 1}}, "rate_limiter.ops: unknown field"),
        ({"bytes": {}}, "rate_limiter: unknown field `bytes`"),
    ]
    for body, want in bad:
        st, resp = vmm.api("PATCH", "/drives/disk0", {"drive_id": "disk0", "rate_limiter": body})
        msg = resp.get("fault_message", "") if isinstance(resp, dict) else str(resp)
        check(st == 400 and want in msg, f"PATCH {body}: {st} {resp!r}, wanted 400 {want!r}")
    for opt, want in [("bps=abc", "bps=abc: expected a number of bytes"),
                      ("iops=1.5", "iops=1.5: expected a number"),
                      ("bps=99999999999999999999", "bps=99999999999999999999: at most"),
                      ("bps_refill=0,bps=1", "bps_refill=0: the refill time")]:
        assert_one_line_error("default", ["run", "--disk", f"/dev/null,{opt}"], want)


# ---- the network card ------------------------------------------------------

KiB = 1 << 10
NET_LIMIT = 256 * KiB
# The initramfs has no udhcpc script: this one configures the interface.
DHCP_SCRIPT = (
    "printf '#!/bin/sh\\ncase \"$1\" in bound|renew) ifconfig $interface $ip netmask "
    "$subnet up; route add default gw $router dev $interface;; deconfig) ifconfig "
    "$interface 0.0.0.0 up;; esac\\n' > /tmp/dhcp.sh; chmod +x /tmp/dhcp.sh")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _sink():
    """A host socket that reads and drops what the guest sends."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(4)

    def loop():
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            while c.recv(65536):
                pass
            c.close()
    threading.Thread(target=loop, daemon=True).start()
    return s


def _net_bytes(vmm, key):
    st, m = vmm.api("GET", "/petrel/metrics")
    check(st == 200, f"GET /petrel/metrics: {st} {m!r}")

    def find(o):
        if isinstance(o, dict):
            if o.get("id") == "net0" and key in o:
                return o[key]
            o = list(o.values())
        if isinstance(o, list):
            for x in o:
                v = find(x)
                if v is not None:
                    return v
        return None
    v = find(m)
    check(v is not None, f"no net0 {key} in {m!r}")
    return v


def _net_timed(vmm, con, key, drain, measure, timeout=60):
    """Like _timed, with the card's byte counter read at both markers."""
    con.send(f"{drain} >/dev/null 2>&1; echo @@$((2))M; {measure}; echo @@$((2))E\n")
    con.expect("@@2M", timeout)
    t0 = time.monotonic()
    b0 = _net_bytes(vmm, key)
    out = con.expect("@@2E", timeout)
    t1 = time.monotonic()
    b1 = _net_bytes(vmm, key)
    con.expect(PROMPT, 10)
    return b1 - b0, t1 - t0, out


def test_network_card_limits(guest):
    tmp, vmm, con = guest
    www = tmp / "www"
    www.mkdir()
    (www / "drain").write_bytes(os.urandom(384 * KiB))
    (www / "big").write_bytes(os.urandom(1024 * KiB))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                          functools.partial(_Quiet, directory=str(www)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sink = _sink()
    try:
        _shell(con, DHCP_SCRIPT)
        out = _shell(con, "udhcpc -i eth0 -s /tmp/dhcp.sh -q -n -t 5 2>&1 | tail -1")
        check("10.0.2.15" in out, f"no DHCP lease: {out!r}")
        url = f"http://10.0.2.2:{srv.server_address[1]}"
        n, secs, out = _net_timed(vmm, con, "rx_bytes", f"wget -q -O /dev/null {url}/drain",
                                  f"wget -O /dev/null {url}/big 2>&1 | tail -1")
        check(n >= 1024 * KiB, f"wget received {n} bytes: {out!r}")
        _rate_check("receive at rx_bps=256K", n, secs, NET_LIMIT)

        _ok(*vmm.api("PATCH", "/network-interfaces/net0", {
            "iface_id": "net0", "rx_rate_limiter": {"bandwidth": _bucket(0, 0)},
            "tx_rate_limiter": {"bandwidth": _bucket(NET_LIMIT)}}), "PATCH tx 256K")
        port = sink.getsockname()[1]
        n, secs, out = _net_timed(vmm, con, "tx_bytes",
                                  f"head -c 393216 /dev/zero | nc 10.0.2.2 {port}",
                                  f"head -c 1048576 /dev/zero | nc 10.0.2.2 {port}")
        check(n >= 1024 * KiB, f"nc sent {n} bytes: {out!r}")
        _rate_check("transmit at tx_bps=256K (PATCHed)", n, secs, NET_LIMIT)
    finally:
        srv.shutdown()
        sink.close()


# ---- last: it ends the module's guest -----------------------------------------

def test_restore_keeps_the_limit(guest):
    tmp, vmm, con = guest
    _ok(*vmm.api("PATCH", "/drives/disk0", {"drive_id": "disk0", "rate_limiter": {
        "bandwidth": _bucket(2 * MiB)}}), "PATCH bandwidth 2M")
    snap = tmp / "snap"
    snap.mkdir()
    _ok(*vmm.api("PATCH", "/vm", {"state": "Paused"}), "pause")
    _ok(*vmm.api("PUT", "/snapshot/create", {"snapshot_type": "Full", "tag": "rl1",
                                             "snapshot_path": str(snap / "state"),
                                             "mem_file_path": str(snap / "memory")}),
        "snapshot/create")
    vmm.kill()
    r = Vmm("default", tmp, ["--restore", str(snap / "state")], name="restored")
    try:
        st, cfg = r.api("GET", "/vm/config")
        check(st == 200, f"GET /vm/config: {st} {cfg!r}")
        lim = cfg["drives"][0].get("rate_limiter", {})
        check(lim.get("bandwidth", {}).get("size") == 2 * MiB,
              f"the restored VM's drive: {cfg['drives'][0]!r}")
        rcon = r.console()
        rcon.send("\n")
        rcon.expect(PROMPT, 30)
        secs, _ = _timed(rcon, "dd if=/dev/vda of=/dev/null bs=256k count=8 iflag=direct",
                         "dd if=/dev/vda of=/dev/null bs=256k count=24 iflag=direct")
        _rate_check("read after restore at 2 MiB/s", 6 * MiB, secs, 2 * MiB)
    finally:
        r.kill()
