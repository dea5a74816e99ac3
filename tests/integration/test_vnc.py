"""The graphical console: `petrel run --vnc` boots the default riscv64 guest
with a virtio-gpu, keyboard and tablet; the guest's Linux (virtio_gpu, DRM
fbdev emulation, fbcon) shows its console on the gpu's scanout, and /init
starts a shell on tty1 there.  A tiny RFB client written here (protocol
3.8, security None, 32 bpp, Raw encoding) reads the screen and types a
command; the serial console works alongside.

One Linux boot for every check.  The framebuffer is saved as a PNG in
build/test-artifacts/vnc-console.png (zlib only, no imaging library).
"""

import os
import socket
import struct
import time
import zlib

import pexpect
import pytest

from petrel_helpers import BUILD_DIR, petrel_env, require_guest, require_petrel

BOOT_TIMEOUT = 240
ARTIFACTS = BUILD_DIR / "test-artifacts"


class RFB:
    """A minimal RFB 3.8 client: None security, 32 bpp BGRX, Raw encoding."""

    def __init__(self, host, port, timeout=10):
        self.s = socket.create_connection((host, port), timeout=timeout)
        ver = self._read(12)
        assert ver.startswith(b"RFB 003."), ver
        self.s.sendall(b"RFB 003.008\n")
        n = self._read(1)[0]
        assert n > 0, "server refused: " + self._read(struct.unpack(">I", self._read(4))[0]).decode()
        types = self._read(n)
        assert 1 in types, f"no None security among {list(types)}"
        self.s.sendall(b"\x01")
        assert struct.unpack(">I", self._read(4))[0] == 0, "security result not OK"
        self.s.sendall(b"\x01")                 # ClientInit: shared
        self.w, self.h = struct.unpack(">HH", self._read(4))
        self._read(16)                          # the server's pixel format
        self.name = self._read(struct.unpack(">I", self._read(4))[0])
        # SetPixelFormat: 32 bpp, depth 24, little endian, true colour,
        # max 255 each, shifts R 16 G 8 B 0 (bytes B, G, R, X)
        self.s.sendall(struct.pack(">BxxxBBBBHHHBBBxxx", 0, 32, 24, 0, 1, 255, 255, 255,
                                   16, 8, 0))
        # SetEncodings: Raw, DesktopSize (-223)
        self.s.sendall(struct.pack(">BxHii", 2, 2, 0, -223))
        self.fb = bytearray(self.w * self.h * 4)

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError("VNC server closed the connection")
            buf += chunk
        return buf

    def frame(self, incremental=False):
        """Request an update and apply it; returns the rectangles received."""
        self.s.sendall(struct.pack(">BBHHHH", 3, int(incremental), 0, 0, self.w, self.h))
        while True:
            t = self._read(1)[0]
            if t == 0:
                break
            if t == 2:                          # Bell
                continue
            if t == 3:                          # ServerCutText
                self._read(3)
                self._read(struct.unpack(">I", self._read(4))[0])
                continue
            raise AssertionError(f"unexpected server message {t}")
        (nrect,) = struct.unpack(">xH", self._read(3))
        rects = []
        for _ in range(nrect):
            x, y, w, h, enc = struct.unpack(">HHHHi", self._read(12))
            if enc == -223:                     # DesktopSize
                self.w, self.h = w, h
                self.fb = bytearray(w * h * 4)
                rects.append((x, y, w, h, enc))
                continue
            assert enc == 0, f"encoding {enc}, asked for Raw only"
            data = self._read(w * h * 4)
            for row in range(h):
                o = ((y + row) * self.w + x) * 4
                self.fb[o:o + w * 4] = data[row * w * 4:(row + 1) * w * 4]
            rects.append((x, y, w, h, enc))
        return rects

    def key(self, keysym, down):
        self.s.sendall(struct.pack(">BBxxI", 4, int(down), keysym))

    def type_text(self, text):
        for ch in text:
            ks = 0xff0d if ch == "\n" else ord(ch)
            self.key(ks, True)
            self.key(ks, False)

    def pointer(self, x, y, buttons=0):
        self.s.sendall(struct.pack(">BBHH", 5, buttons, x, y))

    def close(self):
        self.s.close()


def lit_pixels(fb, w, h, rows=None):
    """Pixels that are not black (fbcon's background) in the given rows."""
    y0, y1 = rows or (0, h)
    n = 0
    mv = memoryview(fb)
    for y in range(y0, y1):
        row = mv[y * w * 4:(y + 1) * w * 4]
        # B, G, R of each pixel; count the non-zero ones
        n += sum(1 for i in range(0, len(row), 4) if row[i] or row[i + 1] or row[i + 2])
    return n


def write_png(path, fb, w, h):
    raw = bytearray()
    for y in range(h):
        raw.append(0)
        row = fb[y * w * 4:(y + 1) * w * 4]
        for i in range(0, len(row), 4):
            raw += bytes((row[i + 2], row[i + 1], row[i]))

    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
           chunk(b"IDAT", zlib.compress(bytes(raw), 6)) + chunk(b"IEND", b""))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def guest():
    petrel = require_petrel("default")
    require_guest()
    port = free_port()
    child = pexpect.spawn(str(petrel), ["run", "--vnc", f"127.0.0.1:{port}",
                                        "--timeout", str(BOOT_TIMEOUT)],
                          env=petrel_env("default"), encoding="utf-8", timeout=BOOT_TIMEOUT,
                          codec_errors="replace")
    t0 = time.monotonic()
    try:
        child.expect(f"VNC server on 127.0.0.1:{port}", timeout=20)
        child.expect(r"petrel:[^\n]*# ", timeout=BOOT_TIMEOUT)
        boot_s = time.monotonic() - t0
        yield child, port, boot_s
    finally:
        if child.isalive():
            child.sendline("poweroff -f")
            try:
                child.expect(pexpect.EOF, timeout=30)
            except pexpect.TIMEOUT:
                child.kill(9)
        child.close()


def test_vnc_console(guest):
    child, port, boot_s = guest
    # the serial console works alongside the display
    child.sendline("echo SER$((6*7)); cat /sys/class/graphics/fb0/name; "
                   "cat /sys/class/tty/tty0/active")
    child.expect("SER42", timeout=30)
    child.expect(r"petrel:[^\n]*# ", timeout=30)
    assert "virtio" in child.before, f"no virtio fb0 in the guest: {child.before!r}"

    c = RFB("127.0.0.1", port)
    try:
        assert (c.w, c.h) == (1024, 768), f"screen {c.w}x{c.h}, expected the gpu's 1024x768"
        # the console text: fbcon draws the boot log / tty1's shell
        deadline = time.monotonic() + 60
        while True:
            c.frame()
            text = lit_pixels(c.fb, c.w, c.h, (0, 200))
            if text > 2000 or time.monotonic() > deadline:
                break
            time.sleep(1)
        write_png(ARTIFACTS / "vnc-console.png", c.fb, c.w, c.h)
        assert text > 2000, (f"the screen's top 200 rows have only {text} lit pixels: no "
                             "console text (see build/test-artifacts/vnc-console.png)")
        colours = {bytes(c.fb[i:i + 3]) for i in range(0, c.w * 200 * 4, 4)}
        assert len(colours) >= 2, "the console shows a single colour"

        before = bytes(c.fb)
        # type a command on tty1 as keystrokes: shifted characters included
        c.type_text("echo VNC$((6*7)) Hi!\n")
        deadline = time.monotonic() + 30
        changed = 0
        while time.monotonic() < deadline:
            time.sleep(1)
            c.frame()
            changed = sum(1 for i in range(0, len(before), 4)
                          if before[i:i + 3] != c.fb[i:i + 3])
            if changed > 600:
                break
        write_png(ARTIFACTS / "vnc-console-typed.png", c.fb, c.w, c.h)
        assert changed > 600, (f"only {changed} pixels changed after typing a command: the "
                               "keys did not reach tty1 (see vnc-console-typed.png)")
        # the pointer reaches the tablet without upsetting anything
        c.pointer(10, 10, 0)
        c.pointer(500, 400, 1)
        c.pointer(500, 400, 0)
        c.frame(incremental=True)
    finally:
        c.close()

    # the guest saw the tablet and keyboard as input devices
    child.sendline("cat /proc/bus/input/devices | grep -c 'Petrel Virtio'")
    child.expect(r"\n(\d+)\r*\n", timeout=30)
    assert int(child.match.group(1)) == 2, "keyboard and tablet not both in the guest"
    print(f"boot to the serial prompt with --vnc: {boot_s:.1f} s")
