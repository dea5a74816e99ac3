"""Bare-metal riscv64 guest programs (tests/guest/riscv64 -> build/guest-tests/
riscv64/*.elf), each run on both builds without firmware (with 2 harts for
the programs the Makefile lists in SMP_PROGS).  A program reports success by
printing a line `PASS <name>` and powering off (exit status 0).  The plain
build runs each under both CPU modes (--cpu-mode interp and jit, where the
host has the JIT); the ASan build under the default mode only.
"""

import platform
import re

import pytest

from petrel_helpers import (FLAVORS, GUEST_TESTS_DIR, REPO_ROOT,
                            assert_no_sanitizer_report, check, run_petrel,
                            status_text)

PETREL_TIMEOUT = 30          # petrel's own --timeout
HARD_TIMEOUT = 120           # the test's, should petrel's not work


def _smp_programs():
    """Programs that need 2 harts: SMP_PROGS in tests/guest/riscv64/Makefile."""
    return _makefile_list("SMP_PROGS")


def _makefile_list(var):
    """The names in a `VAR := ...` line of tests/guest/riscv64/Makefile."""
    makefile = REPO_ROOT / "tests" / "guest" / "riscv64" / "Makefile"
    try:
        m = re.search(rf"^{var}\s*:?=(.*)$", makefile.read_text(), re.M)
    except OSError:
        return set()
    return set(m.group(1).split()) if m else set()


def _elves():
    """The checks: every program but the load generators (TOOL_PROGS: spin
    runs for 30 s, memtouch fills RAM; test_cgroup.py uses them)."""
    tools = _makefile_list("TOOL_PROGS")
    return sorted(p for p in GUEST_TESTS_DIR.glob("*.elf") if p.stem not in tools)


def test_guest_programs_built():
    check(_elves(), f"no riscv64 guest test programs in {GUEST_TESTS_DIR} "
                    "(built by `make guest-tests` from tests/guest/riscv64)")


def _modes():
    """(flavor, cpu mode): the plain build under both modes, ASan under the
    default (None: no flag)."""
    modes = [("default", "interp")]
    if platform.machine() == "x86_64":
        modes.append(("default", "jit"))
    return [pytest.param(f, m, id=f"{f}-{m}") for f, m in modes] + \
        [pytest.param(f, None, id=f) for f in FLAVORS if f != "default"]


@pytest.mark.parametrize("flavor,cpu_mode", _modes())
@pytest.mark.parametrize("elf", [pytest.param(p, id=p.stem) for p in _elves()])
def test_guest_program(flavor, cpu_mode, elf):
    cpus = ["--cpus", "2"] if elf.stem in _smp_programs() else []
    mode = ["--cpu-mode", cpu_mode] if cpu_mode else []
    result = run_petrel(flavor, ["run", "--firmware", "none", "--kernel", elf,
                                 "--timeout", str(PETREL_TIMEOUT), *cpus, *mode],
                        timeout=HARD_TIMEOUT)
    if flavor == "asan":
        assert_no_sanitizer_report(result)
    fails = [l.strip() for l in result.lines if l.strip().startswith("FAIL")]
    check(not result.timed_out and result.returncode == 0,
          f"{elf.name}: {status_text(result)}" + (f": {fails[0]}" if fails else ""),
          result)
    check(f"PASS {elf.stem}" in [line.strip() for line in result.lines],
          f"{elf.name}: no line 'PASS {elf.stem}' in the output", result)
