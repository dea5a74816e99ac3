#!/usr/bin/python3
"""Control-plane benchmark: prints figures, asserts nothing.

  bench/api.py [--petrel build/petrel] [--requests 2000] [--vms 5]

1. Time to the API socket: wall time from exec to the first answered GET /,
   and the VMM's CPU time at that moment (Firecracker publishes <= 8 CPU-ms).
2. API round trip: GET / on one keep-alive connection, median and p99
   (a VMM waiting for configuration, and one running the default guest).
3. VMM memory beyond guest RAM for an idle booted guest: RSS minus the
   resident part of the guest-RAM mapping (Firecracker publishes <= 5 MiB).
4. `petrel vm start` to the guest's banner, and VMs started per second
   (N VMs started one after another, until each API answers).
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from api_helpers import Console, UnixHTTPConnection, wait_for_socket  # noqa: E402



def cpu_ms(pid):
    """CPU time the process has had, from the scheduler (ns resolution)."""
    return int(open(f"/proc/{pid}/schedstat").read().split()[0]) / 1e6


def round_trips(sock, n):
    c = UnixHTTPConnection(sock)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        c.request("GET", "/")
        c.getresponse().read()
        times.append(time.perf_counter() - t)
    c.close()
    times.sort()
    return statistics.median(times) * 1e6, times[int(len(times) * 0.99)] * 1e6


def guest_ram_rss(pid, mem_bytes):
    """Resident KiB of the guest RAM mapping (the anonymous mapping of
    exactly the guest's size), of the whole process, and the private
    dirty KiB outside guest RAM (heap, stacks, data: what the VMM itself
    costs; the rest is library text, shared with other processes)."""
    guest = total = private = 0
    cur_size = None
    for line in open(f"/proc/{pid}/smaps"):
        f = line.split()
        if "-" in f[0] and not f[0].endswith(":"):
            a, b = f[0].split("-")
            cur_size = int(b, 16) - int(a, 16)
        elif f[0] == "Rss:":
            total += int(f[1])
            if cur_size == mem_bytes:
                guest += int(f[1])
        elif f[0] == "Private_Dirty:" and cur_size != mem_bytes:
            private += int(f[1])
    return guest, total, private


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--petrel", default=str(REPO / "build" / "petrel"))
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--vms", type=int, default=5)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="petrel-bench-api-"))

    # 1 + 2: a VMM waiting for configuration
    sock = str(tmp / "wait.sock")
    t0 = time.perf_counter()
    p = subprocess.Popen([a.petrel, "run", "--api-sock", sock], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            if s.recv(100):
                break
        except OSError:
            time.sleep(0.0005)
        finally:
            s.close()
    wall = (time.perf_counter() - t0) * 1000
    print(f"time to the API socket: {wall:.1f} ms wall, {cpu_ms(p.pid):.1f} CPU-ms "
          f"(Firecracker: <= 8 CPU-ms)")
    med, p99 = round_trips(sock, a.requests)
    print(f"GET / round trip, VMM not started: median {med:.0f} us, p99 {p99:.0f} us "
          f"({a.requests} requests, one keep-alive connection, Python client)")
    p.terminate()
    p.wait()

    # 2 + 3: a booted, idle guest
    mem = 256 << 20
    sock, con = str(tmp / "run.sock"), str(tmp / "run.console")
    p = subprocess.Popen([a.petrel, "run", "--api-sock", sock, "--boot", "--console-sock", con,
                          "--memory", "256M"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_socket(con, p)
    Console(con).expect("petrel:/# ", timeout=120)
    time.sleep(3)
    med, p99 = round_trips(sock, a.requests)
    print(f"GET / round trip, guest running: median {med:.0f} us, p99 {p99:.0f} us")
    guest, total, private = guest_ram_rss(p.pid, mem)
    print(f"idle VMM RSS: {total / 1024:.1f} MiB in all, {guest / 1024:.1f} MiB of it guest "
          f"RAM: {(total - guest) / 1024:.1f} MiB beyond guest RAM, of which {private / 1024:.1f} "
          f"MiB written by the VMM (heap, stacks, data; the rest is library text) "
          f"(Firecracker: <= 5 MiB)")
    p.terminate()
    p.wait()

    # 4: petrel vm start
    home = tmp / "home"
    env = dict(os.environ, PETREL_HOME=str(home))
    if a.vms < 1:
        return
    if subprocess.run([a.petrel, "vm", "--help"], capture_output=True).returncode != 0:
        print("petrel vm: not available in this build; skipped")
        return
    names = [f"b{i}" for i in range(a.vms)]
    for n in names:
        subprocess.run([a.petrel, "vm", "create", n, "--memory", "128M", "--no-net"], env=env,
                       check=True, capture_output=True)
    t = time.perf_counter()
    started = {}
    for n in names:
        started[n] = time.perf_counter()
        subprocess.run([a.petrel, "vm", "start", n], env=env, check=True, capture_output=True)
    dt = time.perf_counter() - t
    print(f"petrel vm start: {a.vms} VMs in {dt:.2f} s: {a.vms / dt:.1f} VMs/s "
          f"(each until its API answers)")
    banner = []
    for n in names:
        log = home / "vms" / n / "console.log"
        while b"Welcome to Petrel" not in (log.read_bytes() if log.exists() else b""):
            if time.perf_counter() - started[n] > 300:
                break
            time.sleep(0.05)
        banner.append(time.perf_counter() - started[n])
    print(f"petrel vm start to the guest's banner: {' '.join(f'{b:.1f}' for b in banner)} s "
          f"({a.vms} root-disk guests booting at once on {os.cpu_count()} cores)")
    one = names[0]
    for n in names:
        subprocess.run([a.petrel, "vm", "kill", n], env=env, capture_output=True)
    t = time.perf_counter()
    subprocess.run([a.petrel, "vm", "start", one], env=env, check=True, capture_output=True)
    log = home / "vms" / one / "console.log"
    size0 = log.stat().st_size if log.exists() else 0
    while b"Welcome to Petrel" not in log.read_bytes()[size0:]:
        if time.perf_counter() - t > 300:
            break
        time.sleep(0.05)
    print(f"petrel vm start to the guest's banner, one VM alone: {time.perf_counter() - t:.1f} s")
    for n in names:
        subprocess.run([a.petrel, "vm", "kill", n], env=env, capture_output=True)


if __name__ == "__main__":
    main()
