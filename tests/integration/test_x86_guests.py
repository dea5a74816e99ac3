"""The x86-64 guest test kit (tests/guest/x86, STRICT build in
build/guest-tests/x86_64-strict) on the kvm engine, on both builds.

These need /dev/kvm.  Without it they skip, loudly, and nothing else does.
A program passes by printing `PASS <name>` and writing 0 to the debug-exit
port (exit status 0); the reset programs must end the run as a reboot
(exit status 2).  The command line is fixed: boot_pvh/boot_bzimage check it.

The virtio programs get their devices from the command line: virtio_rng
runs with MSIs through irqfds (the default) and again through
KVM_SIGNAL_MSI, and Petrel's debug log must show that queue notifications
went through ioeventfds.  virtio_blk writes a pattern to a fresh 1 MiB raw
image; afterwards every byte of the file is checked here.
"""

import os
import struct
from collections import namedtuple

import pytest

from petrel_helpers import (EXIT_POWEROFF, EXIT_REBOOT, FLAVORS, REPO_ROOT,
                            assert_no_sanitizer_report, check, petrel_env, run_petrel,
                            status_text)

KIT_DIR = REPO_ROOT / "build" / "guest-tests" / "x86_64-strict"
CMDLINE = "petrel-test-cmdline answer=42"
PETREL_TIMEOUT = 60
HARD_TIMEOUT = 180

# (run id, program name, file, cpus, kind, a line the output must contain,
#  extra petrel arguments, extra environment, a line stderr must contain)
Run = namedtuple("Run", "run_id name fname cpus kind expect args env expect_err",
                 defaults=((), None, None))

RNG = ("--device", "virtio-rng", "-vv")
IOEVENTFD = "queue notifications at 0xe0003000 through ioeventfds"

RUNS = [
    ("boot_pvh", "boot_pvh", "boot_pvh.elf", 1, "pass", None),
    ("boot_bzimage", "boot_bzimage", "boot_bzimage.bzImage", 1, "pass",
     "entered via 64-bit entry"),
    ("io", "io", "io.elf", 1, "pass", None),
    ("timer", "timer", "timer.elf", 1, "pass", None),
    ("smp-2cpus", "smp", "smp.elf", 2, "pass", "smp: 2 CPUs (from the MP table)"),
    ("smp-4cpus", "smp", "smp.elf", 4, "pass", "smp: 4 CPUs (from the MP table)"),
    ("compute", "compute", "compute.elf", 1, "pass", None),
    ("reset_kbd", "reset_kbd", "reset_kbd.elf", 1, "reset", "expecting"),
    ("reset_triple", "reset_triple", "reset_triple.elf", 1, "reset", "expecting"),
    ("acpi_poweroff", "acpi_poweroff", "acpi_poweroff.elf", 1, "poweroff", "expecting the VM"),
    ("pvm_gaps", "pvm_gaps", "pvm_gaps.elf", 1, "pass", None),
    ("virtio_rng", "virtio_rng", "virtio_rng.elf", 1, "pass", "virtio_rng: MSI-X kick",
     RNG, None, "MSIs through irqfds"),
    ("virtio_rng-signal_msi", "virtio_rng", "virtio_rng.elf", 1, "pass",
     "virtio_rng: MSI-X kick", RNG, {"PETREL_KVM_MSI": "signal"}, "MSIs through KVM_SIGNAL_MSI"),
    ("virtio_blk", "virtio_blk", "virtio_blk.elf", 1, "pass", "flushed, read back",
     ("--disk", "{disk},serial=petrel-x86-blk", "-vv")),
]
RUNS = [Run(*r) for r in RUNS]

needs_kvm = pytest.mark.skipif(not os.access("/dev/kvm", os.R_OK | os.W_OK),
                               reason="SKIPPED: no usable /dev/kvm on this host; the x86_64 "
                                      "kvm-engine tests cannot run here")


DISK_SIZE = 1 << 20
SECTOR = 512
PATTERN_FIRST, PATTERN_SECTORS = 1, 16


def check_blk_image(path, result):
    """What tests/guest/x86/virtio_blk.c writes: word i of sector s is
    0x50000000 | s << 16 | i for sectors 1-16; every other byte stays 0."""
    data = path.read_bytes()
    check(len(data) == DISK_SIZE, f"disk image is {len(data)} bytes, want {DISK_SIZE}", result)
    want = bytearray(DISK_SIZE)
    for s in range(PATTERN_FIRST, PATTERN_FIRST + PATTERN_SECTORS):
        want[s * SECTOR:(s + 1) * SECTOR] = struct.pack(
            "<128I", *(0x50000000 | s << 16 | i for i in range(SECTOR // 4)))
    if data != want:
        bad = next(i for i in range(DISK_SIZE) if data[i] != want[i])
        check(False, f"disk image differs from the guest's pattern at byte {bad}: "
                     f"{data[bad]:#04x}, want {want[bad]:#04x}", result)


@needs_kvm
@pytest.mark.parametrize("flavor", list(FLAVORS))
@pytest.mark.parametrize("r", [pytest.param(r, id=r.run_id) for r in RUNS])
def test_x86_guest(flavor, r, tmp_path):
    run_id, name, kind, expect = r.run_id, r.name, r.kind, r.expect
    kernel = KIT_DIR / r.fname
    check(kernel.exists(), f"{kernel} is missing (built by `make guest-tests`)")
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(DISK_SIZE)
    args = [a.format(disk=disk) for a in r.args]
    result = run_petrel(flavor, ["run", "--arch", "x86_64", "--kernel", kernel,
                                 "--append", CMDLINE, "--cpus", str(r.cpus),
                                 "--timeout", str(PETREL_TIMEOUT), *args],
                        timeout=HARD_TIMEOUT,
                        env=petrel_env(flavor, r.env) if r.env else None)
    if flavor == "asan":
        assert_no_sanitizer_report(result)
    lines = [line.strip() for line in result.lines]
    fails = [line for line in lines if line.startswith("FAIL")]
    want = EXIT_REBOOT if kind == "reset" else EXIT_POWEROFF
    check(not result.timed_out and result.returncode == want,
          f"{run_id}: {status_text(result)}, want {want}" + (f": {fails[0]}" if fails else ""),
          result)
    check(not fails, f"{run_id}: {fails[0] if fails else ''}", result)
    if kind == "pass":
        check(f"PASS {name}" in lines, f"{run_id}: no line 'PASS {name}'", result)
    if expect:
        check(any(expect in line for line in lines), f"{run_id}: no line with {expect!r}", result)
    if r.expect_err:
        check(r.expect_err in result.stderr, f"{run_id}: stderr lacks {r.expect_err!r}", result)
    if name.startswith("virtio"):
        check(IOEVENTFD in result.stderr, f"{run_id}: notifications not through ioeventfds",
              result)
    if name == "virtio_blk":
        check_blk_image(disk, result)
