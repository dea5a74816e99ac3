"""virtio-balloon end to end on the riscv64 Linux guest
(src/virtio/virtio_balloon.c, src/api/fc_balloon.c):

- the device comes from PUT /balloon before InstanceStart (statistics every
  second, deflate-on-OOM, free page reporting); GET /balloon shows it;
- free page reporting: the guest writes 160 MiB into a tmpfs file (the
  VMM's RSS grows) and removes it: the RSS goes back down by itself;
- inflate: the guest reads 300 MiB of a disk into its page cache (memory
  it touched that is not free, so not reported); PATCH /balloon
  {amount_mib: 300}: the guest's actual size reaches 300 MiB (GET
  /balloon), its MemAvailable drops by about that much and the VMM's RSS
  drops (the balloon reclaimed cache pages); deflate back to 0;
- statistics: GET /balloon/statistics has the guest's total and free
  memory, matching its /proc/meminfo;
- deflate-on-OOM: with most of RAM in the balloon, the guest writes more
  into tmpfs than it has free: the write succeeds and the balloon gives
  pages back (actual below the target);
- bad input: a target larger than RAM, PATCH before the start, statistics
  off, a VM without a balloon, a guest-independent config-file section.

One guest boots for the module; the bad-input checks use VMMs that never
start a guest.
"""

import json
import time

import pytest

from api_helpers import Vmm
from petrel_helpers import check, fail, require_guest, run_petrel

PROMPT = "petrel:/# "
MEM_MIB = 512


def _value(con, cmd, timeout=60):
    con.send(f"echo @@$((0))B; {cmd}; echo @@$((0))E\n")
    out = con.expect("@@0E", timeout)
    if "@@0B" not in out:
        fail(f"no fenced output for {cmd!r} in {out!r}")
    return out.split("@@0B")[-1].rsplit("@@0E", 1)[0].strip()


def _meminfo(con):
    out = _value(con, "cat /proc/meminfo")
    m = {}
    for line in out.splitlines():
        parts = line.replace(":", " ").split()
        if len(parts) >= 2 and parts[1].isdigit():
            m[parts[0]] = int(parts[1]) * 1024
    check("MemFree" in m and "MemTotal" in m, f"no /proc/meminfo: {out!r}")
    return m


def _rss_mib(vmm):
    with open(f"/proc/{vmm.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    fail("no VmRSS")


def _wait(what, cond, timeout):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            fail(f"timed out waiting for {what}")
        time.sleep(0.3)


def _actual(vmm):
    st, b = vmm.api("GET", "/balloon")
    check(st == 200, f"GET /balloon: {st} {b!r}")
    return b["actual_mib"]


@pytest.fixture(scope="module")
def vm(tmp_path_factory):
    require_guest()
    tmp = tmp_path_factory.mktemp("balloon")
    disk = tmp / "disk.raw"
    with open(disk, "wb") as f:
        f.truncate(320 << 20)       # sparse: read as zeros, for the page cache
    vmm = Vmm("default", tmp, ["--memory", f"{MEM_MIB}M", "--disk", str(disk)])
    try:
        st, body = vmm.api("PUT", "/balloon", {"amount_mib": 0, "deflate_on_oom": True,
                                                "stats_polling_interval_s": 1,
                                                "free_page_reporting": True})
        check(st == 204, f"PUT /balloon: {st} {body!r}")
        st, body = vmm.api("GET", "/balloon")
        check(st == 200 and body == {"amount_mib": 0, "deflate_on_oom": True,
                                     "stats_polling_interval_s": 1,
                                     "free_page_reporting": True},
              f"GET /balloon before the start: {st} {body!r}")
        st, body = vmm.api("PATCH", "/balloon", {"amount_mib": 10})
        check(st == 400 and "before starting" in body["fault_message"],
              f"PATCH /balloon before the start: {st} {body!r}")
        st, body = vmm.api("PUT", "/actions", {"action_type": "InstanceStart"})
        check(st == 204, f"InstanceStart: {st} {body!r}")
        con = vmm.console()
        con.expect(PROMPT, timeout=120)
        check("virtio_balloon" in _value(con, "lsmod"), "virtio_balloon not loaded")
        yield vmm, con
    finally:
        vmm.kill()


def test_free_page_reporting(vm):
    vmm, con = vm
    base = _rss_mib(vmm)
    _value(con, "dd if=/dev/zero of=/dev/shm/fill bs=1M count=160 2>/dev/null")
    full = _rss_mib(vmm)
    check(full > base + 120, f"RSS {base:.0f} -> {full:.0f} MiB after writing 160 MiB")
    _value(con, "rm /dev/shm/fill")
    low = _wait("the RSS to drop after the guest freed 160 MiB",
                lambda: (r := _rss_mib(vmm)) < full - 100 and r, 30)
    print(f"free page reporting: RSS {base:.0f} -> {full:.0f} -> {low:.0f} MiB")


def test_inflate_deflate(vm):
    vmm, con = vm
    # 300 MiB of the disk in the guest's page cache: memory it touched
    # that is not free (so not reported), which the balloon must reclaim
    _value(con, "dd if=/dev/vda of=/dev/null bs=1M count=300 2>/dev/null")
    full = _rss_mib(vmm)
    before = _meminfo(con)
    t0 = time.monotonic()
    st, body = vmm.api("PATCH", "/balloon", {"amount_mib": 300})
    check(st == 204, f"PATCH /balloon 300: {st} {body!r}")
    _wait("actual_mib 300", lambda: _actual(vmm) == 300, 90)
    secs = time.monotonic() - t0
    after = _meminfo(con)
    rss = _rss_mib(vmm)
    drop = (before["MemAvailable"] - after["MemAvailable"]) / 2**20
    check(270 <= drop <= 330, f"MemAvailable dropped by {drop:.0f} MiB for a 300 MiB balloon")
    check(rss < full - 120, f"RSS {full:.0f} -> {rss:.0f} MiB with 300 MiB in the balloon")
    print(f"inflate 300 MiB in {secs:.1f} s, RSS {full:.0f} -> {rss:.0f} MiB")
    st, body = vmm.api("GET", "/balloon")
    check(body["amount_mib"] == 300 and body["actual_pages"] == 300 * 256, f"{body!r}")
    st, cfg = vmm.api("GET", "/vm/config")
    check(cfg.get("balloon", {}).get("amount_mib") == 300, f"GET /vm/config: {cfg!r}")
    st, body = vmm.api("PATCH", "/balloon", {"amount_mib": 0})
    check(st == 204, f"PATCH /balloon 0: {st} {body!r}")
    _wait("actual_mib 0", lambda: _actual(vmm) == 0, 60)
    # free page reporting takes the returned pages off the guest's free
    # lists for a moment while it hands them to the host, so MemAvailable
    # can lag the deflate by a few MiB: wait for it rather than sample once
    seen = []
    def grown():
        seen.append(_meminfo(con)["MemAvailable"])
        return seen[-1] > after["MemAvailable"] + (250 << 20)
    deadline = time.monotonic() + 30
    while not grown() and time.monotonic() < deadline:
        time.sleep(0.5)
    check(seen[-1] > after["MemAvailable"] + (250 << 20),
          f"MemAvailable {after['MemAvailable']} -> {seen} after the deflate")


def test_statistics(vm):
    vmm, con = vm
    st, body = vmm.api("PATCH", "/balloon/statistics", {"stats_polling_interval_s": 0})
    check(st == 400 and "cannot be turned off" in body["fault_message"], f"{st} {body!r}")
    time.sleep(2.5)     # two polls
    st, s = vmm.api("GET", "/balloon/statistics")
    check(st == 200, f"GET /balloon/statistics: {st} {s!r}")
    m = _meminfo(con)
    for k in ("target_pages", "actual_pages", "target_mib", "actual_mib", "total_memory",
              "free_memory", "available_memory", "minor_faults", "major_faults"):
        check(k in s, f"no {k} in {s!r}")
    check(abs(s["total_memory"] - m["MemTotal"]) < (1 << 20),
          f"total_memory {s['total_memory']} vs MemTotal {m['MemTotal']}")
    check(abs(s["free_memory"] - m["MemFree"]) < (24 << 20),
          f"free_memory {s['free_memory']} vs MemFree {m['MemFree']}")
    check(0 < s["free_memory"] <= s["total_memory"] <= MEM_MIB << 20, f"{s!r}")
    check(s["minor_faults"] > 0, f"{s!r}")
    st, body = vmm.api("PATCH", "/balloon/statistics", {"stats_polling_interval_s": 2})
    check(st == 204, f"PATCH /balloon/statistics: {st} {body!r}")
    st, body = vmm.api("GET", "/balloon")
    check(body["stats_polling_interval_s"] == 2, f"{body!r}")


def test_deflate_on_oom(vm):
    vmm, con = vm
    target = MEM_MIB - 96
    st, body = vmm.api("PATCH", "/balloon", {"amount_mib": target})
    check(st == 204, f"PATCH /balloon {target}: {st} {body!r}")
    _wait(f"actual_mib {target}", lambda: _actual(vmm) == target, 60)
    free = _meminfo(con)["MemFree"] >> 20
    want = free + 48
    out = _value(con, f"dd if=/dev/zero of=/tmp/big bs=1M count={want} 2>&1; echo rc=$?; "
                      "rm -f /tmp/big", timeout=120)
    check("rc=0" in out, f"writing {want} MiB with {free} MiB free: {out!r}")
    actual = _actual(vmm)
    check(actual < target - 20, f"the balloon kept {actual} MiB of {target}")
    print(f"deflate-on-OOM: {free} MiB free, wrote {want} MiB, balloon {target} -> {actual} MiB")
    st, body = vmm.api("PATCH", "/balloon", {"amount_mib": MEM_MIB + 1})
    check(st == 400 and "larger than the guest's RAM" in body["fault_message"], f"{st} {body!r}")
    st, body = vmm.api("PATCH", "/balloon", {"amount_mib": 0})
    check(st == 204, f"{st} {body!r}")
    check(vmm.proc.poll() is None, "the VMM exited")


def test_bad_requests(tmp_path):
    vmm = Vmm("default", tmp_path, ["--memory", "128M"])
    try:
        for path in ("/balloon", "/balloon/statistics"):
            st, body = vmm.api("GET", path)
            check(st == 400, f"GET {path} without a balloon: {st} {body!r}")
        st, body = vmm.api("PUT", "/balloon", {"amount_mib": 129, "deflate_on_oom": False})
        check(st == 400 and "larger than the guest's RAM (128 MiB)" in body["fault_message"],
              f"PUT /balloon 129 MiB of 128: {st} {body!r}")
        st, body = vmm.api("PUT", "/balloon", {"amount_mib": 1})
        check(st == 400 and "deflate_on_oom" in body["fault_message"], f"{st} {body!r}")
        st, body = vmm.api("PUT", "/balloon", {"amount_mib": 1, "deflate_on_oom": False,
                                                "free_page_hinting": True})
        check(st == 400 and "free_page_hinting" in body["fault_message"], f"{st} {body!r}")
        st, body = vmm.api("PATCH", "/balloon/statistics", {"stats_polling_interval_s": 1})
        check(st == 400 and "before starting" in body["fault_message"], f"{st} {body!r}")
    finally:
        vmm.kill()
    # the config file's section goes through the same checks
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({"machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
                               "balloon": {"amount_mib": 65, "deflate_on_oom": True}}))
    r = run_petrel("default", ["run", "--config-file", str(cfg)], timeout=30)
    check(r.returncode == 1 and "balloon" in r.stderr and "64 MiB" in r.stderr,
          f"config file balloon > RAM: rc {r.returncode}, {r.stderr!r}")
    # and the command line's device
    r = run_petrel("default", ["run", "--memory", "64M", "--device",
                               "virtio-balloon,amount_mib=100"], timeout=30)
    check(r.returncode == 1 and "larger than the guest's RAM" in r.stderr,
          f"--device virtio-balloon,amount_mib=100 at 64M: rc {r.returncode}, {r.stderr!r}")
    r = run_petrel("default", ["run", "--device", "virtio-balloon,bogus=1"], timeout=30)
    check(r.returncode == 1 and "unknown option 'bogus'" in r.stderr, f"{r.stderr!r}")
