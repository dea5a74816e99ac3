"""VM snapshots end to end on the riscv64 Linux guest (docs/snapshots.md),
through the VMM's API and `petrel run --restore`:

- a shell loop counting into a file on the guest's qcow2 root disk is
  snapshotted mid-run; the VM goes on, is killed, and the snapshot restored:
  the counter and the file continue from the snapshot's values (the disk was
  reverted with its internal snapshot), e2fsck finds the file system clean
  and the file's md5 is the expected sequence's;
- a snapshot taken while dd writes: after restore dd finishes and its file
  is whole;
- three clones of one snapshot run at once and diverge;
- a diff snapshot restores the same memory as a full one taken at the same
  instant (the memory checksums agree, --verify-memory passes);
- bad input: truncated, bit-flipped, other version or architecture, a memory
  file too short or damaged, a missing disk, a disk without the snapshot, a
  machine with other devices: a one-line error, exit 1, the disk untouched.

One guest (2 harts, one host thread each) boots for the whole module;
everything else restores snapshots.
"""

import hashlib
import os
import shutil
import struct
import subprocess
import zlib

import pytest

from api_helpers import Vmm
from petrel_helpers import (GUEST_DIR, assert_no_sanitizer_report, check, fail,
                            require_file, require_guest, run_cmd, run_petrel)

PROMPT = "petrel:/# "
APPEND = "root=/dev/vda console=ttyS0 earlycon=sbi"
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def _tool(name):
    path = shutil.which(name, path=SBIN_PATH)
    if path is None:
        fail(f"{name} not found; install e2fsprogs (scripts/deps.sh guest)")
    return path


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def _ok(st, body, what):
    check(st == 204, f"{what}: {st} {body!r}")


def _snapshot(vmm, dirpath, kind="Full", tag=None, resume=True):
    dirpath.mkdir(exist_ok=True)
    _ok(*vmm.api("PATCH", "/vm", {"state": "Paused"}), "pause")
    body = {"snapshot_type": kind, "snapshot_path": str(dirpath / "state"),
            "mem_file_path": str(dirpath / "memory")}
    if tag:
        body["tag"] = tag
    _ok(*vmm.api("PUT", "/snapshot/create", body), f"snapshot/create {body}")
    if resume:
        _ok(*vmm.api("PATCH", "/vm", {"state": "Resumed"}), "resume")


def _shell(con, cmd, timeout=60):
    con.send(cmd + "\n")
    return con.expect(PROMPT, timeout=timeout)


def _value(con, cmd, timeout=60):
    """The output of cmd, between markers the echoed command line does not
    contain ($((0)) expands only in the output)."""
    con.send(f"echo @@$((0))B; {cmd}; echo @@$((0))E\n")
    out = con.expect("@@0E", timeout)
    if "@@0B" not in out:
        fail(f"no fenced output for {cmd!r} in {out!r}")
    return out.split("@@0B")[-1].rsplit("@@0E", 1)[0].strip()


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    """One guest on a qcow2 copy of the root disk with a counter loop, and a
    snapshot taken mid-count: (tmp, vmm, console, disk, snapdir, seen)."""
    require_guest()
    tmp = tmp_path_factory.mktemp("snap")
    root = require_file(GUEST_DIR / "root.img", "build the default guest with `make guest`")
    disk = tmp / "root.qcow2"
    r = run_petrel("default", ["img", "convert", "-O", "qcow2", str(root), str(disk)],
                   timeout=120)
    check(r.returncode == 0, f"img convert: {r.stderr}")
    # 2 harts: pause parks both hart threads, the snapshot holds both
    vmm = Vmm("default", tmp, ["--boot", "--disk", str(disk), "--append", APPEND,
                               "--cpus", "2",
                               "--device", "virtio-net", "--device", "virtio-rng"])
    con = vmm.console()
    con.expect(PROMPT, timeout=300)
    _shell(con, "rm -f /log; (i=0; while true; do i=$((i+1)); echo $i >> /log; "
                "echo tick $i; sleep 0.3; done) &")
    con.expect("tick 5\r\n", timeout=60)
    snap = tmp / "s1"
    _snapshot(vmm, snap, tag="s1")
    yield tmp, vmm, con, disk, snap
    vmm.kill()


def _restore(tmp, name, args, flavor="default"):
    vmm = Vmm(flavor, tmp, ["--restore", *args], name=name)
    return vmm, vmm.console()


def _stop_loop_and_check_log(con, first_tick_after):
    """Kill the counter loop; /log must be 1..N with N >= the first tick seen."""
    _shell(con, "kill %1; sleep 0.5; sync")
    n = int(_value(con, "tail -n 1 /log"))
    body = _value(con, "md5sum /log | cut -d' ' -f1")
    want = hashlib.md5("".join(f"{i}\n" for i in range(1, n + 1)).encode()).hexdigest()
    check(body == want, f"/log is not the sequence 1..{n}: md5 {body}, expected {want} "
                        f"(a disk not reverted appends after the later run's lines)")
    check(n >= first_tick_after, f"/log ends at {n}, before tick {first_tick_after}")
    return n


def test_restore_continues_counter_and_disk(booted):
    tmp, vmm, con, disk, snap = booted
    out = con.expect("tick 15\r\n", timeout=60)     # the VM went on after the snapshot
    check("tick 6" in out or "tick 7" in out, f"ticks after the snapshot: {out!r}")
    vmm.kill()
    r, rc = _restore(tmp, "r1", [str(snap)])
    try:
        out = rc.expect("tick", timeout=60) + rc.expect("\r\n", timeout=10)
        first = int(out.split("tick")[-1].strip())
        # the snapshot was taken right after tick 5 was printed
        check(6 <= first <= 7, f"first tick after restore is {first}, expected 6 or 7 "
                               f"(the counter continues from the snapshot)")
        rc.expect(f"tick {first + 3}\r\n", timeout=30)
        _stop_loop_and_check_log(rc, first + 3)
        _shell(rc, "sync; echo done-r1")
        r.api("PUT", "/petrel/stop", {"force": True})
        r.wait(60)
    finally:
        r.kill()
    raw = tmp / "check.raw"
    res = run_petrel("default", ["img", "convert", "-O", "raw", str(disk), str(raw)], timeout=120)
    check(res.returncode == 0, f"img convert: {res.stderr}")
    fsck = run_cmd([_tool("e2fsck"), "-fn", str(raw)], timeout=120)
    check(fsck.returncode == 0, f"e2fsck after restore: {fsck.returncode}\n{fsck.stdout}")
    raw.unlink()


def _clone_disk(src, dst, tag):
    """The disk as it was at the snapshot: a copy reverted to its internal
    snapshot (petrel vm clone uses exports; this is the engine's view)."""
    shutil.copyfile(src, dst)
    r = run_petrel("default", ["img", "snapshot", "-a", tag, str(dst)], timeout=60)
    check(r.returncode == 0, f"img snapshot -a: {r.stderr}")


def test_three_clones_run_at_once_and_diverge(booted):
    tmp, vmm, con, disk, snap = booted
    vmm.kill()
    clones = []
    try:
        for i in range(3):
            d = tmp / f"clone{i}.qcow2"
            _clone_disk(disk, d, "s1")
            clones.append(_restore(tmp, f"c{i}", [str(snap), "--disk", str(d),
                                                 "--device", "virtio-net",
                                                 "--device", "virtio-rng"]))
        for i, (_, c) in enumerate(clones):
            c.expect("tick 8\r\n", timeout=60)
            _shell(c, f"kill %1; echo clone{i} > /who; sync")
        for i, (_, c) in enumerate(clones):
            who = _value(c, "cat /who; ls /who* | wc -l")
            check(who.split() == [f"clone{i}", "1"], f"clone {i} sees {who!r}")
            _stop_loop_and_check_log(c, 8)
    finally:
        for v, _ in clones:
            v.kill()


def test_diff_snapshot_restores_what_a_full_one_does(booted):
    tmp, vmm, con, disk, snap = booted
    vmm.kill()
    d = tmp / "diffbase.qcow2"
    _clone_disk(disk, d, "s1")
    v, c = _restore(tmp, "d0", [str(snap), "--disk", str(d), "--device", "virtio-net",
                                "--device", "virtio-rng"])
    try:
        c.expect("tick 9\r\n", timeout=60)
        # the restored snapshot is the parent of the diff
        _snapshot(v, tmp / "diff", kind="Diff", resume=False)
        _snapshot(v, tmp / "full2", kind="Full", resume=False)
    finally:
        v.kill()
    diff_mem = (tmp / "diff" / "memory").stat().st_blocks * 512
    full_mem = (tmp / "full2" / "memory").stat().st_blocks * 512
    check(diff_mem < full_mem / 2, f"the diff's memory file holds {diff_mem} bytes, the full "
                                   f"one's {full_mem}: a diff should hold far fewer pages")
    for name in ("diff", "full2"):
        v, c = _restore(tmp, f"v-{name}", [str(tmp / name), "--verify-memory",
                                            "--disk", str(d), "--device", "virtio-net",
                                            "--device", "virtio-rng"])
        try:
            c.expect("tick 12\r\n", timeout=60)
        finally:
            v.kill()


def test_snapshot_while_dd_writes(booted):
    tmp, vmm, con, disk, snap = booted
    vmm.kill()
    d = tmp / "dd.qcow2"
    _clone_disk(disk, d, "s1")
    v, c = _restore(tmp, "dd0", [str(snap), "--disk", str(d), "--device", "virtio-net",
                                 "--device", "virtio-rng"])
    try:
        _shell(c, "kill %1")
        c.send("dd if=/dev/zero of=/big bs=64k count=320 conv=fsync 2>/dev/null; "
               "echo dd-done $?\n")
        _snapshot(v, tmp / "dd", tag="dd")     # mid-write: requests are drained first
        c.expect("dd-done 0", timeout=120)
    finally:
        v.kill()
    v, c = _restore(tmp, "dd1", [str(tmp / "dd")])     # reverts dd.qcow2 to tag dd
    try:
        c.expect("dd-done 0", timeout=120)
        got = _value(c, "sync; md5sum /big | cut -d' ' -f1; stat -c %s /big")
        want = hashlib.md5(bytes(320 * 65536)).hexdigest()
        check(got.split() == [want, str(320 * 65536)], f"/big after restore: {got!r}")
    finally:
        v.kill()


# ---- bad input --------------------------------------------------------------

def _copy_snap(src, dst):
    shutil.copytree(src, dst)
    return dst


def _fails(tmp, args, want, flavor="default"):
    r = run_petrel(flavor, ["run", "--restore", *args], timeout=120)
    text = r.stdout + r.stderr
    check(r.returncode == 1 and want in text,
          f"petrel run --restore {args}: exit {r.returncode}, expected 1 with {want!r}: {text}")
    if flavor == "asan":
        assert_no_sanitizer_report(r)
    check("tick" not in r.stdout, "the guest ran")


def _rewrite_state(path, fn):
    """Apply fn to the state file's bytes and fix up its checksum."""
    b = bytearray(path.read_bytes())
    fn(b)
    body = len(b) - 8
    b[body:body + 4] = struct.pack("<I", zlib.crc32(bytes(b[:body])))
    path.write_bytes(bytes(b))


def test_bad_snapshots_are_refused(booted):
    tmp, vmm, con, disk, snap = booted
    vmm.kill()
    before = _md5(disk)
    bad = tmp / "bad"
    bad.mkdir()

    s = _copy_snap(snap, bad / "trunc")
    (s / "state").write_bytes((s / "state").read_bytes()[:-100])
    _fails(tmp, [str(s)], "truncated", "asan")

    s = _copy_snap(snap, bad / "flip")
    b = bytearray((s / "state").read_bytes())
    b[len(b) // 2] ^= 0x10
    (s / "state").write_bytes(bytes(b))
    _fails(tmp, [str(s)], "checksum mismatch", "asan")

    s = _copy_snap(snap, bad / "version")
    _rewrite_state(s / "state", lambda b: b.__setitem__(slice(16, 32), b"9.9.9".ljust(16, b"\0")))
    _fails(tmp, [str(s)], "written by Petrel 9.9.9", "asan")

    s = _copy_snap(snap, bad / "arch")
    _rewrite_state(s / "state", lambda b: b.__setitem__(slice(32, 48), b"mips".ljust(16, b"\0")))
    _fails(tmp, [str(s)], "mips", "asan")

    s = _copy_snap(snap, bad / "memshort")
    with open(s / "memory", "r+b") as f:
        f.truncate((s / "memory").stat().st_size - 4096)
    _fails(tmp, [str(s)], "the snapshot needs", "asan")

    s = _copy_snap(snap, bad / "memflip")
    with open(s / "memory", "r+b") as f:
        f.seek(0x200000 + 123)      # the kernel's text
        c = f.read(1)
        f.seek(0x200000 + 123)
        f.write(bytes([c[0] ^ 1]))
    _fails(tmp, [str(s), "--verify-memory"], "checksum mismatch", "asan")

    _fails(tmp, [str(snap), "--disk", str(tmp / "nonexistent.qcow2"),
                 "--device", "virtio-net", "--device", "virtio-rng"], "nonexistent.qcow2")
    _fails(tmp, [str(snap), "--device", "virtio-rng", "--device", "virtio-rng"], "slot")
    _fails(tmp, [str(snap), "--memory", "1G"], "--memory")

    # a disk without the snapshot's internal snapshot: nothing is reverted
    nosnap = tmp / "nosn.qcow2"     # as long a name as root.qcow2
    _clone_disk(disk, nosnap, "s1")
    r = run_petrel("default", ["img", "snapshot", "-d", "s1", str(nosnap)], timeout=60)
    check(r.returncode == 0, r.stderr)
    s = _copy_snap(snap, bad / "nosnap")
    _rewrite_state(s / "state", lambda b: _replace_path(b, str(disk), str(nosnap)))
    mid = _md5(nosnap)
    _fails(tmp, [str(s)], "s1", "asan")
    check(_md5(nosnap) == mid, "a refused restore changed the disk")
    check(_md5(disk) == before, "refused restores changed the original disk")


def _replace_path(b, old, new):
    """Swap the disk path in the config section (same-length paths only)."""
    o, n = old.encode(), new.encode()
    if len(o) != len(n):
        fail(f"{new} and {old} differ in length")
    i = bytes(b).find(o)
    if i < 0:
        fail("the disk path is not in the state file")
    b[i:i + len(o)] = n
