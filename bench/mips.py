#!/usr/bin/env python3
"""Guest MIPS on a CPU-bound program: Petrel interp, Petrel jit, QEMU TCG and
the same program compiled natively for the host (the physical limit).

    bench/mips.py [-n N] [--no-smp]        (default N=5)

The program is cpumark (tests/guest/riscv64/cpumark.c + cpumark_work.h: a
CoreMark-like mix of list processing, a matrix multiply, a state machine and
CRC-16; it checks its own result).  Built by `make guest-tests`; the native
copy is compiled here with `gcc -O2` into build/bench/cpumark-native.

Each configuration runs N times, interleaved (round 1 runs every one, then
round 2, ...), and the medians of the timed region are printed.  The
guest measures the region itself (CLINT mtime, 10 MHz, wall-clock based on
both Petrel and QEMU) and counts its instructions with minstret.  QEMU's
minstret counts host ticks unless -icount is on (which would slow it down),
so the instruction count of every side is the one Petrel's interpreter
reports (the program is deterministic; the JIT's count is checked against
it).  MIPS = guest instructions / seconds of the timed region; for the native
run it is "riscv64-instruction equivalents", the same count over its time.

Then (unless --no-smp) the 2-hart variant (cpumark2.elf: each hart runs the
same work on its own data, --cpus 2 / -smp 2) against 1 hart: wall time of
the region and the throughput speedup 2 * t(1 hart) / t(2 harts) (2.00 is
perfect scaling on this 2-core host, 1.00 is none).

The jit column runs only if `petrel run --help` lists --cpu-mode; otherwise
it prints "jit: not built".

Environment: PETREL (default build/petrel), QEMU (default
qemu-system-riscv64), CC (default gcc), BENCH_TIMEOUT (s per run, default 120).
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ELF_DIR = ROOT / "build" / "guest-tests" / "riscv64"
NATIVE_SRC = ROOT / "bench" / "cpumark-native.c"
NATIVE_HDR = ROOT / "tests" / "guest" / "riscv64" / "cpumark_work.h"
NATIVE_BIN = ROOT / "build" / "bench" / "cpumark-native"
TICK_HZ = 10_000_000
RESULT = re.compile(rb"cpumark: harts (\d+) iterations (\d+) instret (\d+) ticks (\d+)")
NATIVE = re.compile(rb"cpumark: harts 1 iterations (\d+) checksum 0x[0-9a-f]+ errors 0 ns (\d+)")


class RunError(Exception):
    pass


def run_guest(cmd, name, timeout):
    """Run one guest program; return (region seconds, instret, process wall s)."""
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunError(f"no result within {timeout:.0f} s")
    wall = time.monotonic() - start
    out = p.stdout.replace(b"\r", b"")
    m = RESULT.search(out)
    if p.returncode != 0 or not m or f"PASS {name}".encode() not in out.splitlines():
        tail = b" | ".join(out.strip().splitlines()[-3:]).decode(errors="replace")
        raise RunError(f"exit status {p.returncode}, no PASS line: {tail}")
    return int(m.group(4)) / TICK_HZ, int(m.group(3)), wall


def run_native(cmd, timeout):
    """One native run: (region seconds, None)."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunError(f"no result within {timeout:.0f} s")
    m = NATIVE.search(p.stdout)
    if p.returncode != 0 or not m:
        raise RunError(f"exit status {p.returncode}: {p.stdout.decode(errors='replace').strip()}")
    return int(m.group(2)) / 1e9, None


def build_native(cc):
    srcs = (NATIVE_SRC, NATIVE_HDR)
    if NATIVE_BIN.exists() and all(NATIVE_BIN.stat().st_mtime >= s.stat().st_mtime for s in srcs):
        return
    NATIVE_BIN.parent.mkdir(parents=True, exist_ok=True)
    cmd = [cc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(NATIVE_BIN), str(NATIVE_SRC)]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=5, help="runs per side (median), default 5")
    ap.add_argument("--no-smp", action="store_true", help="skip the 2-hart comparison")
    args = ap.parse_args()
    if args.n < 1:
        ap.error("-n must be at least 1")
    timeout = float(os.environ.get("BENCH_TIMEOUT", "120"))
    petrel = os.environ.get("PETREL", str(ROOT / "build" / "petrel"))
    qemu = os.environ.get("QEMU", "qemu-system-riscv64")
    cc = os.environ.get("CC", "gcc")

    missing = [str(f) for f in (Path(petrel), ELF_DIR / "cpumark.elf", ELF_DIR / "cpumark2.elf")
               if not f.exists()]
    if missing:
        sys.exit(f"missing {', '.join(missing)} (run: make all guest-tests)")
    for tool in (qemu, cc):
        if not shutil.which(tool):
            sys.exit(f"missing {tool} (run: scripts/deps.sh test)")
    build_native(cc)

    helptext = subprocess.run([petrel, "run", "--help"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT).stdout.decode(errors="replace")
    has_modes = "--cpu-mode" in helptext

    def petrel_cmd(elf, cpus, mode):
        cmd = [petrel, "run", "--firmware", "none", "--kernel", str(elf),
               "--timeout", str(int(timeout)), "--cpus", str(cpus)]
        return cmd + (["--cpu-mode", mode] if mode else [])

    def qemu_cmd(elf, cpus):
        return [qemu, "-M", "virt", "-smp", str(cpus), "-bios", "none", "-nographic",
                "-kernel", str(elf)]

    sides = {"petrel-interp": lambda elf, cpus: petrel_cmd(elf, cpus, "interp" if has_modes else None)}
    if has_modes:
        sides["petrel-jit"] = lambda elf, cpus: petrel_cmd(elf, cpus, "jit")
    sides["qemu"] = qemu_cmd

    # The runs are interleaved (round r runs every configuration once) so a
    # change in the host's load hits all columns alike.
    configs = [(side, 1) for side in sides] + ([] if args.no_smp else [(side, 2) for side in sides])
    configs.append(("native", 1))
    cmds = {}
    for side, harts in configs:
        if side == "native":
            cmds[side, harts] = [str(NATIVE_BIN), "1"]
        else:
            elf = ELF_DIR / ("cpumark.elf" if harts == 1 else "cpumark2.elf")
            cmds[side, harts] = sides[side](elf, harts)
        print(f"{side}, {harts} hart{'s' if harts > 1 else ''}: {' '.join(cmds[side, harts])}")
    runs = {c: [] for c in configs}
    for r in range(args.n):
        print(f"round {r + 1}:", flush=True)
        for side, harts in configs:
            try:
                if side == "native":
                    res = run_native(cmds[side, harts], timeout)
                else:
                    res = run_guest(cmds[side, harts], "cpumark" if harts == 1 else "cpumark2",
                                    timeout)
            except RunError as e:
                print(f"  {side} ({harts}): FAILED: {e}", flush=True)
                continue
            runs[side, harts].append(res)
            print(f"  {side} ({harts}): {res[0]:.3f} s region", flush=True)
    single = {side: (statistics.median(x[0] for x in rs), rs[0][1])
              for (side, harts), rs in runs.items() if harts == 1 and rs}
    smp = {side: statistics.median(x[0] for x in rs)
           for (side, harts), rs in runs.items() if harts == 2 and rs}

    if "petrel-interp" not in single:
        print("no instruction count: the Petrel interpreter run failed")
        return 1
    instret = single["petrel-interp"][1]
    if "petrel-jit" in single and single["petrel-jit"][1] != instret:
        print(f"WARNING: the jit counted {single['petrel-jit'][1]} instructions, "
              f"the interpreter {instret}")

    print()
    print(f"cpumark, 1 hart, {instret / 1e6:.1f} M guest instructions, median of {args.n}")
    print(f"{'':15}{'time (s)':>10}{'MIPS':>9}{'/ qemu':>9}{'/ native':>10}")
    q = single.get("qemu", (None,))[0]
    nt = single.get("native", (None,))[0]
    for side in ["petrel-interp", "petrel-jit", "qemu", "native"]:
        if side not in single:
            print(f"{side:15}{'jit: not built' if side == 'petrel-jit' else 'failed':>20}")
            continue
        t = single[side][0]
        rq = f"{t / q:>8.2f}x" if q else f"{'-':>9}"
        rn = f"{t / nt:>9.2f}x" if nt else f"{'-':>10}"
        print(f"{side:15}{t:>10.3f}{instret / t / 1e6:>9.0f}{rq}{rn}")
    print("(/ qemu, / native: time ratios; lower is faster)")

    if args.no_smp:
        return 0 if len(single) == len(sides) + 1 else 1

    print()
    print(f"cpumark2, each hart runs the 1-hart work on its own data, median of {args.n}")
    print(f"{'':15}{'1 hart (s)':>11}{'2 harts (s)':>13}{'speedup':>9}")
    for side in ["petrel-interp", "petrel-jit", "qemu"]:
        if side not in sides:
            print(f"{side:15}{'jit: not built':>20}")
        elif side not in single or side not in smp:
            print(f"{side:15}{'failed':>11}")
        else:
            t1, t2 = single[side][0], smp[side]
            print(f"{side:15}{t1:>11.3f}{t2:>13.3f}{2 * t1 / t2:>8.2f}x")
    print("(speedup = 2 x t(1 hart) / t(2 harts): 2.00x is perfect scaling, 1.00x none)")
    ok = len(single) == len(sides) + 1 and len(smp) == len(sides)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
