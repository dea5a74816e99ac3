"""`petrel img` and the qcow2 driver against qemu-img/qemu-io (Debian
qemu-utils): interop both ways, exit statuses of check, a damaged-image
suite in the spirit of QEMU's iotest 060, and a crash test (SIGKILL of a
writer at random moments; qemu-img check must find no corruption and every
flushed write must be there).  Runs the default build (build/petrel) and,
when present, the ASan build (build-asan/petrel); PETREL_IMG_BUILD overrides
the build directory (e.g. build-qcow)."""

import json
import os
import random
import shutil
import signal
import struct
import subprocess
import time

import pytest

from petrel_helpers import (GUEST_TESTS_DIR, REPO_ROOT, SANITIZER_MARKERS, child_env,
                            require_file, require_tools)

QEMU_IMG = shutil.which("qemu-img")
QEMU_IO = shutil.which("qemu-io")


@pytest.fixture(autouse=True)
def _qemu_utils():
    require_tools("qemu-img", "qemu-io")


def _builds():
    if os.environ.get("PETREL_IMG_BUILD"):
        return [REPO_ROOT / os.environ["PETREL_IMG_BUILD"]]
    return [b for b in (REPO_ROOT / "build", REPO_ROOT / "build-asan")
            if (b / "petrel").exists()] or [REPO_ROOT / "build"]


@pytest.fixture(params=_builds(), ids=lambda b: b.name)
def petrel(request):
    binary = request.param / "petrel"
    if not binary.exists():
        pytest.fail(f"{binary} is missing; build it with make", pytrace=False)

    def run(*args, check=True, timeout=120):
        proc = subprocess.run([str(binary), "img", *map(str, args)], capture_output=True,
                              text=True, timeout=timeout, env=child_env())
        for m in SANITIZER_MARKERS:
            assert m not in proc.stderr, f"sanitizer report for {args}:\n{proc.stderr[-4000:]}"
        assert proc.returncode >= 0, f"petrel img {args} died of signal {-proc.returncode}"
        if check:
            assert proc.returncode == 0, f"petrel img {args}: {proc.returncode}\n{proc.stderr}"
        return proc
    run.binary = binary
    return run


def qimg(*args, check=True):
    proc = subprocess.run([QEMU_IMG, *map(str, args)], capture_output=True, text=True,
                          timeout=120)
    if check:
        assert proc.returncode == 0, f"qemu-img {args}: {proc.returncode}\n{proc.stderr}"
    return proc


def qio(img, *cmds, fmt="qcow2"):
    args = [QEMU_IO, "-f", fmt]
    for c in cmds:
        args += ["-c", c]
    proc = subprocess.run(args + [str(img)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "error" not in proc.stdout.lower(), proc.stdout + proc.stderr


def make_raw(path, size=16 << 20, seed=1):
    """Random data in scattered extents, zero elsewhere."""
    rng = random.Random(seed)
    data = bytearray(size)
    for _ in range(40):
        off = rng.randrange(0, size - 300000) & ~511
        n = rng.randrange(512, 300000) & ~511
        data[off:off + n] = rng.randbytes(n)
    data[size - 4096:] = b"\xa5" * 4096
    path.write_bytes(bytes(data))
    return bytes(data)


def assert_qemu_clean(img):
    proc = qimg("check", img, check=False)
    assert proc.returncode == 0, f"qemu-img check {img}: {proc.returncode}\n{proc.stdout}"


# --- petrel writes, qemu reads ----------------------------------------------

# 64-bit refcounts with 512 B..2 KiB clusters: a refcount block covers no
# more clusters than one data run, so blocks must go outside the range they
# cover (issue 15; every width and cluster size: tests/unit/test_qcow2_refcount.c)
@pytest.mark.parametrize("opts", ["cluster_size=65536", "cluster_size=512",
                                  "cluster_size=4096,refcount_bits=1",
                                  "cluster_size=2M,refcount_bits=64",
                                  "cluster_size=16384,refcount_bits=8",
                                  "cluster_size=512,refcount_bits=64",
                                  "cluster_size=1024,refcount_bits=64",
                                  "cluster_size=2048,refcount_bits=64"])
def test_convert_raw_to_qcow2_passes_qemu_check(petrel, tmp_path, opts):
    raw = tmp_path / "in.raw"
    make_raw(raw)
    out = tmp_path / "out.qcow2"
    petrel("convert", "-f", "raw", "-O", "qcow2", "-o", opts, raw, out)
    assert_qemu_clean(out)
    # the options were applied (refcount_bits=1 once gave 16-bit refcounts)
    info = json.loads(qimg("info", "--output=json", out).stdout)
    want = dict(o.split("=") for o in opts.split(","))
    cs = want["cluster_size"]
    assert info["cluster-size"] == (int(cs[:-1]) << 20 if cs.endswith("M") else int(cs))
    assert info["format-specific"]["data"]["refcount-bits"] == \
        int(want.get("refcount_bits", 16)), info
    assert qimg("compare", "-f", "raw", "-F", "qcow2", raw, out).returncode == 0
    # and back
    back = tmp_path / "back.raw"
    petrel("convert", "-O", "raw", out, back)
    assert back.read_bytes() == raw.read_bytes()
    assert petrel("check", out).returncode == 0


def test_create_info_map(petrel, tmp_path):
    img = tmp_path / "a.qcow2"
    petrel("create", "-f", "qcow2", img, "64M")
    assert_qemu_clean(img)
    info = qimg("info", "--output=json", img).stdout
    assert '"virtual-size": 67108864' in info
    qio(img, "write -P 0x5a 1M 128k")
    out = petrel("info", "--output=json", img).stdout
    assert '"virtual-size": 67108864' in out and '"format": "qcow2"' in out
    m = petrel("map", img).stdout
    assert "0x100000" in m and "0x20000" in m, m
    assert "petrel img" in petrel("--help").stdout


def test_overlay_written_by_petrel(petrel, tmp_path):
    base = tmp_path / "base.raw"
    make_raw(base, 8 << 20, seed=3)
    top = tmp_path / "top.qcow2"
    petrel("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", top)
    assert "base.raw" in qimg("info", top).stdout
    petrel("bench-write", top, 7, 200)
    assert_qemu_clean(top)
    ours, theirs = tmp_path / "ours.raw", tmp_path / "theirs.raw"
    petrel("convert", "-O", "raw", top, ours)
    qimg("convert", "-O", "raw", top, theirs)
    assert ours.read_bytes() == theirs.read_bytes()


# --- qemu writes, petrel reads ----------------------------------------------

@pytest.mark.parametrize("kind", ["plain", "zlib", "zstd", "v2", "small-clusters",
                                  "refcount1", "snapshots"])
def test_reads_qemu_images(petrel, tmp_path, kind):
    raw = tmp_path / "in.raw"
    data = make_raw(raw, seed=5)
    img = tmp_path / "img.qcow2"
    args = {"plain": [], "zlib": ["-c"], "zstd": ["-c", "-o", "compression_type=zstd"],
            "v2": ["-o", "compat=0.10"], "small-clusters": ["-o", "cluster_size=512"],
            "refcount1": ["-o", "refcount_bits=1"], "snapshots": []}[kind]
    qimg("convert", "-f", "raw", "-O", "qcow2", *args, raw, img)
    if kind == "snapshots":
        qimg("snapshot", "-c", "s1", img)
        qio(img, "write -P 0x11 0 192k", "write -z 1M 1M", "discard 4M 64k")
        theirs = tmp_path / "theirs.raw"
        qimg("convert", "-O", "raw", img, theirs)
        data = theirs.read_bytes()
        assert petrel("check", img).returncode == 0
        # petrel writes into the snapshotted image: copy-on-write of shared tables
        petrel("bench-write", img, 3, 40)
        assert_qemu_clean(img)
        qimg("convert", "-O", "raw", img, theirs)
        data = theirs.read_bytes()
    out = tmp_path / "out.raw"
    petrel("convert", "-O", "raw", img, out)
    assert out.read_bytes() == data
    assert petrel("check", img).returncode == 0


def test_backing_chain_from_qemu(petrel, tmp_path):
    base = tmp_path / "base.qcow2"
    qimg("create", "-f", "qcow2", base, "4M")
    qio(base, "write -P 0x01 0 4M")
    sub = tmp_path / "sub"
    sub.mkdir()
    mid = sub / "mid.qcow2"
    qimg("create", "-f", "qcow2", "-b", "../base.qcow2", "-F", "qcow2", mid, "6M")
    qio(mid, "write -P 0x02 64k 64k", "write -z 1M 512k")
    top = sub / "top.qcow2"
    qimg("create", "-f", "qcow2", "-o", "cluster_size=4096", "-b", "mid.qcow2", "-F", "qcow2",
         top)
    qio(top, "write -P 0x03 100k 10k", "discard 2M 64k")
    ours, theirs = tmp_path / "ours.raw", tmp_path / "theirs.raw"
    petrel("convert", "-O", "raw", top, ours)
    qimg("convert", "-O", "raw", top, theirs)
    assert ours.read_bytes() == theirs.read_bytes()


# --- check ------------------------------------------------------------------

def _set_refcount(img, cluster, value):
    """Poke a 16-bit refcount of a default-layout image (one refcount block)."""
    with open(img, "r+b") as f:
        hdr = f.read(104)
        cbits = struct.unpack(">I", hdr[20:24])[0]
        rt_off = struct.unpack(">Q", hdr[48:56])[0]
        f.seek(rt_off)
        rb = struct.unpack(">Q", f.read(8))[0]
        f.seek(rb + 2 * cluster)
        f.write(struct.pack(">H", value))
    return 1 << cbits


def test_check_leaks_and_corruption(petrel, tmp_path):
    img = tmp_path / "a.qcow2"
    petrel("create", img, "16M")
    qio(img, "write -P 7 0 256k")
    assert petrel("check", img).returncode == 0
    # a leak: an unused cluster counted as used
    os.truncate(img, 12 * 65536)
    _set_refcount(img, 10, 1)
    assert petrel("check", img, check=False).returncode == 3
    assert qimg("check", img, check=False).returncode == 3
    petrel("check", "-r", "leaks", img)
    assert petrel("check", img).returncode == 0
    assert_qemu_clean(img)
    # corruption: a data cluster's refcount dropped to 0
    qimg_map = qimg("map", "--output=json", img).stdout
    off = int(qimg_map.split('"offset": ')[1].split("}")[0])
    _set_refcount(img, off // 65536, 0)
    assert petrel("check", img, check=False).returncode == 2
    assert qimg("check", img, check=False).returncode == 2
    petrel("check", "-r", "all", img)
    assert petrel("check", img).returncode == 0
    assert_qemu_clean(img)


# --- damaged images (iotest 060 in spirit) ------------------------------------

def _base_image(tmp_path):
    img = tmp_path / "good.qcow2"
    qimg("create", "-f", "qcow2", img, "8M")
    qio(img, "write -P 0x42 0 256k", "write -P 0x43 4M 64k")
    return img


def _patch(src, dst, off, blob):
    data = bytearray(src.read_bytes())
    data[off:off + len(blob)] = blob
    dst.write_bytes(bytes(data))


def _damage_cases(good):
    data = good.read_bytes()
    l1_off = struct.unpack(">Q", data[40:48])[0]
    rt_off = struct.unpack(">Q", data[48:56])[0]
    l2_off = struct.unpack(">Q", data[l1_off:l1_off + 8])[0] & 0x00fffffffffffe00
    q = lambda v: struct.pack(">Q", v)  # noqa: E731
    i = lambda v: struct.pack(">I", v)  # noqa: E731
    return {
        "bad-magic": (0, b"QFI\x00"),
        "version-4": (4, i(4)),
        "cluster-bits-30": (20, i(30)),
        "cluster-bits-8": (20, i(8)),
        "huge-size": (24, q(1 << 62)),
        "encrypted": (32, i(1)),
        "l1-size-huge": (36, i(0x7fffffff)),
        "l1-too-small": (36, i(0)),
        "l1-unaligned": (40, q(l1_off + 8)),
        "l1-past-eof": (40, q(1 << 40)),
        "l1-in-header": (40, q(0)),
        "rt-past-eof": (48, q(1 << 40)),
        "rt-in-header": (48, q(0)),
        "rt-clusters-0": (56, i(0)),
        "rt-clusters-huge": (56, i(0x10000000)),
        "rt-overlaps-l1": (48, q(l1_off)),
        "snapshots-huge": (60, i(0x7fffffff)),
        "unknown-incompat": (72, q(1 << 33)),
        "corrupt-bit-extl2": (72, q(1 << 4)),
        "external-data": (72, q(1 << 2)),
        "refcount-order-7": (96, i(7)),
        "header-length-odd": (100, i(105)),
        "header-length-huge": (100, i(1 << 20)),
        "ext-too-long": (104, i(0x6803f857) + i(0x7ffffff0)),
        "backing-len-huge": (8, q(512) + i(5000)),
        "backing-outside-header": (8, q(1 << 20) + i(8)),
        "l2-past-eof": (l1_off, q((1 << 40) | (1 << 63))),
        "l2-in-header": (l1_off, q(512 | (1 << 63))),
        "l2-on-refcount-table": (l1_off, q(rt_off | (1 << 63))),
        "l2-unaligned": (l1_off, q((l2_off + 24) | (1 << 63))),
        "data-past-eof": (l2_off, q((1 << 40) | (1 << 63))),
        "data-into-l1": (l2_off, q(l1_off | (1 << 63))),
        "data-reserved-bits": (l2_off, q((1 << 58) | (1 << 63) | 0x10000)),
        "compressed-past-eof": (l2_off, q((1 << 62) | (1 << 39))),
        "refblock-past-eof": (rt_off, q(1 << 40)),
        "refblock-in-header": (rt_off, q(512)),
    }


DAMAGE_CASES = [
    "bad-magic", "version-4", "cluster-bits-30", "cluster-bits-8", "huge-size", "encrypted",
    "l1-size-huge", "l1-too-small", "l1-unaligned", "l1-past-eof", "l1-in-header",
    "rt-past-eof", "rt-in-header", "rt-clusters-0", "rt-clusters-huge", "rt-overlaps-l1",
    "snapshots-huge", "unknown-incompat", "corrupt-bit-extl2", "external-data",
    "refcount-order-7", "header-length-odd", "header-length-huge", "ext-too-long",
    "backing-len-huge", "backing-outside-header", "l2-on-refcount-table", "l2-past-eof", "l2-in-header", "l2-unaligned", "data-past-eof",
    "data-into-l1", "data-reserved-bits", "compressed-past-eof", "refblock-past-eof",
    "refblock-in-header"]


@pytest.mark.parametrize("case", DAMAGE_CASES)
def test_damaged_image(petrel, tmp_path, case):
    good = _base_image(tmp_path)
    off, blob = _damage_cases(good)[case]
    bad = tmp_path / f"{case}.qcow2"
    _patch(good, bad, off, blob)
    out = tmp_path / "out.raw"
    results = [petrel("convert", "-f", "qcow2", "-O", "raw", bad, out, check=False),
               petrel("info", "-f", "qcow2", bad, check=False),
               petrel("check", "-f", "qcow2", bad, check=False),
               petrel("map", "-f", "qcow2", bad, check=False)]
    conv = results[0]
    # reading every guest byte must fail with a message naming the file
    assert conv.returncode != 0, f"{case}: convert succeeded"
    assert str(bad) in conv.stderr or bad.name in conv.stderr, conv.stderr
    assert "petrel img convert:" in conv.stderr
    # writing must not make things worse: no write lands in metadata
    if case not in ("data-into-l1",):
        return
    before = bad.read_bytes()[:65536]
    petrel("bench-write", bad, 1, 8, check=False)
    assert bad.read_bytes()[:65536] == before


# --- header extensions, the backing file name, strings from files -------------

def _backed_image(tmp_path, compat):
    """A qemu-img image with a raw backing file: the header, its extensions
    (backing format, feature table in v3), the END marker, the name."""
    (tmp_path / "base.raw").write_bytes(bytes(1 << 20))
    img = tmp_path / f"backed-{compat}.qcow2"
    qimg("create", "-f", "qcow2", "-o", f"compat={compat}", "-b", "base.raw", "-F", "raw", img)
    return img


def _header_extensions(data):
    """[(offset, type, length)] of the header extensions before the END marker."""
    version = struct.unpack(">I", data[4:8])[0]
    p = 72 if version == 2 else struct.unpack(">I", data[100:104])[0]
    exts = []
    while True:
        typ, length = struct.unpack(">II", data[p:p + 8])
        if typ == 0:
            return exts
        exts.append((p, typ, length))
        p += 8 + ((length + 7) & ~7)


@pytest.mark.parametrize("case", ["v3-ext-into-name", "v2-ext-into-name", "name-in-header"])
def test_header_extensions_and_backing_name_do_not_overlap(petrel, tmp_path, case):
    compat = "0.10" if case.startswith("v2") else "1.1"
    good = _backed_image(tmp_path, compat)
    # the intact image opens, and its backing format (an extension in v2 too) is read
    assert "backing file format: raw" in petrel("info", good).stdout
    data = bytearray(good.read_bytes())
    name_off = struct.unpack(">Q", data[8:16])[0]
    if case == "name-in-header":
        header_len = 72 if compat == "0.10" else struct.unpack(">I", data[100:104])[0]
        data[8:16] = struct.pack(">Q", header_len - 6)
        words = "overlaps the header"
    else:
        # the last extension grows over the END marker into the name's first byte
        off, _, _ = _header_extensions(data)[-1]
        data[off + 4:off + 8] = struct.pack(">I", name_off - off - 8 + 1)
        words = "runs into the backing file name"
        bad_for_qemu = tmp_path / "qemu-bad.qcow2"
        bad_for_qemu.write_bytes(bytes(data))
        qemu = qimg("info", bad_for_qemu, check=False)
        assert qemu.returncode != 0 and "Header extension too large" in qemu.stderr, qemu.stderr
    bad = tmp_path / "bad.qcow2"
    bad.write_bytes(bytes(data))
    r = petrel("info", bad, check=False)
    assert r.returncode == 1 and words in r.stderr, r.stderr


def _run_bytes(binary, *args):
    proc = subprocess.run([str(binary), *map(str, args)], capture_output=True, timeout=120,
                          env=child_env())
    for m in SANITIZER_MARKERS:
        assert m.encode() not in proc.stderr, proc.stderr[-4000:]
    return proc


def _printable(b):
    return all(32 <= c < 127 or c == 10 for c in b)


def test_strings_from_files_are_escaped(petrel, tmp_path):
    """Backing file names and formats and snapshot names come from the file:
    messages and listings show their odd bytes as \\xNN, never raw."""
    good = _backed_image(tmp_path, "1.1")
    data = good.read_bytes()
    name_off = struct.unpack(">Q", data[8:16])[0]
    fmt_off = next(off for off, typ, _ in _header_extensions(data) if typ == 0xe2792aca)
    bad_fmt = tmp_path / "fmt.qcow2"
    _patch(good, bad_fmt, fmt_off + 8, b"\xb9")          # backing format "\xb9aw"
    bad_name = tmp_path / "name.qcow2"
    _patch(good, bad_name, name_off, b"\x1b[2J\x07.ra")  # all 8 bytes of "base.raw"
    r = _run_bytes(petrel.binary, "img", "info", bad_fmt)
    assert r.returncode == 1 and b"unknown image format '\\xb9aw'" in r.stderr, r.stderr
    assert _printable(r.stderr), r.stderr
    r = _run_bytes(petrel.binary, "img", "info", bad_name)
    assert r.returncode == 1 and b"\\x1b[2J\\x07.ra: No such file" in r.stderr, r.stderr
    assert _printable(r.stderr), r.stderr
    # a snapshot name with an escape sequence, listed
    snap = tmp_path / "snap.qcow2"
    qimg("create", "-f", "qcow2", snap, "1M")
    subprocess.run([QEMU_IMG, "snapshot", "-c", b"\x1b[31mred\\", str(snap)], check=True)
    r = _run_bytes(petrel.binary, "img", "snapshot", "-l", snap)
    assert r.returncode == 0 and b"\\x1b[31mred\\\\" in r.stdout, r.stdout
    assert _printable(r.stdout), r.stdout


# --- a dirty image (lazy refcounts, crashed writer) --------------------------------

def test_dirty_lazy_refcounts_repaired_on_read_write_open(petrel, tmp_path):
    """QEMU leaves an image dirty when it dies with lazy refcounts on; a
    read-only open reads it as it is, a read-write open (petrel run --disk)
    repairs it like QEMU does, saying so in one line."""
    kernel = require_file(GUEST_TESTS_DIR / "rvtest.elf", "build it with `make guest-tests`")
    img = tmp_path / "lazy.qcow2"
    qimg("create", "-f", "qcow2", "-o", "lazy_refcounts=on", img, "64M")
    proc = subprocess.run([QEMU_IO, "-f", "qcow2", "-c", "write -P 0x5a 0 4M",
                           "-c", "write -P 0x33 32M 1M", "-c", "abort", str(img)],
                          capture_output=True, timeout=120)
    assert proc.returncode != 0, "qemu-io abort should kill qemu-io"
    assert json.loads(qimg("info", "--output=json", img).stdout)["dirty-flag"] is True
    assert qimg("check", img, check=False).returncode == 2     # refcounts not written back
    # read-only: read as it is, left dirty, nothing logged
    out = tmp_path / "out.raw"
    r = petrel("convert", "-O", "raw", img, out)
    assert "not closed cleanly" not in r.stderr, r.stderr
    data = out.read_bytes()
    assert data[:4 << 20] == b"\x5a" * (4 << 20)
    assert data[32 << 20:33 << 20] == b"\x33" * (1 << 20)
    assert "dirty: true" in petrel("info", img).stdout
    # a crafted one whose damage needs a rebuilt refcount structure: a
    # referenced cluster without a refcount block
    img2 = tmp_path / "noblock.qcow2"
    qimg("create", "-f", "qcow2", "-o", "cluster_size=512", img2, "4M")
    qio(img2, "write -P 0x61 0 1M")
    with open(img2, "r+b") as f:
        hdr = f.read(104)
        rt_off = struct.unpack(">Q", hdr[48:56])[0]
        f.seek(rt_off + 3 * 8)
        f.write(bytes(8))
        f.seek(72)
        f.write(struct.pack(">Q", struct.unpack(">Q", hdr[72:80])[0] | 1))
    for image, reads in ((img, ["read -P 0x5a 0 4M", "read -P 0x33 32M 1M"]),
                         (img2, ["read -P 0x61 0 1M"])):
        args = ["run", "--firmware", "none", "--kernel", kernel, "--timeout", "120",
                "--disk", image]
        r = _run_bytes(petrel.binary, *args)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        lines = [l for l in r.stderr.decode(errors="replace").splitlines()
                 if "not closed cleanly" in l]
        assert len(lines) == 1 and "repaired" in lines[0], r.stderr
        assert_qemu_clean(image)
        assert json.loads(qimg("info", "--output=json", image).stdout)["dirty-flag"] is False
        qio(image, *reads)
        # clean now: the next open says nothing
        r = _run_bytes(petrel.binary, *args)
        assert r.returncode == 0 and b"not closed cleanly" not in r.stderr, r.stderr


# --- crash consistency ----------------------------------------------------------

def _xs(state):
    x = state
    x ^= x >> 12
    x ^= (x << 25) & 0xffffffffffffffff
    x ^= x >> 27
    return x, (x * 0x2545f4914f6cdd1d) & 0xffffffffffffffff


def _ops(seed, count, nsect):
    s = seed | 1
    ops = []
    for i in range(count):
        s, kind = _xs(s)
        s, sect = _xs(s)
        s, n = _xs(s)
        kind, sect, n = kind % 8, sect % nsect, 1 + n % 512
        n = min(n, nsect - sect)
        ops.append((kind == 0, sect, n))
    return ops


def _verify_crash_image(raw_bytes, seed, flushed, nsect):
    ops = _ops(seed, flushed + 64, nsect)
    last = [None] * nsect          # value of the last flushed op per sector
    later = {}                     # sector -> set of values from later ops
    for i, (discard, sect, n) in enumerate(ops):
        for s in range(sect, sect + n):
            v = 0 if discard else ((i + 1) << 32) | s
            if i < flushed:
                last[s] = v
            else:
                later.setdefault(s, set()).add(v)
    for s in range(nsect):
        sector = raw_bytes[s * 512:(s + 1) * 512]
        tag = struct.unpack("<Q", sector[:8])[0]
        if sector != sector[:8] * 64:
            assert s in later, f"sector {s}: torn content without a write in flight"
            continue
        want = 0 if last[s] is None else last[s]
        if tag != want:
            assert tag in later.get(s, ()), (f"sector {s}: tag {tag:#x}, flushed value "
                                             f"{want:#x} (after {flushed} flushed ops)")


@pytest.mark.parametrize("cluster", ["4096", "65536"])
def test_sigkill_crash_consistency(petrel, tmp_path, cluster):
    rng = random.Random(int(cluster))
    size = 32 << 20
    nsect = size // 512
    total_flushed = 0
    for it in range(12):
        img = tmp_path / f"crash{it}.qcow2"
        petrel("create", "-o", f"cluster_size={cluster}", img, size)
        seed = rng.randrange(1, 1 << 60)
        proc = subprocess.Popen([str(petrel.binary), "img", "bench-write", str(img), str(seed),
                                 "100000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=child_env())
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        flushed = 0
        for line in out.decode().splitlines():
            if line.startswith("F "):
                flushed = int(line[2:])
        chk = qimg("check", img, check=False)
        assert chk.returncode in (0, 3), f"iteration {it}: qemu-img check {chk.returncode}:\n" \
                                         f"{chk.stdout[-3000:]}"
        raw = tmp_path / "crash.raw"
        qimg("convert", "-O", "raw", img, raw)
        _verify_crash_image(raw.read_bytes(), seed, flushed, nsect)
        total_flushed += flushed
        # petrel agrees with qemu about the state, and repairs leaks
        ours = petrel("check", img, check=False).returncode
        assert ours == chk.returncode, f"petrel check {ours}, qemu-img check {chk.returncode}"
        petrel("check", "-r", "leaks", img)
        assert_qemu_clean(img)
        img.unlink()
    assert total_flushed > 0, "the writer was always killed before its first flush"


# --- internal snapshots -------------------------------------------------------

def _raw_of(img, out):
    qimg("convert", "-O", "raw", img, out)
    return out.read_bytes()


@pytest.mark.parametrize("opts", ["cluster_size=65536", "cluster_size=512",
                                  "cluster_size=4096,refcount_bits=8", "compat=0.10"])
def test_snapshots_made_by_petrel_read_by_qemu(petrel, tmp_path, opts):
    raw = tmp_path / "in.raw"
    make_raw(raw, seed=11)
    img = tmp_path / "img.qcow2"
    petrel("convert", "-f", "raw", "-O", "qcow2", "-o", opts, raw, img)
    states = {}
    for i, name in enumerate(["first", "second", "third"]):
        petrel("snapshot", "-c", name, img)
        states[name] = _raw_of(img, tmp_path / f"{name}.raw")
        assert_qemu_clean(img)
        # petrel's own writer: copy-on-write of clusters and L2 tables shared
        # with the snapshot
        petrel("bench-write", img, 10 * (i + 1), 60)
        assert_qemu_clean(img)
    listing = qimg("snapshot", "-l", img).stdout
    for i, name in enumerate(["first", "second", "third"]):
        assert f"\n{i + 1}" in listing and name in listing, listing
    ours = petrel("snapshot", "-l", img).stdout
    assert [ln.split()[:2] for ln in ours.splitlines()[2:]] == \
        [ln.split()[:2] for ln in listing.splitlines()[2:]], ours + listing
    final = _raw_of(img, tmp_path / "final.raw")
    # qemu-img applies what petrel made
    for name in ["second", "first"]:
        work = tmp_path / f"q-{name}.qcow2"
        shutil.copy(img, work)
        qimg("snapshot", "-a", name, work)
        assert _raw_of(work, tmp_path / "w.raw") == states[name]
        assert_qemu_clean(work)
    # petrel applies and deletes; qemu-img checks and reads
    petrel("snapshot", "-a", "second", img)
    assert _raw_of(img, tmp_path / "a.raw") == states["second"]
    assert_qemu_clean(img)
    petrel("bench-write", img, 99, 30)
    petrel("snapshot", "-d", "second", img)
    petrel("snapshot", "-d", "1", img)
    assert_qemu_clean(img)
    assert "second" not in qimg("snapshot", "-l", img).stdout
    qimg("snapshot", "-a", "third", img)
    assert _raw_of(img, tmp_path / "t.raw") == states["third"]
    petrel("snapshot", "-d", "third", img)
    assert_qemu_clean(img)
    assert petrel("snapshot", "-l", img).stdout == ""
    assert final != states["third"]


def test_snapshots_made_by_qemu_used_by_petrel(petrel, tmp_path):
    raw = tmp_path / "in.raw"
    make_raw(raw, seed=12)
    img = tmp_path / "img.qcow2"
    qimg("convert", "-f", "raw", "-O", "qcow2", raw, img)
    saved = {}
    for i, name in enumerate(["s1", "s2", "s3"]):
        qimg("snapshot", "-c", name, img)
        saved[name] = tmp_path / f"{name}.raw"
        qimg("convert", "-O", "raw", img, saved[name])
        qio(img, f"write -P 0x{0x21 + i:x} {i}M 1M", f"write -z {4 + i}M 128k",
            f"discard {8 + i}M 64k")
    listing = petrel("snapshot", "-l", img).stdout
    theirs = qimg("snapshot", "-l", img).stdout
    assert listing.splitlines()[:2] == theirs.splitlines()[:2]
    assert [ln.split()[:3] for ln in listing.splitlines()[2:]] == \
        [ln.split()[:3] for ln in theirs.splitlines()[2:]], listing + theirs
    for name in ["s2", "s1", "s3"]:
        petrel("snapshot", "-a", name, img)
        assert qimg("compare", "-f", "raw", "-F", "qcow2", saved[name], img).returncode == 0
        assert_qemu_clean(img)
        assert petrel("check", img).returncode == 0
    petrel("snapshot", "-d", "s1", img)
    petrel("snapshot", "-d", "2", img)
    assert_qemu_clean(img)
    assert qimg("compare", "-f", "raw", "-F", "qcow2", saved["s3"], img).returncode == 0
    qimg("snapshot", "-a", "s3", img)
    assert qimg("compare", "-f", "raw", "-F", "qcow2", saved["s3"], img).returncode == 0
    petrel("snapshot", "-d", "s3", img)
    assert_qemu_clean(img)
    assert "Snapshot" not in qimg("snapshot", "-l", img).stdout


def test_snapshot_errors(petrel, tmp_path):
    img = tmp_path / "a.qcow2"
    petrel("create", img, "1M")
    raw = tmp_path / "a.raw"
    petrel("create", "-f", "raw", raw, "1M")
    petrel("snapshot", "-c", "x", img)
    cases = [
        (("snapshot", "-c", "x", img), "already exists"),
        (("snapshot", "-a", "nope", img), "no snapshot"),
        (("snapshot", "-d", "nope", img), "no snapshot"),
        (("snapshot", "-c", "y", raw), "raw images have no internal snapshots"),
        (("snapshot", "-c", "y", "-a", "x", img), "exclude"),
        (("resize", img, "-2M"), "cannot shrink"),
        (("resize", "--shrink", img, "512k"), "internal snapshots"),
        (("commit", img), "no backing file"),
        (("rebase", img), "expected"),
    ]
    for args, words in cases:
        p = petrel(*args, check=False)
        assert p.returncode == 1 and words in p.stderr, (args, p.stderr)
    assert_qemu_clean(img)


# --- resize, rebase, commit ---------------------------------------------------

def test_resize(petrel, tmp_path):
    img = tmp_path / "a.qcow2"
    petrel("create", "-o", "cluster_size=512", img, "1M")
    qio(img, "write -P 0x31 0 64k", "write -P 0x32 960k 64k")
    assert petrel("resize", img, "+63M").stdout.strip() == "Image resized."
    assert '"virtual-size": 67108864' in qimg("info", "--output=json", img).stdout
    assert_qemu_clean(img)
    qio(img, "read -P 0x32 960k 64k", "read -P 0 1M 63M", "write -P 0x33 60M 64k")
    p = petrel("resize", "--shrink", img, "2M", check=False)
    assert p.returncode == 1 and "allocated at offset" in p.stderr, p.stderr
    qio(img, "discard 60M 64k")
    petrel("resize", "--shrink", img, "2M")
    assert '"virtual-size": 2097152' in qimg("info", "--output=json", img).stdout
    assert_qemu_clean(img)
    qio(img, "read -P 0x31 0 64k", "read -P 0x32 960k 64k")
    raw = tmp_path / "a.raw"
    petrel("create", "-f", "raw", raw, "1M")
    petrel("resize", "-f", "raw", raw, "3M")
    assert raw.stat().st_size == 3 << 20


def test_rebase_and_commit(petrel, tmp_path):
    base = tmp_path / "base.qcow2"
    qimg("create", "-f", "qcow2", base, "8M")
    qio(base, "write -P 0x11 0 6M")
    top = tmp_path / "top.qcow2"
    petrel("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top)
    qio(top, "write -P 0x22 1M 1M", "write -z 3M 64k")
    want = _raw_of(top, tmp_path / "want.raw")
    # safe rebase onto another base: the guest's view stays
    other = tmp_path / "other.raw"
    other.write_bytes(b"\x11" * (2 << 20) + bytes(6 << 20))
    t2 = tmp_path / "t2.qcow2"
    shutil.copy(top, t2)
    petrel("rebase", "-p", "-b", "other.raw", "-F", "raw", t2)
    info = qimg("info", t2).stdout
    assert "backing file: other.raw" in info and "backing file format: raw" in info, info
    assert _raw_of(t2, tmp_path / "x.raw") == want
    assert_qemu_clean(t2)
    # flatten (no backing file)
    t3 = tmp_path / "t3.qcow2"
    shutil.copy(top, t3)
    petrel("rebase", "-b", "", t3)
    assert "backing file" not in qimg("info", t3).stdout
    assert _raw_of(t3, tmp_path / "y.raw") == want
    assert_qemu_clean(t3)
    # unsafe: a moved backing file is named again, nothing is copied
    moved = tmp_path / "sub"
    moved.mkdir()
    shutil.copy(top, moved / "top.qcow2")
    p = petrel("info", moved / "top.qcow2", check=False)
    assert p.returncode == 1 and "backing file" in p.stderr
    petrel("rebase", "-u", "-b", "../base.qcow2", "-F", "qcow2", moved / "top.qcow2")
    assert _raw_of(moved / "top.qcow2", tmp_path / "z.raw") == want
    # commit: the overlay's clusters land in the base, the overlay empties
    before = base.read_bytes()
    out = petrel("commit", "-p", top)
    assert "Image committed." in out.stdout
    assert base.read_bytes() != before
    assert qimg("compare", "-f", "raw", "-F", "qcow2", tmp_path / "want.raw", base).returncode == 0
    assert qimg("compare", "-f", "raw", "-F", "qcow2", tmp_path / "want.raw", top).returncode == 0
    assert_qemu_clean(top)
    assert_qemu_clean(base)
    m = qimg("map", "--output=json", top).stdout
    assert '"depth": 0' not in m, m
    # raw base, -d keeps the overlay's clusters
    rbase = tmp_path / "rbase.raw"
    rbase.write_bytes(bytes(4 << 20))
    rtop = tmp_path / "rtop.qcow2"
    petrel("create", "-f", "qcow2", "-b", "rbase.raw", "-F", "raw", rtop)
    qio(rtop, "write -P 0x44 100k 300k")
    petrel("commit", "-d", rtop)
    assert rbase.read_bytes()[100 << 10:400 << 10] == b"\x44" * (300 << 10)
    assert '"depth": 0' in qimg("map", "--output=json", rtop).stdout
