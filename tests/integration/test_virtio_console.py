"""virtio-console on the riscv64 board: with `--device
virtio-console,socket=PATH` the default guest's Linux (virtio_console is
built into its kernel) gets /dev/hvc0, and a client of the unix socket PATH
is the other end of it.

The session, driven over the serial console while the test is the socket's
client:
  - a line the client sends while the guest is still booting (no receive
    buffers yet) is read by `head -n1 /dev/hvc0` once the shell is up;
  - `echo hello-from-guest > /dev/hvc0` reaches the client;
  - the client disconnects and reconnects, then sends a line that a running
    `head -n1 /dev/hvc0` prints on the serial console;
  - after `poweroff -f` petrel exits 0 and the socket is gone.
Bad input (unknown option, no backend, a path where no socket can be
created, a regular file in the way) is a one-line error and exit status 1;
a stale socket left by a killed petrel is replaced.
"""

import io
import os
import socket
import time

import pexpect
import pexpect.popen_spawn
import pytest

from petrel_helpers import (EXIT_POWEROFF, EXIT_TIMEOUT, FLAVORS, assert_device_error,
                            assert_exit, check, fail, petrel_env, require_guest,
                            require_petrel, run_petrel)

PROMPT = "petrel:/# "
BOOT_TIMEOUT = 300
ASAN_BOOT_TIMEOUT = 600
STEP_TIMEOUT = 120
SLACK = 60


class Session:
    """petrel on pipes (pexpect) plus a client of its console socket."""

    def __init__(self, flavor, sock_path, timeout):
        self.transcript = io.StringIO()
        self.sock_path = str(sock_path)
        self.sock = None
        self.received = b""
        cmd = [str(require_petrel(flavor)), "run", "--timeout", str(timeout),
               "--device", f"virtio-console,socket={self.sock_path}"]
        self.child = pexpect.popen_spawn.PopenSpawn(
            cmd, env=petrel_env(flavor), encoding="utf-8", codec_errors="replace",
            timeout=timeout + SLACK)
        self.child.logfile_read = self.transcript

    def details(self):
        return (f"--- serial console + stderr (tail) ---\n{self.transcript.getvalue()[-4000:]}\n"
                f"--- bytes the socket client received (tail) ---\n{self.received[-1000:]!r}")

    def fail(self, what):
        fail(what, self.details())

    def expect(self, what, pattern, timeout=STEP_TIMEOUT):
        try:
            self.child.expect_exact(pattern, timeout=timeout)
            return
        except (pexpect.TIMEOUT, pexpect.EOF) as e:
            error = f"{what} ({type(e).__name__})"
        self.fail(error)

    def connect(self, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock_path)
                self.sock = s
                return
            except OSError as e:
                s.close()
                if time.monotonic() > deadline:
                    self.fail(f"cannot connect to {self.sock_path}: {e}")
                time.sleep(0.05)

    def disconnect(self):
        self.sock.close()
        self.sock = None

    def wait_socket(self, text, timeout=STEP_TIMEOUT):
        """Read the socket until `text` has arrived."""
        deadline = time.monotonic() + timeout
        while text.encode() not in self.received:
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail(f"the socket client did not receive {text!r}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            if not data:
                self.fail(f"petrel closed the console socket before {text!r} arrived")
            self.received += data

    def close(self):
        if self.sock:
            self.sock.close()
        if self.child.proc.poll() is None:
            self.child.proc.kill()
            self.child.proc.wait()


@pytest.mark.parametrize("flavor", list(FLAVORS))
def test_virtio_console_in_guest(flavor, tmp_path):
    require_guest()
    timeout = ASAN_BOOT_TIMEOUT if flavor == "asan" else BOOT_TIMEOUT
    sock_path = tmp_path / "console.sock"
    s = Session(flavor, sock_path, timeout)
    try:
        # Connect and send while the guest boots: the line must wait for
        # the guest's driver and reader, not be lost.
        s.connect()
        s.sock.sendall(b"early-line\n")
        s.expect("no shell prompt", PROMPT, timeout=timeout)
        s.child.sendline('cat /sys/bus/pci/devices/*/device | sed "s/^/PCIDEV:/"')
        s.expect("virtio-console (device 0x1043) is not on the guest's PCI bus",
                 "PCIDEV:0x1043")
        s.expect("no prompt", PROMPT)
        s.child.sendline("head -n1 /dev/hvc0 | sed 's/^/GOT:/'")
        s.expect("the line sent during boot did not reach the guest's /dev/hvc0",
                 "GOT:early-line")
        s.expect("no prompt", PROMPT)

        s.child.sendline("echo hello-from-guest > /dev/hvc0")
        s.wait_socket("hello-from-guest")
        s.expect("no prompt", PROMPT)

        # A new client gets the console.
        s.disconnect()
        s.connect()
        s.child.sendline("head -n1 /dev/hvc0 | sed 's/^/GOT:/'")
        time.sleep(1)
        s.sock.sendall(b"hello-from-host\n")
        s.expect("the line the reconnected client sent did not reach the guest",
                 "GOT:hello-from-host")
        s.expect("no prompt", PROMPT)
        s.child.sendline("echo again-from-guest > /dev/hvc0")
        s.wait_socket("again-from-guest")
        s.expect("no prompt", PROMPT)

        s.child.sendline("poweroff -f")
        s.expect("petrel did not exit after poweroff -f", pexpect.EOF)
        status = s.child.proc.wait(timeout=30)
    finally:
        s.close()
    result_text = s.transcript.getvalue()
    if status != EXIT_POWEROFF:
        s.fail(f"poweroff -f: exit status {status}, expected {EXIT_POWEROFF}")
    check("petrel: guest:" not in result_text,
          "petrel logged guest misbehaviour while Linux drove virtio-console", s.details())
    if flavor == "asan":
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            check(marker not in result_text, f"sanitizer report: {marker}", s.details())
    check(not os.path.lexists(sock_path), f"{sock_path} was not removed at exit")


@pytest.fixture(params=list(FLAVORS))
def flavor(request):
    return request.param


def test_bad_options(flavor):
    require_guest()
    assert_device_error(flavor, "virtio-console,bogus=1", "unknown option 'bogus'")
    assert_device_error(flavor, "virtio-console", "virtio-console needs a backend: socket=PATH")
    assert_device_error(flavor, "virtio-console,socket", "socket= needs a path")
    assert_device_error(flavor, "virtio-console,socket=/tmp/a.sock,file=/tmp/b.log", "not both")


def test_bad_socket_paths(flavor, tmp_path):
    require_guest()
    regular = tmp_path / "regular"
    regular.write_text("keep me\n")
    # below a regular file: no socket can be created there, even by root
    assert_device_error(flavor, f"virtio-console,socket={regular}/console.sock",
         f"cannot create socket '{regular}/console.sock': Not a directory")
    assert_device_error(flavor, f"virtio-console,socket={tmp_path}/missing/console.sock",
         "No such file or directory")
    assert_device_error(flavor, f"virtio-console,socket={regular}", "exists and is not a socket")
    check(regular.read_text() == "keep me\n", "petrel replaced a regular file")
    assert_device_error(flavor, f"virtio-console,socket={tmp_path}/{'x' * 120}", "is too long")


def test_stale_socket_is_replaced(tmp_path):
    """A socket file nobody listens on (petrel was killed) is taken over,
    and removed when petrel exits."""
    require_guest()
    sock_path = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(sock_path))
    s.close()
    check(os.path.lexists(sock_path), "test set-up: no stale socket")
    result = run_petrel("default", ["run", "--timeout", "1", "--device",
                                    f"virtio-console,socket={sock_path}"], timeout=60)
    assert_exit(result, EXIT_TIMEOUT, "--timeout 1")
    check(not os.path.lexists(sock_path), "the socket was not removed at exit", result)
