"""Resource limits through cgroups (src/sandbox/cgroup.c), measured with
bare-metal riscv64 guests (no Linux boot):

  - CPU: spin.elf (CPU-bound) under --cpu-quota 30% and, at the same time,
    without a limit; the VMM's CPU time over ~2.5 s (/proc/PID/stat and the
    cgroup's cpuacct.usage / cpu.stat) is 30% +- 5 of one CPU, the unlimited
    one far above; --cpu-pin puts the hart thread (alone) on host CPU 1;
  - memory: memtouch.elf touches all of its 128 MiB under --memory-max 64M:
    the kernel kills the VMM (SIGKILL), its cgroup's peak stays at or under
    64 MiB and it counts the OOM kill; with room, memtouch passes;
  - pids: --pids-max 1 leaves no room for the hart thread: a clear error;
  - the cgroup is gone after the VMM exits; a killed VMM's is swept by the
    next VMM with limits;
  - `petrel vm`: limits in vm.json, live figures in `petrel vm info`, the
    cgroup removed by `petrel vm kill`;
  - bad values: one line, exit 1.
Needs root and a cgroup file system; skips loudly otherwise.
"""

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from petrel_helpers import (GUEST_TESTS_DIR, assert_one_line_error, check, child_env,
                            require_file, require_petrel, run_petrel)

MiB = 1 << 20
CG = Path("/sys/fs/cgroup")


def _hier(ctl):
    """(mount, our own path) of controller ctl's v1 hierarchy, or None."""
    for line in open("/proc/self/cgroup"):
        num, ctls, path = line.rstrip("\n").split(":", 2)
        if ctl in ctls.split(","):
            for m in (CG / ctl, CG / ctls):
                if m.is_dir():
                    return m, path.rstrip("/")
    return None


def _petrel_dir(ctl, pid):
    h = _hier(ctl)
    if h is None:
        return None
    return Path(str(h[0]) + h[1]) / "petrel" / str(pid)


@pytest.fixture(scope="module")
def env():
    if os.geteuid() != 0:
        pytest.skip("cgroup limits need root: not running as root")
    if not (CG / "cpu").is_dir() or not (CG / "memory").is_dir():
        pytest.skip("no cgroup v1 cpu and memory hierarchies under /sys/fs/cgroup "
                    "(these tests read v1 files; the v2 code path is not exercised here)")
    petrel = require_petrel("default")
    spin = require_file(GUEST_TESTS_DIR / "spin.elf", "make guest-tests")
    touch = require_file(GUEST_TESTS_DIR / "memtouch.elf", "make guest-tests")
    return petrel, str(spin), str(touch)


def _cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])      # utime + stime


def _popen(petrel, *args):
    return subprocess.Popen([petrel, "run", "--firmware", "none", *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=child_env())


def test_cpu_quota_and_pin(env):
    petrel, spin, _ = env
    limited = _popen(petrel, "--kernel", spin, "--cpu-quota", "30%", "--cpu-pin", "1",
                     "--timeout", "5")
    free = _popen(petrel, "--kernel", spin, "--timeout", "5")
    try:
        time.sleep(1.2)
        d = _petrel_dir("cpu", limited.pid)
        check(d and d.is_dir(), f"no cgroup {d} for the limited VMM")
        check((d / "cpu.cfs_quota_us").read_text().strip() == "30000", "quota not written")
        acct = _petrel_dir("cpuacct", limited.pid) / "cpuacct.usage"
        hz = os.sysconf("SC_CLK_TCK")
        t0, a0, l0, f0 = time.monotonic(), int(acct.read_text()), _cpu_ticks(limited.pid), \
            _cpu_ticks(free.pid)
        time.sleep(2.5)
        t1, a1, l1, f1 = time.monotonic(), int(acct.read_text()), _cpu_ticks(limited.pid), \
            _cpu_ticks(free.pid)
        wall = t1 - t0
        share_l, share_f = (l1 - l0) / hz / wall, (f1 - f0) / hz / wall
        share_acct = (a1 - a0) / 1e9 / wall
        print(f"CPU over {wall:.2f} s: --cpu-quota 30%: {share_l:.3f} (/proc), "
              f"{share_acct:.3f} (cpuacct.usage); unlimited: {share_f:.3f}")
        check(0.25 <= share_acct <= 0.35, f"limited VMM used {share_acct:.3f} of a CPU "
              "(cpuacct), expected 0.30 +- 0.05")
        check(0.25 <= share_l <= 0.35, f"limited VMM used {share_l:.3f} of a CPU (/proc)")
        # the machine may be busy: the unlimited VMM must at least clearly outrun it
        check(share_f > 1.3 * share_acct, f"the unlimited VMM used only {share_f:.3f} of a CPU")
        # pinning: the hart thread on CPU 1, the main thread not pinned
        pinned = {}
        for t in Path(f"/proc/{limited.pid}/task").iterdir():
            st = (t / "status").read_text()
            pinned[t.name] = re.search(r"Cpus_allowed_list:\s*(\S+)", st).group(1)
        others = [v for k, v in pinned.items() if k != str(limited.pid)]
        check(others.count("1") == 1, f"expected one thread pinned to CPU 1: {pinned}")
        check(pinned[str(limited.pid)] != "1", f"the main thread is pinned too: {pinned}")
    finally:
        out = limited.communicate(timeout=30)
        free.communicate(timeout=30)
    check(limited.returncode == 4, f"limited VMM exit {limited.returncode}: {out[1]}")
    check(not d.exists(), f"{d} still there after the VMM exited")


def test_memory_max_oom(env):
    petrel, _, touch = env
    # room enough: memtouch passes
    r = run_petrel("default", ["run", "--firmware", "none", "--kernel", touch, "--memory", "64M",
                               "--memory-max", "128M"], timeout=60)
    check(r.returncode == 0 and "PASS memtouch" in r.stdout, "memtouch under 128M failed", r)
    # not enough: the kernel kills the VMM; its cgroup is left with the figures
    p = _popen(petrel, "--kernel", touch, "--memory", "128M", "--memory-max", "64M")
    out, err = p.communicate(timeout=60)
    check(p.returncode == -9, f"expected the VMM killed (SIGKILL), got {p.returncode}: {err}")
    d = _petrel_dir("memory", p.pid)
    check(d.is_dir(), f"the killed VMM's cgroup {d} is missing")
    peak = int((d / "memory.max_usage_in_bytes").read_text())
    limit = int((d / "memory.limit_in_bytes").read_text())
    oom = re.search(r"oom_kill (\d+)", (d / "memory.oom_control").read_text())
    reached = re.findall(r"memtouch: (\d+) MiB", out)[-1:]
    print(f"memory: limit {limit >> 20} MiB, peak {peak / MiB:.1f} MiB, guest reported "
          f"{reached} MiB touched")
    check(limit == 64 * MiB, f"memory.limit_in_bytes {limit}")
    check(peak <= limit, f"peak {peak} over the limit {limit}")
    check(peak >= limit - 8 * MiB, f"peak {peak}: the guest never pushed near the limit")
    check(oom and int(oom.group(1)) >= 1, "no OOM kill counted")
    # the next VMM with limits sweeps it
    r = run_petrel("default", ["run", "--firmware", "none", "--kernel", touch, "--memory", "32M",
                               "--pids-max", "64"], timeout=60)
    check(r.returncode == 0, "memtouch with --pids-max failed", r)
    check(not d.exists(), f"{d} (a dead VMM's) not swept by the next VMM")


def test_pids_max(env):
    _, spin, _ = env
    r = run_petrel("default", ["run", "--firmware", "none", "--kernel", spin, "--pids-max", "1"],
                   timeout=30)
    check(r.returncode == 1 and "cannot start the hart thread" in r.stderr,
          "--pids-max 1 should leave no room for the hart thread", r)


def test_vm_limits(env, tmp_path):
    petrel, spin, _ = env
    e = child_env({"PETREL_HOME": str(tmp_path / "home")})

    def vm(*args, ok=True):
        r = subprocess.run([petrel, "vm", *args], env=e, capture_output=True, text=True,
                           timeout=60)
        if ok:
            check(r.returncode == 0, f"petrel vm {' '.join(args)}: {r.stderr}")
        return r

    vm("create", "lim", "--base", "none", "--disk-size", "0", "--kernel", spin, "--firmware",
       "none", "--no-net", "--ssh-key", "none", "--memory", "64M", "--cpu-quota", "40%",
       "--memory-max", "96M", "--pids-max", "16", "--cpu-pin", "0")
    d = json.loads((tmp_path / "home/vms/lim/vm.json").read_text())
    check(d["limits"] == {"cpu_quota_pct": 40, "cpu_pin": "0", "memory_max_mib": 96,
                          "pids_max": 16}, f"vm.json limits: {d.get('limits')}")
    vm("set", "lim", "--cpu-quota", "50%", "--pids-max", "none")
    try:
        vm("start", "lim")
        time.sleep(0.5)
        info = json.loads(vm("info", "lim").stdout)
        res = info["resources"]
        print("vm info resources:", json.dumps(res))
        check(res["limits"] == {"cpu_quota_pct": 50, "cpu_pin": "0", "memory_max_mib": 96},
              f"limits {res['limits']}")
        c = res["cgroup"]
        check(c and c["cpu_quota_us"] == 50000 and c["cpu_period_us"] == 100000,
              f"cgroup {c}")
        check(c["memory_max_bytes"] == 96 * MiB and 0 < c["memory_current_bytes"] <= 96 * MiB,
              f"cgroup memory {c}")
        check(c["pids_max"] is None and c["pids_current"] >= 2, f"cgroup pids {c}")
        check(c["cpu_time_s"] > 0 and not c["vmm_gone"], f"cgroup cpu {c}")
        pid = info["run"]["pid"]
        check(_petrel_dir("cpu", pid).is_dir(), "no cpu cgroup")
    finally:
        vm("kill", "lim", ok=False)
    check(not _petrel_dir("cpu", pid).exists(), "cgroup left after petrel vm kill")
    r = vm("set", "lim", "--cpu-quota", "0%", ok=False)
    check(r.returncode == 1 and "--cpu-quota" in r.stderr, "vm set --cpu-quota 0% accepted")
    (tmp_path / "home/vms/lim/vm.json").write_text(
        json.dumps(dict(d, limits={"pids_max": 0})))
    r = vm("info", "lim", ok=False)
    check(r.returncode == 1 and "limits.pids_max" in r.stderr, f"bad vm.json: {r.stderr}")


@pytest.mark.parametrize("args,want", [
    (["--cpu-quota", "0%"], "invalid --cpu-quota '0%'"),
    (["--cpu-quota", "6401%"], "1% to 6400%"),
    (["--cpu-quota", "fifty"], "invalid --cpu-quota"),
    (["--cpu-pin", "9999"], "invalid --cpu-pin"),
    (["--cpu-pin", "1023"], "host CPU 1023 does not exist"),
    (["--cpu-pin", "3-1"], "invalid --cpu-pin '3-1'"),
    (["--memory-max", "8M"], "invalid --memory-max '8M'"),
    (["--memory-max", "2T"], "16M to 1T"),
    (["--pids-max", "0"], "invalid --pids-max '0'"),
    (["--io-max", "disk=0"], "no limit"),
    (["--io-max", "rbps=0"], "rbps=0"),
    (["--io-max", "foo=1"], "unknown key 'foo'"),
])
def test_bad_values(env, args, want):
    assert_one_line_error("default", ["run", *args, "--timeout", "5"], want)


def test_bad_io_disks(env, tmp_path):
    _, spin, _ = env
    img = tmp_path / "d.img"
    img.write_bytes(b"\0" * 65536)
    base = ["run", "--firmware", "none", "--kernel", spin, "--timeout", "5", "--disk", str(img)]
    assert_one_line_error("default", base + ["--io-max", "rbps=1M,disk=3"],
                          "--io-max disk=3: the VM has 1 disk")
    shm = Path("/dev/shm") / f"petrel-cg-{os.getpid()}.img"
    shm.write_bytes(b"\0" * 65536)
    try:
        assert_one_line_error("default", ["run", "--firmware", "none", "--kernel", spin,
                                          "--timeout", "5", "--disk", str(shm), "--io-max",
                                          "wbps=1M"], "no block device")
    finally:
        shm.unlink()
