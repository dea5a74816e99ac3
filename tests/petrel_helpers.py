"""Helpers for Petrel's pytest suite: paths, and running petrel with a timeout.

Imported by conftest.py (fixtures) and by the test modules.

Layout (see the Makefile):
  build/petrel, build/tests/unit/test_*            default build (make)
  build-asan/petrel, build-asan/tests/unit/test_*  ASan+UBSan build (make asan)
  build/guest/riscv64/{Image,initramfs.cpio.gz,fw_dynamic.bin}   (make guest)
  build/guest-tests/riscv64/*.elf                  (make guest-tests)

Petrel's exit statuses (the contract the tests check):
  0 guest powered off (also: console escape Ctrl-A x)
  1 VMM error or bad usage
  2 guest rebooted
  3 guest kernel panic detected
  4 --timeout expired
  5 guest powered off reporting failure
"""

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / "build"
ASAN_BUILD_DIR = REPO_ROOT / "build-asan"
GUEST_DIR = BUILD_DIR / "guest" / "riscv64"
GUEST_TESTS_DIR = BUILD_DIR / "guest-tests" / "riscv64"

# The two build flavours every VMM-level test runs under.
FLAVORS = {"default": BUILD_DIR, "asan": ASAN_BUILD_DIR}

EXIT_POWEROFF = 0
EXIT_ERROR = 1
EXIT_REBOOT = 2
EXIT_PANIC = 3
EXIT_TIMEOUT = 4
EXIT_GUEST_FAIL = 5

GUEST_FILES = ("Image", "initramfs.cpio.gz", "fw_dynamic.bin")

# Sanitizer settings for the ASan flavour (harmless for the default one).
SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer")


def petrel_path(flavor):
    return FLAVORS[flavor] / "petrel"


def child_env(extra=None):
    """Environment for child processes: no PETREL_GUEST_DIR leaking in from the
    caller (tests rely on the default guest lookup unless they pass paths)."""
    env = dict(os.environ)
    env.pop("PETREL_GUEST_DIR", None)
    env.update(SANITIZER_ENV)
    env.setdefault("TERM", "xterm")
    if extra:
        env.update(extra)
    return env


def require_file(path, hint):
    """Fail (never skip) when a file the test needs is missing."""
    __tracebackhide__ = True
    path = Path(path)
    if not path.exists():
        pytest.fail(f"{path} is missing; {hint}", pytrace=False)
    return path


def require_tools(*names):
    """Fail (never skip) when a host tool the test needs is not installed;
    `scripts/deps.sh test` installs them all."""
    __tracebackhide__ = True
    missing = [n for n in names if not shutil.which(n)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed; run `scripts/deps.sh test`",
                    pytrace=False)


def require_petrel(flavor):
    hint = "build it with `make asan`" if flavor == "asan" else "build it with `make`"
    return require_file(petrel_path(flavor), hint)


def require_guest():
    for name in GUEST_FILES:
        require_file(GUEST_DIR / name, "build the default guest with `make guest`")
    return GUEST_DIR


def _tail(text, limit=4000):
    if len(text) <= limit:
        return text
    return "[... " + str(len(text) - limit) + " chars cut ...]\n" + text[-limit:]


@dataclass
class Result:
    cmd: list
    returncode: int
    stdout: str
    stderr: str
    elapsed: float
    timed_out: bool = False

    @property
    def lines(self):
        """stdout lines with serial-console CR/LF noise removed."""
        return [line.rstrip("\r") for line in
                self.stdout.replace("\r\n", "\n").split("\n")]

    def describe(self):
        return (f"command: {' '.join(str(c) for c in self.cmd)}\n"
                f"{status_text(self)} after {self.elapsed:.1f} s\n"
                f"--- stdout (tail) ---\n{_tail(self.stdout)}\n"
                f"--- stderr (tail) ---\n{_tail(self.stderr)}")


def run_cmd(cmd, *, input=None, timeout, env=None, cwd=REPO_ROOT):
    """Run cmd with a hard timeout (the whole process group is killed then).

    input: str/bytes written to stdin, then stdin is closed; None means
    stdin is /dev/null.  Returns a Result; never raises on timeout.
    """
    if isinstance(input, str):
        input = input.encode()
    cmd = [str(c) for c in cmd]
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env if env is not None else child_env(),
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)
    timed_out = False
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill_group(proc)
        out, err = proc.communicate()
    return Result(cmd, proc.returncode, out.decode(errors="replace"),
                  err.decode(errors="replace"), time.monotonic() - start,
                  timed_out)


def kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def petrel_env(flavor, extra=None):
    """Environment for running petrel of a flavour.  build/petrel finds the
    default guest next to itself (build/guest/riscv64); build-asan/petrel has
    none there, so it is pointed at the same one through PETREL_GUEST_DIR."""
    env = child_env(extra)
    if flavor != "default":
        env.setdefault("PETREL_GUEST_DIR", str(GUEST_DIR.parent))
    return env


def run_petrel(flavor, args, *, input=None, timeout=120, env=None):
    """Run build/petrel (flavor "default") or build-asan/petrel ("asan")."""
    petrel = require_petrel(flavor)
    return run_cmd([petrel, *args], input=input, timeout=timeout,
                   env=env if env is not None else petrel_env(flavor))


def marker_values(result, key):
    """Values of the lines `KEY0=value` a guest session printed.  Sessions
    build the marker with shell arithmetic (`echo "KEY$((0))=..."`) so the
    echoed command line, which contains "$((0))", never matches."""
    prefix = f"{key}0="
    return [line.strip()[len(prefix):] for line in result.lines
            if line.strip().startswith(prefix)]


def fail(reason, details=None):
    """Fail the test: `reason` (one line) is what pytest's summary shows; the
    details (command, exit status, output tails) go to the test's captured
    stdout, which pytest prints in the failure report."""
    __tracebackhide__ = True
    if details:
        print(details)
    pytest.fail(reason)


def check(cond, reason, result=None):
    """assert, with a one-line reason and the run's details on failure."""
    __tracebackhide__ = True
    if not cond:
        fail(reason, result.describe() if isinstance(result, Result) else result)


def status_text(result):
    if result.timed_out:
        return f"killed after the test's {result.elapsed:.0f} s time limit"
    if result.returncode < 0:
        return f"killed by signal {-result.returncode}"
    return f"exit status {result.returncode}"


def assert_no_sanitizer_report(result):
    __tracebackhide__ = True
    for marker in SANITIZER_MARKERS:
        for line in result.stderr.splitlines():
            if marker in line:
                fail(f"sanitizer report: {line.strip()}", result.describe())


def assert_exit(result, expected, what=""):
    """The run ended by itself with status `expected`."""
    __tracebackhide__ = True
    if result.timed_out or result.returncode != expected:
        prefix = f"{what}: " if what else ""
        fail(f"{prefix}expected exit status {expected}, got {status_text(result)}",
             result.describe())


def assert_one_line_error(flavor, args, want, env=None):
    """`petrel ARGS` must fail before any guest starts: exit status 1 and
    exactly one line on stderr, containing `want`."""
    __tracebackhide__ = True
    result = run_petrel(flavor, args, timeout=60, env=env)
    if flavor == "asan":
        assert_no_sanitizer_report(result)
    assert_exit(result, EXIT_ERROR, " ".join(args))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    check(len(lines) == 1 and want in lines[0],
          f"{' '.join(args)}: expected one error line containing {want!r}", result)
    return result


def assert_device_error(flavor, device, want):
    """The same for `petrel run --device DEVICE`."""
    __tracebackhide__ = True
    return assert_one_line_error(flavor, ["run", "--device", device], want)
