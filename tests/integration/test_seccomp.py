"""seccomp filters per thread kind (src/sandbox/seccomp.c, docs/seccomp.md).

- Every thread of a running VMM runs under a filter (/proc's Seccomp field
  is 2) with --seccomp on (the default); none with --seccomp off,
  --no-seccomp or --seccomp-level 0.
- A forbidden system call from each thread kind ends the VMM: gdb attaches
  to a running VMM, switches to the thread of that kind (the main thread for
  vmm, "hart0", "vcpu0", "blk0") and calls syscall(ptrace); the VMM prints
  `petrel: seccomp: <kind> thread made forbidden system call ptrace (101)`
  and exits with status 159.  vcpu needs /dev/kvm (skipped without).
- --seccomp log lets the same call through (the kernel logs it).
- Bad values are one-line errors.
- ASan flavour: with the filters on, a leak is still reported at exit
  (LeakSanitizer's tracer runs under the main thread's filter).

The VMMs are short: a 64-byte bare-metal "Linux Image" that sleeps in wfi
(no firmware), with a qcow2 disk for the blk thread.
"""

import os
import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest

from petrel_helpers import (GUEST_DIR, SANITIZER_ENV, assert_one_line_error,
                            check, fail, petrel_env, require_petrel, require_tools,
                            run_petrel)

EXIT_SECCOMP = 159
PTRACE = 101


def _idle_image(path):
    """A RISC-V Linux Image header whose code is `1: wfi; j 1b`."""
    hdr = struct.pack("<IIQQQIIQ8s4sI", 0x10500073, 0xffdff06f, 0, 64, 0, 2, 0, 0,
                      b"RISCV\0\0\0", b"RSC\x05", 0)
    path.write_bytes(hdr)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("seccomp")
    kernel = _idle_image(d / "idle.img")
    disk = d / "disk.qcow2"
    r = run_petrel("default", ["img", "create", "-f", "qcow2", disk, "1M"], timeout=30)
    check(r.returncode == 0, "petrel img create failed", r)
    return kernel, disk


def _threads(pid):
    """{tid: (name, seccomp mode)} of a process."""
    out = {}
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (t / "comm").read_text().strip()
            mode = [l.split()[1] for l in (t / "status").read_text().splitlines()
                    if l.startswith("Seccomp:")][0]
        except (OSError, IndexError):
            continue
        out[int(t.name)] = (name, int(mode))
    return out


class Vmm:
    def __init__(self, flavor, args, want_names, filtered=True, env=None):
        self.proc = subprocess.Popen(
            [str(require_petrel(flavor)), "run", *[str(a) for a in args]],
            env=env or petrel_env(flavor), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        # ready: every thread there, each filtered (or not) as asked
        deadline = time.monotonic() + 30
        while True:
            th = _threads(self.proc.pid) if self.proc.poll() is None else {}
            names = {n for n, _ in th.values()}
            if want_names <= names and all((m == 2) == filtered for _, m in th.values()):
                self.threads = th
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out, err = self.kill()
                fail(f"VMM not ready (threads {th}, status {self.proc.returncode})",
                     f"stdout: {out}\nstderr: {err}")
            time.sleep(0.05)

    def tid(self, name):
        if name == "vmm":
            return self.proc.pid
        return [t for t, (n, _) in self.threads.items() if n == name][0]

    def gdb_call(self, tid, expr):
        """Call expr on thread tid with gdb (SIGSYS passed to the VMM)."""
        return subprocess.run(
            ["gdb", "-batch", "-nx", "-p", str(self.proc.pid),
             "-ex", "handle SIGSYS nostop noprint pass",
             "-ex", f"python [t.switch() for t in gdb.selected_inferior().threads() "
                    f"if t.ptid[1] == {tid}]",
             "-ex", "print $_gthread",
             "-ex", f"print {expr}"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)

    def wait(self, timeout=30):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            out, err = self.kill()
            fail("the VMM did not exit", f"stdout: {out}\nstderr: {err}")
        return out.decode(errors="replace"), err.decode(errors="replace")

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = self.proc.communicate()
        return out.decode(errors="replace"), err.decode(errors="replace")


def _idle_args(files, *extra):
    kernel, disk = files
    return ["--kernel", kernel, "--firmware", "none", "--memory", "32M", "--timeout", "60",
            "--disk", disk, *extra]


@pytest.mark.parametrize("kind,thread", [("vmm", "vmm"), ("hart", "hart0"), ("blk", "blk0")])
def test_forbidden_call_ends_the_vmm(files, kind, thread):
    require_tools("gdb")
    v = Vmm("default", _idle_args(files), {"hart0", "blk0"})
    try:
        g = v.gdb_call(v.tid(thread), f"(long)syscall({PTRACE}, 0, 0, 0, 0)")
        out, err = v.wait()
    finally:
        v.kill()
    want = (f"petrel: seccomp: {kind} thread made forbidden system call ptrace ({PTRACE}); "
            "see docs/seccomp.md")
    check(want in err.splitlines(),
          f"{kind}: no line {want!r} on stderr (exit status {v.proc.returncode})",
          f"stderr: {err}\ngdb: {g.stdout}\n{g.stderr}")
    check(v.proc.returncode == EXIT_SECCOMP,
          f"{kind}: exit status {v.proc.returncode}, want {EXIT_SECCOMP}", err)


def test_forbidden_call_on_a_vcpu():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.skip("SKIPPED: no usable /dev/kvm on this host; the vcpu thread's filter "
                    "is not tested here")
    require_tools("gdb")
    x86 = GUEST_DIR.parent / "x86_64"
    v = Vmm("default", ["--arch", "x86_64", "--memory", "128M", "--timeout", "60",
                        "--kernel", x86 / "vmlinuz"], {"vcpu0"})
    try:
        v.gdb_call(v.tid("vcpu0"), f"(long)syscall({PTRACE}, 0, 0, 0, 0)")
        out, err = v.wait()
    finally:
        v.kill()
    check("petrel: seccomp: vcpu thread made forbidden system call ptrace (101); "
          "see docs/seccomp.md" in err.splitlines() and v.proc.returncode == EXIT_SECCOMP,
          f"vcpu: exit status {v.proc.returncode}", err)


def test_log_mode_lets_it_through(files):
    require_tools("gdb")
    v = Vmm("default", _idle_args(files, "--seccomp", "log"), {"hart0", "blk0"})
    try:
        g = v.gdb_call(v.tid("hart0"), f"(long)syscall({PTRACE}, 0, 0, 0, 0)")
        alive = v.proc.poll() is None
        time.sleep(0.2)
        alive = alive and v.proc.poll() is None
        v.proc.send_signal(signal.SIGTERM)
        out, err = v.wait()
    finally:
        v.kill()
    check(alive and "forbidden" not in err and v.proc.returncode == 0,
          f"--seccomp log: the VMM ended (status {v.proc.returncode})",
          f"stderr: {err}\ngdb: {g.stdout}\n{g.stderr}")
    check("$2 = -1" in g.stdout or "$2 = 0" in g.stdout,
          "--seccomp log: the call did not return", g.stdout + g.stderr)


@pytest.mark.parametrize("flags", [["--seccomp", "off"], ["--no-seccomp"],
                                   ["--seccomp-level", "0"]])
def test_off(files, flags):
    v = Vmm("default", _idle_args(files, *flags), {"hart0", "blk0"}, filtered=False)
    v.kill()


@pytest.mark.parametrize("flags", [["--seccomp", "on"], ["--seccomp-level", "2"]])
def test_on(files, flags):
    v = Vmm("default", _idle_args(files, *flags), {"hart0", "blk0"})
    v.kill()


@pytest.mark.parametrize("flags,want", [
    (["--seccomp", "maybe"], "invalid --seccomp 'maybe' (on, off or log)"),
    (["--seccomp-level", "3"], "invalid --seccomp-level '3' (0, 1 or 2)"),
    (["--seccomp"], "option '--seccomp' needs an argument"),
])
def test_bad_values(flags, want):
    assert_one_line_error("default", ["run", *flags], want)


def test_asan_leak_still_reported(files):
    """LeakSanitizer's exit-time check needs system calls the filters allow
    only in the ASan build: a block allocated behind the VMM's back (gdb)
    and never freed is reported."""
    require_tools("gdb")
    env = petrel_env("asan", SANITIZER_ENV)
    v = Vmm("asan", _idle_args(files), {"hart0", "blk0"}, env=env)
    try:
        g = v.gdb_call(v.tid("vmm"), "(long)malloc(43210)")
        v.proc.send_signal(signal.SIGTERM)
        out, err = v.wait(60)
    finally:
        v.kill()
    check("forbidden" not in err, "ASan build: a forbidden system call at exit", err)
    check("ERROR: LeakSanitizer" in err and "43210 byte" in err,
          f"no leak report for the 43210-byte block (exit status {v.proc.returncode})",
          f"stderr: {err}\ngdb: {g.stdout}\n{g.stderr}")
    check(v.proc.returncode not in (0, EXIT_SECCOMP),
          f"ASan build: exit status {v.proc.returncode} after a leak", err)
