"""qcow2 images that qemu-img wrote, read by the riscv64 guest's own Linux
through virtio-blk: zlib- and zstd-compressed images, a backing chain whose
overlay qemu-io wrote into, and an image whose internal snapshot differs
from its active state.  The guest's md5 of each whole disk must equal the
md5 of what `qemu-img convert -O raw` makes of it on the host.
"""

import hashlib
import random
import subprocess

import pytest

from petrel_helpers import (EXIT_POWEROFF, FLAVORS, assert_exit,
                            assert_no_sanitizer_report, check, marker_values,
                            require_guest, require_tools, run_petrel)

MiB = 1 << 20
SIZE = 4 * MiB
BOOT_TIMEOUT = 300
ASAN_BOOT_TIMEOUT = 600

SESSION = "".join(
    f'echo "MD5{d}$((0))=$(md5sum < /dev/{d})"\n' for d in ("vda", "vdb", "vdc", "vdd")
) + "poweroff -f\n"


def _run(*args):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{args}: {proc.returncode}\n{proc.stdout}{proc.stderr}"


def _raw_md5(img, tmp_path):
    out = tmp_path / (img.name + ".raw")
    _run("qemu-img", "convert", "-O", "raw", img, out)
    return hashlib.md5(out.read_bytes()).hexdigest()


def _images(tmp_path):
    """Four qcow2 images made by qemu-img/qemu-io, in --disk order."""
    rnd = random.Random(4)
    # compressible but not trivial: text lines with random numbers, and a
    # stretch of zeroes (a zero/unallocated area in the compressed image)
    text = b"".join(b"line %d %d\n" % (i, rnd.randrange(1 << 30)) for i in range(200000))
    raw = bytearray(text[:SIZE])
    raw[MiB:MiB + 512 * 1024] = bytes(512 * 1024)
    src = tmp_path / "src.raw"
    src.write_bytes(bytes(raw))
    zlib = tmp_path / "zlib.qcow2"
    _run("qemu-img", "convert", "-c", "-O", "qcow2", src, zlib)
    raw[3 * MiB:3 * MiB + 4096] = b"z" * 4096      # so the zstd image differs
    src2 = tmp_path / "src2.raw"
    src2.write_bytes(bytes(raw))
    zstd = tmp_path / "zstd.qcow2"
    _run("qemu-img", "convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", src2, zstd)
    # backing chain: compressed base <- overlay with a few writes by qemu-io
    overlay = tmp_path / "overlay.qcow2"
    _run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "zlib.qcow2", "-F", "qcow2", overlay)
    _run("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 64k 128k", "-c", "write -z 2M 64k",
         "-c", "write -P 0xa5 4032k 64k", overlay)
    # internal snapshot: the active state differs from the snapshot
    snap = tmp_path / "snap.qcow2"
    _run("qemu-img", "convert", "-O", "qcow2", src, snap)
    _run("qemu-img", "snapshot", "-c", "before", snap)
    _run("qemu-io", "-f", "qcow2", "-c", "write -P 0x33 0 1M", snap)
    return [zlib, zstd, overlay, snap]


@pytest.mark.parametrize("flavor", list(FLAVORS))
def test_guest_reads_images_qemu_wrote(flavor, tmp_path):
    require_guest()
    require_tools("qemu-img", "qemu-io")
    imgs = _images(tmp_path)
    want = [_raw_md5(i, tmp_path) for i in imgs]
    assert len(set(want)) == 4, "the four test images should differ"
    timeout = ASAN_BOOT_TIMEOUT if flavor == "asan" else BOOT_TIMEOUT
    args = ["run", "--timeout", str(timeout)]
    for i in imgs:
        args += ["--disk", f"{i},readonly=on"]
    r = run_petrel(flavor, args, input=SESSION, timeout=timeout + 60)
    if flavor == "asan":
        assert_no_sanitizer_report(r)
    assert_exit(r, EXIT_POWEROFF, "poweroff -f")
    for dev, img, md5 in zip(("vda", "vdb", "vdc", "vdd"), imgs, want):
        got = marker_values(r, "MD5" + dev)
        check(got and got[0].split()[0] == md5,
              f"/dev/{dev} ({img.name}) reads as md5 {got}, qemu-img says {md5}", r)
    check("petrel: guest:" not in r.stderr, "petrel logged guest misbehaviour", r)
