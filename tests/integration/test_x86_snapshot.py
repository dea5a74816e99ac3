"""VM snapshots on the kvm engine (x86_64), end to end, with the test kit's
`snapshot` program (tests/guest/x86/snapshot.c, STRICT build in
build/guest-tests/x86_64-strict): 100 rounds of a CPL3 LCG loop (its state
in registers), >= 20 PIT ticks through the in-kernel IOAPIC, and a
virtio-blk write + read-back with MSI-X, one line per round:

    snapshot: round=R steps=S x=0x... ticks=T blk=ok

The guest boots with --api-sock on a qcow2 disk.  At round 8 it is paused
(PATCH /vm) and a Full snapshot taken (PUT /snapshot/create, tag "full"); it
is resumed, and 8 rounds later paused again for a Diff snapshot (tag
"diff"); then the VMM is killed.  Each snapshot is restored in turn with
`petrel run --restore DIR --paused`, the console attached, and the VM
resumed through the API.  For each: the console output before the
snapshot followed by the restored VM's is rounds 1..100 exactly (nothing
lost or repeated: the guest went on from the snapshot's instant), every
round's LCG value equals the jump-ahead value for its step count (the
CPL3 registers survived), the tick count only grows and keeps growing
(timer interrupts go on), every disk request completed (blk=ok), the
guest's own final checks pass (PASS, exit status 0), and afterwards the
image holds, in sectors 1..8, the last rounds' patterns and nothing else
(the disk was reverted to the snapshot's internal snapshot, then written
by the restored guest).

These need /dev/kvm.  Without it they skip, loudly, and say so.
"""

import os
import re
import socket
import struct

import pytest

from api_helpers import Vmm
from petrel_helpers import (FLAVORS, REPO_ROOT, SANITIZER_MARKERS, check, fail, run_petrel)

KIT = REPO_ROOT / "build" / "guest-tests" / "x86_64-strict" / "snapshot.elf"
CMDLINE = "petrel-test-cmdline answer=42"
ROUNDS, STEPS, NSECT, SECTOR = 100, 4000000, 8, 512
FULL_AT, DIFF_AFTER = 8, 8          # rounds
DISK_SIZE = 1 << 20
LCG_A, LCG_C, LCG_SEED = 6364136223846793005, 1442695040888963407, 0x0123456789abcdef
MASK = (1 << 64) - 1
LINE = re.compile(r"snapshot: round=(\d+) steps=(\d+) x=0x([0-9a-f]{16}) ticks=(\d+) blk=ok")

needs_kvm = pytest.mark.skipif(not os.access("/dev/kvm", os.R_OK | os.W_OK),
                               reason="SKIPPED: no usable /dev/kvm on this host; the x86_64 "
                                      "kvm-engine snapshot tests cannot run here")


def lcg_jump(x, n):
    """common/lcg.h's jump-ahead, in Python."""
    am, ac, m, c = 1, 0, LCG_A, LCG_C
    while n:
        if n & 1:
            am = am * m & MASK
            ac = (ac * m + c) & MASK
        c = (m + 1) * c & MASK
        m = m * m & MASK
        n >>= 1
    return (am * x + ac) & MASK


def parse_rounds(text):
    """[(round, steps, x, ticks)] of every complete round line."""
    return [(int(m[1]), int(m[2]), int(m[3], 16), int(m[4])) for m in LINE.finditer(text)]


def check_run(text, split, what):
    """text: the console before the snapshot + the restored VM's; split:
    where the restored output begins."""
    rounds = parse_rounds(text)
    got = [r[0] for r in rounds]
    if got != list(range(1, ROUNDS + 1)):
        missing = sorted(set(range(1, ROUNDS + 1)) - set(got))
        repeated = sorted({r for r in got if got.count(r) > 1})
        fail(f"{what}: rounds are not 1..{ROUNDS} once each (missing {missing[:10]}, "
             f"repeated {repeated[:10]}): the guest did not go on from the snapshot",
             text[-3000:])
    for rnd, steps, x, _ in rounds:
        check(steps == rnd * STEPS, f"{what}: round {rnd} says {steps} steps")
        check(x == lcg_jump(LCG_SEED, steps),
              f"{what}: round {rnd}: LCG 0x{x:016x}, want 0x{lcg_jump(LCG_SEED, steps):016x} "
              f"(CPL3 register state lost)")
    ticks = [r[3] for r in rounds]
    check(all(b > a for a, b in zip(ticks, ticks[1:])),
          f"{what}: the tick count does not only grow: {ticks}")
    before = parse_rounds(text[:split])
    after = [r for r in rounds if r not in before]
    check(len(after) >= 10, f"{what}: only {len(after)} rounds after the restore")
    check(after[-1][3] - after[0][3] >= 20 * (len(after) - 1),
          f"{what}: {after[-1][3] - after[0][3]} ticks over {len(after)} restored rounds "
          f"(timer interrupts stopped?)")
    check("PASS snapshot" in text[split:], f"{what}: no PASS line", text[-3000:])
    check("FAIL" not in text, f"{what}: the guest failed", text[-3000:])


def drain(con, quiet=0.5):
    """Everything the console sends until it is quiet for `quiet` s."""
    con.s.settimeout(quiet)
    while True:
        try:
            chunk = con.s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        con.buf += chunk
    out, con.buf = con.buf, b""
    return out.decode(errors="replace")


def api_ok(vmm, method, path, body, what):
    st, reply = vmm.api(method, path, body)
    check(st == 204, f"{what}: {st} {reply!r}\n{vmm.output()[-2000:]}")


def snapshot(vmm, dirpath, kind, tag):
    dirpath.mkdir()
    api_ok(vmm, "PATCH", "/vm", {"state": "Paused"}, "pause")
    api_ok(vmm, "PUT", "/snapshot/create",
           {"snapshot_type": kind, "snapshot_path": str(dirpath / "state"),
            "mem_file_path": str(dirpath / "memory"), "tag": tag}, f"{kind} snapshot")


def no_sanitizer_report(flavor, vmm, what):
    if flavor != "asan":
        return
    for line in vmm.output().splitlines():
        if any(m in line for m in SANITIZER_MARKERS):
            fail(f"{what}: sanitizer report: {line.strip()}", vmm.output()[-4000:])


def check_disk(flavor, disk, tmp_path, what):
    """Sectors 1..8 hold the pattern of the last round that wrote them (round
    r writes sector 1 + r % 8, word i = r << 16 | i); all else is zero."""
    raw = tmp_path / "check.raw"
    if raw.exists():
        raw.unlink()
    r = run_petrel(flavor, ["img", "convert", "-O", "raw", str(disk), str(raw)], timeout=60)
    check(r.returncode == 0, f"img convert: {r.stderr}")
    data = raw.read_bytes()
    raw.unlink()
    want = bytearray(DISK_SIZE)
    for s in range(1, NSECT + 1):
        last = ROUNDS - (ROUNDS - (s - 1)) % NSECT
        want[s * SECTOR:(s + 1) * SECTOR] = struct.pack(
            "<128I", *((last << 16) | i for i in range(SECTOR // 4)))
    if data != want:
        bad = next(i for i in range(min(len(data), DISK_SIZE)) if data[i] != want[i])
        fail(f"{what}: the disk differs from the guest's last writes at byte {bad} (sector "
             f"{bad // SECTOR}): {data[bad]:#04x}, want {want[bad]:#04x}")


def restore(flavor, tmp_path, snapdir, prefix, name):
    vmm = Vmm(flavor, tmp_path, ["--restore", str(snapdir), "--paused"], name=name)
    try:
        con = vmm.console()
        api_ok(vmm, "PATCH", "/vm", {"state": "Resumed"}, f"{name}: resume")
        out = con.expect("PASS snapshot", timeout=60)
        rc = vmm.wait(60)
        text = prefix + out + drain(con, 0.2)
        check(rc == 0, f"{name}: the VMM exited with {rc}, want 0 (guest poweroff)\n"
                       f"{vmm.output()[-2000:]}")
        check_run(text, len(prefix), name)
        no_sanitizer_report(flavor, vmm, name)
    finally:
        vmm.kill()


@needs_kvm
@pytest.mark.parametrize("flavor", list(FLAVORS))
def test_x86_snapshot_full_and_diff(flavor, tmp_path):
    check(KIT.exists(), f"{KIT} is missing (built by `make guest-tests`)")
    disk = tmp_path / "disk.qcow2"
    r = run_petrel(flavor, ["img", "create", "-f", "qcow2", str(disk), str(DISK_SIZE)],
                   timeout=60)
    check(r.returncode == 0, f"img create: {r.stderr}")
    vmm = Vmm(flavor, tmp_path, ["--boot", "--arch", "x86_64", "--kernel", str(KIT),
                                 "--append", CMDLINE, "--cpus", "1", "--memory", "128M",
                                 "--timeout", "120", "--disk", f"{disk},serial=petrel-snap"])
    try:
        con = vmm.console()
        out = con.expect(f"round={FULL_AT} ", timeout=60)
        full = tmp_path / "full"
        snapshot(vmm, full, "Full", "full")
        before_full = out + drain(con)
        last = parse_rounds(before_full)[-1][0]
        api_ok(vmm, "PATCH", "/vm", {"state": "Resumed"}, "resume")
        out = con.expect(f"round={last + DIFF_AFTER} ", timeout=60)
        diff = tmp_path / "diff"
        snapshot(vmm, diff, "Diff", "diff")
        before_diff = before_full + out + drain(con)
        no_sanitizer_report(flavor, vmm, "boot")
    finally:
        vmm.kill()
    full_mem = (full / "memory").stat()
    diff_mem = (diff / "memory").stat()
    # holes: a diff holds only the pages written in its few rounds
    check(diff_mem.st_blocks < full_mem.st_blocks,
          f"the diff memory file uses {diff_mem.st_blocks * 512} bytes, the full one "
          f"{full_mem.st_blocks * 512}: KVM's dirty log was not used")
    restore(flavor, tmp_path, full, before_full, "from-full")
    check_disk(flavor, disk, tmp_path, "after the restore from the full snapshot")
    restore(flavor, tmp_path, diff, before_diff, "from-diff")
    check_disk(flavor, disk, tmp_path, "after the restore from the diff snapshot")
