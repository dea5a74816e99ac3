#!/usr/bin/python3
"""rv64 SMP scaling: one host thread per hart.  Prints figures, asserts nothing.

  bench/smp-scaling.py [N] [--petrel build/petrel] [--no-boot] [--no-work]

1. Boot of the default riscv64 guest (build/guest/riscv64, `make guest`) to
   its shell, then `poweroff -f`, with --cpus 1 and --cpus 2 (--memory 512M,
   as bench/boot-time.sh): wall time of the run and time to the prompt.
2. A CPU-bound bare-metal workload, build/guest-tests/riscv64/parwork.elf
   (`make guest-tests`): every hart runs the same fixed integer work at
   once; the program prints the guest time it took.  --cpus 1 does the work
   once, --cpus 2 twice (once per hart): speedup = 2 * t1 / t2 (2.0 is
   perfect scaling on two free host CPUs).
Medians of N runs (default 5).  The host's other load shows directly in the
2-hart figures: measure on a quiet machine.
"""

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bootprompt import drive

ROOT = Path(__file__).resolve().parent.parent
GUEST = ROOT / "build" / "guest" / "riscv64"
PARWORK = ROOT / "build" / "guest-tests" / "riscv64" / "parwork.elf"


def boot_once(petrel, cpus, timeout=300):
    """(wall s, s to prompt) of one boot to the shell and poweroff."""
    cmd = [petrel, "run", "--memory", "512M", "--cpus", str(cpus)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    start = time.monotonic()
    out, prompt_at = drive(proc, start, timeout)
    rc = proc.wait()
    wall = time.monotonic() - start
    if rc != 0 or prompt_at is None:
        raise RuntimeError(f"exit status {rc}, prompt {'seen' if prompt_at else 'never seen'}")
    if cpus > 1 and f"Brought up 1 node, {cpus} CPUs".encode() not in out:
        raise RuntimeError(f"the guest did not bring up {cpus} CPUs")
    return wall, prompt_at


def work_once(petrel, cpus):
    """Guest microseconds of parwork with `cpus` harts."""
    r = subprocess.run([petrel, "run", "--firmware", "none", "--kernel", str(PARWORK),
                        "--timeout", "120", "--cpus", str(cpus)],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180)
    m = re.search(r"parwork: (\d+) harts, \d+ M iterations each, (\d+) us", r.stdout)
    if r.returncode != 0 or not m:
        raise RuntimeError(f"parwork failed (exit {r.returncode}): {r.stdout[-300:]}")
    if int(m.group(1)) != cpus:
        raise RuntimeError(f"parwork ran on {m.group(1)} harts, not {cpus}")
    return int(m.group(2)) / 1e6


def medians(label, fn, n):
    runs = []
    for i in range(n):
        try:
            v = fn()
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            print(f"  {label} run {i + 1}: FAILED: {e}", flush=True)
            continue
        runs.append(v)
        shown = ", ".join(f"{x:.2f}" for x in v) if isinstance(v, tuple) else f"{v:.3f}"
        print(f"  {label} run {i + 1}: {shown}", flush=True)
    if not runs:
        return None
    if isinstance(runs[0], tuple):
        return tuple(statistics.median(r[k] for r in runs) for k in range(len(runs[0])))
    return statistics.median(runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("n", nargs="?", type=int, default=5)
    ap.add_argument("--petrel", default=str(ROOT / "build" / "petrel"))
    ap.add_argument("--no-boot", action="store_true")
    ap.add_argument("--no-work", action="store_true")
    a = ap.parse_args()
    if a.n < 1:
        ap.error("N must be at least 1")
    missing = [str(p) for p in [Path(a.petrel)] +
               ([] if a.no_boot else [GUEST / "Image", GUEST / "initramfs.cpio.gz",
                                      GUEST / "fw_dynamic.bin"]) +
               ([] if a.no_work else [PARWORK]) if not p.exists()]
    if missing:
        sys.exit(f"missing {', '.join(missing)} (run: make all guest guest-tests)")
    ok = True
    if not a.no_boot:
        boot = {c: medians(f"boot --cpus {c}", lambda c=c: boot_once(a.petrel, c), a.n)
                for c in (1, 2)}
        print(f"\ndefault riscv64 guest, boot to shell + poweroff, median of {a.n} runs")
        print(f"{'':12}{'wall (s)':>10}{'to prompt (s)':>15}")
        for c, v in boot.items():
            if v:
                print(f"{'--cpus ' + str(c):12}{v[0]:>10.2f}{v[1]:>15.2f}")
        if boot[1] and boot[2]:
            print(f"{'2 / 1':12}{boot[2][0] / boot[1][0]:>9.2f}x{boot[2][1] / boot[1][1]:>14.2f}x")
        ok = ok and all(boot.values())
    if not a.no_work:
        work = {c: medians(f"parwork --cpus {c}", lambda c=c: work_once(a.petrel, c), a.n)
                for c in (1, 2)}
        print(f"\nparwork (the same integer work on every hart), median of {a.n} runs")
        for c, t in work.items():
            if t:
                print(f"{c} hart(s): {t:.3f} s for {c}x the work, {c / t:.2f} work units/s")
        if work[1] and work[2]:
            print(f"speedup with 2 harts: {2 * work[1] / work[2]:.2f}x (2.00 = perfect)")
        ok = ok and all(work.values())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
