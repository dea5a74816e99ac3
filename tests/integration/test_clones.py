"""Linked clones: two riscv64 guests boot at the same time, each from its own
qcow2 overlay (`petrel img create -b BASE`) on one shared base image (raw or
qcow2), which both open read-only through the backing chain (shared image
lock; the overlays take an exclusive one).  Each guest reads data that lives
only in the base, writes its own pattern with dd at the same offset, and
powers off.  Then: the base is unchanged (checksum), each overlay holds only
its own writes (qemu-img map and content), `qemu-img check` is clean on both,
and a second boot of each sees its own data.

Runs build/petrel (and build-asan/petrel when present); PETREL_IMG_BUILD
picks one build directory instead (e.g. build-q2)."""

import hashlib
import json
import os
import shutil
import subprocess
import threading

import pytest

from petrel_helpers import (EXIT_POWEROFF, GUEST_DIR, REPO_ROOT, SANITIZER_MARKERS,
                            check, child_env, marker_values, require_guest, require_tools,
                            run_cmd)

QEMU_IMG = shutil.which("qemu-img")


@pytest.fixture(autouse=True)
def _qemu_utils():
    require_tools("qemu-img")

MiB = 1 << 20
DISK_SIZE = 64 * MiB
BASE_OFF, BASE_LEN = 8 * MiB, 1 * MiB        # base-only data the guests read
CLONE_OFF, CLONE_LEN = 16 * MiB, 2 * MiB     # where each guest writes its own
BOOT_TIMEOUT = 300
ASAN_BOOT_TIMEOUT = 600


def _builds():
    if os.environ.get("PETREL_IMG_BUILD"):
        return [REPO_ROOT / os.environ["PETREL_IMG_BUILD"]]
    return [b for b in (REPO_ROOT / "build", REPO_ROOT / "build-asan")
            if (b / "petrel").exists()] or [REPO_ROOT / "build"]


def _is_asan(build):
    return "asan" in build.name


def base_pattern():
    return b"".join(b"base line %07d\n" % i for i in range(BASE_LEN // 16 + 1))[:BASE_LEN]


def clone_pattern(n):
    line = b"clone %d was here\n" % n
    return (line * (CLONE_LEN // len(line) + 1))[:CLONE_LEN]


WRITE_SESSION = r"""
echo "BASEMD5$((0))=$(dd if=/dev/vda bs=1M skip=8 count=1 2>/dev/null | md5sum)"
yes 'clone {n} was here' | head -c {length} | dd of=/dev/vda bs=1M seek=16 count=2 iflag=fullblock conv=fsync 2>/dev/null; echo "DD$((0))=$?"
sync
poweroff -f
"""

READ_SESSION = r"""
echo "CLONEMD5$((0))=$(dd if=/dev/vda bs=1M skip=16 count=2 2>/dev/null | md5sum)"
echo "BASEMD5$((0))=$(dd if=/dev/vda bs=1M skip=8 count=1 2>/dev/null | md5sum)"
poweroff -f
"""


def qimg(*args):
    proc = subprocess.run([QEMU_IMG, *map(str, args)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"qemu-img {args}: {proc.returncode}\n{proc.stdout}{proc.stderr}"
    return proc.stdout


def _env():
    env = child_env()
    env["PETREL_GUEST_DIR"] = str(GUEST_DIR.parent)
    return env


def _boot_all(build, disks_and_sessions):
    """Boot one VM per (disk, session) at the same time; their results."""
    binary = build / "petrel"
    if not binary.exists():
        pytest.fail(f"{binary} is missing; build it with make", pytrace=False)
    limit = ASAN_BOOT_TIMEOUT if _is_asan(build) else BOOT_TIMEOUT
    results = [None] * len(disks_and_sessions)

    def one(i, disk, session):
        results[i] = run_cmd([binary, "run", "--timeout", str(limit), "--disk", disk],
                             input=session, timeout=limit + 60, env=_env())

    threads = [threading.Thread(target=one, args=(i, d, s))
               for i, (d, s) in enumerate(disks_and_sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        for m in SANITIZER_MARKERS:
            check(m not in r.stderr, f"sanitizer report ({m})", r)
        check(r.returncode == EXIT_POWEROFF and not r.timed_out,
              f"guest did not power off (exit status {r.returncode})", r)
        check("petrel: guest:" not in r.stderr,
              "petrel logged guest misbehaviour while Linux drove the disk", r)
    return results


def _md5(data):
    return hashlib.md5(data).hexdigest()


def _clone_cases():
    """Both base formats on the normal build only.  Two guests at once under
    ASan took 78 s of CI's 30 minutes; the code they would run under ASan
    (a qcow2 overlay on a qcow2 base, read-only through the backing chain)
    runs under ASan in test_overlay_locked_base_shared below,
    test_qcow2_guest.py and the qcow2 unit tests."""
    return [pytest.param(b, fmt, id=f"{fmt}-{b.name}") for b in _builds()
            if not _is_asan(b) for fmt in ("raw", "qcow2")]


@pytest.mark.parametrize("build,base_fmt", _clone_cases())
def test_two_clones_on_one_base(build, base_fmt, tmp_path):
    require_guest()
    raw = bytearray(DISK_SIZE)
    raw[BASE_OFF:BASE_OFF + BASE_LEN] = base_pattern()
    raw[CLONE_OFF:CLONE_OFF + CLONE_LEN] = b"\xee" * CLONE_LEN   # hidden by both clones
    (tmp_path / "base.raw").write_bytes(bytes(raw))
    base = tmp_path / f"base.{base_fmt}"
    if base_fmt == "qcow2":
        qimg("convert", "-f", "raw", "-O", "qcow2", tmp_path / "base.raw", base)
        (tmp_path / "base.raw").unlink()
    base_sum = _md5(base.read_bytes())
    petrel = build / "petrel"
    overlays = []
    for n in (1, 2):
        ov = tmp_path / f"overlay{n}.qcow2"
        subprocess.run([petrel, "img", "create", "-f", "qcow2", "-b", base.name, "-F", base_fmt,
                        ov], check=True, env=child_env(), timeout=60)
        overlays.append(ov)

    # both at once: the shared base is read-locked by both, each overlay
    # write-locked by its own VM
    results = _boot_all(build, [(str(ov), WRITE_SESSION.format(n=n, length=CLONE_LEN))
                                for n, ov in enumerate(overlays, 1)])
    for n, r in enumerate(results, 1):
        md5 = marker_values(r, "BASEMD5")
        check(md5 and md5[0].split()[0] == _md5(base_pattern()),
              f"clone {n} read {md5} from the base region, want {_md5(base_pattern())}", r)
        check(marker_values(r, "DD") == ["0"], f"clone {n}: dd failed", r)

    assert _md5(base.read_bytes()) == base_sum, "the shared base image changed"
    for n, ov in enumerate(overlays, 1):
        proc = subprocess.run([QEMU_IMG, "check", ov], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0, f"qemu-img check {ov}:\n{proc.stdout}{proc.stderr}"
        # only this clone's writes live in its overlay
        extents = json.loads(qimg("map", "--output=json", ov))
        own = [(e["start"], e["length"]) for e in extents if e["depth"] == 0 and e["data"]]
        lo = min(s for s, _ in own)
        hi = max(s + ln for s, ln in own)
        assert lo >= CLONE_OFF - 64 * 1024 and hi <= CLONE_OFF + CLONE_LEN + 64 * 1024, (
            f"overlay {n} holds data outside its writes: {own}")
        flat = tmp_path / f"flat{n}.raw"
        qimg("convert", "-O", "raw", ov, flat)
        data = flat.read_bytes()
        assert data[CLONE_OFF:CLONE_OFF + CLONE_LEN] == clone_pattern(n), (
            f"overlay {n} does not hold clone {n}'s pattern")
        want = bytes(raw)
        assert data[:CLONE_OFF] == want[:CLONE_OFF], f"overlay {n}: base data before changed"
        assert data[CLONE_OFF + CLONE_LEN:] == want[CLONE_OFF + CLONE_LEN:], (
            f"overlay {n}: base data after changed")

    # second boot of each (again both at once): each sees its own data
    results = _boot_all(build, [(str(ov), READ_SESSION) for ov in overlays])
    for n, r in enumerate(results, 1):
        md5 = marker_values(r, "CLONEMD5")
        check(md5 and md5[0].split()[0] == _md5(clone_pattern(n)),
              f"clone {n} read back {md5}, want its own {_md5(clone_pattern(n))}", r)
        md5 = marker_values(r, "BASEMD5")
        check(md5 and md5[0].split()[0] == _md5(base_pattern()),
              f"clone {n}: base region {md5} on the second boot", r)
    assert _md5(base.read_bytes()) == base_sum, "the shared base image changed"


@pytest.mark.parametrize("build", _builds(), ids=lambda b: b.name)
def test_overlay_locked_base_shared(build, tmp_path):
    """An overlay in use cannot be opened by a second VM (exclusive lock);
    the base of a running clone can be read by `petrel img` (shared lock) but
    not opened for writing."""
    require_guest()
    base = tmp_path / "base.raw"
    base.write_bytes(bytes(DISK_SIZE))
    petrel = build / "petrel"
    ov = tmp_path / "ov.qcow2"
    subprocess.run([petrel, "img", "create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", ov],
                   check=True, env=child_env(), timeout=60)
    limit = ASAN_BOOT_TIMEOUT if _is_asan(build) else BOOT_TIMEOUT
    vm = subprocess.Popen([petrel, "run", "--timeout", str(limit), "--disk", str(ov)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=_env(), start_new_session=True)
    try:
        # wait for the shell prompt: the disk is open by then
        buf = b""
        while b"petrel:/#" not in buf:
            chunk = vm.stdout.read1(4096)
            if not chunk:
                break
            buf += chunk
        assert b"petrel:/#" in buf, buf[-2000:]
        second = run_cmd([petrel, "run", "--timeout", "30", "--disk", ov], timeout=90, env=_env())
        assert second.returncode == 1 and "in use" in second.stderr, second.describe()
        info = subprocess.run([petrel, "img", "info", base], capture_output=True, text=True,
                              env=child_env(), timeout=60)
        assert info.returncode == 0, info.stderr
        rw = subprocess.run([petrel, "img", "resize", "-f", "raw", base, "+1M"],
                            capture_output=True, text=True, env=child_env(), timeout=60)
        assert rw.returncode == 1 and "in use" in rw.stderr, rw.stderr
    finally:
        vm.stdin.write(b"poweroff -f\n")
        vm.stdin.close()
        try:
            vm.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(vm.pid, 9)
            vm.wait()
        vm.stdout.close()
        vm.stderr.close()
    assert vm.returncode == EXIT_POWEROFF
