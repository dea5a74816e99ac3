"""Private VM-to-VM networks: `petrel switch NAME` and
--device virtio-net,net=private,name=NAME, with the real riscv64 guest.

One run per build flavour:
  - two switches: network A (10.10.0.0/24) and network B (10.20.0.0/24),
    both without --nat;
  - three guests booted at once: alpha and beta on A, gamma on B;
  - alpha and beta get DHCP leases in 10.10.0.0/24 from A's switch, gamma
    one in 10.20.0.0/24 from B's;
  - alpha serves a random 256 KiB file with busybox httpd; beta fetches it
    with wget and the md5sums match;
  - gamma, given an address in A's CIDR by hand, cannot reach alpha (the
    networks are separate switches: no frame crosses);
  - alpha cannot reach an HTTP server on the host's loopback through the
    gateway (10.10.0.2): without --nat the switch's libslirp port serves
    DHCP only;
  - every guest powers off cleanly (exit 0), no guest misbehaviour logged.
Bad options: a network without a switch, net=private without name=, bad
names, hostfwd= on a private network, bad switch arguments, a second switch
of the same name: one line on stderr, exit status 1.  Traffic stays inside
the switches and the host's loopback; the runtime directory is a temporary
one (XDG_RUNTIME_DIR).
"""

import os
import subprocess

import pexpect
import pytest

from petrel_helpers import (EXIT_POWEROFF, FLAVORS, assert_one_line_error, check, fail,
                            petrel_env, require_guest, require_petrel)

from test_virtio_net import (ASAN_BOOT_TIMEOUT, BOOT_TIMEOUT, DHCP_SCRIPT, PROMPT,
                             HostHttp, Session)

ADDR_CMD = ("echo \"ADDR$((0))=$(ifconfig eth0 | sed -n "
            "'s/.*inet addr:\\([^ ]*\\).*/\\1/p')\"")


class Switch:
    def __init__(self, flavor, name, env, *args):
        self.proc = subprocess.Popen(
            [str(require_petrel(flavor)), "switch", name, "-v", *args], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "petrel switch:" not in line:
            self.proc.kill()
            fail(f"petrel switch {name} did not start: {line!r} "
                 f"{self.proc.stderr.read()[-2000:]}")

    def stop(self):
        """SIGTERM; returns (exit status, stderr)."""
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


class EnvSession(Session):
    """Session with an environment of our own (XDG_RUNTIME_DIR)."""

    def __init__(self, flavor, device, timeout, env):
        import io
        import pexpect.popen_spawn
        from test_virtio_net import SLACK
        self.transcript = io.StringIO()
        cmd = [str(require_petrel(flavor)), "run", "--timeout", str(timeout),
               "--device", device]
        self.child = pexpect.popen_spawn.PopenSpawn(
            cmd, env=env, encoding="utf-8", codec_errors="replace", timeout=timeout + SLACK)
        self.child.logfile_read = self.transcript


def _env(flavor, rundir):
    return petrel_env(flavor, {"XDG_RUNTIME_DIR": str(rundir)})


def _lease(s, name):
    s.child.sendline(DHCP_SCRIPT)
    s.expect(f"{name}: no prompt after writing the udhcpc script", PROMPT)
    rc = s.run('udhcpc -i eth0 -s /tmp/dhcp.sh -n -q -t 10 -T 3; echo "DHCP$((0))=$?"',
               "DHCP", f"{name}: udhcpc")
    check(rc == "0", f"{name}: udhcpc failed (exit status {rc})", s.details())
    return s.run(ADDR_CMD, "ADDR", f"{name}: eth0's address")


def _poweroff(s, name):
    s.child.sendline("poweroff -f")
    s.expect(f"{name}: petrel did not exit after poweroff -f", pexpect.EOF)
    status = s.child.proc.wait(timeout=30)
    if status != EXIT_POWEROFF:
        s.fail(f"{name}: poweroff -f: exit status {status}, expected {EXIT_POWEROFF}")
    text = s.transcript.getvalue()
    check("petrel: guest:" not in text, f"{name}: petrel logged guest misbehaviour",
          s.details())
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        check(marker not in text, f"{name}: sanitizer report: {marker}", s.details())


@pytest.mark.parametrize("flavor", list(FLAVORS))
def test_two_vms_on_a_private_network(flavor, tmp_path):
    require_guest()
    timeout = ASAN_BOOT_TIMEOUT if flavor == "asan" else BOOT_TIMEOUT
    rundir = tmp_path / "run"
    rundir.mkdir(mode=0o700)
    env = _env(flavor, rundir)
    www = tmp_path / "www"
    www.mkdir()
    (www / "secret.txt").write_text("host-only\n")
    host_http = HostHttp(www)
    net_a = f"pa{os.getpid()}"
    net_b = f"pb{os.getpid()}"
    sw_a = Switch(flavor, net_a, env, "--cidr", "10.10.0.0/24")
    sw_b = Switch(flavor, net_b, env, "--cidr", "10.20.0.0/24")
    vms = {}
    try:
        vms["alpha"] = EnvSession(flavor, f"virtio-net,net=private,name={net_a},"
                                  "mac=52:54:00:00:0a:01", timeout, env)
        vms["beta"] = EnvSession(flavor, f"virtio-net,net=private,name={net_a},"
                                 "mac=52:54:00:00:0a:02", timeout, env)
        vms["gamma"] = EnvSession(flavor, f"virtio-net,net=private,name={net_b},"
                                  "mac=52:54:00:00:0b:03", timeout, env)
        for name, s in vms.items():
            s.expect(f"{name}: no shell prompt", PROMPT, timeout=timeout)
        alpha, beta, gamma = vms["alpha"], vms["beta"], vms["gamma"]

        addr = {name: _lease(s, name) for name, s in vms.items()}
        for name in ("alpha", "beta"):
            check(addr[name].startswith("10.10.0.") and addr[name] != "10.10.0.2",
                  f"{name} got {addr[name]!r}, want a lease in 10.10.0.0/24",
                  vms[name].details())
        check(addr["alpha"] != addr["beta"], f"alpha and beta share {addr['alpha']}",
              beta.details())
        check(addr["gamma"].startswith("10.20.0."),
              f"gamma got {addr['gamma']!r}, want a lease in 10.20.0.0/24", gamma.details())

        # alpha serves a random file; beta fetches it over the private network
        md5_a = alpha.run("mkdir -p /tmp/www && dd if=/dev/urandom of=/tmp/www/blob bs=1024 "
                          "count=256 2>/dev/null && busybox httpd -p 8080 -h /tmp/www && "
                          "echo \"SRV$((0))=$(md5sum < /tmp/www/blob)\"", "SRV",
                          "alpha: starting httpd")
        got = beta.run(f"wget -q -O /tmp/blob http://{addr['alpha']}:8080/blob; "
                       f"echo \"WGET$((0))=$? $(md5sum < /tmp/blob)\"", "WGET",
                       "beta: wget from alpha")
        check(got.split()[:2] == ["0", md5_a.split()[0]],
              f"beta's fetch from alpha: {got!r}, want exit 0 and md5 {md5_a.split()[0]}",
              beta.details())

        # gamma, on the other network, with an address in A's CIDR: nothing
        got = gamma.run("ifconfig eth0 10.10.0.99 netmask 255.255.255.0 up; "
                        f"wget -q -T 5 -O /tmp/x http://{addr['alpha']}:8080/blob; "
                        "echo \"ISO$((0))=$?\"", "ISO", "gamma: wget across networks")
        check(got != "0", "gamma (another network) fetched alpha's file", gamma.details())

        # no NAT: the gateway does not lead to the host's loopback
        got = alpha.run(f"wget -q -T 5 -O /tmp/x http://10.10.0.2:{host_http.port}/secret.txt;"
                        " echo \"NONAT$((0))=$?\"", "NONAT", "alpha: wget to the host")
        check(got != "0", "alpha reached the host's loopback without --nat", alpha.details())

        for name, s in vms.items():
            _poweroff(s, name)
    finally:
        for s in vms.values():
            s.close()
        host_http.close()
        results = [sw.stop() for sw in (sw_a, sw_b)]
    for rc, err in results:
        check(rc == 0, f"switch exit status {rc} after SIGTERM, want 0", err)
        if flavor == "asan":
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                check(marker not in err, f"switch: sanitizer report: {marker}", err)
    check(not list(rundir.glob("petrel/*.sock")), "the switches left their sockets behind")


@pytest.fixture(params=list(FLAVORS))
def flavor(request):
    return request.param


def test_bad_options(flavor, tmp_path):
    require_guest()
    rundir = tmp_path / "run"
    rundir.mkdir(mode=0o700)
    env = _env(flavor, rundir)
    dev = ["run", "--device"]
    assert_one_line_error(flavor, dev + ["virtio-net,net=private,name=nosuch"],
         "net=private,name=nosuch: ", env)
    assert_one_line_error(flavor, dev + ["virtio-net,net=private"], "net=private needs name=", env)
    assert_one_line_error(flavor, dev + ["virtio-net,net=private,name=a/b"], "network name 'a/b'", env)
    assert_one_line_error(flavor, dev + ["virtio-net,net=private,name=x,hostfwd=tcp::2222-:22"],
         "hostfwd= are net=user options", env)
    assert_one_line_error(flavor, dev + ["virtio-net,name=x"], "name= is a net=private option", env)
    assert_one_line_error(flavor, dev + ["virtio-net,net=vde"], "net=vde: unknown backend", env)
    assert_one_line_error(flavor, dev + ["virtio-net,allow=tcp:0"], "allow=tcp:0: bad port range", env)
    assert_one_line_error(flavor, dev + ["virtio-net,deny=sctp"], "deny=sctp: expected PROTO", env)
    assert_one_line_error(flavor, dev + ["virtio-net,allow=icmp:80"], "ports need tcp or udp", env)
    assert_one_line_error(flavor, dev + ["virtio-net,allow=tcp:80:10.0.0.1/8"], "host bits set", env)
    assert_one_line_error(flavor, ["switch"], "expected one network NAME", env)
    assert_one_line_error(flavor, ["switch", "n1", "--cidr", "10.0.0.1/24"], "host bits set", env)
    assert_one_line_error(flavor, ["switch", "n1", "--cidr", "10.0.0.0/30"], "too small", env)
    assert_one_line_error(flavor, ["switch", "n1", "--cidr", "10.0.0.0"], "expected a CIDR", env)
    assert_one_line_error(flavor, ["switch", "n1", "--bogus"], "unknown option '--bogus'", env)
    assert_one_line_error(flavor, ["switch", ".hidden"], "network name '.hidden'", env)
    sw = Switch(flavor, "dup", env)
    try:
        assert_one_line_error(flavor, ["switch", "dup"], "a switch for network 'dup' already runs", env)
    finally:
        rc, err = sw.stop()
    check(rc == 0, f"switch exit status {rc} after SIGTERM", err)
    # a runtime directory that is not private is refused
    os.chmod(rundir / "petrel", 0o755)
    assert_one_line_error(flavor, ["switch", "n2"], "mode 0700", env)
    assert_one_line_error(flavor, dev + ["virtio-net,net=private,name=n2"], "mode 0700", env)


# The plain build only: the rule matcher runs under ASan in
# tests/unit/test_net_firewall.c, and the private-network path under ASan in
# test_two_vms_on_a_private_network; a second pair of ASan boots here found
# nothing those do not and cost 53 s of CI.
@pytest.mark.parametrize("flavor", ["default"])
def test_firewall_rules(flavor, tmp_path):
    """Security-group rules on the server's interface: allow=tcp:8080 lets
    the client in, deny=tcp:8081 (listed first) blocks that port, 8082 is
    blocked by the default policy of an allow list, allow=icmp lets pings
    in; the server's own outbound traffic (DHCP, a fetch from the client)
    still works."""
    require_guest()
    timeout = ASAN_BOOT_TIMEOUT if flavor == "asan" else BOOT_TIMEOUT
    rundir = tmp_path / "run"
    rundir.mkdir(mode=0o700)
    env = _env(flavor, rundir)
    net = f"fw{os.getpid()}"
    sw = Switch(flavor, net, env, "--cidr", "10.30.0.0/24")
    vms = {}
    try:
        vms["server"] = EnvSession(
            flavor, f"virtio-net,net=private,name={net},mac=52:54:00:00:0c:01,"
            "deny=tcp:8081,allow=tcp:8080,allow=icmp::10.30.0.0/24", timeout, env)
        vms["client"] = EnvSession(
            flavor, f"virtio-net,net=private,name={net},mac=52:54:00:00:0c:02", timeout, env)
        for name, s in vms.items():
            s.expect(f"{name}: no shell prompt", PROMPT, timeout=timeout)
        server, client = vms["server"], vms["client"]
        addr = {name: _lease(s, name) for name, s in vms.items()}
        for name in addr:
            check(addr[name].startswith("10.30.0."), f"{name} got {addr[name]!r}",
                  vms[name].details())
        rc = server.run("mkdir -p /tmp/www && echo fw-ok > /tmp/www/index.html && "
                        "for p in 8080 8081 8082; do busybox httpd -p $p -h /tmp/www; done; "
                        "echo \"HTTPD$((0))=$?\"", "HTTPD", "server: httpd on 3 ports")
        check(rc == "0", f"httpd did not start ({rc})", server.details())
        srv = addr["server"]
        got = client.run(f"echo \"P8080$((0))=$(wget -q -T 5 -O - http://{srv}:8080/index.html)"
                         "\"", "P8080", "client: port 8080 (allowed)")
        check(got == "fw-ok", f"allow=tcp:8080: the client got {got!r}, want 'fw-ok'",
              client.details())
        for port, why in ((8081, "deny=tcp:8081"), (8082, "the allow list's default")):
            got = client.run(f"wget -q -T 5 -O /tmp/x http://{srv}:{port}/index.html; "
                             f"echo \"P{port}$((0))=$?\"", f"P{port}",
                             f"client: port {port} (blocked)")
            check(got != "0", f"port {port} should be blocked by {why}", client.details())
        got = client.run(f"ping -c 1 -W 5 {srv} >/dev/null 2>&1; echo \"PING$((0))=$?\"",
                         "PING", "client: ping (allowed)")
        check(got == "0", f"allow=icmp: ping failed ({got})", client.details())
        # outbound from the server is free, and the answers come back
        client.run("mkdir -p /tmp/w2 && echo back > /tmp/w2/index.html && "
                   "busybox httpd -p 9000 -h /tmp/w2; echo \"C$((0))=$?\"", "C",
                   "client: httpd")
        got = server.run(f"echo \"OUT$((0))=$(wget -q -T 5 -O - http://{addr['client']}:9000/)"
                         "\"", "OUT", "server: outbound fetch")
        check(got == "back", f"the server's own fetch got {got!r}", server.details())
        for name, s in vms.items():
            _poweroff(s, name)
    finally:
        for s in vms.values():
            s.close()
        rc, err = sw.stop()
    check(rc == 0, f"switch exit status {rc}", err)
