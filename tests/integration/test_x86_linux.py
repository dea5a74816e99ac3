"""Debian 12's x86-64 cloud kernel (build/guest/x86_64, `make guest-x86`) on
the kvm engine.  Slow on PVM hosts: guest kernel code is emulated there.

On a host with hardware virtualization the guest reaches its shell and runs
commands.  On a PVM host (HOST-NOTES.md) guest user mode cannot make system
calls, so the kernel gets as far as starting /init, and the run must then
end by itself (init dies: kernel panic, or an emulation failure Petrel
reports); what is checked there is that boot up to /init works and that
Petrel never hangs.
"""

import os

import pytest

from petrel_helpers import (EXIT_ERROR, EXIT_PANIC, EXIT_POWEROFF, GUEST_DIR, check,
                            require_file, run_petrel, status_text)

X86_GUEST = GUEST_DIR.parent / "x86_64"
PVM = os.path.exists("/sys/module/kvm_pvm")
TIMEOUT = 1500 if PVM else 300

needs_kvm = pytest.mark.skipif(not os.access("/dev/kvm", os.R_OK | os.W_OK),
                               reason="SKIPPED: no usable /dev/kvm on this host; the x86_64 "
                                      "Linux boot test cannot run here")


@needs_kvm
@pytest.mark.slow
def test_debian_x86_kernel_boots():
    require_file(X86_GUEST / "vmlinuz", "build it with `make guest-x86`")
    require_file(X86_GUEST / "initramfs.cpio.gz", "build it with `make guest-x86`")
    result = run_petrel("default", ["run", "--arch", "x86_64", "--memory", "192M",
                                    "--timeout", str(TIMEOUT)],
                        input="uname -m\npoweroff -f\n", timeout=TIMEOUT + 60)
    lines = [line.strip() for line in result.lines]
    check(any("Linux version 6.1" in line for line in lines),
          "the kernel printed no banner", result)
    check(any("Run /init as init process" in line for line in lines),
          f"the kernel did not reach /init ({status_text(result)})", result)
    if PVM:
        check(not result.timed_out and result.returncode in (EXIT_PANIC, EXIT_ERROR),
              f"after /init on PVM: {status_text(result)}, expected the run to end "
              "by itself (panic or reported emulation failure)", result)
    else:
        check(result.returncode == EXIT_POWEROFF, f"{status_text(result)}", result)
        check("x86_64" in lines, "no output line 'x86_64' from `uname -m`", result)
