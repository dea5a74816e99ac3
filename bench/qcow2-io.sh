#!/usr/bin/env bash
# Petrel's qcow2 layer against QEMU's (qemu-io), on the host, same operations:
#
#   bench/qcow2-io.sh [N]        (default N=3 runs per operation and tool)
#
# Both tools execute the same command stream, one command a line on stdin
# (qemu-io's own syntax: "write -P BYTE OFF LEN", "read OFF LEN", "flush"):
# qemu-io -f qcow2 -t writeback IMG, and `petrel img bench -f qcow2 IMG` (a
# hidden subcommand driving the synchronous qcow2 core the block driver
# uses, see src/cli/img.c).  Both open the image buffered (host page cache,
# no flush per write: qemu-io's default would be writethrough) and flush at
# the end.  Operations, on a SIZE_MIB image (default 1024) with 64 KiB
# clusters:
#
#   seq write fresh    SIZE in 1 MiB writes on a new, empty image (allocation)
#   seq write full     the same over a fully allocated image (in place)
#   rand write fresh   RAND_OPS (default 16384) 4 KiB writes at random 4 KiB
#                      aligned offsets (fixed seed) on a new image (allocation
#                      plus copy-on-write of the rest of each 64 KiB cluster)
#   rand write full    the same on a fully allocated image
#   rand read full     RAND_OPS random 4 KiB reads of a fully allocated image
#   rand read fresh    the same on an empty image (metadata lookups only)
#
# Each run starts from a fresh copy of the image (made before the clock
# starts), after sync(2) and with the host page cache dropped for it
# (POSIX_FADV_DONTNEED after fdatasync, through python).  Time is the wall clock of the whole process
# (open, commands, flush, close), the median of N runs.  "petrel/qemu" is
# qemu-io's time divided by Petrel's: above 1.0, Petrel is faster.  Figures
# only, no pass/fail.
#
# Environment: PETREL (default build/petrel), QEMU_IO (qemu-io), QEMU_IMG
# (qemu-img), SIZE_MIB (1024), RAND_OPS (16384), TMPDIR.
set -euo pipefail

script=$(readlink -f "$0")
cd "$(dirname "$script")/.."
n=${1:-3}
case "$n" in ''|*[!0-9]*|0) echo "usage: $0 [N>0]" >&2; exit 2 ;; esac
petrel=${PETREL:-build/petrel}
qemu_io=${QEMU_IO:-qemu-io}
qemu_img=${QEMU_IMG:-qemu-img}
size_mib=${SIZE_MIB:-1024}
rand_ops=${RAND_OPS:-16384}
for t in "$petrel" "$qemu_io" "$qemu_img" /usr/bin/python3; do
    command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 2; }
done
if ! "$petrel" img bench -h >/dev/null 2>&1; then
    echo "$petrel has no 'img bench' (rebuild it)" >&2
    exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/petrel-qcow2-io.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

/usr/bin/python3 - "$n" "$petrel" "$qemu_io" "$qemu_img" "$size_mib" "$rand_ops" "$tmp" <<'EOF'
import os, random, shutil, statistics, subprocess, sys, time

n, petrel, qemu_io, qemu_img, size_mib, rand_ops, tmp = sys.argv[1:]
n, size_mib, rand_ops = int(n), int(size_mib), int(rand_ops)
size = size_mib << 20
MiB = 1 << 20

def cmds_seq_write():
    return "".join(f"write -P 0xab {off} 1048576\n" for off in range(0, size, MiB)) + "flush\n"

rng = random.Random(42)
offs = [rng.randrange(size // 4096) * 4096 for _ in range(rand_ops)]
rand_write = "".join(f"write -P 0xcd {o} 4096\n" for o in offs) + "flush\n"
rand_read = "".join(f"read {o} 4096\n" for o in offs)

empty = os.path.join(tmp, "empty.qcow2")
full = os.path.join(tmp, "full.qcow2")
subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", empty, str(size)], check=True)
shutil.copy(empty, full)
subprocess.run([qemu_io, "-f", "qcow2", full], input=cmds_seq_write().encode(), check=True,
               stdout=subprocess.DEVNULL)

OPS = [("seq write fresh", empty, cmds_seq_write(), size),
       ("seq write full", full, cmds_seq_write(), size),
       ("rand write fresh", empty, rand_write, rand_ops * 4096),
       ("rand write full", full, rand_write, rand_ops * 4096),
       ("rand read full", full, rand_read, rand_ops * 4096),
       ("rand read fresh", empty, rand_read, rand_ops * 4096)]
TOOLS = [("petrel", lambda img: [petrel, "img", "bench", "-f", "qcow2", img]),
         ("qemu-io", lambda img: [qemu_io, "-f", "qcow2", "-t", "writeback", img])]

def drop(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)

work = os.path.join(tmp, "work.qcow2")
print(f"qcow2 {size_mib} MiB, 64 KiB clusters, {rand_ops} random 4 KiB ops, median of {n} "
      f"runs; petrel: {petrel}; qemu-io: "
      f"{subprocess.run([qemu_io, '--version'], capture_output=True, text=True).stdout.split(chr(10))[0]}",
      flush=True)
times = {}
for i in range(n):
    for name, src, cmds, nbytes in OPS:
        for tool, argv in TOOLS:
            shutil.copy(src, work)
            os.sync()             # no write-back of earlier runs in this one
            drop(work)
            t0 = time.monotonic()
            p = subprocess.run(argv(work), input=cmds.encode(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
            dt = time.monotonic() - t0
            out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
            if p.returncode != 0 or "error" in out.lower() or "fail" in out.lower():
                print(f"  {tool} {name}: FAILED (exit {p.returncode}): {out[-300:]}", flush=True)
                continue
            times.setdefault((name, tool), []).append(dt)
    print(f"  run {i + 1} done", flush=True)

print()
print(f"{'':18}{'petrel s':>10}{'MB/s':>9}{'qemu-io s':>11}{'MB/s':>9}{'petrel/qemu':>13}")
for name, _, _, nbytes in OPS:
    row = f"{name:18}"
    med = {}
    for tool, _ in TOOLS:
        t = times.get((name, tool))
        if t:
            med[tool] = statistics.median(t)
            row += f"{med[tool]:>10.3f}{nbytes / med[tool] / 1e6:>9.0f}" if tool == "petrel" else \
                   f"{med[tool]:>11.3f}{nbytes / med[tool] / 1e6:>9.0f}"
        else:
            row += f"{'-':>10}{'-':>9}" if tool == "petrel" else f"{'-':>11}{'-':>9}"
    if len(med) == 2:
        row += f"{med['qemu-io'] / med['petrel']:>12.2f}x"
    print(row)
EOF
