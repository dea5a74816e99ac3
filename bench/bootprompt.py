"""Shared by the boot benchmarks (bench/boot-time.sh, bench/smp-scaling.py):
drive one boot of the default guest to its shell prompt, type `poweroff -f`
there, and read the console to the end."""

import os
import select
import time

PROMPT = b"petrel:/# "


class BootTimeout(RuntimeError):
    """No end of output within the timeout; .out holds what was read."""

    def __init__(self, timeout, out):
        super().__init__(f"no poweroff within {timeout:.0f} s")
        self.out = out


def drive(proc, start, timeout):
    """Read proc's stdout until EOF, typing `poweroff -f` at the first
    prompt.  Returns (output, seconds from `start` to the prompt or None).
    After `timeout` seconds from `start` it kills proc and raises
    BootTimeout."""
    out, prompt_at = b"", None
    fd = proc.stdout.fileno()
    while True:
        left = start + timeout - time.monotonic()
        if left <= 0:
            proc.kill()
            proc.wait()
            raise BootTimeout(timeout, out)
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        data = os.read(fd, 65536)
        if not data:
            return out, prompt_at
        out += data
        if prompt_at is None and PROMPT in out:
            prompt_at = time.monotonic() - start
            proc.stdin.write(b"poweroff -f\n")
            proc.stdin.flush()
