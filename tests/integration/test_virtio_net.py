"""virtio-net with user-mode NAT (libslirp) on the riscv64 board, driven by
the default guest's own Linux virtio_net driver and busybox tools.

One boot per build flavour, driven over the serial console:
  - the card is on the guest's PCI bus (device 0x1041) as eth0 with the MAC
    given by mac=, and its link is up;
  - udhcpc gets the lease 10.0.2.15 from slirp's DHCP server (the
    initramfs has no udhcpc script: the test writes one into /tmp);
  - the guest fetches a file from an HTTP server the test runs on the host
    loopback (127.0.0.1, random port), reached through the NAT as
    10.0.2.2:PORT, and its md5sum matches the host's;
  - busybox nslookup in the guest asks a DNS responder the test runs on
    127.0.0.1 (UDP through the NAT, both ways);
  - busybox httpd in the guest on port 8080 is reached by the test through
    hostfwd=tcp:127.0.0.1:HOSTPORT-:8080; hostfwd=udp holds its host port
    (the guest's busybox has no UDP server to test it end to end);
  - poweroff -f ends petrel with exit status 0 and no guest misbehaviour
    logged.
Bad options (unknown option, malformed hostfwd, bad mac, another backend, a
host port in use) are one line on stderr and exit status 1.  All traffic
stays on the host's loopback.
"""

import functools
import hashlib
import http.server
import io
import os
import socket
import threading
import time
import urllib.request

import pexpect
import pexpect.popen_spawn
import pytest

from petrel_helpers import (EXIT_POWEROFF, FLAVORS, assert_device_error, check, fail,
                            petrel_env, require_guest, require_petrel)

PROMPT = "petrel:/# "
BOOT_TIMEOUT = 300
ASAN_BOOT_TIMEOUT = 600
STEP_TIMEOUT = 180
SLACK = 60
GUEST_MAC = "52:54:00:ab:cd:ef"
GUEST_HTTP_PORT = 8080
GUEST_UDP_PORT = 5555
DNS_ANSWER = "10.9.8.7"

# The initramfs has no /usr/share/udhcpc/default.script: this one configures
# the interface and the default route from what udhcpc exports.
DHCP_SCRIPT = (
    "printf '#!/bin/sh\\ncase \"$1\" in bound|renew) ifconfig $interface $ip netmask "
    "$subnet up; route add default gw $router dev $interface;; deconfig) ifconfig "
    "$interface 0.0.0.0 up;; esac\\n' > /tmp/dhcp.sh; chmod +x /tmp/dhcp.sh")


def free_port(kind=socket.SOCK_STREAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class HostHttp:
    """A static HTTP server on 127.0.0.1:random, in a thread."""

    def __init__(self, directory):
        handler = functools.partial(QuietHandler, directory=str(directory))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Session:
    def __init__(self, flavor, device, timeout):
        self.transcript = io.StringIO()
        cmd = [str(require_petrel(flavor)), "run", "--timeout", str(timeout),
               "--device", device]
        self.child = pexpect.popen_spawn.PopenSpawn(
            cmd, env=petrel_env(flavor), encoding="utf-8", codec_errors="replace",
            timeout=timeout + SLACK)
        self.child.logfile_read = self.transcript

    def details(self):
        return f"--- serial console + stderr (tail) ---\n{self.transcript.getvalue()[-5000:]}"

    def fail(self, what):
        fail(what, self.details())

    def expect(self, what, pattern, timeout=STEP_TIMEOUT):
        try:
            return self.child.expect_exact(pattern, timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF) as e:
            self.fail(f"{what} ({type(e).__name__})")

    def run(self, command, marker, what, timeout=STEP_TIMEOUT):
        """Run a shell command that ends by printing `MARKER0=value`; return value."""
        self.child.sendline(command)
        try:
            self.child.expect(marker + r"0=([^\r\n]*)\r?\n", timeout=timeout)
        except (pexpect.TIMEOUT, pexpect.EOF) as e:
            self.fail(f"{what}: no {marker} line ({type(e).__name__})")
        value = self.child.match.group(1)
        self.expect(f"no prompt after {what}", PROMPT)
        return value.strip()

    def close(self):
        if self.child.proc.poll() is None:
            self.child.proc.kill()
            self.child.proc.wait()


class HostDns:
    """A DNS responder on 127.0.0.1:random (UDP), in a thread: every A query
    gets DNS_ANSWER, other types an empty answer."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                q, peer = self.sock.recvfrom(512)
            except OSError:
                continue
            end = 12
            while end < len(q) and q[end]:
                end += 1 + q[end]
            end += 5                        # the root label, qtype, qclass
            if len(q) < end:
                continue
            self.queries += 1
            qtype = int.from_bytes(q[end - 4:end - 2], "big")
            answer = b""
            if qtype == 1:
                answer = (b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04"
                          + bytes(int(x) for x in DNS_ANSWER.split(".")))
            header = q[:2] + b"\x81\x80\x00\x01" + (b"\x00\x01" if answer else b"\x00\x00") \
                + b"\x00\x00\x00\x00"
            self.sock.sendto(header + q[12:end] + answer, peer)

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


def _fetch(url, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                return r.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.parametrize("flavor", list(FLAVORS))
def test_nat_and_hostfwd(flavor, tmp_path):
    require_guest()
    timeout = ASAN_BOOT_TIMEOUT if flavor == "asan" else BOOT_TIMEOUT
    www = tmp_path / "www"
    www.mkdir()
    blob = os.urandom(1 << 20)
    (www / "blob.bin").write_bytes(blob)
    want_md5 = hashlib.md5(blob).hexdigest()
    http_server = HostHttp(www)
    dns = HostDns()
    tcp_port = free_port()
    udp_port = free_port(socket.SOCK_DGRAM)
    device = (f"virtio-net,net=user,mac={GUEST_MAC},"
              f"hostfwd=tcp:127.0.0.1:{tcp_port}-:{GUEST_HTTP_PORT},"
              f"hostfwd=udp:127.0.0.1:{udp_port}-10.0.2.15:{GUEST_UDP_PORT}")
    s = Session(flavor, device, timeout)
    try:
        s.expect("no shell prompt", PROMPT, timeout=timeout)
        devs = s.run('echo "PCI$((0))=$(cat /sys/bus/pci/devices/*/device | tr "\\n" " ")"',
                     "PCI", "listing PCI devices")
        check("0x1041" in devs.split(), f"virtio-net (0x1041) not on the PCI bus: {devs}",
              s.details())
        mac = s.run('echo "MAC$((0))=$(cat /sys/class/net/eth0/address)"', "MAC", "eth0's MAC")
        check(mac == GUEST_MAC, f"eth0's MAC is {mac!r}, mac= gave {GUEST_MAC}", s.details())

        s.child.sendline(DHCP_SCRIPT)
        s.expect("no prompt after writing the udhcpc script", PROMPT)
        rc = s.run('udhcpc -i eth0 -s /tmp/dhcp.sh -n -q -t 10 -T 3; echo "DHCP$((0))=$?"',
                   "DHCP", "udhcpc")
        check(rc == "0", f"udhcpc failed (exit status {rc})", s.details())
        addr = s.run("echo \"ADDR$((0))=$(ifconfig eth0 | sed -n "
                     "'s/.*inet addr:\\([^ ]*\\).*Mask:\\([^ ]*\\).*/\\1 \\2/p')\"",
                     "ADDR", "eth0's address")
        check(addr == "10.0.2.15 255.255.255.0",
              f"eth0 has {addr!r}, want 10.0.2.15 255.255.255.0", s.details())
        carrier = s.run('echo "CARRIER$((0))=$(cat /sys/class/net/eth0/carrier)"', "CARRIER",
                        "eth0's carrier")
        check(carrier == "1", f"eth0's link is not up (carrier {carrier!r})", s.details())

        # guest -> host through the NAT
        got = s.run(f"wget -q -O /tmp/blob http://10.0.2.2:{http_server.port}/blob.bin; "
                    f"echo \"WGET$((0))=$? $(md5sum < /tmp/blob)\"", "WGET",
                    "wget through the NAT")
        check(got.split()[:2] == ["0", want_md5],
              f"wget from the host: {got!r}, want exit 0 and md5 {want_md5}", s.details())

        # host -> guest through hostfwd (TCP)
        page = f"hello-from-guest-{os.getpid()}"
        rc = s.run(f"mkdir -p /tmp/www && echo {page} > /tmp/www/index.html && "
                   f"busybox httpd -p {GUEST_HTTP_PORT} -h /tmp/www; echo \"HTTPD$((0))=$?\"",
                   "HTTPD", "starting httpd in the guest")
        check(rc == "0", f"busybox httpd did not start (exit status {rc})", s.details())
        try:
            body = _fetch(f"http://127.0.0.1:{tcp_port}/index.html", 120)
        except OSError as e:
            s.fail(f"the host could not fetch the guest's page through hostfwd: {e}")
        check(body.decode(errors="replace").strip() == page,
              f"hostfwd tcp returned {body[:100]!r}, want {page!r}", s.details())

        # guest -> host UDP through the NAT: busybox nslookup asks a DNS
        # responder the test runs on 127.0.0.1 (as 10.0.2.2:PORT)
        got = s.run(f"echo \"NSLOOKUP$((0))=$(nslookup -port={dns.port} petrel.test 10.0.2.2 "
                    f"2>&1 | grep -o '{DNS_ANSWER}' | head -n1)\"", "NSLOOKUP",
                    "nslookup through the NAT")
        check(got == DNS_ANSWER, f"nslookup through the NAT got {got!r}, want {DNS_ANSWER}",
              s.details())
        check(dns.queries > 0, "the host's DNS responder saw no query", s.details())

        # hostfwd=udp: petrel holds the host port (the guest's busybox has no
        # UDP server to answer through it: no nc -u, udpsvd or dnsd)
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.bind(("127.0.0.1", udp_port))
            bound = False
        except OSError:
            bound = True
        finally:
            probe.close()
        check(bound, f"hostfwd=udp: nothing listens on 127.0.0.1:{udp_port}", s.details())

        s.child.sendline("poweroff -f")
        s.expect("petrel did not exit after poweroff -f", pexpect.EOF)
        status = s.child.proc.wait(timeout=30)
    finally:
        s.close()
        http_server.close()
        dns.close()
    text = s.transcript.getvalue()
    if status != EXIT_POWEROFF:
        s.fail(f"poweroff -f: exit status {status}, expected {EXIT_POWEROFF}")
    check("petrel: guest:" not in text,
          "petrel logged guest misbehaviour while Linux drove virtio-net", s.details())
    if flavor == "asan":
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            check(marker not in text, f"sanitizer report: {marker}", s.details())


@pytest.fixture(params=list(FLAVORS))
def flavor(request):
    return request.param


def test_bad_options(flavor):
    require_guest()
    assert_device_error(flavor, "virtio-net,bogus=1", "unknown option 'bogus'")
    assert_device_error(flavor, "virtio-net,net=bogus", "net=bogus: unknown backend")
    assert_device_error(flavor, "virtio-net,mac=52:54:00:12:34", "mac=52:54:00:12:34: expected six hex bytes")
    assert_device_error(flavor, "virtio-net,mac=01:00:5e:00:00:01", "multicast")
    assert_device_error(flavor, "virtio-net,hostfwd=tcp:127.0.0.1:2222", "hostfwd=tcp:127.0.0.1:2222: expected")
    assert_device_error(flavor, "virtio-net,hostfwd=sctp::2222-:22", "protocol 'sctp'")
    assert_device_error(flavor, "virtio-net,hostfwd=tcp::70000-:22", "bad host address or port")
    assert_device_error(flavor, "virtio-net,hostfwd=tcp::2222-:0", "bad guest address or port")
    assert_device_error(flavor, "virtio-net,hostfwd=tcp:1.2.3:2222-:22", "bad host address or port")
    assert_device_error(flavor, "virtio-net,hostfwd=tcp::2222-192.168.1.5:22", "the guest address must be")
    assert_device_error(flavor, "virtio-net,restrict=maybe", "restrict=maybe: expected on or off")


def test_host_port_in_use(flavor):
    require_guest()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert_device_error(flavor, f"virtio-net,hostfwd=tcp:127.0.0.1:{port}-:22",
             f"host port tcp 127.0.0.1:{port} is already in use")
    finally:
        s.close()
