#!/usr/bin/env bash
# Disk throughput from inside the default riscv64 guest on a virtio-blk disk:
# Petrel vs QEMU vs the host, side by side.
#
#   bench/disk-io.sh [N]          (default N=5 runs per configuration)
#
# One raw image of DISK_MIB MiB (default 256) filled with pseudo-random data,
# in a temporary directory ($TMPDIR, default /tmp), is used by every
# configuration.  bench/diskbench/diskbench.c measures, queue depth 1, one
# thread, BENCH_TIME seconds each (default 3): sequential 1 MiB writes and
# reads (wrapping around the image), then random 4 KiB writes and reads
# (uniform, fixed seed), each write test followed by an untimed fdatasync.
# It is compiled twice: statically for riscv64 (run in the guest on
# /dev/vda with O_DIRECT, so the guest's page cache is out of the picture)
# and natively (run on the host on the image file).  Configurations:
#
#   host O_DIRECT        diskbench on the file, O_DIRECT: the host's disk
#   host buffered        diskbench on the file, through the host page cache
#   qemu cache=none      QEMU 7.2 TCG, virtio-blk-pci, image opened O_DIRECT
#   qemu cache=writeback QEMU, image through the host page cache (buffered;
#                        guest flushes become fdatasync), aio=threads
#   petrel               petrel run --disk IMG,format=raw: Petrel opens images
#                        buffered (host page cache) and does I/O via io_uring,
#                        so its like-for-like QEMU row is cache=writeback
#   petrel-qcow2         (not in the default CONFIGS) the same image converted
#                        to qcow2 by `petrel img convert` (fully allocated, 64
#                        KiB clusters), petrel run --disk IMG.qcow2,format=qcow2;
#                        with both petrel rows a "qcow2/raw" ratio row follows
#
# The guests boot the default kernel and initramfs with a second initramfs
# appended (Linux unpacks concatenated archives in order): /bin/diskbench
# and /bin/diskbench-run (bench/diskbench/guest-run.sh).  The default image
# is not changed.  Once the shell prompt appears, `diskbench-run ...;
# poweroff -f` is typed on the serial console.  Before every run the image
# is synced and dropped from the host page cache (POSIX_FADV_DONTNEED), and
# the configurations take turns (run 1 of each, then run 2, ...).  The table
# shows medians; MB/s is 10^6 bytes/s.  Guest-side times come from the
# guest's clock, which is checked against the host's wall clock.
#
# Environment: PETREL (default build/petrel), QEMU (default
# qemu-system-riscv64), DISK_MIB (256), BENCH_TIME (3), BENCH_TIMEOUT
# (seconds per guest run, default 300), QEMU_CACHES (default
# "none writeback"), PETREL_DISK_OPTS (appended to --disk IMG,format=raw),
# CONFIGS (space-separated subset of: host-direct host-buffered qemu petrel
# petrel-qcow2), PETREL_DISK_FORMAT=qcow2 (shorthand: CONFIGS="petrel
# petrel-qcow2", the qcow2-vs-raw comparison alone).
set -euo pipefail

script=$(readlink -f "$0")
cd "$(dirname "$script")/.."
n=${1:-5}
case "$n" in ''|*[!0-9]*|0) echo "usage: $0 [N>0]" >&2; exit 2 ;; esac
disk_mib=${DISK_MIB:-256}
bench_time=${BENCH_TIME:-3}
case "$disk_mib" in ''|*[!0-9]*|0) echo "DISK_MIB must be a positive integer" >&2; exit 2 ;; esac

guest=build/guest/riscv64
petrel=${PETREL:-build/petrel}
qemu=${QEMU:-qemu-system-riscv64}
cross=${CROSS:-riscv64-linux-gnu-}
configs=${CONFIGS:-host-direct host-buffered qemu petrel}
if [ "${PETREL_DISK_FORMAT:-raw}" = qcow2 ] && [ -z "${CONFIGS:-}" ]; then
    configs="petrel petrel-qcow2"
fi
missing=0
for f in "$guest/Image" "$guest/initramfs.cpio.gz" "$guest/fw_dynamic.bin"; do
    [ -e "$f" ] || { echo "missing $f (run: make guest)" >&2; missing=1; }
done
for t in "$qemu" "${cross}gcc" gcc cpio gzip /usr/bin/python3; do
    command -v "$t" >/dev/null 2>&1 || { echo "missing $t (run: scripts/deps.sh test)" >&2; missing=1; }
done
[ "$missing" = 0 ] || exit 1

# diskbench for the host and the guest, and the extra initramfs.
out=build/bench/diskbench
src=bench/diskbench
mkdir -p "$out"
cflags=(-std=gnu11 -O2 -Wall -Wextra -Werror)
stale() { [ ! -e "$1" ] || [ -n "$(find "$src" -newer "$1" -print -quit)" ] ||
    [ "$script" -nt "$1" ]; }
if stale "$out/diskbench-host"; then
    gcc "${cflags[@]}" -o "$out/diskbench-host" "$src/diskbench.c"
fi
if stale "$out/extra.cpio.gz"; then
    "${cross}gcc" "${cflags[@]}" -static -o "$out/diskbench-riscv64" "$src/diskbench.c"
    stage=$(mktemp -d "$out/.stage.XXXXXX")
    mkdir -p "$stage/bin"
    install -m 0755 "$out/diskbench-riscv64" "$stage/bin/diskbench"
    install -m 0755 "$src/guest-run.sh" "$stage/bin/diskbench-run"
    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
        cpio -o -H newc -R 0:0 --quiet) | gzip -9n >"$out/extra.cpio.gz.tmp"
    mv -f "$out/extra.cpio.gz.tmp" "$out/extra.cpio.gz"
    rm -rf "$stage"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/petrel-disk-io.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cat "$guest/initramfs.cpio.gz" "$out/extra.cpio.gz" >"$tmp/initrd.cpio.gz"
img=$tmp/disk.img
truncate -s "${disk_mib}M" "$img"
"$out/diskbench-host" --fill "$img"

petrel_ok=0
petrel_why=""
case " $configs " in
*" petrel "*|*" petrel-qcow2 "*)
    if [ ! -x "$petrel" ]; then
        petrel_why="no $petrel (run: make)"
    elif ! "$petrel" run --help 2>&1 | grep -q -- '--disk'; then
        petrel_why="no --disk support"
    else
        petrel_ok=1
    fi ;;
esac
case " $configs " in
*" petrel-qcow2 "*)
    if [ "$petrel_ok" = 1 ]; then
        "$petrel" img convert -f raw -O qcow2 "$img" "$img.qcow2"
    fi ;;
esac

/usr/bin/python3 - "$n" "${BENCH_TIMEOUT:-300}" "$bench_time" "$img" \
    "$out/diskbench-host" "$tmp/initrd.cpio.gz" "$guest" "$qemu" "$petrel" \
    "$petrel_ok" "$petrel_why" "${QEMU_CACHES:-none writeback}" \
    "${PETREL_DISK_OPTS:-}" "$configs" "$disk_mib" <<'EOF'
import os, re, select, statistics, subprocess, sys, time

(n, timeout, btime, img, hostbench, initrd, guest, qemu, petrel, petrel_ok,
 petrel_why, qemu_caches, petrel_disk_opts, configs, disk_mib) = sys.argv[1:]
n, timeout, btime = int(n), float(timeout), float(btime)
configs = configs.split()
PROMPT = b"petrel:/# "
TESTS = ["seqwrite", "seqread", "randwrite", "randread"]
LINE = re.compile(rb"diskbench test=(\w+) bs=(\d+) ops=(\d+) bytes=(\d+) secs=([\d.]+) "
                  rb"mbps=([\d.]+) iops=([\d.]+) sync_secs=([\d.]+)")
bench_args = ["-t", f"{btime:g}"]
guest_files = [f"{guest}/Image", f"{guest}/fw_dynamic.bin"]

sides = []   # (name, kind, cmd)
if "host-direct" in configs:
    sides.append(("host O_DIRECT", "host", [hostbench, *bench_args, img]))
if "host-buffered" in configs:
    sides.append(("host buffered", "host", [hostbench, "-b", *bench_args, img]))
if "qemu" in configs:
    for cache in qemu_caches.split():
        sides.append((f"qemu cache={cache}", "guest", [
            qemu, "-M", "virt", "-m", "512M", "-smp", "1", "-nographic",
            "-bios", guest_files[1], "-kernel", guest_files[0], "-initrd", initrd,
            "-append", "console=ttyS0",
            "-drive", f"file={img},format=raw,if=none,id=hd0,cache={cache}",
            "-device", "virtio-blk-pci,drive=hd0"]))
for cfg, path, fmt in (("petrel", img, "raw"), ("petrel-qcow2", img + ".qcow2", "qcow2")):
    if cfg not in configs:
        continue
    if petrel_ok == "1":
        sides.append((cfg, "guest", [
            petrel, "run", "--memory", "512M", "--cpus", "1",
            "--firmware", guest_files[1], "--kernel", guest_files[0], "--initrd", initrd,
            "--disk", f"{path},format={fmt}{petrel_disk_opts}"]))
    else:
        print(f"{cfg}: {petrel_why}", flush=True)


def parse(out, host_times):
    """Results {test: (mbps, iops)} from diskbench's output; check its clock."""
    res, guest_secs = {}, 0.0
    for m in LINE.finditer(out):
        test = m.group(1).decode()
        res[test] = (float(m.group(6)), float(m.group(7)))
        guest_secs += float(m.group(5)) + float(m.group(8))
    missing = [t for t in TESTS if t not in res]
    if missing:
        raise RuntimeError(f"no result for {', '.join(missing)}")
    if host_times:
        wall = host_times[1] - host_times[0]
        if abs(wall - guest_secs) > 0.1 * guest_secs + 0.5:
            print(f"    warning: the guest clock says {guest_secs:.1f} s, the host's "
                  f"{wall:.1f} s", flush=True)
    return res


def run_host(cmd, log):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    log.write(p.stdout)
    if p.returncode != 0:
        raise RuntimeError(f"exit status {p.returncode}: {p.stdout.decode(errors='replace')[-300:]}")
    return parse(p.stdout, None)


def run_guest(cmd, log):
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    start = time.monotonic()
    out, typed, t_start, t_done = b"", False, None, None
    fd = proc.stdout.fileno()
    try:
        while True:
            left = start + timeout - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"not done within {timeout:.0f} s")
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            data = os.read(fd, 65536)
            if not data:
                break
            out += data
            now = time.monotonic()
            if not typed and PROMPT in out:
                typed = True
                proc.stdin.write(f"diskbench-run {' '.join(bench_args)}; poweroff -f\n".encode())
                proc.stdin.flush()
            if t_start is None and b"diskbench start" in out:
                t_start = now
            if t_done is None and b"diskbench done" in out:
                t_done = now
        rc = proc.wait(timeout=max(1.0, start + timeout - time.monotonic()))
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        proc.kill()
        proc.wait()
        raise RuntimeError(str(e)) from None
    finally:
        log.write(out)
    if rc != 0:
        raise RuntimeError(f"exit status {rc}, prompt {'seen' if typed else 'never seen'}")
    err = re.search(rb"diskbench(?:: | error: )[^\r\n]*", out)
    if err and not LINE.search(out):
        raise RuntimeError(err.group(0).decode(errors="replace"))
    return parse(out, (t_start, t_done) if t_start and t_done else None)


for name, kind, cmd in sides:
    print(f"{name}: {' '.join(cmd)}", flush=True)
print(f"image: {img} ({disk_mib} MiB), {btime:g} s per test, {n} runs each", flush=True)
load0 = os.getloadavg()[0]
runs = {name: [] for name, _, _ in sides}
logs = {}
for i in range(n):
    for name, kind, cmd in sides:
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        path = f"/tmp/petrel-bench-disk-{slug}.log"
        with open(path, "wb" if i == 0 else "ab") as log:
            subprocess.run([hostbench, "--drop", img], check=True)
            if os.path.exists(img + ".qcow2"):
                subprocess.run([hostbench, "--drop", img + ".qcow2"], check=True)
            t0 = time.monotonic()
            try:
                res = (run_host if kind == "host" else run_guest)(cmd, log)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                print(f"  {name} run {i + 1}: FAILED: {e} (log: {path})", flush=True)
                continue
        runs[name].append(res)
        print(f"  {name} run {i + 1} ({time.monotonic() - t0:.0f} s): " +
              ", ".join(f"{t} {res[t][0]:.1f} MB/s {res[t][1]:.0f} IOPS" for t in TESTS),
              flush=True)

med = {name: {t: (statistics.median(r[t][0] for r in rs), statistics.median(r[t][1] for r in rs))
              for t in TESTS}
       for name, rs in runs.items() if rs}

print()
print(f"host load average (1 min): {load0:.2f} at the start, {os.getloadavg()[0]:.2f} at the end "
      f"({os.cpu_count()} CPUs)")
print(f"virtio-blk, default riscv64 guest, O_DIRECT in the guest, QD1, median of {n} runs "
      f"(MB/s = 10^6 B/s)")
heads = ["seq write 1M", "seq read 1M", "rand write 4K", "rand read 4K"]
print(f"{'':22}" + "".join(f"{h:>18}" for h in heads))
print(f"{'':22}" + f"{'MB/s':>9}{'IOPS':>9}" * 4)


def num(v, w):
    return f"{v:>{w}.0f}" if v >= 100 else f"{v:>{w}.1f}" if v >= 10 else f"{v:>{w}.2f}"


for name, r in med.items():
    print(f"{name:22}" + "".join(num(r[t][0], 9) + num(r[t][1], 9) for t in TESTS))
if "petrel" in med and "petrel-qcow2" in med:
    print(f"{'qcow2/raw (petrel)':22}" +
          "".join(f"{med['petrel-qcow2'][t][0] / med['petrel'][t][0]:>17.2f}x" for t in TESTS))
if "petrel" in med:
    for name in med:
        if name in ("petrel", "petrel-qcow2"):
            continue
        print(f"{'petrel/' + name.replace('cache=', ''):22}" +
              "".join(f"{med['petrel'][t][0] / med[name][t][0]:>17.2f}x" for t in TESTS))
elif "petrel" in configs:
    print(f"petrel: {petrel_why or 'every run failed'}")
sys.exit(0 if all(runs[name] for name, _, _ in sides) else 1)
EOF
