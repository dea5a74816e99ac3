#!/usr/bin/env bash
# Boot time and memory of the default riscv64 guest: Petrel vs QEMU, side by side.
#
#   bench/boot-time.sh [N]        (default N=5)
#
# Each side boots build/guest/riscv64 (make guest) N times to the busybox
# shell, is sent `poweroff -f`, and is measured by /usr/bin/time -f '%e %M':
# wall time of the whole run and peak RSS of the VMM process.  Prints the
# medians and the petrel/qemu ratios.  The sides take turns (one boot each
# per round), so changes in the host's load hit them alike.
#
# Sides: when `petrel run --help` lists --cpu-mode, Petrel runs twice,
# petrel-jit (--cpu-mode jit) and petrel-interp (--cpu-mode interp), and the
# table gets a ratio line for each against QEMU and jit/interp; without it,
# one side "petrel" (the interpreter) as before.
#
# The command is typed once the shell prompt has appeared, on both sides.
# Input written earlier (`printf 'poweroff -f\n' | qemu-system-riscv64 ...`)
# is lost by QEMU: its UART hands the bytes to the guest before the Linux 8250
# driver starts, which clears the FIFO, so QEMU would never power off.
#
# Environment: PETREL (default build/petrel), PETREL_ARGS (default
# --memory 512M, to match QEMU's -m 512M), QEMU (default qemu-system-riscv64),
# BENCH_TIMEOUT (seconds per boot, default 300).
set -euo pipefail

cd "$(dirname "$(readlink -f "$0")")/.."
n=${1:-5}
case "$n" in ''|*[!0-9]*|0) echo "usage: $0 [N>0]" >&2; exit 2 ;; esac

guest=build/guest/riscv64
petrel=${PETREL:-build/petrel}
qemu=${QEMU:-qemu-system-riscv64}
missing=0
for f in "$petrel" "$guest/Image" "$guest/initramfs.cpio.gz" "$guest/fw_dynamic.bin"; do
    [ -e "$f" ] || { echo "missing $f (run: make all guest)" >&2; missing=1; }
done
for t in "$qemu" /usr/bin/time /usr/bin/python3; do
    command -v "$t" >/dev/null 2>&1 || { echo "missing $t (run: scripts/deps.sh test)" >&2; missing=1; }
done
[ "$missing" = 0 ] || exit 1

# shellcheck disable=SC2206
petrel_cmd=("$petrel" run ${PETREL_ARGS:---memory 512M})
qemu_cmd=("$qemu" -M virt -m 512M -nographic
          -bios "$guest/fw_dynamic.bin" -kernel "$guest/Image"
          -initrd "$guest/initramfs.cpio.gz" -append console=ttyS0)

# Each side is passed as: name, word count, words.
sides=()
# (the help text is read whole first: `grep -q` in a pipe would close it
# early, and pipefail would then count petrel's SIGPIPE as "not listed")
run_help=$("$petrel" run --help 2>&1 || true)
if grep -q -- '--cpu-mode' <<<"$run_help"; then
    sides+=(petrel-jit $(( ${#petrel_cmd[@]} + 2 )) "${petrel_cmd[@]}" --cpu-mode jit)
    sides+=(petrel-interp $(( ${#petrel_cmd[@]} + 2 )) "${petrel_cmd[@]}" --cpu-mode interp)
else
    sides+=(petrel ${#petrel_cmd[@]} "${petrel_cmd[@]}")
fi
sides+=(qemu ${#qemu_cmd[@]} "${qemu_cmd[@]}")

exec /usr/bin/python3 - "$n" "${BENCH_TIMEOUT:-300}" "${sides[@]}" <<'EOF'
import os, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.join(os.getcwd(), "bench"))
from bootprompt import BootTimeout, drive  # noqa: E402

n, timeout = int(sys.argv[1]), float(sys.argv[2])
sides, rest = {}, sys.argv[3:]
while rest:
    name, count = rest[0], int(rest[1])
    sides[name], rest = rest[2:2 + count], rest[2 + count:]


def one_boot(cmd, log):
    """Boot once; return (wall s, peak RSS KiB, s to prompt) or raise."""
    with tempfile.NamedTemporaryFile("r") as tf:
        proc = subprocess.Popen(["/usr/bin/time", "-f", "%e %M", "-o", tf.name, *cmd],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        start = time.monotonic()
        try:
            out, prompt_at = drive(proc, start, timeout)
        except BootTimeout as e:
            log.write(e.out)
            raise
        rc = proc.wait()
        log.write(out)
        if prompt_at is None or rc != 0:
            raise RuntimeError(f"exit status {rc}, prompt {'seen' if prompt_at else 'never seen'}")
        wall, rss = tf.read().split()[-2:]
        return float(wall), int(rss), prompt_at


# Rounds: each side boots once per round, so a change in the host's load
# (other jobs on the machine) hits every side alike.
for side, cmd in sides.items():
    print(f"{side}: {' '.join(cmd)}", flush=True)
runs = {side: [] for side in sides}
logs = {side: open(f"/tmp/petrel-bench-{side}.log", "wb") for side in sides}
for i in range(n):
    for side, cmd in sides.items():
        log = logs[side]
        try:
            wall, rss, prompt = one_boot(cmd, log)
        except RuntimeError as e:
            print(f"  {side} run {i + 1}: FAILED: {e} (console log: {log.name})", flush=True)
            continue
        runs[side].append((wall, rss, prompt))
        print(f"  {side} run {i + 1}: {wall:.2f} s wall, {rss / 1024:.0f} MiB peak RSS, "
              f"prompt after {prompt:.2f} s", flush=True)
for log in logs.values():
    log.close()
results = {side: tuple(statistics.median(r[k] for r in rs) for k in range(3))
           for side, rs in runs.items() if rs}

print()
print(f"default riscv64 guest, boot to shell + poweroff, median of {n} runs")
labels = [s + "/qemu" for s in sides if s != "qemu"]
labels += ["petrel-jit/petrel-interp"] if "petrel-jit" in sides else []
w = max(12, *(len(label) + 1 for label in labels))
print(f"{'':{w}}{'wall (s)':>10}{'peak RSS (MiB)':>16}{'to prompt (s)':>15}")
for side, (wall, rss, prompt) in results.items():
    print(f"{side:{w}}{wall:>10.2f}{rss / 1024:>16.0f}{prompt:>15.2f}")


def ratio(a, b):
    if a in results and b in results:
        (aw, ar, ap), (bw, br, bp) = results[a], results[b]
        print(f"{a + '/' + b:{w}}{aw / bw:>9.2f}x{ar / br:>15.2f}x{ap / bp:>14.2f}x")


for side in sides:
    if side != "qemu":
        ratio(side, "qemu")
ratio("petrel-jit", "petrel-interp")
sys.exit(0 if len(results) == len(sides) else 1)
EOF
