"""Boot the default riscv64 guest (Debian kernel + busybox initramfs, built by
`make guest`) and check Petrel's CLI contract: console I/O, the Ctrl-A x
escape, error handling and exit statuses (see petrel_helpers.py).

Input piped into petrel's stdin may be written before the guest has opened its
console; petrel must deliver it to the guest anyway (a VMM that feeds the UART
before the guest driver starts loses it: QEMU does).
"""

import io
import resource
import subprocess
import termios
import time

import pexpect
import pytest

from petrel_helpers import (EXIT_ERROR, EXIT_PANIC, EXIT_POWEROFF, EXIT_REBOOT,
                            EXIT_TIMEOUT, FLAVORS, assert_exit,
                            assert_no_sanitizer_report, check, child_env, fail,
                            kill_group, require_guest, require_petrel,
                            run_petrel)

BANNER = "Welcome to Petrel (riscv64)"
PROMPT = "petrel:/# "
BOOT_TIMEOUT = 300           # --timeout for a boot on the default build
ASAN_BOOT_TIMEOUT = 600      # ... and on the ASan build
SLACK = 60                   # extra time the test allows before killing petrel
RUN_FLAGS = ("--arch", "--kernel", "--initrd", "--append", "--firmware",
             "--memory", "--cpus", "--timeout", "--device")


def _boot(flavor, input, *, timeout=BOOT_TIMEOUT, extra_args=(), env=None):
    require_guest()
    return run_petrel(flavor, ["run", "--timeout", str(timeout), *extra_args],
                      input=input, timeout=timeout + SLACK, env=env)


def _explicit_guest_args():
    g = require_guest()
    return ["--kernel", g / "Image", "--initrd", g / "initramfs.cpio.gz",
            "--firmware", g / "fw_dynamic.bin"]


def _check_session(result):
    lines = [line.strip() for line in result.lines]
    assert_exit(result, EXIT_POWEROFF, "poweroff -f")
    check(BANNER in lines, f"no banner line {BANNER!r}", result)
    check("riscv64" in lines, "no output line 'riscv64' from `uname -m`", result)
    check("hello-42" in lines, "no output line 'hello-42' from `echo`", result)


SESSION = "uname -m\necho hello-$((6*7))\npoweroff -f\n"


# --- (a), (b): a scripted session on the console -------------------------------

def test_boot_default_guest():
    """`printf ... | build/petrel run` boots the default guest it finds next
    to the executable, runs the commands and exits 0 on poweroff."""
    _check_session(_boot("default", SESSION))


def test_boot_explicit_paths_asan():
    """The same session on the ASan build, with the guest given explicitly
    (and no PETREL_GUEST_DIR: the flags alone must do)."""
    result = _boot("asan", SESSION, timeout=ASAN_BOOT_TIMEOUT,
                   extra_args=_explicit_guest_args(), env=child_env())
    assert_no_sanitizer_report(result)
    _check_session(result)


# --- (c): interactive console on a pty ------------------------------------------

# Runs petrel on the pty and records the pty's settings before and after it.
_WRAPPER = 'stty -g >"$1"; "$2" run; rc=$?; stty -g >"$3"; exit $rc'


def test_interactive_console_and_escape(tmp_path):
    petrel = require_petrel("default")
    require_guest()
    before, after = tmp_path / "stty.before", tmp_path / "stty.after"
    transcript = io.StringIO()
    child = pexpect.spawn("/bin/bash", ["-c", _WRAPPER, "wrapper", str(before),
                                        str(petrel), str(after)],
                          env=child_env(), encoding="utf-8",
                          codec_errors="replace", dimensions=(24, 80),
                          timeout=BOOT_TIMEOUT)
    child.logfile_read = transcript

    def fail_tty(what):
        fail(what, f"--- transcript (tail) ---\n{transcript.getvalue()[-4000:]}")

    def step(what, fn, *args, **kw):
        """Run one pexpect call; fail (outside the except block, so pytest
        shows no pexpect internals) with the transcript if it times out."""
        try:
            fn(*args, **kw)
            return
        except (pexpect.TIMEOUT, pexpect.EOF) as e:
            error = f"{what} ({type(e).__name__})"
        fail_tty(error)

    try:
        step(f"no shell prompt {PROMPT!r}", child.expect_exact, PROMPT)

        # While petrel owns the terminal it must be in raw mode (no local echo,
        # no line buffering), or typed keys would be echoed twice and Ctrl-A x
        # would wait for a newline.  On Linux the master reports the slave's
        # termios.
        lflag = termios.tcgetattr(child.child_fd)[3]
        if lflag & (termios.ICANON | termios.ECHO):
            fail_tty("petrel did not put the console terminal in raw mode")

        child.sendline("cat /proc/cpuinfo")
        step("no rv64imafdc in /proc/cpuinfo", child.expect_exact, "rv64imafdc", timeout=60)
        step("no prompt after cat", child.expect_exact, PROMPT, timeout=60)
        child.sendline("echo $((1+2))")
        step("no output line 3 from echo $((1+2))", child.expect, r"\n3\r*\n", timeout=60)
        step("no prompt after echo", child.expect_exact, PROMPT, timeout=60)

        # The escape: Ctrl-A then x, typed as two keys.
        child.send("\x01")
        time.sleep(0.2)
        child.send("x")
        start = time.monotonic()
        step("petrel did not exit within 15 s of Ctrl-A x", child.expect, pexpect.EOF,
             timeout=15)
        elapsed = time.monotonic() - start
        child.close()
    finally:
        if child.isalive():
            child.terminate(force=True)

    if child.exitstatus != EXIT_POWEROFF:
        fail_tty(f"Ctrl-A x: exit status {child.exitstatus} (signal "
                 f"{child.signalstatus}), expected {EXIT_POWEROFF}")
    check(elapsed < 15, f"Ctrl-A x took {elapsed:.1f} s")
    check(before.read_text() == after.read_text(),
          "terminal settings not restored after Ctrl-A x",
          f"stty -g before: {before.read_text()}stty -g after:  {after.read_text()}")


# --- (d): bad input ------------------------------------------------------------

@pytest.fixture(params=list(FLAVORS))
def flavor(request):
    return request.param


def _bad(flavor, args):
    result = run_petrel(flavor, args, timeout=60)
    if flavor == "asan":
        assert_no_sanitizer_report(result)
    assert_exit(result, EXIT_ERROR, " ".join(args))
    check(result.stderr.strip(), "exit status 1 without an error message", result)
    return result


def _stderr_lines(result):
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_missing_kernel_file(flavor):
    result = _bad(flavor, ["run", "--kernel", "/nonexistent"])
    lines = _stderr_lines(result)
    check(len(lines) == 1, f"expected a one-line error, got {len(lines)} lines", result)
    check("/nonexistent" in lines[0], "the error does not name the path", result)


def test_malformed_memory_size(flavor):
    result = _bad(flavor, ["run", "--memory", "1x"])
    check("memory" in result.stderr.lower(), "the error does not mention memory", result)


def test_too_little_memory(flavor):
    _bad(flavor, ["run", "--memory", "1M"])


def test_unknown_flag(flavor):
    result = _bad(flavor, ["run", "--bogus"])
    check("--bogus" in result.stderr, "the error does not name the flag", result)


def test_kernel_not_a_kernel(flavor):
    _bad(flavor, ["run", "--kernel", "/etc/passwd"])


def _image_variants(image, tmp_path):
    """The default guest's kernel Image, cut short or with a broken header."""
    data = image.read_bytes()
    broken = bytearray(data[:1 << 20])
    broken[48:56] = bytes(8)                  # the "RISCV" magic
    cases = {"13k": (data[:13 * 1024], "truncated"),
             "one-byte-short": (data[:-1], "truncated"),
             "in-pe-header": (data[:80], "truncated"),
             "bad-magic": (bytes(broken), "not a RISC-V Linux Image")}
    for name, (blob, words) in cases.items():
        path = tmp_path / f"Image-{name}"
        path.write_bytes(blob)
        yield name, path, words


def test_truncated_or_broken_kernel_image(flavor, tmp_path):
    """A cut or mangled Image is a one-line error before the guest starts
    (the Image header and its PE/COFF section table say how long it is),
    not a guest that prints nothing until --timeout."""
    g = require_guest()
    for name, path, words in _image_variants(g / "Image", tmp_path):
        result = _bad(flavor, ["run", "--kernel", str(path), "--timeout", "60"])
        lines = _stderr_lines(result)
        check(len(lines) == 1 and words in lines[0] and path.name in lines[0],
              f"{name}: expected a one-line error saying '{words}'", result)


def test_zero_cpus(flavor):
    _bad(flavor, ["run", "--cpus", "0"])


def test_bad_cpu_mode(flavor):
    result = _bad(flavor, ["run", "--cpu-mode", "fast"])
    lines = _stderr_lines(result)
    check(len(lines) == 1 and "--cpu-mode 'fast'" in lines[0],
          "expected a one-line error naming --cpu-mode 'fast'", result)


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"]], ids=" ".join)
def test_help_lists_every_flag(flavor, args):
    result = run_petrel(flavor, args, timeout=60)
    assert_exit(result, 0, " ".join(args))
    missing = [f for f in RUN_FLAGS if f not in result.stdout]
    check(not missing, f"{' '.join(args)} does not mention {' '.join(missing)}", result)


# --- (e): exit statuses ----------------------------------------------------------

def test_exit_status_reboot():
    result = _boot("default", "reboot -f\n")
    assert_exit(result, EXIT_REBOOT, "reboot -f")
    check(BANNER in [line.strip() for line in result.lines], "no banner line", result)


def test_exit_status_panic():
    """The shell is PID 1: `exit` makes the kernel panic (Attempted to kill
    init), which petrel must detect."""
    result = _boot("default", "exit\n")
    assert_exit(result, EXIT_PANIC, "exit from PID 1")
    check("Kernel panic" in result.stdout, "no 'Kernel panic' in the output", result)


def test_exit_status_timeout(tmp_path):
    """A guest that never stops: --timeout ends it with status 4, on time.
    stdin stays open (a pipe) so nothing but the timeout can end the run."""
    require_guest()
    petrel = require_petrel("default")
    limit = 20
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    start = time.monotonic()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen([str(petrel), "run", "--timeout", str(limit)],
                                env=child_env(), stdin=subprocess.PIPE,
                                stdout=out, stderr=err, start_new_session=True)
    try:
        proc.stdin.write(b"sleep 1000\n")
        proc.stdin.flush()
        try:
            proc.wait(timeout=limit + SLACK)
        except subprocess.TimeoutExpired:
            pass
        elapsed = time.monotonic() - start
    finally:
        if proc.poll() is None:
            kill_group(proc)
            proc.wait()
            killed = True
        else:
            killed = False
        proc.stdin.close()
    log = (f"--- stdout (tail) ---\n{out_path.read_text(errors='replace')[-3000:]}\n"
           f"--- stderr (tail) ---\n{err_path.read_text(errors='replace')[-3000:]}")
    check(not killed, f"petrel ignored --timeout {limit} (killed after {limit + SLACK} s)", log)
    check(proc.returncode == EXIT_TIMEOUT,
          f"exit status {proc.returncode}, expected {EXIT_TIMEOUT}", log)
    check(limit - 1 <= elapsed <= limit + 15,
          f"--timeout {limit} ended the run after {elapsed:.1f} s", log)


# --- (f): SMP and idle --------------------------------------------------------

def test_boot_two_cpus():
    """--cpus 2: both harts come up under OpenSBI's HSM and Linux uses them."""
    result = _boot("default", "nproc\npoweroff -f\n", extra_args=("--cpus", "2"))
    assert_exit(result, EXIT_POWEROFF, "poweroff -f with --cpus 2")
    check(any("Brought up 1 node, 2 CPUs" in line for line in result.lines),
          "the kernel did not bring up 2 CPUs", result)
    check("2" in [line.strip() for line in result.lines], "nproc did not print 2", result)


def test_boot_interpreter_two_cpus():
    """The interpreter stays the reference (the JIT is the default on x86-64
    hosts): the same session with --cpu-mode interp, on 2 harts, each on
    its own host thread."""
    result = _boot("default", "nproc\n" + SESSION, extra_args=("--cpu-mode", "interp",
                                                               "--cpus", "2"))
    _check_session(result)
    check("2" in [line.strip() for line in result.lines], "nproc did not print 2", result)


def _child_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_idle_guest_sleeps_in_wfi():
    """An idle guest must not spin a host CPU: WFI sleeps until the next timer
    or input.  Two boots differ only by 8 s of `sleep` in the guest; a VMM
    that busy-waited would spend about 8 s more CPU on the second."""
    t0 = _child_cpu_seconds()
    quick = _boot("default", "poweroff -f\n")
    t1 = _child_cpu_seconds()
    idle = _boot("default", "sleep 8\npoweroff -f\n")
    t2 = _child_cpu_seconds()
    assert_exit(quick, EXIT_POWEROFF, "poweroff -f")
    assert_exit(idle, EXIT_POWEROFF, "sleep 8; poweroff -f")
    check(idle.elapsed >= 8, f"the guest's `sleep 8` took only {idle.elapsed:.1f} s", idle)
    extra = (t2 - t1) - (t1 - t0)
    check(extra < 4, f"8 s of guest idle cost {extra:.1f} s of host CPU (WFI spins?)", idle)
