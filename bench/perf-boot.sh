#!/usr/bin/env bash
# Where a boot of the default riscv64 guest spends its time (docs/perf.md).
#
#   bench/perf-boot.sh [OUTDIR]        (default /tmp/petrel-perf)
#
# 1. A plain boot to the shell and `poweroff -f` (no profiler), sampling each
#    thread's on-CPU time (/proc/PID/task/TID/schedstat) every 20 ms and the
#    host time at which console milestones appear (OpenSBI, Linux, initramfs
#    unpacking, /init, the prompt).  Prints per phase: wall time, hart thread
#    CPU time and busy share (the rest is the hart asleep in WFI or waiting),
#    and the whole boot per thread.
# 2. The same boot under `perf record -g` (needs perf: Debian linux-perf,
#    installed by scripts/deps.sh test), then the top symbols (self time),
#    the share per thread and per DSO.  The data stays in OUTDIR/perf.data
#    for `perf report -i`.
#
# Environment: PETREL (default build/petrel), PETREL_ARGS (default
# --memory 512M), PERF_FREQ (samples/s, default 2000), BENCH_TIMEOUT (s, 300).
set -euo pipefail

cd "$(dirname "$(readlink -f "$0")")/.."
out=${1:-/tmp/petrel-perf}
guest=build/guest/riscv64
petrel=${PETREL:-build/petrel}
for f in "$petrel" "$guest/Image" "$guest/initramfs.cpio.gz" "$guest/fw_dynamic.bin"; do
    [ -e "$f" ] || { echo "missing $f (run: make all guest)" >&2; exit 1; }
done
command -v perf >/dev/null 2>&1 || { echo "missing perf (run: scripts/deps.sh test)" >&2; exit 1; }
mkdir -p "$out"

# shellcheck disable=SC2206
cmd=("$petrel" run ${PETREL_ARGS:---memory 512M})

/usr/bin/python3 - "${BENCH_TIMEOUT:-300}" "$out" "${cmd[@]}" <<'EOF'
import os, select, subprocess, sys, time

timeout, out, cmd = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
PROMPT = b"petrel:/# "
MILESTONES = [(b"OpenSBI v", "firmware"), (b"Linux version", "kernel early init"),
              (b"Trying to unpack rootfs", "initramfs unpacking (+ other init)"),
              (b"Freeing initrd memory", "kernel init, rest"),
              (b"Run /init", "userspace to the prompt"), (PROMPT, "poweroff")]


def threads(pid):
    """{tid: (name, on-CPU ns)} of a live process."""
    res = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return res
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                res[int(tid)] = (name, int(f.read().split()[0]))
        except OSError:
            pass
    return res


proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT)
start = time.monotonic()
buf, seen, samples, cpu = b"", [(0.0, "VMM start-up")], [], {}
fd = proc.stdout.fileno()
while True:
    now = time.monotonic() - start
    if now > timeout:
        proc.kill()
        sys.exit(f"no poweroff within {timeout:.0f} s")
    t = threads(proc.pid)
    if t:
        for tid, v in t.items():
            cpu[tid] = v
        samples.append((now, {tid: v[1] for tid, v in cpu.items() if v[0] == "hart"}))
    r, _, _ = select.select([fd], [], [], 0.02)
    if not r:
        continue
    data = os.read(fd, 65536)
    if not data:
        break
    buf += data
    now = time.monotonic() - start
    # seen[i + 1] is milestone i: the start of the phase named after it
    while len(seen) <= len(MILESTONES) and MILESTONES[len(seen) - 1][0] in buf:
        text, phase = MILESTONES[len(seen) - 1]
        seen.append((now, phase))
        if text == PROMPT:
            proc.stdin.write(b"poweroff -f\n")
            proc.stdin.flush()
rc = proc.wait()
end = time.monotonic() - start
if rc != 0 or len(seen) <= len(MILESTONES):
    sys.exit(f"boot failed: exit status {rc}, reached '{seen[-1][1]}'")


def hart_ns_at(t):
    """hart CPU ns at the last sample taken at or before time t."""
    best = 0
    for st, d in samples:
        if st > t:
            break
        best = sum(d.values())
    return best


print(f"boot to the prompt and poweroff, no profiler: {end:.2f} s wall")
print(f"{'phase':38}{'wall (s)':>9}{'hart CPU (s)':>14}{'hart busy':>11}")
bounds = seen + [(end, None)]
for (t0, name), (t1, _) in zip(bounds, bounds[1:]):
    c = (hart_ns_at(t1) - hart_ns_at(t0)) / 1e9 if t1 < end else \
        (sum(v[1] for v in cpu.values() if v[0] == "hart") - hart_ns_at(t0)) / 1e9
    print(f"{name:38}{t1 - t0:>9.2f}{c:>14.2f}{100 * c / max(t1 - t0, 1e-9):>10.0f}%")
print("threads (on-CPU time until the last sample, <= 20 ms before exit):")
per = {}
for name, ns in cpu.values():
    per[name] = per.get(name, 0) + ns
for name, ns in sorted(per.items(), key=lambda kv: -kv[1]):
    print(f"  {name:16}{ns / 1e9:>7.2f} s  {100 * ns / 1e9 / end:>4.0f}% of the wall time")
sys.stdout.flush()

# ---- the same boot under perf record -g
data = os.path.join(out, "perf.data")
freq = os.environ.get("PERF_FREQ", "2000")
proc = subprocess.Popen(["perf", "record", "-F", freq, "-g", "-o", data, "--", *cmd],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
buf, start = b"", time.monotonic()
fd = proc.stdout.fileno()
while True:
    r, _, _ = select.select([fd], [], [], 1.0)
    if time.monotonic() - start > timeout:
        proc.kill()
        sys.exit(f"perf run: no poweroff within {timeout:.0f} s")
    if not r:
        continue
    d = os.read(fd, 65536)
    if not d:
        break
    if PROMPT not in buf and PROMPT in buf + d:
        proc.stdin.write(b"poweroff -f\n")
        proc.stdin.flush()
    buf += d
if proc.wait() != 0:
    sys.exit(f"perf run failed: {buf[-400:].decode(errors='replace')}")
print(f"\nperf record -g -F {freq}: {time.monotonic() - start:.2f} s wall, data in {data}")


def report(*args, limit):
    p = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none",
                        "--percent-limit", "0.5", *args],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = [l for l in p.stdout.splitlines() if l.strip() and not l.startswith("#")]
    print("\n".join(lines[:limit]))


print("\nshare of samples per thread:")
report("--sort", "comm", limit=10)
print("\nper thread and DSO:")
report("--sort", "comm,dso", limit=12)
print("\ntop symbols (self):")
report("--sort", "comm,symbol", limit=40)
EOF
