"""Boot the default riscv64 guest from its ext4 root disk (build/guest/riscv64/
root.img, made by `make guest`: images/lib-rootfs.sh) on Petrel's virtio-blk:

    petrel run --disk COPY --append "root=/dev/vda console=ttyS0 earlycon=sbi"

The initramfs /init loads ext4, mounts /dev/vda and switch_roots into it;
busybox init runs the disk's /etc/inittab.  A clean `poweroff` leaves a file
system that e2fsck finds clean, with what the guest wrote in it.  A root=
that can't be used leaves the guest in the initramfs shell, never a panic.

Each test boots its own copy of root.img (the guest writes to its disk).
`petrel run --help` must list --disk: a build without it fails these tests
(it never skips them).
"""

import hashlib
import os
import shutil
import subprocess

import pytest

from petrel_helpers import (EXIT_POWEROFF, FLAVORS, GUEST_DIR, assert_exit,
                            assert_no_sanitizer_report, check, fail,
                            require_file, require_guest, run_cmd, run_petrel)

BANNER = "Welcome to Petrel (riscv64)"
ROOT_BANNER = "root: /dev/vda (ext4)"
BOOT_TIMEOUT = 300
ASAN_BOOT_TIMEOUT = 600
SLACK = 60
APPEND = "root=/dev/vda console=ttyS0 earlycon=sbi"
MARKER = "petrel-was-here-42"
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def _require_disk_option(flavor="default"):
    """--disk exists: a petrel whose `run --help` does not list it fails."""
    result = run_petrel(flavor, ["run", "--help"], timeout=60)
    check("--disk" in result.stdout + result.stderr,
          "`petrel run --help` lists no --disk option", result)


def _tool(name):
    path = shutil.which(name, path=SBIN_PATH)
    if path is None:
        fail(f"{name} not found; install e2fsprogs (scripts/deps.sh guest)")
    return path


def _root_copy(tmp_path, name="root.img"):
    """A private copy of the built root disk (sparse, like the original)."""
    require_guest()
    src = require_file(GUEST_DIR / "root.img",
                       "build the default guest with `make guest` "
                       "(PETREL_GUEST_REBUILD=1 if it predates the root disk)")
    dst = tmp_path / name
    subprocess.run(["cp", "--sparse=always", str(src), str(dst)], check=True)
    return dst


def _boot(flavor, disk_args, session, append=APPEND):
    timeout = ASAN_BOOT_TIMEOUT if flavor == "asan" else BOOT_TIMEOUT
    args = ["run", "--timeout", str(timeout), "--append", append]
    for d in disk_args:
        args += ["--disk", str(d)]
    result = run_petrel(flavor, args, input=session, timeout=timeout + SLACK)
    if flavor == "asan":
        assert_no_sanitizer_report(result)
    return result


def _values(result, key):
    prefix = f"{key}0="
    return [line.strip()[len(prefix):] for line in result.lines
            if line.strip().startswith(prefix)]


def _lines(result):
    return [line.strip() for line in result.lines]


def _e2fsck_clean(image, result):
    fsck = run_cmd([_tool("e2fsck"), "-fn", image], timeout=120)
    check(fsck.returncode == 0,
          f"e2fsck -fn {image.name} after the guest's poweroff: exit status "
          f"{fsck.returncode}, expected 0 (clean)\n{fsck.stdout}{fsck.stderr}", result)


def _debugfs_cat(image, path):
    out = run_cmd([_tool("debugfs"), "-R", f"cat {path}", image], timeout=60)
    return out.stdout.strip()


# Markers are built by shell arithmetic, so the echoed command line (which
# contains "$((0))") never matches what the command prints ("...0=").
FIRST_SESSION = (
    "cat /proc/mounts\n"
    "echo \"ROOTFS$((0))=$(awk '$2 == \"/\" { print $1, $3 }' /proc/mounts)\"\n"
    "echo \"PID1$((0))=$(cat /proc/1/comm)\"\n"
    f"echo {MARKER} > /root/marker.txt\n"
    "poweroff\n"
)
SECOND_SESSION = (
    "echo \"MARK$((0))=$(cat /root/marker.txt)\"\n"
    "poweroff\n"
)


@pytest.mark.parametrize("flavor", list(FLAVORS))
def test_boot_from_root_disk(flavor, tmp_path):
    """Boot from the disk, write a file, poweroff: a clean file system that
    holds the file; a second boot reads it back."""
    _require_disk_option(flavor)
    image = _root_copy(tmp_path)

    result = _boot(flavor, [image], FIRST_SESSION)
    assert_exit(result, EXIT_POWEROFF, "poweroff on the root disk")
    lines = _lines(result)
    check(BANNER in lines, f"no banner line {BANNER!r}", result)
    check(ROOT_BANNER in lines,
          f"no line {ROOT_BANNER!r}: the guest did not run from the root disk", result)
    check(_values(result, "ROOTFS") == ["/dev/vda ext4"],
          f"/proc/mounts has {_values(result, 'ROOTFS')} on /, expected /dev/vda ext4", result)
    check(_values(result, "PID1") == ["init"],
          f"PID 1 is {_values(result, 'PID1')}, expected the disk's busybox init", result)
    check("petrel: guest:" not in result.stderr,
          "petrel logged guest misbehaviour while Linux drove the disk", result)
    _e2fsck_clean(image, result)
    got = _debugfs_cat(image, "/root/marker.txt")
    check(got == MARKER, f"debugfs reads {got!r} from /root/marker.txt, expected {MARKER!r}",
          result)

    if flavor != "default":
        return
    again = _boot(flavor, [image], SECOND_SESSION)
    assert_exit(again, EXIT_POWEROFF, "poweroff on the second boot")
    check(_values(again, "MARK") == [MARKER],
          f"the second boot reads {_values(again, 'MARK')} from /root/marker.txt, "
          f"expected [{MARKER!r}]", again)
    _e2fsck_clean(image, again)


def test_read_only_root_disk(tmp_path):
    """readonly=on and `ro`: the guest runs from the disk, cannot write to
    it, and the image is byte for byte what it was."""
    _require_disk_option()
    image = _root_copy(tmp_path)
    before = hashlib.sha256(image.read_bytes()).hexdigest()
    result = _boot("default", [f"{image},readonly=on"],
                   "touch /root/nope 2>/dev/null || echo \"RO$((0))=refused\"\npoweroff\n",
                   append=APPEND + " ro")
    assert_exit(result, EXIT_POWEROFF, "poweroff on a read-only root disk")
    check("root: /dev/vda (ext4, read-only)" in _lines(result),
          "no banner line 'root: /dev/vda (ext4, read-only)'", result)
    check(_values(result, "RO") == ["refused"], "the guest could write to a read-only root",
          result)
    check(hashlib.sha256(image.read_bytes()).hexdigest() == before,
          "a read-only disk's image changed", result)


def test_unmountable_root_disk_stays_in_initramfs(tmp_path):
    """A disk without a file system: /init says it cannot mount it and the
    initramfs shell comes up (no panic)."""
    _require_disk_option()
    blank = tmp_path / "blank.img"
    with open(blank, "wb") as f:
        f.truncate(4 << 20)
    result = _boot("default", [blank],
                   "echo \"ROOT$((0))=$(awk '$2 == \"/\" { print $3 }' /proc/mounts)\"\n"
                   "poweroff -f\n")
    assert_exit(result, EXIT_POWEROFF, "poweroff -f in the initramfs")
    lines = _lines(result)
    check(any(line.startswith("petrel-init: cannot mount /dev/vda") for line in lines),
          "no 'petrel-init: cannot mount /dev/vda' message", result)
    check(BANNER in lines and not any(line.startswith("root: ") for line in lines),
          "expected the initramfs banner (and no root disk banner)", result)
    check(_values(result, "ROOT") == ["rootfs"],
          f"/ is {_values(result, 'ROOT')}, expected the initramfs (rootfs)", result)


def test_missing_root_device_stays_in_initramfs():
    """root= naming a device that never appears: after the wait (10 s by
    default), a clear message and the initramfs shell, not a kernel panic."""
    require_guest()
    result = _boot("default", [],
                   "echo \"ROOT$((0))=$(awk '$2 == \"/\" { print $3 }' /proc/mounts)\"\n"
                   "poweroff -f\n")
    assert_exit(result, EXIT_POWEROFF, "poweroff -f in the initramfs")
    lines = _lines(result)
    check("petrel-init: root device /dev/vda did not appear within 10 s "
          "(block devices: none)" in lines,
          "no 'petrel-init: root device /dev/vda did not appear within 10 s' message", result)
    check("petrel-init: staying in the initramfs (the root disk is not used)" in lines,
          "no message saying the guest stays in the initramfs", result)
    check(BANNER in lines, f"no banner line {BANNER!r}", result)
    check(_values(result, "ROOT") == ["rootfs"],
          f"/ is {_values(result, 'ROOT')}, expected the initramfs (rootfs)", result)
