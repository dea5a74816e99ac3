"""virtio-net on a host TAP interface (`--device virtio-net,net=tap,ifname=`),
bridged, inside a network namespace the test creates, so nothing touches
the host's own network: scripts/mkbridge.sh makes a bridge with
192.168.77.1/24 and a persistent TAP on it, an HTTP server listens on that
address; petrel runs in the namespace, the guest takes 192.168.77.2, pings
the host side and fetches a file whose md5 must match.

Creating a namespace needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN): this test
fails, with that reason, when run without it.
"""

import hashlib
import os
import subprocess
import time

import pytest

from petrel_helpers import (EXIT_ERROR, EXIT_POWEROFF, FLAVORS, assert_exit,
                            assert_no_sanitizer_report, check, marker_values,
                            REPO_ROOT, petrel_env, require_guest, require_petrel,
                            require_tools, run_cmd)

HOST_IP, GUEST_IP = "192.168.77.1", "192.168.77.2"
PORT = 8077
BOOT_TIMEOUT = 300
ASAN_BOOT_TIMEOUT = 600


def _ip(*args):
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, f"ip {' '.join(args)}: {proc.stderr.strip()}"


@pytest.fixture
def netns(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("the TAP test creates a network namespace and needs root", pytrace=False)
    require_tools("ip")
    ns = f"petrel-tap-{os.getpid()}"
    _ip("netns", "add", ns)
    server = None
    try:
        _ip("-n", ns, "link", "set", "lo", "up")
        mk = subprocess.run(["ip", "netns", "exec", ns, str(REPO_ROOT / "scripts/mkbridge.sh"),
                             "up", "pbr0", "ptap0", "root", f"{HOST_IP}/24"],
                            capture_output=True, text=True, timeout=30)
        assert mk.returncode == 0, f"mkbridge.sh up failed:\n{mk.stderr}"
        www = tmp_path / "www"
        www.mkdir()
        blob = os.urandom(256 * 1024)
        (www / "blob").write_bytes(blob)
        server = subprocess.Popen(
            ["ip", "netns", "exec", ns, "/usr/bin/python3", "-m", "http.server",
             "--bind", HOST_IP, "--directory", str(www), str(PORT)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # wait until the server listens (it binds the TAP's address, which
        # exists even while the link has no carrier)
        deadline = time.time() + 20
        while time.time() < deadline:
            probe = subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c",
                                    f"import socket; socket.create_connection(('{HOST_IP}', "
                                    f"{PORT}), 1)"], capture_output=True)
            if probe.returncode == 0:
                break
            time.sleep(0.2)
        yield ns, hashlib.md5(blob).hexdigest()
        down = subprocess.run(["ip", "netns", "exec", ns, str(REPO_ROOT / "scripts/mkbridge.sh"),
                               "down", "pbr0", "ptap0"], capture_output=True, text=True,
                              timeout=30)
        assert down.returncode == 0, f"mkbridge.sh down failed:\n{down.stderr}"
    finally:
        if server:
            server.kill()
            server.wait()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


SESSION = f"""
ifconfig eth0 {GUEST_IP} netmask 255.255.255.0 up
ping -c 2 -W 5 {HOST_IP} >/dev/null; echo "PING$((0))=$?"
echo "MD5$((0))=$(wget -q -O - http://{HOST_IP}:{PORT}/blob | md5sum)"
poweroff -f
"""


@pytest.mark.parametrize("flavor", list(FLAVORS))
def test_guest_on_a_tap_in_a_namespace(flavor, netns):
    require_guest()
    ns, want = netns
    timeout = ASAN_BOOT_TIMEOUT if flavor == "asan" else BOOT_TIMEOUT
    cmd = ["ip", "netns", "exec", ns, str(require_petrel(flavor)), "run",
           "--device", "virtio-net,net=tap,ifname=ptap0", "--timeout", str(timeout)]
    r = run_cmd(cmd, input=SESSION, timeout=timeout + 60, env=petrel_env(flavor))
    if flavor == "asan":
        assert_no_sanitizer_report(r)
    assert_exit(r, EXIT_POWEROFF, "poweroff -f")
    check(marker_values(r, "PING") == ["0"], "the guest cannot ping the TAP's host side", r)
    md5 = marker_values(r, "MD5")
    check(md5 and md5[0].split()[0] == want,
          f"the guest fetched md5 {md5} over the TAP, the file has {want}", r)


def test_tap_errors(netns):
    ns, _ = netns
    cases = [
        ("virtio-net,net=tap", "needs ifname"),
        ("virtio-net,ifname=ptap0", "net=tap option"),
        ("virtio-net,net=tap,ifname=a/b", "ifname"),
        ("virtio-net,net=tap,ifname=ptap0,hostfwd=tcp::1-:2", "not net=tap options"),
    ]
    for flavor in FLAVORS:
        for dev, words in cases:
            r = run_cmd(["ip", "netns", "exec", ns, str(require_petrel(flavor)), "run",
                         "--device", dev], timeout=60, env=petrel_env(flavor))
            check(r.returncode == EXIT_ERROR and words in r.stderr,
                  f"--device {dev}: expected exit status 1 and '{words}'", r)
