"""The x86-64 guest test kit (tests/guest/x86, STRICT build in
build/guest-tests/x86_64-strict) on the kvm engine, on both builds.

These need /dev/kvm.  Without it they skip, loudly, and nothing else does.
A program passes by printing `PASS <name>` and writing 0 to the debug-exit
port (exit status 0); the reset programs must end the run as a reboot
(exit status 2).  The command line is fixed: boot_pvh/boot_bzimage check it.
"""

import os

import pytest

from petrel_helpers import (EXIT_POWEROFF, EXIT_REBOOT, FLAVORS, REPO_ROOT,
                            assert_no_sanitizer_report, check, run_petrel,
                            status_text)

KIT_DIR = REPO_ROOT / "build" / "guest-tests" / "x86_64-strict"
CMDLINE = "petrel-test-cmdline answer=42"
PETREL_TIMEOUT = 60
HARD_TIMEOUT = 180

# (run id, program name, file, cpus, kind, a line the output must contain)
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
]

needs_kvm = pytest.mark.skipif(not os.access("/dev/kvm", os.R_OK | os.W_OK),
                               reason="SKIPPED: no usable /dev/kvm on this host; the x86_64 "
                                      "kvm-engine tests cannot run here")


@needs_kvm
@pytest.mark.parametrize("flavor", list(FLAVORS))
@pytest.mark.parametrize("run_id,name,fname,cpus,kind,expect",
                         [pytest.param(*r, id=r[0]) for r in RUNS])
def test_x86_guest(flavor, run_id, name, fname, cpus, kind, expect):
    kernel = KIT_DIR / fname
    check(kernel.exists(), f"{kernel} is missing (built by `make guest-tests`)")
    result = run_petrel(flavor, ["run", "--arch", "x86_64", "--kernel", kernel,
                                 "--append", CMDLINE, "--cpus", str(cpus),
                                 "--timeout", str(PETREL_TIMEOUT)],
                        timeout=HARD_TIMEOUT)
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
