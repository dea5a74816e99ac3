#!/usr/bin/env bash
# TCP throughput between the default riscv64 guest and the host, Petrel vs
# QEMU side by side, through user-mode NAT (libslirp) and through a bridged
# TAP interface.
#
#   bench/net-io.sh [N]          (default N=3 runs per configuration)
#
# Configurations (the same kernel, initramfs and firmware, 512 MiB, 1 CPU):
#
#   qemu        QEMU 7.2 TCG: -netdev user,id=n0,hostfwd=... -device
#               virtio-net-pci,netdev=n0 (QEMU's slirp backend has no vnet
#               header, so QEMU offers the guest no checksum or segmentation
#               offload)
#   petrel      petrel run --device virtio-net,net=user,hostfwd=...
#   qemu-tap    QEMU 7.2 TCG: -netdev tap,id=n0,ifname=ptap0,script=no,
#               downscript=no -device virtio-net-pci,netdev=n0 (QEMU opens
#               the TAP with a vnet header when it can, and then offers the
#               guest checksum and segmentation offload)
#   petrel-tap  petrel run --device virtio-net,net=tap,ifname=ptap0 (no vnet
#               header: plain Ethernet frames)
#
# The TAP configurations need root: the script creates a network namespace
# (`ip netns add petrel-net-io-PID`, deleted on exit), and inside it
# `scripts/mkbridge.sh up pbr0 ptap0 root 192.168.77.1/24` makes a bridge
# with the host side's address and a persistent TAP on it (made afresh
# before every TAP boot, so no offload setting or neighbour entry carries
# over from the other VMM).  The VMM runs in the namespace (`ip netns exec`),
# and so do the host's receiver and sender sockets; the host's own network
# is not touched.  Without root it prints "tap: needs root" and runs the
# other configurations.
#
# Every run boots a guest and drives it over the serial console with the
# default initramfs's busybox (nothing is added to the guest):
#
#   address    NAT: udhcpc gets the lease 10.0.2.15 (with a script written to
#              /tmp); TAP: `ifconfig eth0 192.168.77.2 netmask 255.255.255.0`
#              (static, no DHCP) and one ping of 192.168.77.1
#   tx         guest -> host: `dd if=/dev/zero bs=64k count=C | nc HOST P`
#              (HOST 10.0.2.2, or 192.168.77.1 on TAP) to a receiver on the
#              host (127.0.0.1:P, or 192.168.77.1:P in the namespace) that
#              counts bytes; MB/s from its first to its last byte
#   rx         host -> guest: the guest runs `nc -l -p 5001 >/dev/null`, the
#              host connects (NAT: to the hostfwd port 127.0.0.1:HP -> :5001;
#              TAP: to 192.168.77.2:5001 directly), sends C*64 KiB and
#              half-closes; the guest prints a marker on the console when nc
#              has seen the end.  MB/s from the connect to the marker.
#
# Transfer sizes: the first boot of each configuration sends 2 MiB each way
# to measure the rate, and the size is then fixed (for every run of that
# configuration) so a transfer takes about BENCH_TIME seconds (default 3),
# and at least 6 MiB.
# Each later boot also does the 2 MiB warm-up first.  Host CPU of the VMM
# process (utime+stime over all its threads) is sampled around each timed
# transfer.  The configurations take turns (run 1 of each, then run 2, ...);
# the table shows medians and the petrel/qemu ratio per backend; MB/s is
# 10^6 bytes/s.
#
# PERF=1 also records `perf record -F 999 -p PID` on Petrel (petrel and
# petrel-tap) during its last run's timed transfers and prints the top
# symbols (needs perf, and kernel.perf_event_paranoid <= 2 for user-space
# samples of one's own processes).
#
# Environment: PETREL (default build/petrel), QEMU (default
# qemu-system-riscv64), BENCH_TIME (3), BENCH_TIMEOUT (seconds per guest run,
# default 300), CONFIGS (space-separated subset of: qemu petrel qemu-tap
# petrel-tap; default all four), PERF.
set -euo pipefail

script=$(readlink -f "$0")
cd "$(dirname "$script")/.."
n=${1:-3}
case "$n" in ''|*[!0-9]*|0) echo "usage: $0 [N>0]" >&2; exit 2 ;; esac
bench_time=${BENCH_TIME:-3}

guest=build/guest/riscv64
petrel=${PETREL:-build/petrel}
qemu=${QEMU:-qemu-system-riscv64}
configs=${CONFIGS:-qemu petrel qemu-tap petrel-tap}
for c in $configs; do
    case "$c" in qemu|petrel|qemu-tap|petrel-tap) ;;
    *) echo "CONFIGS: unknown configuration '$c' (qemu petrel qemu-tap petrel-tap)" >&2; exit 2 ;;
    esac
done
want() { case " $configs " in *" $1 "*) return 0 ;; esac; return 1; }
missing=0
for f in "$guest/Image" "$guest/initramfs.cpio.gz" "$guest/fw_dynamic.bin"; do
    [ -e "$f" ] || { echo "missing $f (run: make guest)" >&2; missing=1; }
done
for t in "$qemu" /usr/bin/python3; do
    command -v "$t" >/dev/null 2>&1 || { echo "missing $t (run: scripts/deps.sh test)" >&2; missing=1; }
done
[ "$missing" = 0 ] || exit 1

petrel_ok=0
petrel_why=""
petrel_tap_why=""
if want petrel || want petrel-tap; then
    if [ ! -x "$petrel" ]; then
        petrel_why="no $petrel (run: make)"
    elif ! "$petrel" run --help 2>&1 | grep -q -- 'virtio-net'; then
        petrel_why="no virtio-net support"
    else
        petrel_ok=1
        # a build with the TAP backend rejects net=tap without ifname= by name
        case "$("$petrel" run --device virtio-net,net=tap </dev/null 2>&1 || true)" in
        *"needs ifname"*) ;;
        *) petrel_tap_why="no net=tap support" ;;
        esac
    fi
fi
perf_ok=0
if [ -n "${PERF:-}" ] && [ "$petrel_ok" = 1 ]; then
    if command -v perf >/dev/null 2>&1; then perf_ok=1; else echo "PERF: no perf" >&2; fi
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/petrel-net-io.XXXXXX")
ns=""
cleanup() {
    if [ -n "$ns" ]; then
        ip netns exec "$ns" scripts/mkbridge.sh down pbr0 ptap0 >/dev/null 2>&1 || true
        ip netns del "$ns" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The TAP configurations: a namespace with a bridge and a TAP (see above).
tap_why=""
if want qemu-tap || want petrel-tap; then
    if [ "$(id -u)" -ne 0 ]; then
        tap_why="needs root"
    elif ! command -v ip >/dev/null 2>&1; then
        tap_why="no ip (iproute2)"
    elif ! ip netns add "petrel-net-io-$$" 2>"$tmp/netns.err"; then
        tap_why="ip netns add failed: $(tail -n 1 "$tmp/netns.err")"
    else
        ns="petrel-net-io-$$"
        ip -n "$ns" link set lo up
        if ! ip netns exec "$ns" scripts/mkbridge.sh up pbr0 ptap0 root 192.168.77.1/24 \
            >/dev/null 2>"$tmp/mkbridge.err"; then
            tap_why="mkbridge.sh up failed: $(tail -n 1 "$tmp/mkbridge.err")"
        fi
    fi
    [ -z "$tap_why" ] || echo "tap: $tap_why"
fi

/usr/bin/python3 - "$n" "${BENCH_TIMEOUT:-300}" "$bench_time" "$guest" "$qemu" \
    "$petrel" "$petrel_ok" "$petrel_why" "$configs" "$perf_ok" "$tmp" "$ns" "$tap_why" \
    "$petrel_tap_why" <<'EOF'
import ctypes, os, re, select, socket, statistics, subprocess, sys, threading, time

(n, timeout, btime, guest, qemu, petrel, petrel_ok, petrel_why, configs, perf_ok,
 tmp, ns, tap_why, petrel_tap_why) = sys.argv[1:]
n, timeout, btime = int(n), float(timeout), float(btime)
configs = configs.split()
PROMPT = b"petrel:/# "
GUEST_PORT = 5001
BLOCK = 64 * 1024
PROBE_BLOCKS = 32                       # 2 MiB
MIN_BLOCKS = 96                         # 6 MiB: the smallest timed transfer
STEP_TIMEOUT = 120.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
DHCP_SCRIPT = (
    "printf '#!/bin/sh\\ncase \"$1\" in bound|renew) ifconfig $interface $ip netmask "
    "$subnet up; route add default gw $router dev $interface;; deconfig) ifconfig "
    "$interface 0.0.0.0 up;; esac\\n' > /tmp/dhcp.sh; chmod +x /tmp/dhcp.sh")
files = dict(kernel=f"{guest}/Image", initrd=f"{guest}/initramfs.cpio.gz",
             bios=f"{guest}/fw_dynamic.bin")
BRIDGE, TAP = "pbr0", "ptap0"
TAP_HOST, TAP_GUEST = "192.168.77.1", "192.168.77.2"
CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
ns_fd = os.open(f"/run/netns/{ns}", os.O_RDONLY) if ns else -1
home_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY) if ns else -1


def is_tap(name):
    return name.endswith("-tap")


def setns(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


def new_socket(tap):
    """A TCP socket; with tap, in the namespace (this thread enters it only
    for the socket() call; the socket stays there)."""
    if not tap:
        return socket.socket()
    setns(ns_fd)
    try:
        return socket.socket()
    finally:
        setns(home_fd)


def fresh_tap():
    """Delete and re-make the TAP (and the bridge) in the namespace."""
    for args in (["down", BRIDGE, TAP], ["up", BRIDGE, TAP, "root", f"{TAP_HOST}/24"]):
        r = subprocess.run(["ip", "netns", "exec", ns, "scripts/mkbridge.sh", *args],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           timeout=30)
        if r.returncode != 0:
            last = (r.stderr.strip().splitlines() or [""])[-1]
            raise RuntimeError(f"mkbridge.sh {args[0]} failed: {last}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def command(name, hostport):
    fwd = f"hostfwd=tcp:127.0.0.1:{hostport}-:{GUEST_PORT}"
    if name.startswith("qemu"):
        netdev = (f"tap,id=n0,ifname={TAP},script=no,downscript=no" if is_tap(name)
                  else f"user,id=n0,{fwd}")
        cmd = [qemu, "-M", "virt", "-m", "512M", "-smp", "1", "-nographic",
               "-bios", files["bios"], "-kernel", files["kernel"], "-initrd", files["initrd"],
               "-append", "console=ttyS0",
               "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0"]
    else:
        dev = f"virtio-net,net=tap,ifname={TAP}" if is_tap(name) else f"virtio-net,net=user,{fwd}"
        cmd = [petrel, "run", "--memory", "512M", "--cpus", "1", "--firmware", files["bios"],
               "--kernel", files["kernel"], "--initrd", files["initrd"], "--device", dev]
    # `ip netns exec` execs the VMM (no fork), so the child's pid is the VMM's
    return ["ip", "netns", "exec", ns, *cmd] if is_tap(name) else cmd


class Console:
    def __init__(self, cmd, log):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.buf, self.pos, self.log, self.t = b"", 0, log, time.monotonic()

    def send(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def expect(self, pattern, what, tmo=STEP_TIMEOUT):
        """Wait for pattern (bytes regex) after the last match; return (match, time)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + tmo
        fd = self.proc.stdout.fileno()
        while True:
            m = rx.search(self.buf, self.pos)
            if m:
                self.pos = m.end()
                return m, self.t
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{what}: not within {tmo:.0f} s")
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            data = os.read(fd, 65536)
            self.t = time.monotonic()
            if not data:
                raise RuntimeError(f"{what}: the VMM exited (status {self.proc.wait()})")
            self.buf += data
            self.log.write(data)

    def run(self, line, marker, what, tmo=STEP_TIMEOUT):
        """Type a command that ends by printing MARKER0=value; return (value, time)."""
        self.send(line)
        m, t = self.expect(marker.encode() + rb"0=([^\r\n]*)\r?\n", what, tmo)
        value = m.group(1).decode(errors="replace").strip()
        self.expect(re.escape(PROMPT), f"prompt after {what}", tmo)
        return value, t

    def cpu(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def tx(con, blocks, tap):
    """Guest -> host: returns (MB/s, host CPU seconds of the VMM, wall)."""
    lsock = new_socket(tap)
    lsock.bind((TAP_HOST if tap else "127.0.0.1", 0))
    lsock.listen(1)
    lsock.settimeout(STEP_TIMEOUT)
    port = lsock.getsockname()[1]
    res = {}

    def receive():
        try:
            c, _ = lsock.accept()
        except OSError as e:
            res["err"] = str(e)
            return
        buf = bytearray(1 << 20)
        total = first = 0
        t_first = t_last = None
        with c:
            while True:
                k = c.recv_into(buf)
                if not k:
                    break
                t_last = time.monotonic()
                if t_first is None:
                    t_first, first = t_last, k
                total += k
        res.update(total=total, first=first, t_first=t_first, t_last=t_last)

    th = threading.Thread(target=receive, daemon=True)
    th.start()
    c0 = con.cpu()
    rc, _ = con.run(f"dd if=/dev/zero bs={BLOCK} count={blocks} 2>/dev/null | "
                    f"nc {TAP_HOST if tap else '10.0.2.2'} {port}; echo \"TXDONE$((0))=$?\"", "TXDONE", "tx",
                    tmo=timeout)
    c1 = con.cpu()
    th.join(30)
    lsock.close()
    if "err" in res or "total" not in res:
        raise RuntimeError(f"tx: the host receiver got no connection ({res.get('err', '')})")
    if res["total"] != blocks * BLOCK:
        raise RuntimeError(f"tx: received {res['total']} bytes, want {blocks * BLOCK} "
                           f"(guest status {rc})")
    wall = res["t_last"] - res["t_first"]
    return (res["total"] - res["first"]) / max(wall, 1e-6) / 1e6, c1 - c0, wall


def rx(con, blocks, addr, tap):
    """Host -> guest (to ADDR: the hostfwd port, or the guest on the TAP):
    returns (MB/s, host CPU seconds, wall)."""
    con.send(f"(nc -l -p {GUEST_PORT} </dev/null >/dev/null; echo \"RXDONE$((0))=$?\") &")
    con.run(f"until netstat -ltn 2>/dev/null | grep -q ':{GUEST_PORT} '; do usleep 50000; "
            f"done; echo \"LISTEN$((0))=1\"", "LISTEN", "nc -l in the guest")
    chunk = bytes(1 << 20)
    total = blocks * BLOCK
    c0 = con.cpu()
    s = new_socket(tap)
    s.settimeout(STEP_TIMEOUT)
    s.connect(addr)
    t0 = time.monotonic()
    with s:
        left = total
        while left:
            k = min(left, len(chunk))
            s.sendall(memoryview(chunk)[:k])
            left -= k
        s.shutdown(socket.SHUT_WR)
        m, t1 = con.expect(rb"RXDONE0=(\d+)", "rx: the guest's nc did not finish", timeout)
    c1 = con.cpu()
    con.send("")
    con.expect(re.escape(PROMPT), "prompt after rx")
    if m.group(1) != b"0":
        raise RuntimeError(f"rx: the guest's nc exited with status {m.group(1).decode()}")
    return total / (t1 - t0) / 1e6, c1 - c0, t1 - t0


def perf_start(pid, out):
    return subprocess.Popen(["perf", "record", "-q", "-F", "999", "-o", out, "-p", str(pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def perf_stop(p, out):
    p.send_signal(2)
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    r = subprocess.run(["perf", "report", "-i", out, "--stdio", "--no-children",
                        "--sort", "symbol", "--percent-limit", "1.5"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines = [l for l in r.stdout.splitlines() if l.strip() and not l.startswith("#")]
    return lines[:15]


sizes = {}                                  # (config, dir) -> blocks
features = {}


def one_run(name, i, log):
    tap = is_tap(name)
    hostport = free_port()
    if tap:
        fresh_tap()
    con = Console(command(name, hostport), log)
    perf = None
    try:
        con.expect(re.escape(PROMPT), "no shell prompt", timeout)
        if tap:
            rc, _ = con.run(f"ifconfig eth0 {TAP_GUEST} netmask 255.255.255.0 up && "
                            f"ping -c 1 -W 10 {TAP_HOST} >/dev/null 2>&1; "
                            'echo "NET$((0))=$?"', "NET", "ifconfig and ping")
            if rc != "0":
                raise RuntimeError(f"the guest cannot ping {TAP_HOST} (exit status {rc})")
        else:
            con.send(DHCP_SCRIPT)
            con.expect(re.escape(PROMPT), "writing the udhcpc script")
            rc, _ = con.run('udhcpc -i eth0 -s /tmp/dhcp.sh -n -q -t 10 -T 3 >/dev/null 2>&1; '
                            'echo "DHCP$((0))=$?"', "DHCP", "udhcpc")
            if rc != "0":
                raise RuntimeError(f"udhcpc failed (exit status {rc})")
        if name not in features:
            features[name], _ = con.run(
                'echo "FEAT$((0))=$(cat /sys/class/net/eth0/device/features)"', "FEAT",
                "virtio features")
        res = {}
        addr = (TAP_GUEST, GUEST_PORT) if tap else ("127.0.0.1", hostport)

        def xfer(d, b):
            return tx(con, b, tap) if d == "tx" else rx(con, b, addr, tap)

        for d in ("tx", "rx"):
            mbps, _, _ = xfer(d, PROBE_BLOCKS)     # warm-up, and sizing on the first boot
            if (name, d) not in sizes:
                sizes[name, d] = max(MIN_BLOCKS, int(mbps * 1e6 * btime / BLOCK))
        if perf_ok == "1" and name.startswith("petrel") and i == n - 1:
            perf = perf_start(con.proc.pid, f"{tmp}/perf.data")
            time.sleep(0.5)
        for d in ("tx", "rx"):
            res[d] = xfer(d, sizes[name, d])
        if perf:
            top = perf_stop(perf, f"{tmp}/perf.data")
            perf = None
            res["perf"] = top
        con.send("poweroff -f")
        rc = con.proc.wait(timeout=60)
        if rc not in (0,):
            print(f"    note: {name} exited with status {rc} after poweroff -f", flush=True)
        return res
    finally:
        if perf:
            perf.kill()
            perf.wait()
        con.close()


sides = []
for name in ("qemu", "petrel", "qemu-tap", "petrel-tap"):
    if name not in configs:
        continue
    if is_tap(name) and not ns:
        continue                # the shell part said why ("tap: needs root")
    if name.startswith("petrel") and petrel_ok != "1":
        print(f"{name}: {petrel_why}", flush=True)
        continue
    if name == "petrel-tap" and petrel_tap_why:
        print(f"{name}: {petrel_tap_why}", flush=True)
        continue
    sides.append(name)
    print(f"{name}: {' '.join(command(name, 'HP'))}", flush=True)
print(f"{n} runs each, about {btime:g} s per transfer", flush=True)

load0 = os.getloadavg()[0]
runs = {name: [] for name in sides}
perf_top = {}
for i in range(n):
    for name in sides:
        path = f"/tmp/petrel-bench-net-{name}.log"
        t0 = time.monotonic()
        with open(path, "wb" if i == 0 else "ab") as log:
            try:
                res = one_run(name, i, log)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
                print(f"  {name} run {i + 1}: FAILED: {e} (log: {path})", flush=True)
                continue
        if "perf" in res:
            perf_top[name] = res.pop("perf")
        runs[name].append(res)
        print(f"  {name} run {i + 1} ({time.monotonic() - t0:.0f} s): " + ", ".join(
            f"{d} {res[d][0]:.1f} MB/s ({sizes[name, d] * BLOCK / 2**20:.0f} MiB in "
            f"{res[d][2]:.1f} s, VMM CPU {100 * res[d][1] / res[d][2]:.0f}%)"
            for d in ("tx", "rx")), flush=True)

med = {name: {d: (statistics.median(r[d][0] for r in rs),
                  statistics.median(100 * r[d][1] / r[d][2] for r in rs)) for d in ("tx", "rx")}
       for name, rs in runs.items() if rs}
print()
print(f"host load average (1 min): {load0:.2f} at the start, {os.getloadavg()[0]:.2f} at the end "
      f"({os.cpu_count()} CPUs)")
for name, feat in features.items():
    print(f"{name}: guest virtio-net features {feat}")
print(f"TCP guest<->host, default riscv64 guest, busybox nc, median of {n} runs "
      f"(MB/s = 10^6 B/s; CPU = the VMM process's host CPU over the transfer); "
      f"NAT = user-mode (libslirp), tap = a bridged TAP in a network namespace")
print(f"{'':16}{'guest->host MB/s':>18}{'CPU':>7}{'host->guest MB/s':>18}{'CPU':>7}")
for q, p, label in (("qemu", "petrel", "petrel/qemu NAT"),
                    ("qemu-tap", "petrel-tap", "petrel/qemu tap")):
    for name in (q, p):
        if name in med:
            r = med[name]
            print(f"{name:16}{r['tx'][0]:>18.1f}{r['tx'][1]:>6.0f}%"
                  f"{r['rx'][0]:>18.1f}{r['rx'][1]:>6.0f}%")
    if q in med and p in med:
        print(f"{label:16}{med[p]['tx'][0] / med[q]['tx'][0]:>17.2f}x{'':7}"
              f"{med[p]['rx'][0] / med[q]['rx'][0]:>17.2f}x")
for name, top in perf_top.items():
    print()
    print(f"perf record on {name} during its last run's timed transfers (top symbols):")
    for line in top:
        print("  " + line)
# Not a test: fail only when a configuration never completed a run.
sys.exit(0 if all(runs[name] for name in sides) else 1)
EOF
