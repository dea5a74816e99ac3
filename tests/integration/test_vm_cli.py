"""`petrel vm`: VMs kept as files in a state directory, run in the background.

Without a VMM (both builds): create (defaults, options, refusals), list,
info, set, delete, help texts, bad definitions (corrupt JSON, a wrong
field, an unknown field) reported with file and field without hiding the
other VMs, and base images: imported once per content into images/,
read-only and sparse, so a base rewritten later changes no VM, shared by
VMs (also when created at once), left alone by delete.

With VMMs (build/petrel only; boots are few: one module-scoped fleet of five
VMs is shared by the tests that need running guests): five VMs created and
started at once, listed as running, each one's console answering
`echo hello-N`, pause/resume, stats, a second start refused, set/delete
refused while running, `petrel vm ssh NAME -- uname -m`, a VMM killed with
SIGKILL shown as `crashed` and started again, `petrel vm kill`, and all five
stopped at once.

Every test module uses its own temporary PETREL_HOME and HOME (with a fresh
ssh key pair in HOME/.ssh)."""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from petrel_helpers import (FLAVORS, GUEST_DIR, SANITIZER_MARKERS, check, fail,
                            petrel_env, require_guest, require_petrel, require_tools,
                            run_cmd)

BOOT_TIMEOUT = 420          # five interpreted guests share the host's cores
# vm4's name is long: its socket paths would not fit in a unix socket address
# in its directory, so they live in a short private directory (run.json says
# where)
FLEET = [f"vm{i}" for i in range(4)] + ["vm4-" + "x" * 59]
LONG = FLEET[4]
PROMPT = "petrel:/# "


# --- helpers -------------------------------------------------------------------

class Petrel:
    """Runs `petrel vm ...` of one build with one PETREL_HOME and HOME."""

    def __init__(self, flavor, home, user_home):
        self.flavor = flavor
        self.binary = require_petrel(flavor)
        self.home = Path(home)
        self.user_home = Path(user_home)
        self.env = petrel_env(flavor, {"PETREL_HOME": str(home), "HOME": str(user_home)})

    def __call__(self, *args, input=None, timeout=120, ok=True):
        result = run_cmd([self.binary, "vm", *args], input=input, timeout=timeout,
                         env=self.env)
        for marker in SANITIZER_MARKERS:
            check(marker not in result.stderr, f"sanitizer report ({marker})", result)
        if ok:
            check(result.returncode == 0 and not result.timed_out,
                  f"petrel vm {' '.join(args)}: exit status {result.returncode}", result)
        return result

    def error(self, *args, want, timeout=120):
        """A one-line error on stderr containing `want`, and exit status 1."""
        result = self(*args, ok=False, timeout=timeout)
        lines = [l for l in result.stderr.splitlines() if l.strip()]
        check(result.returncode == 1 and len(lines) == 1 and want in lines[0],
              f"petrel vm {' '.join(args)}: expected one error line with {want!r}", result)
        return result

    def vmdir(self, name):
        return self.home / "vms" / name

    def definition(self, name):
        return json.loads((self.vmdir(name) / "vm.json").read_text())

    def list_json(self):
        return {v["name"]: v for v in json.loads(self("list", "--json").stdout)}

    def run_json(self, name):
        p = self.vmdir(name) / "run.json"
        return json.loads(p.read_text()) if p.exists() else None


def make_env(tmp_path_factory, flavor):
    require_tools("ssh-keygen")
    base = tmp_path_factory.mktemp(f"vmcli-{flavor}")
    user_home = base / "home"
    (user_home / ".ssh").mkdir(parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "petrel-test",
                    "-f", str(user_home / ".ssh" / "id_ed25519")], check=True,
                   capture_output=True)
    return Petrel(flavor, base / "state", user_home)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def image_for(petrel, base, arch="riscv64", ext="raw"):
    """Where `petrel vm create` imports base: images/ARCH-HASH16.EXT."""
    return petrel.home / "images" / f"{arch}-{sha256(base)[:16]}.{ext}"


def img_info(petrel, path):
    r = run_cmd([petrel.binary, "img", "info", "--output=json", path], timeout=60,
                env=petrel.env)
    check(r.returncode == 0, f"petrel img info {path}", r)
    return json.loads(r.stdout)


@pytest.fixture(scope="module", params=list(FLAVORS))
def pv(request, tmp_path_factory):
    """`petrel vm` without VMMs, in both builds."""
    require_guest()
    require_file_root = GUEST_DIR / "root.img"
    if not require_file_root.exists():
        pytest.fail(f"{require_file_root} is missing; build the default guest with "
                    "`make guest`", pytrace=False)
    return make_env(tmp_path_factory, request.param)


# --- without a VMM ---------------------------------------------------------------

def test_help(pv):
    r = pv("--help")
    for cmd in ("create", "list", "info", "start", "console", "pause", "resume", "stop",
                "kill", "set", "delete", "ssh", "stats"):
        check(f"  {cmd}" in r.stdout, f"'petrel vm --help' lists {cmd}", r)
        h = pv(cmd, "--help")
        check(h.stdout.startswith(f"usage: petrel vm {cmd}"), f"petrel vm {cmd} --help", h)
    check("PETREL_HOME" in r.stdout and "run.json" in r.stdout,
          "the help describes the state directory", r)
    r = run_cmd([pv.binary, "--help"], timeout=30, env=pv.env)
    check("  vm " in r.stdout, "'petrel --help' lists vm", r)
    pv.error("frobnicate", want="unknown command 'frobnicate'")


def test_create_defaults(pv):
    r = pv("create", "web1")
    check("created web1" in r.stdout, "create says what it made", r)
    d = pv.definition("web1")
    check(d["format"] == "petrel-vm" and d["version"] == 1 and d["name"] == "web1",
          f"header fields: {d}")
    check(d["arch"] == "riscv64" and d["vcpus"] == 1 and d["memory_mib"] == 512,
          f"machine defaults: {d}")
    check(d["append"] == "root=/dev/vda console=ttyS0 earlycon=sbi", f"append: {d['append']}")
    check(d["kernel"] is None and d["initrd"] is None and d["firmware"] is None,
          f"default guest files: {d}")
    check(d["disks"] == [{"path": "disk0.qcow2", "format": "qcow2", "readonly": False,
                          "serial": None}], f"disks: {d['disks']}")
    check(d["devices"][:2] == ["virtio-rng", "virtio-net,hostfwd=tcp:127.0.0.1:0-:22"],
          f"devices: {d['devices']}")
    check(d["devices"][-1] == "virtio-balloon,deflate_on_oom=on,stats_polling_interval_s=5,"
                              "free_page_reporting=on", f"the default balloon: {d['devices']}")
    pub = (pv.user_home / ".ssh" / "id_ed25519.pub").read_text()
    check(d["ssh"]["authorized_keys"] == pub, "the default key is ~/.ssh/id_ed25519.pub")
    check(d["ssh"]["key_file"] == str((pv.user_home / ".ssh" / "id_ed25519.pub").resolve()),
          f"key_file: {d['ssh']}")
    check(d["autostart"] is False and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
                                               d["created_utc"]), f"{d}")
    vmdir = pv.vmdir("web1")
    check(vmdir.stat().st_mode & 0o777 == 0o700, "the VM's directory is 0700")
    check((pv.home).stat().st_mode & 0o777 == 0o700, "the state directory is 0700")
    info = img_info(pv, vmdir / "disk0.qcow2")
    base = (GUEST_DIR / "root.img").resolve()
    image = image_for(pv, base)
    check(info["format"] == "qcow2" and info.get("backing-filename") == str(image)
          and info.get("backing-filename-format") == "raw",
          f"disk0 is an overlay on the imported copy {image} of {base}: {info}", r)
    check(f"on {image}" in r.stdout, "create names the image", r)
    check(image.stat().st_mode & 0o777 == 0o444 and sha256(image) == sha256(base),
          f"{image} is a read-only copy of {base}")
    check(image.stat().st_blocks * 512 <= max(base.stat().st_blocks * 512, 1 << 20),
          f"the copy is sparse: {image.stat().st_blocks * 512} bytes allocated, "
          f"{base.stat().st_blocks * 512} for the base")
    check(info["virtual-size"] == max(8 << 30, base.stat().st_size),
          f"virtual size: {info['virtual-size']}")
    check(not any(p.name.startswith(".") for p in (pv.home / "vms").iterdir()),
          "no temporary directory left")


def test_create_options(pv, tmp_path):
    key = tmp_path / "other.pub"
    key.write_text("ssh-rsa AAAAB3Nza other@host")
    data = tmp_path / "data,1.img"
    data.write_bytes(b"\0" * (1 << 20))
    pv("create", "db.2", "--cpus", "2", "--memory", "1G", "--base", "none",
       "--disk-size", "2G", "--no-net", "--no-balloon", "--autostart", "--ssh-key", str(key),
       "--disk", f"{str(data).replace(',', ',,')},format=raw,readonly=on,serial=data1",
       "--device", "virtio-rng", "--append", "console=ttyS0", "--ssh-port", "2299")
    d = pv.definition("db.2")
    check(d["vcpus"] == 2 and d["memory_mib"] == 1024 and d["autostart"] is True, f"{d}")
    check(not any(x.startswith("virtio-net") for x in d["devices"]), f"--no-net: {d}")
    check(not any(x.startswith("virtio-balloon") for x in d["devices"]), f"--no-balloon: {d}")
    check(d["devices"].count("virtio-rng") == 1, f"--device virtio-rng replaces the "
          f"default one: {d['devices']}")
    check(d["ssh"] == {"port": 2299, "authorized_keys": "ssh-rsa AAAAB3Nza other@host\n",
                       "key_file": str(key)}, f"ssh: {d['ssh']}")
    check(d["append"] == "console=ttyS0", f"append: {d['append']}")
    check(d["disks"][1] == {"path": str(data), "format": "raw", "readonly": True,
                            "serial": "data1"}, f"the extra disk: {d['disks']}")
    info = img_info(pv, pv.vmdir("db.2") / "disk0.qcow2")
    check(info["virtual-size"] == 2 << 30 and "backing-filename" not in info,
          f"a blank 2G disk: {info}")
    # no root disk at all; no key
    pv("create", "bare", "--base", "none", "--disk-size", "0", "--ssh-key", "none")
    d = pv.definition("bare")
    check(d["disks"] == [] and d["append"] is None and d["ssh"]["authorized_keys"] == "",
          f"bare: {d}")
    # a base that is a qcow2 image, larger than --disk-size
    big = tmp_path / "base.qcow2"
    run_cmd([pv.binary, "img", "create", "-f", "qcow2", big, "3G"], timeout=60, env=pv.env)
    pv("create", "clone", "--base", str(big), "--disk-size", "1G")
    info = img_info(pv, pv.vmdir("clone") / "disk0.qcow2")
    image = image_for(pv, big, ext="qcow2")
    check(info["virtual-size"] == 3 << 30 and info.get("backing-filename") == str(image)
          and info.get("backing-filename-format") == "qcow2", f"clone: {info}")
    check(img_info(pv, image)["virtual-size"] == 3 << 30, "the imported qcow2 base")
    for name in ("db.2", "bare", "clone"):
        pv("delete", name)


def test_create_refusals(pv, tmp_path):
    pv("create", "dup", "--ssh-key", "none")
    pv.error("create", "dup", want="a VM named 'dup' already exists")
    for bad in ("_x", ".hidden", "a b", "a/b", "x" * 64):
        pv.error("create", bad, "--ssh-key", "none", want="invalid VM name")
    priv = pv.user_home / ".ssh" / "id_ed25519"
    overlay = tmp_path / "overlay.qcow2"
    r = run_cmd([pv.binary, "img", "create", "-f", "qcow2", "-b", GUEST_DIR / "root.img",
                 "-F", "raw", overlay], timeout=60, env=pv.env)
    check(r.returncode == 0, "petrel img create -b", r)
    cases = [
        (["--cpus", "33"], "invalid --cpus '33' (riscv64 guests have 1..32)"),
        (["--cpus", "0"], "invalid --cpus"),
        (["--memory", "8"], "invalid --memory '8'"),
        (["--memory", "65G"], "invalid --memory"),
        (["--arch", "arm"], "unknown --arch 'arm'"),
        (["--base", str(tmp_path / "nope.img")], "--base"),
        (["--disk-size", "1k"], "invalid --disk-size"),
        (["--disk-size", "0"], "needs a size"),
        (["--ssh-key", str(priv)], "not an OpenSSH public key"),
        (["--ssh-key", str(tmp_path / "missing.pub")], "No such file"),
        (["--device", "virtio-sound"], "unknown --device 'virtio-sound'"),
        (["--disk", str(tmp_path / "missing.img")], "--disk"),
        (["--disk", f"{priv},serial=petrel-config"], "reserved for the config disk"),
        (["--kernel", str(tmp_path)], "--kernel"),
        (["--base", str(overlay)], "a qcow2 image with a backing file"),
        (["--bogus"], "unknown option '--bogus'"),
    ]
    for args, want in cases:
        pv.error("create", "new1", *args, want=want)
        check(not pv.vmdir("new1").exists(), f"create {args} left a directory")
    pv.error("create", want="expected a VM name")
    check(not any(p.name.startswith(".") for p in (pv.home / "vms").iterdir()),
          "no temporary directory left")
    pv("delete", "dup")


def test_list_info_set_delete(pv):
    pv("create", "s1", "--ssh-key", "none")
    r = pv("list")
    lines = r.stdout.splitlines()
    check(lines[0].split() == ["NAME", "STATE", "ARCH", "VCPUS", "MEMORY", "UPTIME", "SSH"],
          "list's header", r)
    row = next((l.split() for l in lines if l.startswith("s1 ")), None)
    check(row == ["s1", "stopped", "riscv64", "1", "512M", "-", "-"], f"s1's row: {row}", r)
    v = pv.list_json()["s1"]
    check(v["state"] == "stopped" and v["vcpus"] == 1 and v["memory_mib"] == 512
          and v["error"] is None and v["uptime_s"] is None, f"list --json: {v}")
    info = json.loads(pv("info", "s1").stdout)
    check(info["state"] == "stopped" and info["run"] is None and info["vmm"] is None
          and info["definition"] == pv.definition("s1")
          and info["dir"] == str(pv.vmdir("s1")), f"info: {info}")

    key = pv.user_home / ".ssh" / "id_ed25519.pub"
    pv("set", "s1", "--cpus", "3", "--memory", "768M", "--append", "console=ttyS0 quiet",
       "--autostart", "on", "--ssh-key", str(key), "--ssh-port", "2200")
    d = pv.definition("s1")
    check(d["vcpus"] == 3 and d["memory_mib"] == 768 and d["append"] == "console=ttyS0 quiet"
          and d["autostart"] is True and d["ssh"]["authorized_keys"] == key.read_text()
          and d["ssh"]["port"] == 2200, f"set: {d}")
    check(pv.list_json()["s1"]["vcpus"] == 3, "list sees the change")
    pv("set", "s1", "--append", "default", "--autostart", "off", "--ssh-key", "none")
    d = pv.definition("s1")
    check(d["append"] is None and d["autostart"] is False
          and d["ssh"]["authorized_keys"] == "" and d["ssh"]["key_file"] is None, f"{d}")
    before = (pv.vmdir("s1") / "vm.json").read_text()
    pv.error("set", "s1", "--cpus", "99", want="invalid --cpus '99'")
    pv.error("set", "s1", "--memory", "x", want="invalid --memory 'x'")
    pv.error("set", "s1", "--autostart", "maybe", want="use on or off")
    pv.error("set", "s1", want="nothing to change")
    pv.error("set", "nope", "--cpus", "1", want="no VM named 'nope'")
    check((pv.vmdir("s1") / "vm.json").read_text() == before, "failed sets change nothing")
    check(not list(pv.vmdir("s1").glob("vm.json.tmp*")), "no temporary files left")

    pv("delete", "s1")
    check(not pv.vmdir("s1").exists(), "delete removes the directory")
    check((GUEST_DIR / "root.img").exists(), "delete leaves the base image alone")
    check(image_for(pv, GUEST_DIR / "root.img").exists(), "delete leaves the imported copy")
    pv.error("delete", "s1", want="no VM named 's1'")
    pv.error("info", "s1", want="no VM named 's1'")
    pv.error("start", "s1", want="no VM named 's1'")
    pv.error("stop", "s1", want="no VM named 's1'")


def test_base_images(pv, tmp_path):
    """A base rewritten after create changes no VM; identical content is
    imported once (another path, VMs created at once); new content is a new
    image; delete leaves images; a base in the state directory is used in
    place."""
    base = tmp_path / "base.img"
    old = os.urandom(1 << 16)
    with open(base, "wb") as f:
        f.truncate(4 << 20)
        f.seek(1 << 20)
        f.write(old)
    old_sum = sha256(base)
    pv("create", "b1", "--ssh-key", "none", "--base", str(base))
    image = image_for(pv, base)
    info = img_info(pv, pv.vmdir("b1") / "disk0.qcow2")
    check(info.get("backing-filename") == str(image), f"b1 is on {image}: {info}")
    # an identical copy elsewhere, and three creates at once: still one image
    same = tmp_path / "same.img"
    shutil.copyfile(base, same)
    pv("create", "b2", "--ssh-key", "none", "--base", str(same))
    before = set((pv.home / "images").iterdir())
    results = in_parallel(lambda n: pv("create", n, "--ssh-key", "none", "--base",
                                       str(base), ok=False), ["p1", "p2", "p3"])
    for n, r in results.items():
        check(r.returncode == 0, f"create {n} at once", r)
    for n in ("b2", "p1", "p2", "p3"):
        info = img_info(pv, pv.vmdir(n) / "disk0.qcow2")
        check(info.get("backing-filename") == str(image), f"{n} shares {image}: {info}")
    check(set((pv.home / "images").iterdir()) == before,
          f"no new image, no temporary file: {sorted((pv.home / 'images').iterdir())}")
    # the base is rewritten (as `make guest` does): the VMs see the old content
    with open(base, "r+b") as f:
        f.seek(1 << 20)
        f.write(os.urandom(1 << 16))
    check(sha256(image) == old_sum, "the imported image did not change")
    r = run_cmd([pv.binary, "img", "check", pv.vmdir("b1") / "disk0.qcow2"], timeout=60,
                env=pv.env)
    check(r.returncode == 0, "b1's disk is consistent", r)
    r = pv("create", "b3", "--ssh-key", "none", "--base", str(base))
    new_image = image_for(pv, base)
    check(new_image != image and f"imported {base} as {new_image}" in r.stdout,
          "new content is imported as a new image", r)
    check(img_info(pv, pv.vmdir("b3") / "disk0.qcow2").get("backing-filename")
          == str(new_image), "b3 is on the new image")
    # a base inside the state directory is used in place
    pv("create", "b4", "--ssh-key", "none", "--base", str(image))
    check(img_info(pv, pv.vmdir("b4") / "disk0.qcow2").get("backing-filename") == str(image),
          "an image in the state directory is used in place")
    for n in ("b1", "b2", "b3", "b4", "p1", "p2", "p3"):
        pv("delete", n)
    check(image.exists() and new_image.exists(), "delete leaves the images")


def test_stopped_vm_commands(pv):
    pv("create", "idle", "--ssh-key", "none")
    pv.error("stop", "idle", want="idle is not running")
    pv.error("kill", "idle", want="idle is not running")
    pv.error("pause", "idle", want="idle is not running")
    pv.error("console", "idle", want="idle is not running")
    pv.error("stats", "idle", want="idle is not running")
    pv.error("ssh", "idle", "--", "true", want="idle is not running")
    pv("delete", "idle")


def test_bad_definitions(pv):
    """Corrupt JSON, a wrong field and an unknown field: each named with its
    file and field, listed as invalid, and never hiding the other VMs."""
    for n in ("good1", "corrupt", "wrongtype", "unknown", "good2"):
        pv("create", n, "--ssh-key", "none")
    (pv.vmdir("corrupt") / "vm.json").write_text('{"format": "petrel-vm", "version": 1,')
    d = pv.definition("wrongtype")
    d["vcpus"] = "two"
    (pv.vmdir("wrongtype") / "vm.json").write_text(json.dumps(d))
    d = pv.definition("unknown")
    d["disks"][0]["cache"] = "none"
    (pv.vmdir("unknown") / "vm.json").write_text(json.dumps(d))

    r = pv("list")
    rows = {l.split()[0]: l.split()[1] for l in r.stdout.splitlines()[1:]}
    check(rows.get("good1") == "stopped" and rows.get("good2") == "stopped",
          "the good VMs are listed as usual", r)
    for n in ("corrupt", "wrongtype", "unknown"):
        check(rows.get(n) == "invalid", f"{n} is listed as invalid", r)
    f = pv.vmdir("wrongtype") / "vm.json"
    check(f"petrel vm: {f}: field 'vcpus': expected an integer 1..32" in r.stderr,
          "the wrong field is named with its file", r)
    f = pv.vmdir("unknown") / "vm.json"
    check(f"petrel vm: {f}: field 'disks[0].cache': unknown field" in r.stderr,
          "the unknown field is named with its file", r)
    f = pv.vmdir("corrupt") / "vm.json"
    check(f"petrel vm: {f}: invalid JSON at line 1" in r.stderr,
          "the corrupt file is named", r)
    v = pv.list_json()
    check("field 'vcpus'" in v["wrongtype"]["error"] and v["good1"]["error"] is None,
          f"list --json carries the error: {v}")

    f = pv.vmdir("wrongtype") / "vm.json"
    for cmd in (["info", "wrongtype"], ["start", "wrongtype"], ["set", "wrongtype", "--cpus", "1"],
                ["ssh", "wrongtype"]):
        pv.error(*cmd, want=f"{f}: field 'vcpus': expected an integer 1..32")
    # the name inside must match the directory
    d = pv.definition("good2")
    d["name"] = "good3"
    (pv.vmdir("good2") / "vm.json").write_text(json.dumps(d))
    pv.error("info", "good2", want="field 'name': 'good3' does not match the VM's directory "
             "name 'good2'")
    # an invalid VM can still be deleted
    for n in ("good1", "corrupt", "wrongtype", "unknown", "good2"):
        pv("delete", n)


# --- with VMMs -------------------------------------------------------------------

def wait_for(pred, timeout, what, details=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.5)
    fail(f"timed out after {timeout} s waiting for {what}", details() if details else None)


def console_log(petrel, name):
    p = petrel.vmdir(name) / "console.log"
    return p.read_text(errors="replace") if p.exists() else ""


def vmm_log(petrel, name):
    p = petrel.vmdir(name) / "vmm.log"
    return p.read_text(errors="replace") if p.exists() else ""


def in_parallel(fn, names):
    results = {}

    def one(n):
        results[n] = fn(n)

    threads = [threading.Thread(target=one, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Five VMs created and started at once; killed at the end whatever
    happened."""
    require_guest()
    pv = make_env(tmp_path_factory, "default")
    for n in FLEET:
        pv("create", n, "--memory", "256M")
    started = in_parallel(lambda n: pv("start", n, ok=False, timeout=180), FLEET)
    try:
        for n in FLEET:
            check(started[n].returncode == 0, f"petrel vm start {n}",
                  started[n].describe() + "\n--- vmm.log ---\n" + vmm_log(pv, n))
        yield pv
    finally:
        for n in FLEET:
            run = pv.run_json(n)
            if run and run.get("pid"):
                try:
                    os.kill(run["pid"], signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if run and run.get("socket_dir"):
                shutil.rmtree(run["socket_dir"], ignore_errors=True)


def test_fleet_running(fleet):
    v = fleet.list_json()
    for n in FLEET:
        check(v[n]["state"] == "running", f"{n} is running: {v[n]}")
        check(v[n]["pid"] and v[n]["ssh_port"], f"{n} has a pid and an ssh port: {v[n]}")
        run = fleet.run_json(n)
        check(run and run["pid"] == v[n]["pid"] and run["ssh_port"] == v[n]["ssh_port"]
              and run["api_sock"] and run["console_sock"] and run["started_utc"],
              f"{n}'s run.json: {run}")
        check(Path(run["api_sock"]).is_socket(), f"{n}'s API socket exists")
        in_dir = n != LONG
        check((Path(run["api_sock"]).parent == fleet.vmdir(n)) == in_dir
              and (run["socket_dir"] is None) == in_dir
              and len(run["console_sock"]) <= 107, f"{n}'s sockets: {run}")
        check((fleet.vmdir(n) / "config.img").exists(), f"{n}'s config disk was built")
    ports = [v[n]["ssh_port"] for n in FLEET]
    check(len(set(ports)) == len(ports), f"every VM has its own ssh port: {ports}")
    r = fleet("list")
    for n in FLEET:
        row = next(l.split() for l in r.stdout.splitlines() if l.startswith(n + " "))
        check(row[1] == "running" and row[6] == f"127.0.0.1:{v[n]['ssh_port']}",
              f"{n}'s row: {row}", r)
    info = json.loads(fleet("info", "vm0").stdout)
    check(info["state"] == "running" and info["vmm"]["id"] == "vm0"
          and info["vmm"]["state"] == "Running" and info["run"]["pid"] == v["vm0"]["pid"],
          f"info of a running VM: {info}")
    fleet.error("start", "vm0", want="vm0 is already running")
    fleet.error("set", "vm0", "--cpus", "2", want="vm0 is running; stop it first")
    fleet.error("delete", "vm0", want="vm0 is running; stop it first")


def console_session(petrel, name, text, want, timeout):
    """Attach to NAME's console, type `text` until `want` appears as a line of
    output, then close stdin; the console detaches by itself."""
    proc = subprocess.Popen([petrel.binary, "vm", "console", name], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=petrel.env, start_new_session=True)
    out = bytearray()
    done = threading.Event()

    def reader():
        while True:
            b = proc.stdout.read1(65536)
            if not b:
                break
            out.extend(b)
            lines = out.decode(errors="replace").replace("\r", "").split("\n")
            if want in [l.strip() for l in lines]:
                done.set()
        done.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    deadline = time.monotonic() + timeout
    try:
        while not done.is_set() and time.monotonic() < deadline:
            proc.stdin.write(text.encode())
            proc.stdin.flush()
            done.wait(15)
        found = want in [l.strip() for l in out.decode(errors="replace").replace("\r", "")
                         .split("\n")]
        proc.stdin.close()
        try:
            rc = proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rc = "did not detach after stdin closed"
        err = proc.stderr.read().decode(errors="replace")
        return found, rc, out.decode(errors="replace"), err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def test_fleet_console(fleet):
    # wait until every guest reached its shell (the console log says so)
    for n in FLEET:
        wait_for(lambda: PROMPT in console_log(fleet, n), BOOT_TIMEOUT, f"{n}'s shell prompt",
                 lambda: console_log(fleet, n)[-3000:] + "\n--- vmm.log ---\n"
                 + vmm_log(fleet, n))
    results = in_parallel(lambda n: console_session(fleet, n, f"echo hello-{n[2]}\n",
                                                    f"hello-{n[2]}", 120), FLEET)
    for n in FLEET:
        found, rc, out, err = results[n]
        check(found, f"{n}'s console answered 'echo hello-{n[2]}'",
              f"--- output ---\n{out[-3000:]}\n--- stderr ---\n{err}")
        check(rc == 0, f"{n}'s console detached at the end of stdin with status 0 ({rc})",
              err)
        check(f"Connected to {n} (escape: Ctrl-])" in err, f"{n}: the attach hint", err)
    # several attaches in a row work
    found, rc, out, err = console_session(fleet, "vm0", "echo again-$((6*7))\n", "again-42", 60)
    check(found and rc == 0, "a second attach to vm0 works", out[-2000:] + err)


def test_fleet_console_tty(fleet):
    """On a terminal: raw mode, Ctrl-] detaches, the terminal is restored."""
    import pexpect
    child = pexpect.spawn(str(fleet.binary), ["vm", "console", "vm1"], env=fleet.env,
                          encoding="utf-8", timeout=60)
    try:
        child.expect_exact("Connected to vm1 (escape: Ctrl-])")
        child.send("echo tty-$((40+2))\r")
        child.expect_exact("tty-42")
        child.send("\x1d")
        child.expect(pexpect.EOF)
        child.close()
        check(child.exitstatus == 0, f"Ctrl-] detaches with status 0 ({child.exitstatus})",
              child.before)
    finally:
        if child.isalive():
            child.terminate(force=True)
    check(fleet.list_json()["vm1"]["state"] == "running", "vm1 runs on after a detach")


def test_fleet_pause_resume_stats(fleet):
    fleet("pause", "vm1")
    check(fleet.list_json()["vm1"]["state"] == "paused", "vm1 is paused")
    fleet("resume", "vm1")
    check(fleet.list_json()["vm1"]["state"] == "running", "vm1 runs again")
    r = fleet("stats", "vm1")
    m = json.loads(r.stdout)
    check("uptime_s" in m and "vcpus" in m and "memory" in m, f"stats: {m}")


def test_fleet_balloon(fleet):
    """`petrel vm balloon NAME [SIZE]` on the default balloon."""
    r = fleet("balloon", "vm1")
    check("target:               0M" in r.stdout and "free page reporting:  on" in r.stdout
          and "statistics:           every 5 s" in r.stdout, "balloon vm1 shows it", r)
    fleet("balloon", "vm1", "64M")
    wait_for(lambda: "actual:               64M" in fleet("balloon", "vm1").stdout, 60,
             "vm1's balloon reaching 64M")
    r = fleet("balloon", "vm1", "300M", ok=False)
    check(r.returncode == 1 and "larger than the guest's RAM (256 MiB)" in r.stderr,
          "a target above RAM is refused", r)
    r = fleet("balloon", "vm1", "1.5M", ok=False)
    check(r.returncode == 1 and "invalid SIZE" in r.stderr, "a bad SIZE", r)
    fleet("balloon", "vm1", "0")
    wait_for(lambda: "actual:               0M" in fleet("balloon", "vm1").stdout, 60,
             "vm1's balloon deflating")


def test_fleet_ssh(fleet):
    """`petrel vm ssh NAME -- uname -m` (needs dropbear in the default guest's
    root disk)."""
    require_tools("ssh")
    r = fleet("ssh", "--wait", "60", "vm2", "--", "uname", "-m", ok=False, timeout=180)
    check(r.returncode == 0 and r.stdout.strip() == "riscv64",
          "petrel vm ssh vm2 -- uname -m prints riscv64", r)


def test_fleet_crash_and_restart(fleet):
    """A VMM killed with SIGKILL shows as crashed and starts again cleanly."""
    run = fleet.run_json("vm3")
    os.kill(run["pid"], signal.SIGKILL)
    wait_for(lambda: fleet.list_json()["vm3"]["state"] == "crashed", 30,
             "vm3 to show as crashed")
    r = fleet("list")
    check(any(l.split()[:2] == ["vm3", "crashed"] for l in r.stdout.splitlines()),
          "list shows vm3 crashed", r)
    r = fleet("start", "vm3", timeout=180)
    check("cleaning up" in r.stderr, "start cleans up after the crashed VMM", r)
    new = fleet.run_json("vm3")
    check(new["pid"] != run["pid"], f"a new VMM runs vm3: {new}")
    check(fleet.list_json()["vm3"]["state"] == "running", "vm3 runs again")

    # petrel vm kill: the VMM is gone, run.json and sockets too
    run = fleet.run_json(LONG)
    fleet("kill", LONG)
    v = fleet.list_json()[LONG]
    check(v["state"] == "stopped", f"after kill {LONG} is stopped: {v}")
    check(fleet.run_json(LONG) is None, "kill removed run.json")
    check(not Path(run["api_sock"]).exists() and not Path(run["console_sock"]).exists()
          and not Path(run["socket_dir"]).exists(), f"kill removed the sockets: {run}")
    fleet("start", LONG, timeout=180)
    check(fleet.list_json()[LONG]["state"] == "running", f"{LONG} runs again")


def test_fleet_stop_all(fleet):
    pids = {n: fleet.run_json(n)["pid"] for n in FLEET}
    results = in_parallel(lambda n: fleet("stop", n, "--timeout", "20", ok=False,
                                          timeout=120), FLEET)
    for n in FLEET:
        check(results[n].returncode == 0, f"petrel vm stop {n}", results[n])
    v = fleet.list_json()
    for n in FLEET:
        check(v[n]["state"] == "stopped", f"{n} is stopped: {v[n]}")
        check(fleet.run_json(n) is None, f"{n}'s run.json is gone")
        check(not os.path.exists(f"/proc/{pids[n]}") or
              "petrel" not in Path(f"/proc/{pids[n]}/cmdline").read_text(errors="replace"),
              f"{n}'s VMM (pid {pids[n]}) has exited")
    # the definitions are still there, and a stopped VM can be deleted
    fleet("delete", LONG)
    check(not fleet.vmdir(LONG).exists(), f"{LONG} deleted")
