#!/usr/bin/python3
"""Snapshot benchmark: prints figures, asserts nothing.

  bench/snapshot.py [--petrel build/petrel] [--sizes 512,4096] [--clones 10] [--no-qemu]

For the default riscv64 guest, booted to its shell, per RAM size:
1. snapshot create (PUT /snapshot/create on the paused VM): wall time, the
   state file's size, the memory file's allocated size (full), and a diff
   snapshot taken 5 s later (time and size);
2. restore with `petrel run --restore`: from exec to the CPUs starting (the
   VMM logs the CLOCK_MONOTONIC instant) and to the guest's shell answering
   a command on the console; and PUT /snapshot/load with resume_vm on a
   waiting VMM, request to answer (Firecracker's measure); medians of 5;
3. memory of N clones of one snapshot running at once against one VM's:
   the sum of their PSS (pages shared through the memory file's page cache
   are split between them) and RSS;
4. QEMU TCG (qemu-system-riscv64) on the same guest with a qcow2 disk for
   its vmstate: `savevm` and `loadvm` through the HMP monitor, wall time.

Firecracker publishes snapshot restore to the first guest instruction in
under 8 ms on its reference hosts; this host is a 2-core VM.
"""

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from api_helpers import Console, api, wait_for_socket  # noqa: E402

GUEST = REPO / "build" / "guest" / "riscv64"
PROMPT = b"petrel:/# "


def spawn(petrel, tmp, name, args, env):
    sock, con = tmp / f"{name}.api", tmp / f"{name}.con"
    log = open(tmp / f"{name}.log", "wb")
    t = time.monotonic_ns()
    p = subprocess.Popen([petrel, "run", "-v", "--api-sock", str(sock), "--console-sock", str(con),
                          *args], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                         env=env, start_new_session=True)
    wait_for_socket(str(sock), p, 120)
    wait_for_socket(str(con), p, 120)
    return p, str(sock), Console(str(con)), t


def kill(p):
    try:
        os.killpg(p.pid, 9)
    except ProcessLookupError:
        pass
    p.wait()


def alloc_mib(path):
    return os.stat(path).st_blocks * 512 / 2**20


def snapshot(sock, d, kind):
    d.mkdir(exist_ok=True)
    api(sock, "PATCH", "/vm", {"state": "Paused"})
    t = time.perf_counter()
    st, body = api(sock, "PUT", "/snapshot/create",
                   {"snapshot_type": kind, "snapshot_path": str(d / "state"),
                    "mem_file_path": str(d / "memory")}, timeout=600)
    dt = time.perf_counter() - t
    if st != 204:
        raise SystemExit(f"snapshot/create: {st} {body}")
    api(sock, "PATCH", "/vm", {"state": "Resumed"})
    return dt


def restore_once(petrel, tmp, name, snap, env):
    p, sock, con, t0 = spawn(petrel, tmp, name, ["--restore", str(snap)], env)
    con.send("echo answer-$((40+2))\n")
    con.expect("answer-42", 60)
    t_shell = time.monotonic_ns()
    log = (tmp / f"{name}.log").read_text(errors="replace")
    m = re.search(r"CPUs started at (\d+) ns", log)
    kill(p)
    if not m:
        raise SystemExit(f"no restore line in the VMM log:\n{log}")
    return (int(m.group(1)) - t0) / 1e6, (t_shell - t0) / 1e6


def api_load_once(petrel, tmp, name, snap, env):
    """Firecracker's measure: PUT /snapshot/load (resume_vm) on a waiting
    VMM, request to answer (the CPUs run when it answers)."""
    sock, con = tmp / f"{name}.api", tmp / f"{name}.con"
    p = subprocess.Popen([petrel, "run", "--api-sock", str(sock), "--console-sock", str(con)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.STDOUT, env=env, start_new_session=True)
    wait_for_socket(str(sock), p, 60)
    t = time.perf_counter()
    st, body = api(str(sock), "PUT", "/snapshot/load",
                   {"snapshot_path": str(snap / "state"),
                    "mem_backend": {"backend_path": str(snap / "memory"), "backend_type": "File"},
                    "resume_vm": True})
    dt = (time.perf_counter() - t) * 1e3
    kill(p)
    if st != 204:
        raise SystemExit(f"snapshot/load: {st} {body}")
    return dt


def pss_rss_kib(pid):
    pss = rss = 0
    for line in open(f"/proc/{pid}/smaps_rollup"):
        f = line.split()
        if f[0] == "Pss:":
            pss = int(f[1])
        elif f[0] == "Rss:":
            rss = int(f[1])
    return pss, rss


def bench_size(petrel, mib, nclones, tmp, env):
    print(f"\n== {mib} MiB guest ==")
    p, sock, con, _ = spawn(petrel, tmp, f"boot{mib}", ["--boot", "--memory", f"{mib}M"], env)
    con.expect(PROMPT, 300)
    con.send("echo booted\n")
    con.expect(PROMPT, 60)
    full = tmp / f"full{mib}"
    t_full = snapshot(sock, full, "Full")
    time.sleep(5)
    diff = tmp / f"diff{mib}"
    t_diff = snapshot(sock, diff, "Diff")
    one_pss, one_rss = pss_rss_kib(p.pid)
    kill(p)
    print(f"snapshot create  full: {t_full * 1e3:8.1f} ms, state {os.path.getsize(full / 'state')} B,"
          f" memory file {alloc_mib(full / 'memory'):.1f} MiB allocated of {mib} MiB")
    print(f"                 diff (5 s later): {t_diff * 1e3:8.1f} ms, memory file "
          f"{alloc_mib(diff / 'memory'):.2f} MiB allocated")
    first, shell = [], []
    for i in range(5):
        a, b = restore_once(petrel, tmp, f"r{mib}-{i}", full, env)
        first.append(a)
        shell.append(b)
    print(f"restore          exec -> CPUs started: median {statistics.median(first):7.1f} ms "
          f"(min {min(first):.1f});  exec -> shell answers: median {statistics.median(shell):7.1f} ms")
    loads = [api_load_once(petrel, tmp, f"l{mib}-{i}", full, env) for i in range(5)]
    print(f"                 PUT /snapshot/load (resume_vm) request -> answer: median "
          f"{statistics.median(loads):6.2f} ms (min {min(loads):.2f})")
    procs = []
    try:
        for i in range(nclones):
            procs.append(spawn(petrel, tmp, f"c{mib}-{i}", ["--restore", str(full)], env))
        for _, _, c, _ in procs:
            c.send("echo clone-up\n")
            c.expect("clone-up\r\n", 120)
        time.sleep(1)
        tot_pss = tot_rss = 0
        for q, _, _, _ in procs:
            a, b = pss_rss_kib(q.pid)
            tot_pss += a
            tot_rss += b
        print(f"{nclones} clones      sum PSS {tot_pss / 1024:7.1f} MiB, sum RSS {tot_rss / 1024:7.1f} MiB;"
              f"  one booted VM: PSS {one_pss / 1024:.1f} MiB, RSS {one_rss / 1024:.1f} MiB"
              f"  (clones / one VM: {tot_pss / max(one_pss, 1):.2f}x for {nclones}x the VMs)")
    finally:
        for q, _, _, _ in procs:
            kill(q)
    for d in (full, diff):
        shutil.rmtree(d, ignore_errors=True)


def hmp(sock, cmd, timeout=600):
    """Run an HMP command; returns (seconds, output) once the monitor's
    prompt follows the command's echo."""
    sock.settimeout(timeout)
    t = time.perf_counter()
    sock.sendall(cmd.encode() + b"\n")
    buf = b""
    while True:
        i = buf.find(cmd.encode())
        if i >= 0 and buf.find(b"(qemu)", i + len(cmd)) >= 0:
            break
        buf += sock.recv(65536)
    return time.perf_counter() - t, buf.decode(errors="replace")


def hmp_drain(sock):
    """Consume the banner and prompt the monitor greets with."""
    sock.settimeout(5)
    buf = b""
    while b"(qemu)" not in buf:
        buf += sock.recv(65536)


def bench_qemu(mib, tmp):
    qemu = shutil.which("qemu-system-riscv64")
    qimg = shutil.which("qemu-img")
    if not qemu or not qimg:
        print("QEMU: qemu-system-riscv64 or qemu-img missing, skipped")
        return
    disk = tmp / "qemu-vmstate.qcow2"
    subprocess.run([qimg, "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    mon = tmp / "qemu.mon"
    p = subprocess.Popen([qemu, "-M", "virt", "-m", f"{mib}M", "-nographic", "-bios",
                          str(GUEST / "fw_dynamic.bin"), "-kernel", str(GUEST / "Image"),
                          "-initrd", str(GUEST / "initramfs.cpio.gz"), "-append", "console=ttyS0",
                          "-drive", f"file={disk},if=none,id=d0,format=qcow2",
                          "-device", "virtio-blk-device,drive=d0",
                          "-monitor", f"unix:{mon},server,nowait", "-serial", "stdio"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        buf = b""
        deadline = time.monotonic() + 300
        os.set_blocking(p.stdout.fileno(), False)
        while PROMPT not in buf and time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                buf += p.stdout.read() or b""
            except BlockingIOError:
                pass
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(mon))
        hmp_drain(s)
        t_save, out = hmp(s, "savevm s1")
        t_load, out2 = hmp(s, "loadvm s1")
        size = alloc_mib(disk)
        print(f"QEMU TCG         savevm {t_save * 1e3:8.1f} ms, loadvm {t_load * 1e3:8.1f} ms "
              f"(vmstate in the qcow2: {size:.1f} MiB allocated)"
              + (f" [{out.strip()[:80]}]" if "Error" in out + out2 else ""))
    finally:
        kill(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--petrel", default=str(REPO / "build" / "petrel"))
    ap.add_argument("--sizes", default="512,4096")
    ap.add_argument("--clones", type=int, default=10)
    ap.add_argument("--no-qemu", action="store_true")
    a = ap.parse_args()
    env = dict(os.environ, PETREL_GUEST_DIR=str(GUEST.parent))
    with tempfile.TemporaryDirectory(prefix="petrel-snapbench-") as d:
        tmp = Path(d)
        for mib in (int(x) for x in a.sizes.split(",")):
            bench_size(a.petrel, mib, a.clones, tmp, env)
            if not a.no_qemu:
                bench_qemu(mib, tmp)


if __name__ == "__main__":
    main()
