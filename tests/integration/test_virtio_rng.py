"""virtio-rng on the riscv64 board: the default guest's own Linux drivers
(pci-host-ecam-generic, virtio_pci, virtio_rng) find the device Petrel puts on
its PCI bus with `--device virtio-rng`, and /dev/hwrng delivers entropy.

The guest's virtio_rng is a module: the default guest's initramfs carries it
(images/lib-apt.sh, guest_modules) and /init loads it.  An initramfs without
it fails these tests with a message saying so; rebuild the guest with
`PETREL_GUEST_REBUILD=1 make guest`.
"""

import gzip
import re

import pytest

from petrel_helpers import (EXIT_POWEROFF, FLAVORS, assert_exit,
                            assert_no_sanitizer_report, check, fail,
                            marker_values, require_guest, run_petrel)

BOOT_TIMEOUT = 300
ASAN_BOOT_TIMEOUT = 600
SLACK = 60

# Markers built by shell arithmetic, so the echoed command line (which
# contains "$((0))") never matches what the command prints ("...0=").
SESSION = r"""
for d in /sys/bus/pci/devices/*; do echo "PCI$((0))=${d##*/} $(cat $d/vendor) $(cat $d/device)"; done
echo "RNG$((0))=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null || cat /sys/devices/virtual/misc/hw_random/rng_current 2>/dev/null)"
echo "BYTES$((0))=$(dd if=/dev/hwrng bs=64 count=4 2>/dev/null | wc -c)"
dd if=/dev/hwrng bs=64 count=4 2>/dev/null | od -x
echo "IRQ$((0))=$(grep -c virtio /proc/interrupts)"
poweroff -f
"""


def _initramfs_names(path):
    """File names in a (possibly concatenated) gzip'd newc cpio archive."""
    data = gzip.decompress(path.read_bytes())
    names, pos = [], 0
    while pos + 110 <= len(data):
        if data[pos:pos + 6] not in (b"070701", b"070702"):
            break
        fsize = int(data[pos + 54:pos + 62], 16)
        nsize = int(data[pos + 94:pos + 102], 16)
        name = data[pos + 110:pos + 110 + nsize - 1].decode(errors="replace")
        if name == "TRAILER!!!":
            # concatenated archives: skip the padding to the next header
            pos = data.find(b"0707", pos + 110 + nsize)
            if pos < 0:
                break
            continue
        names.append(name)
        pos = (pos + 110 + nsize + 3) & ~3
        pos = (pos + fsize + 3) & ~3
    return names


def _require_rng_module(guest_dir):
    names = _initramfs_names(guest_dir / "initramfs.cpio.gz")
    if not any(re.search(r"virtio[-_]rng\.ko$", n) for n in names):
        fail("the default guest's initramfs has no virtio_rng module, so the guest "
             "cannot drive virtio-rng; rebuild it with `PETREL_GUEST_REBUILD=1 make guest` "
             "(images/lib-apt.sh adds the virtio modules)")


def _check_guest(result):
    assert_exit(result, EXIT_POWEROFF, "poweroff -f")
    pci = marker_values(result, "PCI")
    check(pci, "no PCI devices in /sys/bus/pci/devices", result)
    check(any(p.endswith(" 0x1af4 0x1044") for p in pci),
          f"no virtio-rng (1af4:1044) among the PCI devices: {pci}", result)
    rng = marker_values(result, "RNG")
    check(rng and rng[0].startswith("virtio_rng"),
          f"hw_random's rng_current is {rng[0] if rng else 'missing'!r}, not virtio_rng "
          "(did the guest load the virtio_rng module?)", result)
    nbytes = marker_values(result, "BYTES")
    check(nbytes == ["256"], f"dd from /dev/hwrng gave {nbytes} bytes, expected 256", result)
    # od -x: 16 lines of 8 words, then the end offset 0400 (octal 256)
    rows = [line.split() for line in result.lines
            if re.fullmatch(r"[0-7]{7}( [0-9a-f]{4}){8}", line.strip())]
    words = [w for row in rows for w in row[1:]]
    check(len(rows) == 16, f"od printed {len(rows)} rows of data, expected 16", result)
    check("0000400" in [line.strip() for line in result.lines],
          "od did not end at offset 0000400 (256 bytes)", result)
    check(len(set(words)) > 100, f"256 bytes from /dev/hwrng look constant: {words[:16]}",
          result)
    irqs = marker_values(result, "IRQ")
    check(irqs and irqs[0] != "0", "no virtio interrupt line in /proc/interrupts", result)


@pytest.mark.parametrize("flavor", list(FLAVORS))
def test_virtio_rng_in_guest(flavor):
    guest = require_guest()
    _require_rng_module(guest)
    timeout = ASAN_BOOT_TIMEOUT if flavor == "asan" else BOOT_TIMEOUT
    result = run_petrel(flavor, ["run", "--device", "virtio-rng", "--timeout", str(timeout)],
                        input=SESSION, timeout=timeout + SLACK)
    if flavor == "asan":
        assert_no_sanitizer_report(result)
    _check_guest(result)
    check("petrel: guest:" not in result.stderr,
          "petrel logged guest misbehaviour while Linux drove the device", result)


def test_no_pci_devices_by_default():
    """Without --device the PCI bus is there but empty."""
    require_guest()
    result = run_petrel("default", ["run", "--timeout", str(BOOT_TIMEOUT)],
                        input='echo "N$((0))=$(ls /sys/bus/pci/devices | wc -l)"\n'
                              'echo "H$((0))=$(ls -d /sys/bus/pci/devices 2>&1)"\npoweroff -f\n',
                        timeout=BOOT_TIMEOUT + SLACK)
    assert_exit(result, EXIT_POWEROFF, "poweroff -f")
    check(marker_values(result, "H") == ["/sys/bus/pci/devices"], "no PCI bus in the guest", result)
    check(marker_values(result, "N") == ["0"], "PCI devices without --device", result)


def test_unknown_device_is_an_error():
    for flavor in FLAVORS:
        result = run_petrel(flavor, ["run", "--device", "virtio-nope"], timeout=60)
        check(result.returncode == 1 and "virtio-nope" in result.stderr
              and "virtio-rng" in result.stderr,
              "--device virtio-nope: expected exit status 1 naming the known devices", result)
