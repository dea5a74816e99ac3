#!/usr/bin/python3
"""Disk rate limits: limit against measured throughput, and what the limiter
code path costs an unlimited disk.

    bench/ratelimit.py [--runs N] [--base PETREL_WITHOUT_LIMITS]

One default riscv64 guest (initramfs) per binary, a 256 MiB qcow2 data
disk.  The guest's busybox dd with direct I/O (queue depth 1) reads the
disk; times are taken on the host between two console markers printed
around the timed dd (a first dd empties the bucket, which starts full).

  limited   the limit is set live (PATCH /drives/disk0) to each of
            1, 4, 16 MiB/s (256 KiB reads, ~4 s each) and 50, 200 ops/s
            (4 KiB reads); measured rate and error against the limit
  unlimited 64 MiB of 1 MiB reads and 2000 4 KiB reads with no limiter:
            median of N runs for this build and, if given, --base (a build
            without the rate-limit code, e.g. the commit before it); both
            guests boot first and take turns (run 1 of each, then run 2...)

Environment: PETREL (default build/petrel next to this script's repo),
PETREL_GUEST_DIR (default build/guest).  Needs /usr/bin/python3 with pytest
(tests/api_helpers imports the test helpers).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from api_helpers import Console, api, wait_for_socket  # noqa: E402

PROMPT = "petrel:/# "
MiB = 1 << 20


class Guest:
    def __init__(self, petrel, tmp, disk_opts=""):
        self.tmp = Path(tmp)
        self.sock = str(self.tmp / "api")
        csock = str(self.tmp / "console")
        disk = self.tmp / "data.qcow2"
        if not disk.exists():
            subprocess.run([petrel, "img", "create", "-f", "qcow2", str(disk), "256M"],
                           check=True, capture_output=True)
        env = dict(os.environ)
        env.setdefault("PETREL_GUEST_DIR", str(REPO / "build" / "guest"))
        self.proc = subprocess.Popen(
            [petrel, "run", "--boot", "--memory", "256M", "--api-sock", self.sock,
             "--console-sock", csock, "--disk", f"{disk}{disk_opts}"],
            stdin=subprocess.DEVNULL, stdout=open(self.tmp / "log", "wb"),
            stderr=subprocess.STDOUT, env=env, start_new_session=True)
        wait_for_socket(self.sock, self.proc)
        wait_for_socket(csock, self.proc)
        self.con = Console(csock)
        self.con.expect(PROMPT, 180)

    def timed(self, drain, measure):
        self.con.send(f"{drain} 2>/dev/null; echo @@$((1))M; {measure} 2>/dev/null; "
                      f"echo @@$((1))E\n")
        self.con.expect("@@1M", 120)
        t0 = time.monotonic()
        self.con.expect("@@1E", 120)
        t1 = time.monotonic()
        self.con.expect(PROMPT, 10)
        return t1 - t0

    def limit(self, bandwidth=None, ops=None):
        def b(size):
            return {"size": size or 0, "refill_time": 1000 if size else 0}
        st, body = api(self.sock, "PATCH", "/drives/disk0", {
            "drive_id": "disk0", "rate_limiter": {"bandwidth": b(bandwidth), "ops": b(ops)}})
        if st != 204:
            raise SystemExit(f"PATCH: {st} {body}")

    def close(self):
        self.con.send("poweroff -f\n")
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def unlimited_round(g):
    big = 64 * MiB / g.timed("true", "dd if=/dev/vda of=/dev/null bs=1M count=64 iflag=direct")
    small = 2000 / g.timed("true", "dd if=/dev/vda of=/dev/null bs=4k count=2000 iflag=direct")
    return big, small


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--base", help="a petrel binary without the rate-limit code")
    a = ap.parse_args()
    petrel = os.environ.get("PETREL", str(REPO / "build" / "petrel"))
    builds = [("this build", petrel)] + ([("without limiter", a.base)] if a.base else [])
    with tempfile.TemporaryDirectory() as tmp:
        guests = []
        try:
            for i, (_, binary) in enumerate(builds):
                (Path(tmp) / str(i)).mkdir()
                guests.append(Guest(binary, Path(tmp) / str(i)))
            # unlimited: the builds take turns, run 1 of each, then run 2, ...
            res = [[] for _ in builds]
            for _ in range(a.runs):
                for i, g in enumerate(guests):
                    res[i].append(unlimited_round(g))
            g = guests[0]
            print("limit            measured        error")
            for mib in (1, 4, 16):
                g.limit(bandwidth=mib * MiB)
                n = 4 * mib * 4             # 256 KiB reads, ~4 s
                secs = g.timed(f"dd if=/dev/vda of=/dev/null bs=256k count={mib * 4 + 2} "
                               "iflag=direct",
                               f"dd if=/dev/vda of=/dev/null bs=256k count={n} iflag=direct")
                got = n * 256 * 1024 / secs / MiB
                print(f"{mib:5d} MiB/s     {got:8.3f} MiB/s  {100 * (got - mib) / mib:+6.2f}%")
            for ops in (50, 200):
                g.limit(ops=ops)
                n = ops * 4
                secs = g.timed(f"dd if=/dev/vda of=/dev/null bs=4k count={ops + 2} iflag=direct",
                               f"dd if=/dev/vda of=/dev/null bs=4k count={n} iflag=direct")
                got = n / secs
                print(f"{ops:5d} ops/s     {got:8.2f} ops/s  {100 * (got - ops) / ops:+6.2f}%")
        finally:
            for g in guests:
                g.close()
    rows = [(name, statistics.median(r[0] for r in res[i]),
             statistics.median(r[1] for r in res[i])) for i, (name, _) in enumerate(builds)]
    print(f"\nunlimited disk, median of {a.runs}: 1 MiB reads (MiB/s), 4 KiB reads (ops/s)")
    for name, b1, b2 in rows:
        print(f"{name:16s} {b1 / MiB:8.1f} MiB/s  {b2:8.0f} ops/s")
    if len(rows) == 2:
        print(f"{'ratio':16s} {rows[0][1] / rows[1][1]:8.3f}        {rows[0][2] / rows[1][2]:8.3f}")


if __name__ == "__main__":
    main()
