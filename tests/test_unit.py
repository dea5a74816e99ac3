"""Run every unit-test executable of both builds as one pytest test each.

Expected executables come from the sources (tests/unit/test_*.c -> BUILD/tests/
unit/test_*) and from what is actually in the build dirs, so a unit test whose
binary is missing fails instead of silently disappearing.  They run from the
repository root (unit tests find their data files relative to it).
"""

import os

import pytest

from petrel_helpers import (FLAVORS, REPO_ROOT, assert_no_sanitizer_report, check,
                            child_env, run_cmd, status_text)

UNIT_SRC_DIR = REPO_ROOT / "tests" / "unit"
UNIT_TIMEOUT = 300


def _is_test_executable(path):
    return (path.is_file() and "." not in path.name
            and os.access(path, os.X_OK))


def _cases():
    sources = {p.stem for p in UNIT_SRC_DIR.glob("test_*.c")}
    cases = []
    for flavor, build in FLAVORS.items():
        bindir = build / "tests" / "unit"
        built = {p.name for p in bindir.glob("test_*") if _is_test_executable(p)}
        for name in sorted(sources | built):
            cases.append(pytest.param(flavor, bindir / name, None, id=f"{flavor}-{name}"))
            # the rv64 engine's tests once more under the JIT (rv64_harness.h)
            if flavor == "default" and name.startswith("test_rv64_"):
                cases.append(pytest.param(flavor, bindir / name, "jit",
                                          id=f"{flavor}-{name}-jit"))
    return cases


def test_unit_tests_exist():
    check(any(UNIT_SRC_DIR.glob("test_*.c")),
          f"no unit tests: expected {UNIT_SRC_DIR}/test_*.c")


@pytest.mark.parametrize("flavor,exe,cpu_mode", _cases())
def test_unit(flavor, exe, cpu_mode):
    hint = "make asan" if flavor == "asan" else "make"
    check(exe.exists(), f"{exe} was not built (run `{hint}`)")
    env = child_env({"RVT_CPU_MODE": cpu_mode} if cpu_mode else None)
    result = run_cmd([exe], timeout=UNIT_TIMEOUT, env=env)
    # The last line of a failing unit test is usually its own summary.
    last = next((l for l in reversed(result.stdout.splitlines()) if l.strip()), "")
    check(not result.timed_out and result.returncode == 0,
          f"{exe.name} ({flavor}): {status_text(result)}"
          + (f": {last.strip()}" if last else ""), result)
    if flavor == "asan":
        assert_no_sanitizer_report(result)
