#!/usr/bin/python3
"""The memory balloon: how fast memory goes back to the host, and how many
512 MiB guests fit on this host with it against without.

    bench/balloon.py [--vms N] [--host-gib G] [--reserve-gib R]

reclaim    one 512 MiB default guest (initramfs) with a balloon without
           free page reporting; the guest writes 380 MiB into its tmpfs
           and removes it (the memory stays in the VMM's RSS), then PATCH
           /balloon {amount_mib: 400}.  Reported: the time from the PATCH
           to the guest's actual size reaching 400 MiB, to the RSS having
           fallen by 90% of what it will fall, and MiB/s of RSS given back.
overcommit N guests of 512 MiB each boot at once, in three set-ups:
             none       no balloon
             reporting  --device virtio-balloon,free_page_reporting=on
             inflated   the same, and once the guests idle a balloon
                        target of 256 MiB each (PATCH /balloon); its
                        workload writes 150 MiB (what fits beside it)
           Each guest then runs the same workload: 300 MiB written into
           tmpfs and removed (what a job that needs memory for a while
           does), then idles 10 s.  The per-VM RSS (VmRSS of each VMM) is
           read after boot and after the workload.  The number of guests
           the host holds is estimated as (host memory - reserve) / mean
           RSS after the workload: what they really use when idle, not
           what they might touch at once (without the balloon that is
           also the worst case; with it a guest may grow back to 512 MiB
           before reporting gives the memory back, so the estimate
           assumes the guests do not all peak together).

Environment: PETREL (default build/petrel of this repo), PETREL_GUEST_DIR
(default build/guest).  Needs /usr/bin/python3 with pytest (the test
helpers are imported).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from api_helpers import Console, api, kill_group, wait_for_socket  # noqa: E402

PROMPT = "petrel:/# "


class Guest:
    def __init__(self, petrel, tmp, device=None, mem_mib=512):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.sock = str(self.tmp / "api")
        csock = str(self.tmp / "console")
        env = dict(os.environ)
        env.setdefault("PETREL_GUEST_DIR", str(REPO / "build" / "guest"))
        args = [petrel, "run", "--boot", "--memory", f"{mem_mib}M", "--api-sock", self.sock,
                "--console-sock", csock]
        if device:
            args += ["--device", device]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=open(self.tmp / "log", "wb"),
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        wait_for_socket(self.sock, self.proc)
        wait_for_socket(csock, self.proc)
        self.con = Console(csock)

    def boot(self):
        self.con.expect(PROMPT, timeout=600)

    def sh(self, cmd, timeout=300):
        self.con.send(f"{cmd}; echo @@$((0))E\n")
        return self.con.expect("@@0E", timeout)

    def api(self, method, path, body=None):
        return api(self.sock, method, path, body)

    def rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def actual(self):
        st, b = self.api("GET", "/balloon")
        return b.get("actual_mib", -1) if st == 200 else -1

    def kill(self):
        if self.proc.poll() is None:
            kill_group(self.proc)
            self.proc.wait()


def fill_and_free(g, mib):
    """Write mib MiB into the guest's tmpfs mounts and remove it."""
    a = min(mib, 200)
    g.sh(f"dd if=/dev/zero of=/dev/shm/f bs=1M count={a} 2>/dev/null; "
         f"dd if=/dev/zero of=/tmp/f bs=1M count={mib - a} 2>/dev/null; rm -f /dev/shm/f /tmp/f")


def reclaim(petrel, tmp):
    g = Guest(petrel, Path(tmp) / "reclaim", "virtio-balloon")
    try:
        g.boot()
        fill_and_free(g, 380)
        time.sleep(1)
        full = g.rss_mib()
        target = 400
        t0 = time.monotonic()
        st, body = g.api("PATCH", "/balloon", {"amount_mib": target})
        assert st == 204, (st, body)
        samples = []
        t_actual = None
        while time.monotonic() - t0 < 120:
            samples.append((time.monotonic() - t0, g.rss_mib()))
            if t_actual is None and g.actual() == target:
                t_actual = time.monotonic() - t0
            if t_actual is not None and time.monotonic() - t0 > t_actual + 1:
                break
            time.sleep(0.05)
        low = min(r for _, r in samples)
        freed = full - low
        t90 = next(t for t, r in samples if full - r >= 0.9 * freed)
        print(f"reclaim: RSS {full:.0f} -> {low:.0f} MiB ({freed:.0f} MiB back), actual "
              f"{target} MiB after {t_actual:.2f} s, 90% of the RSS drop after {t90:.2f} s: "
              f"{0.9 * freed / t90:.0f} MiB/s")
    finally:
        g.kill()


def in_parallel(fn, items):
    out = [None] * len(items)

    def one(i):
        out[i] = fn(items[i])

    ts = [threading.Thread(target=one, args=(i,)) for i in range(len(items))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def overcommit(petrel, tmp, n, mode, host_gib, reserve_gib):
    device = None if mode == "none" else "virtio-balloon,free_page_reporting=on"
    guests = [Guest(petrel, Path(tmp) / f"{mode}{i}", device) for i in range(n)]
    try:
        t0 = time.monotonic()
        in_parallel(lambda g: g.boot(), guests)
        boot_s = time.monotonic() - t0
        time.sleep(5)
        after_boot = [g.rss_mib() for g in guests]
        if mode == "inflated":
            for g in guests:
                st, body = g.api("PATCH", "/balloon", {"amount_mib": 256})
                assert st == 204, (st, body)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and any(g.actual() != 256 for g in guests):
                time.sleep(0.5)
        in_parallel(lambda g: fill_and_free(g, 300 if mode != "inflated" else 150), guests)
        time.sleep(10)
        after = [g.rss_mib() for g in guests]
        mean = statistics.mean(after)
        fits = int((host_gib - reserve_gib) * 1024 / mean)
        print(f"overcommit {mode:9s}: {n} x 512 MiB booted in {boot_s:.0f} s; RSS per VM after "
              f"boot {statistics.mean(after_boot):.0f} MiB, after the workload "
              f"{min(after):.0f}..{max(after):.0f} (mean {mean:.0f}) MiB -> "
              f"{fits} guests in {host_gib - reserve_gib:g} GiB")
        return mean
    finally:
        for g in guests:
            g.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vms", type=int, default=4, help="guests per overcommit run (4)")
    ap.add_argument("--host-gib", type=float, default=24, help="host memory (24)")
    ap.add_argument("--reserve-gib", type=float, default=2,
                    help="host memory kept for the host itself (2)")
    ap.add_argument("--skip-reclaim", action="store_true")
    a = ap.parse_args()
    petrel = os.environ.get("PETREL", str(REPO / "build" / "petrel"))
    with tempfile.TemporaryDirectory(prefix="petrel-balloon-bench-") as tmp:
        if not a.skip_reclaim:
            reclaim(petrel, tmp)
        for mode in ("none", "reporting", "inflated"):
            overcommit(petrel, tmp, a.vms, mode, a.host_gib, a.reserve_gib)


if __name__ == "__main__":
    main()
