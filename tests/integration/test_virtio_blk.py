"""virtio-blk on the riscv64 board with the default guest's own Linux
virtio_blk driver: the guest writes a known pattern to a disk with dd, syncs
and powers off, and the host checks every byte of the image (and of a qcow2
copy with 512-byte clusters and 64-bit refcounts, whose refcount blocks each
cover 32 KiB: qemu-img check must find it clean); a second boot
reads it back and discards part of it (blkdiscard: the host file gets a hole).  Read-only disks, serials, several
disks, and the errors --disk gives for bad images.
"""

import hashlib
import os
import subprocess

import pytest

from petrel_helpers import (EXIT_ERROR, EXIT_POWEROFF, FLAVORS, assert_exit,
                            assert_no_sanitizer_report, check, marker_values,
                            require_guest, require_tools, run_petrel)

BOOT_TIMEOUT = 300
ASAN_BOOT_TIMEOUT = 600
SLACK = 60
MiB = 1 << 20
DISK_SIZE = 64 * MiB
OFFSET = 3 * MiB          # the pattern starts 3 MiB into the disk
LENGTH = 2 * MiB          # and is 2 MiB long

HOLE = 512 * 1024         # discarded at 4 MiB by the second boot
# `seq 1 N` lines: every 1 MiB block differs, so misplaced blocks show.
PATTERN = b"".join(b"%d\n" % i for i in range(1, 400_001))[:LENGTH]

WRITE_SESSION = r"""
echo "SIZE$((0))=$(cat /sys/block/vda/size)"
echo "RO$((0))=$(cat /sys/block/vda/ro) $(cat /sys/block/vdb/ro)"
echo "SERIAL$((0))=$(cat /sys/block/vda/serial)"
seq 1 400000 | dd of=/dev/vda bs=1M seek=3 count=2 iflag=fullblock conv=fsync 2>/dev/null; echo "DD$((0))=$?"
dd if=/dev/vda of=/dev/vdc bs=1M skip=3 seek=3 count=2 conv=fsync 2>/dev/null; echo "DDQ$((0))=$?"
dd if=/dev/zero of=/dev/vdb bs=4k count=1 2>/dev/null; echo "ROWRITE$((0))=$?"
echo "VDB$((0))=$(head -c 16 /dev/vdb)"
sync
poweroff -f
"""

READ_SESSION = r"""
echo "MD5$((0))=$(dd if=/dev/vda bs=1M skip=3 count=2 2>/dev/null | md5sum)"
blkdiscard -o 4194304 -l 524288 /dev/vda; echo "DISCARD$((0))=$?"
sync
poweroff -f
"""


def _timeout(flavor):
    return ASAN_BOOT_TIMEOUT if flavor == "asan" else BOOT_TIMEOUT


def _boot(flavor, disks, session):
    args = ["run", "--timeout", str(_timeout(flavor))]
    for d in disks:
        args += ["--disk", d]
    result = run_petrel(flavor, args, input=session, timeout=_timeout(flavor) + SLACK)
    if flavor == "asan":
        assert_no_sanitizer_report(result)
    assert_exit(result, EXIT_POWEROFF, "poweroff -f")
    check("petrel: guest:" not in result.stderr,
          "petrel logged guest misbehaviour while Linux drove the disk", result)
    return result


# The normal build only: the ASan build drives the same virtio-blk and raw
# driver paths in test_rootdisk.py (a whole root file system) and
# test_qcow2_guest.py, at a fraction of this test's ASan cost (2.5 min).
@pytest.mark.parametrize("flavor", ["default"])
def test_pattern_written_read_back_and_discarded(flavor, tmp_path):
    require_guest()
    data = tmp_path / "data.img"
    with open(data, "wb") as f:
        f.truncate(DISK_SIZE)
    ro = tmp_path / "ro.img"
    ro_content = b"read-only-disk!!" + bytes(4096 - 16)
    ro.write_bytes(ro_content * 256)
    # 64-bit refcounts with 512-byte clusters: new refcount blocks often
    # cannot live in the range they cover (issue 15: the guest got EIO)
    require_tools("qemu-img")
    q64 = tmp_path / "rc64.qcow2"
    r = run_petrel(flavor, ["img", "create", "-f", "qcow2", "-o",
                            "cluster_size=512,refcount_bits=64", q64, str(8 * MiB)], timeout=60)
    assert_exit(r, 0, "petrel img create")

    # First boot: the guest writes the pattern.
    r = _boot(flavor, [f"{data},format=raw,serial=petrel-data", f"{ro},readonly=on", str(q64)],
              WRITE_SESSION)
    check(marker_values(r, "SIZE") == [str(DISK_SIZE // 512)],
          f"guest sees vda with {marker_values(r, 'SIZE')} sectors, want {DISK_SIZE // 512}", r)
    check(marker_values(r, "RO") == ["0 1"], "vda should be writable and vdb read-only", r)
    check(marker_values(r, "SERIAL") == ["petrel-data"], "vda's serial (GET_ID)", r)
    check(marker_values(r, "DD") == ["0"], "dd of the pattern to /dev/vda failed", r)
    check(marker_values(r, "DDQ") == ["0"], "dd of the pattern to /dev/vdc (qcow2, 64-bit "
          "refcounts, 512-byte clusters) failed", r)
    check(marker_values(r, "ROWRITE") != ["0"], "writing the read-only vdb succeeded", r)
    check(marker_values(r, "VDB") == ["read-only-disk!!"], "vdb's content as the guest reads it",
          r)

    # The host checks every byte: the pattern where it belongs, zeroes around.
    image = data.read_bytes()
    assert len(image) == DISK_SIZE, f"the image changed size to {len(image)}"
    got = image[OFFSET:OFFSET + LENGTH]
    if got != PATTERN:
        first = next(i for i in range(LENGTH) if got[i] != PATTERN[i])
        pytest.fail(f"pattern mismatch at byte {OFFSET + first} of the image: "
                    f"got {got[first:first + 16]!r}, want {PATTERN[first:first + 16]!r}")
    assert image[:OFFSET].count(0) == OFFSET, "bytes before the pattern are not zero"
    rest = image[OFFSET + LENGTH:]
    assert rest.count(0) == len(rest), "bytes after the pattern are not zero"
    assert ro.read_bytes() == ro_content * 256, "the read-only image changed"
    chk = subprocess.run(["qemu-img", "check", str(q64)], capture_output=True, text=True,
                         timeout=120)
    assert chk.returncode == 0, f"qemu-img check of the qcow2 disk:\n{chk.stdout}{chk.stderr}"
    q64_raw = tmp_path / "rc64.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(q64), str(q64_raw)], check=True,
                   timeout=120)
    assert q64_raw.read_bytes() == image[:8 * MiB], "the qcow2 disk holds other data"

    # Second boot: the guest reads it back, then discards 512 KiB of it.
    blocks_before = os.stat(data).st_blocks
    r = _boot(flavor, [str(data)], READ_SESSION)
    want = hashlib.md5(PATTERN).hexdigest()
    md5 = marker_values(r, "MD5")
    check(md5 and md5[0].split()[0] == want,
          f"guest read back md5 {md5}, the host wrote {want}", r)
    check(marker_values(r, "DISCARD") == ["0"], "blkdiscard in the guest failed", r)
    image = data.read_bytes()
    hole = image[4 * MiB:4 * MiB + HOLE]
    assert hole.count(0) == len(hole), "discarded range does not read as zeroes on the host"
    assert image[OFFSET:4 * MiB] == PATTERN[:MiB], "discard touched bytes before its range"
    assert image[4 * MiB + HOLE:OFFSET + LENGTH] == PATTERN[MiB + HOLE:], (
        "discard touched bytes after its range")
    blocks_after = os.stat(data).st_blocks
    assert blocks_after <= blocks_before - (HOLE // 512), (
        f"discard did not deallocate: {blocks_before} -> {blocks_after} 512-byte blocks")


def test_disk_errors(tmp_path):
    odd = tmp_path / "odd.img"
    odd.write_bytes(b"x" * 1000)
    good = tmp_path / "good.img"
    with open(good, "wb") as f:
        f.truncate(MiB)
    cases = [
        (["--disk", str(tmp_path / "missing.img")], "No such file"),
        (["--disk", str(odd)], "multiple of 512"),
        (["--disk", f"{good},format=qcow9"], "qcow9"),
        (["--disk", f"{good},readonly=perhaps"], "readonly"),
        (["--disk", f"{good},bogus=1"], "bogus"),
        (["--disk", str(good), "--disk", str(good)], "in use"),
    ]
    for flavor in FLAVORS:
        for args, words in cases:
            r = run_petrel(flavor, ["run", *args], timeout=60)
            check(r.returncode == EXIT_ERROR and words in r.stderr,
                  f"petrel run {' '.join(args)}: expected exit status 1 and '{words}'", r)
    assert good.read_bytes() == bytes(MiB), "a failed start changed the image"
