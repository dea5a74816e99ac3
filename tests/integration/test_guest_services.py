"""The default riscv64 guest's root disk as a server (images/lib-rootfs.sh,
images/lib-apt.sh): DHCP on every card at boot, dropbear for ssh, the
config disk, and the power button's acpid.

One boot (default flavour: each costs ~10 s of CPU) of a copy of root.img
with two more things:
  - a config disk: a virtio disk with serial=petrel-config holding a ustar
    archive (python's tarfile, padded to 512 bytes) with a fresh ed25519
    public key (authorized_keys), a host name and a file the guest ignores;
  - virtio-net on the NAT (libslirp) with hostfwd=tcp:127.0.0.1:PORT-:22.
No network or ssh set-up is typed into the guest.  Then:
  - `ssh -i KEY -p PORT ... root@127.0.0.1 uname -m` prints riscv64;
  - ssh without the key is refused, and publickey is the only method offered;
    the host key the client was shown is the guest's ed25519 key, which
    root.img does not hold (made at the first boot);
  - the host name is the config disk's; authorized_keys is mode 600 in a
    mode 700 /root/.ssh;
  - wget in the guest fetches a file from an HTTP server on the host
    (10.0.2.2:PORT through the NAT), with the lease DHCP set at boot;
  - virtio_input and evdev are loaded, and no module failed to load;
  - the power button: acpid, given the event busybox acpid maps KEY_POWER
    to ("button/power PWRF ...", fed as text through a FIFO with acpid -e:
    no input device is needed), runs /etc/acpi/poweroff, busybox poweroff;
    with a petrel that has --device virtio-keyboard, the boot adds one and
    acpid must be running;
  - poweroff with all these services running is clean: petrel exits 0 and
    e2fsck finds the disk clean.
"""

import io
import os
import tarfile
import time

import pexpect
import pexpect.popen_spawn

from petrel_helpers import (EXIT_POWEROFF, GUEST_DIR, check, fail, petrel_env,
                            require_petrel, require_tools, run_cmd)

from test_rootdisk import APPEND, _e2fsck_clean, _root_copy, _tool
from test_virtio_net import (BOOT_TIMEOUT, PROMPT, SLACK, HostHttp, Session,
                             free_port)

HOSTNAME = f"petrel-svc-{os.getpid() % 100000}"
SSH_DEADLINE = 120


class DiskSession(Session):
    """test_virtio_net's console session, booting with any `petrel run` args."""

    def __init__(self, args, timeout):
        self.transcript = io.StringIO()
        cmd = [str(require_petrel("default")), "run", "--timeout", str(timeout), *args]
        self.child = pexpect.popen_spawn.PopenSpawn(
            cmd, env=petrel_env("default"), encoding="utf-8", codec_errors="replace",
            timeout=timeout + SLACK)
        self.child.logfile_read = self.transcript


def _config_disk(path, files):
    """A ustar archive of `files` (name -> bytes), padded to 512 bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.uid = info.gid = 1000          # the guest's tar -o ignores owners
            tar.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    data += b"\0" * (-len(data) % 512)
    path.write_bytes(data)
    return path


def _ssh(port, *opts, command="uname -m", timeout=60):
    return run_cmd(["ssh", "-F", "/dev/null", "-p", str(port), "-o", "BatchMode=yes",
                    "-o", "ConnectTimeout=30", "-o", "StrictHostKeyChecking=no", *opts,
                    "root@127.0.0.1", command], timeout=timeout)


def _ssh_until_up(port, key):
    """Retry until dropbear answers (the console prompt may come first)."""
    deadline = time.monotonic() + SSH_DEADLINE
    while True:
        r = _ssh(port, "-i", key, "-o", "IdentitiesOnly=yes",
                 "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR")
        if r.returncode == 0 or time.monotonic() > deadline:
            return r
        time.sleep(1)


def _petrel_has_keyboard():
    """Whether this petrel has --device virtio-keyboard (being written)."""
    r = run_cmd([require_petrel("default"), "run", "--help"], timeout=60)
    return "virtio-keyboard" in r.stdout + r.stderr


def _image_ls(image, directory):
    """Names in a directory of an ext4 image (debugfs, read only)."""
    out = run_cmd([_tool("debugfs"), "-R", f"ls -p {directory}", image], timeout=60)
    return [f.split("/")[5] for f in out.stdout.split("\n") if f.count("/") >= 6]


def test_root_disk_serves_ssh_dhcp_and_config(tmp_path):
    require_tools("ssh", "ssh-keygen")
    image = _root_copy(tmp_path)
    key = tmp_path / "id_ed25519"
    gen = run_cmd(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "petrel-test",
                   "-f", key], timeout=60)
    check(gen.returncode == 0, "ssh-keygen failed", gen)
    pubkey = (tmp_path / "id_ed25519.pub").read_bytes()
    config = _config_disk(tmp_path / "config.img", {
        "authorized_keys": pubkey,
        "hostname": f"{HOSTNAME}\n".encode(),
        "unknown-file": b"the guest ignores this\n",
    })
    www = tmp_path / "www"
    www.mkdir()
    token = f"hello-from-the-host-{os.getpid()}"
    (www / "hello.txt").write_text(token + "\n")
    http_server = HostHttp(www)
    port = free_port()
    known_hosts = tmp_path / "known_hosts"
    args = ["--disk", image, "--disk", f"{config},readonly=on,serial=petrel-config",
            "--device", f"virtio-net,hostfwd=tcp:127.0.0.1:{port}-:22", "--append", APPEND]
    keyboard = _petrel_has_keyboard()
    if keyboard:
        args += ["--device", "virtio-keyboard"]

    s = DiskSession(args, BOOT_TIMEOUT)
    status = None
    try:
        s.expect("no shell prompt", PROMPT, timeout=BOOT_TIMEOUT)

        # ssh with the config disk's key
        r = _ssh_until_up(port, key)
        check(r.returncode == 0 and r.stdout.strip() == "riscv64",
              f"ssh -i KEY root@127.0.0.1 -p {port} uname -m: exit status {r.returncode}, "
              f"output {r.stdout.strip()!r}, want riscv64",
              r.describe() + "\n" + s.details())

        # ... and without it: refused, publickey being the only method
        r = _ssh(port, "-o", "PubkeyAuthentication=no", "-o", "PasswordAuthentication=yes",
                 "-o", f"UserKnownHostsFile={known_hosts}")
        check(r.returncode != 0 and "Permission denied (publickey)" in r.stderr,
              "ssh without the key: expected 'Permission denied (publickey)'",
              r.describe() + "\n" + s.details())
        seen = known_hosts.read_text().split() if known_hosts.exists() else []
        guest_key = s.run('echo "HOSTKEY$((0))=$(cat /etc/dropbear/dropbear_ed25519_host_key.pub)"',
                          "HOSTKEY", "the guest's host key").split()
        check(len(guest_key) >= 2 and guest_key[0] == "ssh-ed25519" and
              guest_key[:2] == seen[1:3],
              f"the ssh client was shown the host key {seen[1:3]}, the guest's "
              f"/etc/dropbear/dropbear_ed25519_host_key.pub is {guest_key[:2]}", s.details())

        # the config disk
        got = s.run('echo "HOST$((0))=$(hostname)"', "HOST", "hostname")
        check(got == HOSTNAME, f"the guest's host name is {got!r}, the config disk says "
              f"{HOSTNAME!r}", s.details())
        got = s.run('echo "MODES$((0))=" $(stat -c %a /root/.ssh /root/.ssh/authorized_keys)',
                    "MODES", "authorized_keys' modes")
        check(got.split() == ["700", "600"],
              f"/root/.ssh and its authorized_keys have modes {got!r}, want 700 600",
              s.details())

        # DHCP at boot: the guest reaches the host through the NAT
        got = s.run(f"echo \"WGET$((0))=$(wget -q -T 30 -O - "
                    f"http://10.0.2.2:{http_server.port}/hello.txt)\"", "WGET",
                    "wget from the host")
        check(got == token, f"wget http://10.0.2.2:{http_server.port}/hello.txt in the guest "
              f"got {got!r}, want {token!r}", s.details())

        # the power button's modules
        got = s.run("echo \"MODS$((0))=$(lsmod | awk '$1 == \"virtio_input\" || "
                    "$1 == \"evdev\" { print $1 }' | sort | tr '\\n' ' ')\"", "MODS", "lsmod")
        check(got.split() == ["evdev", "virtio_input"],
              f"loaded input modules: {got!r}, want evdev and virtio_input", s.details())

        # With a virtio-keyboard (once petrel has one), acpid runs from boot.
        if keyboard:
            got = s.run('echo "ACPID$((0))=$(pidof acpid) $(ls /dev/input)"', "ACPID",
                        "acpid with a keyboard")
            check(len(got.split()) >= 2 and "event0" in got.split(),
                  f"with a virtio-keyboard: acpid's pid and /dev/input: {got!r}", s.details())

        # acpid's configuration: the text busybox acpid turns KEY_POWER into,
        # fed through a FIFO (acpid -e), runs /etc/acpi/poweroff.  acpid -e
        # opens its file again and again until it runs out of descriptors
        # (its loop over /dev/input/eventN), which then every action it runs
        # inherits: ulimit -n 4 keeps it to one FIFO, and the action, busybox
        # poweroff, stops with "can't open '/proc'", which shows that it ran.
        got = s.run("mkfifo /tmp/acpi-event && "
                    "(ulimit -n 4; exec acpid -l /tmp/acpid.log -e /tmp/acpi-event) && "
                    "echo 'button/power PWRF 00000080 00000000' >/tmp/acpi-event; "
                    "for i in $(seq 100); do grep -q '^poweroff:' /tmp/acpid.log && break; "
                    "sleep 0.1; done; echo \"EVENT$((0))=$(tr '\\n' '|' </tmp/acpid.log)\"",
                    "EVENT", "the power key's event, through acpid")
        lines = got.split("|")
        check(lines[0] == "acpid: poweroff" and len(lines) > 1 and
              lines[1].startswith("poweroff: ") and "No such file" not in got,
              f"acpid's log after the power key's event: {got!r}, want 'acpid: poweroff' and "
              "then busybox poweroff's own message", s.details())
        check(s.run('echo "LINK$((0))=$(readlink -f /etc/acpi/poweroff)"', "LINK",
                    "the power button's action") == "/usr/bin/busybox",
              "/etc/acpi/poweroff does not lead to busybox (poweroff)", s.details())

        s.child.sendline("poweroff")
        # busybox init's poweroff (after /etc/init.d/rcK) says this; poweroff -f doesn't
        s.expect("poweroff did not start", "The system is going down NOW!")
        s.expect("petrel did not exit after poweroff", pexpect.EOF)
        status = s.child.proc.wait(timeout=30)
    finally:
        s.close()
        http_server.close()

    text = s.transcript.getvalue()
    if status != EXIT_POWEROFF:
        s.fail(f"power button poweroff: exit status {status}, expected {EXIT_POWEROFF}")
    check("petrel-init: insmod" not in text, "a kernel module failed to load", s.details())
    check("petrel: guest:" not in text, "petrel logged guest misbehaviour", s.details())
    _e2fsck_clean(image, s.details())

    # The host key was made at this boot: the built image holds none.
    baked = [n for n in _image_ls(GUEST_DIR / "root.img", "/etc/dropbear")
             if n not in (".", "..")]
    if baked:
        fail(f"root.img holds {baked} in /etc/dropbear: host keys must be made at the first "
             "boot, not built into the image")
