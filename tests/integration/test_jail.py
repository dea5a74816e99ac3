"""`petrel run --jail`: one Linux guest booted in a jail (uid nobody, a qcow2
overlay on a backing file in another directory, the API socket in the jail
directory).  While it runs, the host looks at the VMM through /proc: its
root holds only this VM's files (not /etc/passwd, not the image sitting
next to its own disk), its mount/pid/ipc/uts/net namespaces are new, it
is pid 1 of its pid namespace, runs as nobody with no groups, no
capabilities, NoNewPrivs and the rlimits asked for; the API answers on the
socket; the guest writes its disk and reads it back; it powers off with
status 0 and nothing stays mounted.  Plus: the exit-status contract through
the jail (--timeout: 4), SIGTERM to the outer process, root without --uid,
and bad input (each one line, status 1, nothing started or mounted).

Needs root (namespaces, mounts): skipped loudly otherwise.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from petrel_helpers import (EXIT_ERROR, EXIT_POWEROFF, EXIT_TIMEOUT, GUEST_DIR,
                            GUEST_TESTS_DIR, SANITIZER_ENV, SANITIZER_MARKERS,
                            petrel_path, require_guest)

PETREL = str(petrel_path("default"))
NOBODY = 65534
FSIZE = 1 << 30
MEMORY_MAX = 512 << 20

SESSION = (
    'echo "BASE$((0))=$(dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c 12)"\n'
    'echo JAILWROTE-42 | dd of=/dev/vda bs=512 seek=16 conv=fsync 2>/dev/null; '
    'echo "DD$((0))=$?"\n'
    'echo 3 > /proc/sys/vm/drop_caches\n'
    'echo "BACK$((0))=$(dd if=/dev/vda bs=512 skip=16 count=1 2>/dev/null | head -c 12)"\n'
    'echo "READY$((0))"; read x; poweroff -f\n'
)


def require_root():
    if os.geteuid() != 0:
        pytest.skip("--jail needs root (namespaces, mounts); not running as root")


def jail_mounts():
    with open("/proc/self/mountinfo") as f:
        return [l for l in f if "petrel-jail" in l or "/jailroot" in l]


def make_jail(tmp, name="jail"):
    d = tmp / name
    d.mkdir()
    os.chmod(d, 0o755)
    return d


def children(pid):
    out = []
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/children") as f:
            out += [int(x) for x in f.read().split()]
    return out


def status_fields(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)


def api_get(sock_path, path="/"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.decode(errors="replace")


def files_under(root):
    """Every non-directory under root (relative), not descending into /proc."""
    found = set()
    for dirpath, dirs, files in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel == ".":
            dirs[:] = [d for d in dirs if d != "proc"]
        for f in files:
            found.add(os.path.normpath(os.path.join("/", rel, f)))
    return found


@pytest.fixture(scope="module")
def jailed_vm(tmp_path_factory):
    require_root()
    require_guest()
    tmp = tmp_path_factory.mktemp("jail")
    base_dir = tmp / "images"
    vm_dir = tmp / "vm1"
    base_dir.mkdir()
    vm_dir.mkdir()
    base = base_dir / "base.raw"
    base.write_bytes(b"BASE-CONTENT" + bytes(4 * 1024 * 1024 - 12))
    overlay = vm_dir / "disk.qcow2"
    subprocess.run([PETREL, "img", "create", "-f", "qcow2", "-b", "../images/base.raw",
                    "-F", "raw", str(overlay)], check=True, capture_output=True)
    os.chown(overlay, NOBODY, NOBODY)
    other = vm_dir / "other-vm.img"     # another VM's image, next to this one's
    other.write_bytes(b"other" * 100)
    jail = make_jail(tmp)
    api_sock = jail / "api.sock"
    args = [PETREL, "run", "--jail", str(jail), "--uid", "nobody", "--gid", str(NOBODY),
            "--resource-limit", f"fsize={FSIZE}", "--disk", str(overlay),
            "--api-sock", str(api_sock), "--boot", "--memory", "128M", "--timeout", "240",
            "--memory-max", f"{MEMORY_MAX >> 20}M", "--pids-max", "64"]
    t0 = time.monotonic()
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, err, ready = [], [], threading.Event()

    def read_out():
        for line in iter(proc.stdout.readline, b""):
            out.append(line)
            if b"READY0" in line:
                ready.set()
        ready.set()

    threading.Thread(target=read_out, daemon=True).start()
    threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True).start()
    proc.stdin.write(SESSION.encode())
    proc.stdin.flush()
    vm = {"proc": proc, "jail": jail, "api_sock": api_sock, "overlay": overlay, "base": base,
          "other": other, "out": out, "err": err, "t0": t0}
    # The VMM is the outer process's only child.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        kids = children(proc.pid)
        if kids and os.path.exists(api_sock):
            vm["pid"] = kids[0]
            break
        time.sleep(0.02)
    assert "pid" in vm, f"no jailed VMM appeared: rc={proc.poll()} {err}"
    assert ready.wait(240), "the guest never finished its disk session"
    yield vm
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_jailed_vmm_sees_only_its_files(jailed_vm):
    pid = jailed_vm["pid"]
    root = f"/proc/{pid}/root"
    seen = files_under(root)
    jail = str(jailed_vm["jail"])
    expected = {
        f"{jail}/api.sock",
        str(jailed_vm["overlay"]), str(jailed_vm["base"]),
        str(GUEST_DIR / "Image"), str(GUEST_DIR / "initramfs.cpio.gz"),
        str(GUEST_DIR / "fw_dynamic.bin"),
        "/dev/null", "/dev/urandom",
    }
    expected = {os.path.realpath(p) if not p.startswith("/dev") else p for p in expected}
    assert seen == expected, f"unexpected files in the jail: {seen ^ expected}"
    assert not os.path.exists(f"{root}/etc/passwd")
    assert not os.path.exists(f"{root}{jailed_vm['other']}")
    # its /proc shows its own pid namespace only: pid 1, itself
    pids = [d for d in os.listdir(f"{root}/proc") if d.isdigit()]
    assert pids == ["1"], pids
    # the root itself is read-only
    with open(f"/proc/{pid}/mountinfo") as f:
        rootline = [l for l in f if l.split()[4] == "/"][0]
    assert rootline.split()[5].startswith("ro,"), rootline


def test_jailed_vmm_namespaces_and_credentials(jailed_vm):
    pid = jailed_vm["pid"]
    for ns in ("mnt", "pid", "ipc", "uts", "net"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns
    st = status_fields(pid)
    assert st["Uid"].split() == [str(NOBODY)] * 4
    assert st["Gid"].split() == [str(NOBODY)] * 4
    assert st["Groups"].strip() == ""
    assert st["NoNewPrivs"] == "1"
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0
    assert int(st["CapBnd"], 16) == 0
    assert st["NSpid"].split()[-1] == "1", st["NSpid"]
    with open(f"/proc/{pid}/limits") as f:
        limits = f.read()
    assert re.search(r"Max open files\s+4096\s+4096", limits), limits
    assert re.search(r"Max core file size\s+0\s+0", limits), limits
    assert re.search(rf"Max file size\s+{FSIZE}\s+{FSIZE}", limits), limits
    with open(f"/proc/{pid}/environ", "rb") as f:
        assert f.read().strip(b"\0") == b"", "the environment was not cleared"
    # only stdin/out/err were inherited: every other fd is Petrel's own
    for fd in os.listdir(f"/proc/{pid}/fd"):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        assert not target.startswith("/tmp/") or target.startswith(str(jailed_vm["jail"])) \
            or target in (str(jailed_vm["overlay"]), str(jailed_vm["base"])), target


def _memory_cgroup(pid):
    """The v1 memory hierarchy's directory pid is in, or None (no v1 memory)."""
    mount = Path("/sys/fs/cgroup/memory")
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctls, path = line.rstrip("\n").split(":", 2)
            if "memory" in ctls.split(",") and mount.is_dir():
                return Path(str(mount) + path)
    return None


def test_jailed_vmm_under_cgroup_limits(jailed_vm):
    """The outer process makes the cgroup (the jail has no cgroup file
    system); the jailed VMM is born in it, under its limits."""
    cg = _memory_cgroup(jailed_vm["pid"])
    if cg is None:
        pytest.skip("no cgroup v1 memory hierarchy here: cannot read the VMM's cgroup")
    assert cg.name == str(jailed_vm["proc"].pid) and cg.parent.name == "petrel", cg
    assert int((cg / "memory.limit_in_bytes").read_text()) == MEMORY_MAX
    jailed_vm["cgroup"] = cg


def test_api_answers_inside_the_jail(jailed_vm):
    reply = api_get(str(jailed_vm["api_sock"]))
    assert " 200 " in reply.split("\r\n")[0], reply
    assert '"state":"Running"' in reply.replace(" ", ""), reply


def test_guest_disk_and_clean_poweroff(jailed_vm):
    proc = jailed_vm["proc"]
    base_before = jailed_vm["base"].read_bytes()
    proc.stdin.write(b"go\n")
    proc.stdin.flush()
    rc = proc.wait(timeout=60)
    time.sleep(0.2)
    out = b"".join(jailed_vm["out"]).decode(errors="replace")
    assert rc == EXIT_POWEROFF, (rc, out[-2000:], jailed_vm["err"])
    assert "BASE0=BASE-CONTENT" in out, out[-2000:]
    assert "DD0=0" in out and "BACK0=JAILWROTE-4" in out, out[-2000:]
    assert b"JAILWROTE-42" in jailed_vm["overlay"].read_bytes()
    assert jailed_vm["base"].read_bytes() == base_before
    assert not jail_mounts(), jail_mounts()
    assert not os.path.exists(jailed_vm["api_sock"]), "the API socket was left behind"
    if "cgroup" in jailed_vm:
        assert not jailed_vm["cgroup"].exists(), "the VMM's cgroup was left behind"
    print(f"jailed Linux guest: {time.monotonic() - jailed_vm['t0']:.1f} s from exec to exit")


def test_exit_status_and_sigterm_through_the_jail(tmp_path):
    require_root()
    require_guest()
    jail = make_jail(tmp_path)
    # --timeout: status 4 from the VMM inside the pid namespace
    r = subprocess.run([PETREL, "run", "--jail", str(jail), "--uid", "nobody", "--gid",
                        str(NOBODY), "--timeout", "1", "--memory", "128M"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert r.returncode == EXIT_TIMEOUT, r
    # the jail directory now belongs to nobody: no other uid may use it
    bad(["--jail", str(jail), "--uid", "daemon"], r"owned by uid 65534, neither root nor")
    # SIGTERM to the outer process stops the VM cleanly: status 0
    jail = make_jail(tmp_path, "jail2")
    p = subprocess.Popen([PETREL, "run", "--jail", str(jail), "--memory", "128M",
                          "--console-sock", str(jail / "console.sock")],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not (jail / "console.sock").exists() and time.monotonic() < deadline \
            and p.poll() is None:
        time.sleep(0.02)
    assert (jail / "console.sock").exists()
    vmm = children(p.pid)[0]
    # without --uid: root, but without any capability
    st = status_fields(vmm)
    assert st["Uid"].split()[0] == "0" and int(st["CapEff"], 16) == 0, st
    assert int(st["CapBnd"], 16) == 0 and st["NoNewPrivs"] == "1", st
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    assert p.returncode == EXIT_POWEROFF, err
    assert b"stopped" in err, err
    assert not (jail / "console.sock").exists()
    assert not jail_mounts()


# Under ASan too: the jail's set-up and both processes' exits (LeakSanitizer
# forks a tracer: the outer process must be back in its own pid namespace).
@pytest.mark.parametrize("flavor", ["default", "asan"])
def test_bare_metal_program_in_a_jail(tmp_path, flavor):
    require_root()
    exe = petrel_path(flavor)
    if not exe.exists():
        pytest.skip(f"{exe} not built")
    jail = make_jail(tmp_path)
    elf = GUEST_TESTS_DIR / "rvtest.elf"
    if not elf.exists():
        pytest.skip(f"{elf} not built")
    # --netns: the host's own network namespace, named by a path
    r = subprocess.run([str(exe), "run", "--jail", str(jail), "--uid", "nobody", "--gid",
                        "nogroup", "--netns", "/proc/self/ns/net", "--kernel", str(elf),
                        "--firmware", "none", "--api-sock", str(jail / "api.sock"), "--boot"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120,
                       env={**os.environ, **SANITIZER_ENV})
    assert r.returncode == 0 and b"PASS rvtest" in r.stdout, r
    for marker in SANITIZER_MARKERS:
        assert marker.encode() not in r.stderr, r.stderr.decode()[-3000:]
    assert os.listdir(jail) == []


def bad(args, match, tmp_path=None):
    r = subprocess.run([PETREL, "run"] + args, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=30)
    err = r.stderr.decode()
    assert r.returncode == EXIT_ERROR, (args, r)
    assert len(err.strip().splitlines()) == 1, err
    assert re.search(match, err), (match, err)
    assert not jail_mounts()
    return err


def test_bad_input(tmp_path):
    require_root()
    jail = make_jail(tmp_path)
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(65536))
    os.chmod(disk, 0o644)
    kernel = str(GUEST_TESTS_DIR / "rvtest.elf")
    common = ["--kernel", kernel, "--firmware", "none"]
    bad(["--uid", "nobody"] + common, r"--uid goes with --jail")
    bad(["--netns", "/x"] + common, r"--netns goes with --jail")
    bad(["--jail", str(jail), "--gid", "0"] + common, r"--gid goes with --uid")
    bad(["--jail", str(jail), "--uid", "no-such-user-xyz"] + common, r"no such user")
    bad(["--jail", str(jail), "--uid", "nobody", "--gid", "no-such-group-xyz"] + common,
        r"no such group")
    bad(["--jail", str(jail), "--uid", "54321"] + common, r"give --gid too")
    bad(["--jail", str(tmp_path / "nope")] + common, r"No such file")
    link = tmp_path / "link"
    link.symlink_to(jail)
    bad(["--jail", str(link)] + common, r"symbolic link")
    bad(["--jail", "/"] + common, r"of its own")
    full = make_jail(tmp_path, "full")
    (full / "sub").mkdir()
    bad(["--jail", str(full)] + common, r"holds sub, a directory")
    loose = make_jail(tmp_path, "loose")
    os.chmod(loose, 0o777)
    bad(["--jail", str(loose)] + common, r"writable by group or others")
    bad(["--jail", str(jail), "--api-sock", str(tmp_path / "api.sock"), "--boot"] + common,
        r"outside the jail")
    bad(["--jail", str(jail), "--api-sock", f"{jail}/../api.sock", "--boot"] + common,
        r"outside the jail")
    bad(["--jail", str(jail), "--api-sock", f"{link}/sub/api.sock", "--boot"] + common,
        r"outside the jail")
    bad(["--jail", str(jail), "--device", f"virtio-console,socket={tmp_path}/c.sock"] + common,
        r"outside the jail")
    bad(["--jail", str(jail), "--uid", "nobody", "--gid", "nogroup", "--disk", str(disk)] + common,
        r"not readable and writable by uid 65534.*readonly=on")
    bad(["--jail", str(jail), "--netns", str(disk)] + common, r"not a network namespace")
    bad(["--jail", str(jail), "--resource-limit", "nofile=3"] + common, r"invalid --resource-limit")
    # not root: a clear error, nothing started
    exe = shutil.which("setpriv")
    if exe:
        r = subprocess.run([exe, "--reuid", str(NOBODY), "--regid", str(NOBODY),
                            "--clear-groups", PETREL, "run", "--jail", str(jail)] + common,
                           capture_output=True, timeout=30)
        assert r.returncode == EXIT_ERROR and b"--jail needs root" in r.stderr, r
    assert sorted(os.listdir(jail)) == []
