"""`petrel vm` snapshots end to end on the default riscv64 guest: snapshot,
snapshots, delete-snapshot, revert, clone (docs/snapshots.md; the CLI is
src/cli/vm_snapshot.c and vm_clone.c).

One VM ("src", 256 MiB) is booted once for the module.  Its guest runs a
shell loop that counts and appends each number to /root/log on its ext4
root disk (with sync), so the log of a guest that continues correctly from
a snapshot is always 1, 2, 3, ... with no gap and no repeat: after a revert
the loop's counter (in guest memory) and the file (on the disk) must both
continue from the snapshot's values.  The tests run in file order and share
that VM:

- bad input (bad tags, unknown tags and VMs, --diff without a parent);
- a full snapshot of the running VM, listed; the guest runs on, is reverted,
  and continues from the snapshot (counter and file), then keeps counting;
- a diff snapshot of the paused VM (stays paused), reverted to; deleting
  the diff's parent is refused, as is deleting a snapshot with disk state
  while the VM runs;
- three clones of one snapshot started at once: each continues the
  snapshot's guest, writes its own file, diverges; they share one export of
  the disk and the memory file (hard links);
- a clone of the running VM without --from (a snapshot taken for it);
- the VM stopped: a disk-only snapshot, a cold copy, a clone of the disk
  snapshot, revert --paused of a memory snapshot, revert to the disk
  snapshot, deleting snapshots (their internal disk snapshots go too), and
  deleting the source VM: the clone made earlier still starts from its
  snapshot.

The binary is build/petrel, or $PETREL_BIN (then the default guest comes
from build/guest through PETREL_GUEST_DIR).  Every module uses its own
temporary PETREL_HOME and HOME."""

import json
import os
import re
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from petrel_helpers import (GUEST_DIR, SANITIZER_MARKERS, check, child_env, fail,
                            marker_values, require_file, require_guest, require_petrel,
                            run_cmd)

BOOT_TIMEOUT = 300
PROMPT = "petrel:/# "
LOOP = ("(i=0; while true; do i=$((i+1)); echo $i >> /root/log; sync; sleep 1; done) "
        ">/dev/null 2>&1 &\n")
# the last number, the number of lines, and 0 when every line i holds i (one
# read of the file: the loop appends meanwhile)
READ = "echo \"V$((0))=$(awk 'NR!=$1{b=1} {l=$1} END{print l+0, NR, b+0}' /root/log)\"\n"


# --- helpers -------------------------------------------------------------------

class Petrel:
    """`petrel vm ...` with one PETREL_HOME."""

    def __init__(self, home, user_home):
        if os.environ.get("PETREL_BIN"):
            self.binary = require_file(os.environ["PETREL_BIN"], "PETREL_BIN names no file")
            extra = {"PETREL_GUEST_DIR": str(GUEST_DIR.parent)}
        else:
            self.binary = require_petrel("default")
            extra = {}
        self.home = Path(home)
        extra.update({"PETREL_HOME": str(home), "HOME": str(user_home)})
        self.env = child_env(extra)

    def __call__(self, *args, input=None, timeout=180, ok=True):
        result = run_cmd([self.binary, "vm", *args], input=input, timeout=timeout,
                         env=self.env)
        for marker in SANITIZER_MARKERS:
            check(marker not in result.stderr, f"sanitizer report ({marker})", result)
        if ok:
            check(result.returncode == 0 and not result.timed_out,
                  f"petrel vm {' '.join(args)}: exit status {result.returncode}",
                  result.describe() + self.logs(args))
        return result

    def logs(self, args):
        """The end of vmm.log of the VMs named in args (for failures)."""
        out = ""
        for a in args:
            p = self.vmdir(a) / "vmm.log" if re.match(r"^[\w.-]+$", str(a)) else None
            if p and p.exists():
                out += f"\n--- {p} (tail) ---\n" + p.read_text(errors="replace")[-2000:]
        return out

    def error(self, *args, want, timeout=120):
        """A one-line error on stderr containing `want`, and exit status 1."""
        result = self(*args, ok=False, timeout=timeout)
        lines = [l for l in result.stderr.splitlines() if l.strip()]
        check(result.returncode == 1 and len(lines) >= 1 and want in lines[0],
              f"petrel vm {' '.join(args)}: expected an error with {want!r}", result)
        return result

    def vmdir(self, name):
        return self.home / "vms" / name

    def snapdir(self, name, tag):
        return self.vmdir(name) / "snapshots" / tag

    def definition(self, name):
        return json.loads((self.vmdir(name) / "vm.json").read_text())

    def states(self):
        return {v["name"]: v["state"] for v in json.loads(self("list", "--json").stdout)}

    def snapshots(self, name):
        return {s["tag"]: s for s in json.loads(self("snapshots", name, "--json").stdout)}

    def run_json(self, name):
        p = self.vmdir(name) / "run.json"
        return json.loads(p.read_text()) if p.exists() else None

    def console_log(self, name):
        p = self.vmdir(name) / "console.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def guest(self, name, text, key, timeout=90):
        """Type text into NAME's console; the values of the KEY0= lines."""
        deadline = time.monotonic() + timeout
        while True:
            r = self("console", name, input=text, timeout=120)
            vals = marker_values(r, key)
            if vals or time.monotonic() > deadline:
                break
            time.sleep(1)
        if not vals:
            fail(f"{name}'s console printed no {key}0= line", r.describe()
                 + "\n--- console.log ---\n" + self.console_log(name)[-3000:] + self.logs([name]))
        return vals[-1]

    def log_state(self, name):
        """(last number, lines, consecutive) of NAME's /root/log."""
        v = self.guest(name, READ, "V").split()
        check(len(v) == 3 and all(x.isdigit() for x in v), f"{name}: log state {v}")
        return int(v[0]), int(v[1]), v[2] == "0"

    def wait_count(self, name, at_least, timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            n, lines, ok = self.log_state(name)
            if n >= at_least or time.monotonic() > deadline:
                return n, lines, ok
            time.sleep(max(1, min(at_least - n, 5)))


def check_continues(pv, name, after, before, what):
    """NAME's log continues from a snapshot taken when the count was in
    [after, before]: consecutive, and counting on."""
    n, lines, ok = pv.log_state(name)
    check(ok and lines == n, f"{what}: {name}'s log is 1..{n} without gaps or repeats "
          f"({lines} lines, consecutive={ok})", pv.console_log(name)[-2000:])
    check(n >= after, f"{what}: {name}'s count {n} is not below the snapshot's (>= {after})")
    n2, lines2, ok2 = pv.wait_count(name, n + 2, timeout=60)
    check(ok2 and lines2 == n2 and n2 >= n + 2, f"{what}: {name} keeps counting ({n} -> {n2}, "
          f"consecutive={ok2})")
    return n


def wait_prompt(pv, name):
    deadline = time.monotonic() + BOOT_TIMEOUT
    while PROMPT not in pv.console_log(name):
        if time.monotonic() > deadline:
            fail(f"{name}: no shell prompt within {BOOT_TIMEOUT} s",
                 pv.console_log(name)[-3000:] + pv.logs([name]))
        time.sleep(0.5)


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


def kill_all(pv):
    vms = pv.home / "vms"
    for d in (vms.iterdir() if vms.exists() else []):
        p = d / "run.json"
        try:
            run = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if run.get("pid"):
            try:
                os.kill(run["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
        if run.get("socket_dir"):
            shutil.rmtree(run["socket_dir"], ignore_errors=True)


@pytest.fixture(scope="module")
def pv(tmp_path_factory):
    """src booted, its counting loop running, at least 3 counted."""
    require_guest()
    require_file(GUEST_DIR / "root.img", "build the default guest with `make guest`")
    base = tmp_path_factory.mktemp("vmsnap")
    (base / "home").mkdir()
    pv = Petrel(base / "state", base / "home")
    pv("create", "src", "--memory", "256M", "--ssh-key", "none")
    try:
        pv("start", "src")
        wait_prompt(pv, "src")
        pv("console", "src", input=LOOP)
        pv.wait_count("src", 3)
        pv.marks = {}
        yield pv
    finally:
        kill_all(pv)


# --- the tests, in order -------------------------------------------------------

def test_bad_input(pv):
    for bad in ("bad/tag", ".hidden", "x" * 65, "sp ace", "ü"):
        pv.error("snapshot", "src", bad, want=f"invalid snapshot tag '{bad}'")
    pv.error("snapshot", "src", "-x", want="unknown option '-x'")
    pv.error("snapshot", "nope", want="no VM named 'nope'")
    pv.error("snapshot", "src", "a", "b", want="expected a VM name and at most one tag")
    for cmd in (["revert", "src", "nope"], ["delete-snapshot", "src", "nope"],
                ["clone", "src", "c9", "--from", "nope"]):
        pv.error(*cmd, want="src has no snapshot named 'nope'")
    pv.error("revert", "src", want="expected a VM name and a snapshot tag")
    pv.error("clone", "src", "src", want="needs a name of its own")
    pv.error("clone", "src", want="expected a VM name and a new VM name")
    pv.error("snapshot", "src", "d0", "--diff", want="--diff: src has no snapshot to be "
             "relative to")
    check(not (pv.vmdir("src") / "snapshots" / "d0").exists(), "a refused snapshot left nothing")
    check(not pv.vmdir("c9").exists(), "a refused clone left nothing")
    r = pv("--help")
    for cmd in ("snapshot", "snapshots", "delete-snapshot", "revert", "clone"):
        check(f"  {cmd} " in r.stdout, f"'petrel vm --help' lists {cmd}", r)
        h = pv(cmd, "--help")
        check(h.stdout.startswith(f"usage: petrel vm {cmd}"), f"petrel vm {cmd} --help", h)
        check(all(len(l) <= 80 for l in h.stdout.splitlines()), f"{cmd} --help fits 80 "
              "columns", h)


def test_snapshot_and_revert(pv):
    n0, _, _ = pv.log_state("src")
    r = pv("snapshot", "src", "s1")
    n1, _, _ = pv.log_state("src")
    pv.marks["s1"] = (n0, n1)
    check(re.search(r"snapshot s1 of src: full, [\d.]+ s \(guest paused [\d.]+ s\); memory "
                    r"file [\d.]+[KMG] allocated \(of 256.0M\)", r.stdout),
          "snapshot prints what it did", r)
    sd = pv.snapdir("src", "s1")
    info = json.loads((sd / "info.json").read_text())
    check(info["type"] == "full" and info["parent"] is None and info["vm_state"] == "running"
          and info["tag"] == "s1" and info["memory_mib"] == 256
          and [d["path"] for d in info["disks"]] == [str(pv.vmdir("src") / "disk0.qcow2")],
          f"info.json: {info}")
    mem = (sd / "memory").stat()
    check(mem.st_size == 256 << 20 and 0 < mem.st_blocks * 512 < mem.st_size,
          f"the memory file is 256M with holes ({mem.st_blocks * 512} bytes allocated)")
    s = pv.snapshots("src")["s1"]
    check(s["type"] == "full" and s["complete"] and s["size_bytes"] == s["state_bytes"] +
          s["memory_bytes"] and s["memory_bytes"] == mem.st_blocks * 512, f"snapshots: {s}")
    r = pv("snapshots", "src")
    lines = r.stdout.splitlines()
    check(lines[0].split() == ["TAG", "CREATED", "TYPE", "SIZE", "PARENT"]
          and lines[1].split()[0::2] == ["s1", "full", "-"], "the table", r)
    check(pv.states()["src"] == "running", "src runs on after the snapshot")
    check(pv.run_json("src")["snapshot_parent"] == "s1", "run.json: diffs are relative to s1")
    pv.error("snapshot", "src", "s1", want="src already has a snapshot named 's1'")
    info = json.loads(pv("info", "src").stdout)
    check(info["snapshots"] == 1 and info["cloned_from"] is None, f"info: {info}")

    # the guest goes on well past the snapshot, then goes back
    pv.wait_count("src", n1 + 8)
    pid = pv.run_json("src")["pid"]
    r = pv("revert", "src", "s1")
    check("reverted src to snapshot s1" in r.stdout, "revert says what it did", r)
    check(pv.run_json("src")["pid"] != pid, "a new VMM runs src")
    n = check_continues(pv, "src", n0, n1, "revert to s1")
    check(n < n1 + 8, f"after the revert the count ({n}) went back (it was {n1 + 8} or more)")
    check(pv.run_json("src")["snapshot_parent"] == "s1", "diffs are relative to s1 again")


def test_diff_snapshot(pv):
    na, _, _ = pv.log_state("src")
    pv("pause", "src")
    r = pv("snapshot", "src", "s2", "--diff")
    check("snapshot s2 of src: diff" in r.stdout and "guest paused" not in r.stdout,
          "a diff snapshot of a paused VM", r)
    check(pv.states()["src"] == "paused", "a paused VM stays paused")
    pv("resume", "src")
    nb, _, _ = pv.log_state("src")
    info = json.loads((pv.snapdir("src", "s2") / "info.json").read_text())
    check(info["type"] == "diff" and info["parent"] == "s1" and info["vm_state"] == "paused",
          f"info.json: {info}")
    snaps = pv.snapshots("src")
    check(snaps["s2"]["parent"] == "s1" and snaps["s2"]["memory_bytes"]
          < snaps["s1"]["memory_bytes"], f"the diff is smaller than the full one: {snaps}")
    r = pv("snapshots", "src")
    row = next(l.split() for l in r.stdout.splitlines() if l.startswith("s2 "))
    check(row[2] == "diff" and row[4] == "s1", f"s2's row: {row}", r)

    pv.error("delete-snapshot", "src", "s1", want="'s1' is the parent of diff snapshot s2")
    pv.error("delete-snapshot", "src", "s2", want="stop the VM first: its disks are in use")
    check(pv.snapdir("src", "s1").exists() and pv.snapdir("src", "s2").exists(),
          "refused deletes removed nothing")

    pv.wait_count("src", nb + 5)
    pv("revert", "src", "s2")
    check_continues(pv, "src", na, nb, "revert to the diff s2")
    check(pv.run_json("src")["snapshot_parent"] == "s2", "diffs are relative to s2 now")


def test_clones(pv):
    clones = ["c1", "c2", "c3"]
    for c in clones:
        r = pv("clone", "src", c, "--from", "s1")
        check(f"cloned src at snapshot s1 as {c}" in r.stdout, f"clone {c}", r)
    export = pv.snapdir("src", "s1") / "disk-0.qcow2"
    check(export.exists() and export.stat().st_mode & 0o777 == 0o444,
          "the disk's export at s1, read-only")
    macs = []
    for c in clones:
        d = pv.definition(c)
        base = pv.vmdir(c) / "disk0-base.qcow2"
        check(base.stat().st_ino == export.stat().st_ino, f"{c} links the one export")
        check((pv.vmdir(c) / "restore" / "memory").stat().st_ino
              == (pv.snapdir("src", "s1") / "memory").stat().st_ino,
              f"{c} links s1's memory file")
        check(d["restore_from"] == "restore" and d["cloned_from"] == {"vm": "src",
                                                                      "snapshot": "s1"}
              and d["disks"][0]["path"] == "disk0.qcow2" and d["ssh"]["port"] == 0,
              f"{c}'s vm.json: {d}")
        net = next(x for x in d["devices"] if x.startswith("virtio-net"))
        m = re.search(r",mac=([0-9a-f]{2})((:[0-9a-f]{2}){5})$", net)
        check(m and int(m.group(1), 16) & 3 == 2, f"{c}: a locally administered MAC: {net}")
        macs.append(m.group(0))
        info = json.loads(pv("info", c).stdout)
        check(info["cloned_from"] == {"vm": "src", "snapshot": "s1",
                                      "first_start_pending": True}, f"info {c}: {info}")
    check(len(set(macs)) == 3, f"every clone has its own MAC: {macs}")

    started = in_parallel(lambda c: pv("start", c, ok=False, timeout=180), clones)
    for c in clones:
        check(started[c].returncode == 0, f"start {c}", started[c].describe() + pv.logs([c]))
    states = pv.states()
    check(all(states[c] == "running" for c in clones + ["src"]),
          f"three clones and src run at once: {states}")
    n0, n1 = pv.marks["s1"]
    for c in clones:
        check("restore_from" not in pv.definition(c) and not (pv.vmdir(c) / "restore").exists(),
              f"{c}: restore_from and its links are gone once it started")
        check_continues(pv, c, n0, n1, f"clone {c}")
    for c in clones:
        check(pv.guest(c, f"echo {c} > /root/who; sync; echo \"W$((0))=$(cat /root/who)\"\n",
                       "W") == c, f"{c} writes its own file")
    for c in clones:
        check(pv.guest(c, "echo \"W$((0))=$(cat /root/who)\"\n", "W") == c,
              f"{c} still reads its own file (the clones diverged)")
    check(pv.guest("src", "echo \"W$((0))=$(cat /root/who 2>/dev/null || echo none)\"\n", "W")
          == "none", "src never saw the clones' files")
    for c in clones[1:]:
        pv("kill", c)
        pv("delete", c)
    pv("kill", "c1")
    check(export.exists(), "deleting clones leaves the export")


def test_clone_running_now(pv):
    r = pv("clone", "src", "c4")
    m = re.search(r"snapshot (clone-c4-\d{8}-\d{6}) of src: full", r.stdout)
    check(m and f"cloned src at snapshot {m.group(1)} as c4" in r.stdout,
          "clone of a running VM takes a snapshot for it", r)
    pv.marks["c4"] = m.group(1)
    check(m.group(1) in pv.snapshots("src"), "the snapshot is in src's list")
    check(pv.definition("c4")["restore_from"] == "restore", "c4 starts from it")


def test_stopped_vm(pv):
    pv("kill", "src")
    check(pv.states()["src"] == "stopped", "src is stopped")
    r = pv("snapshot", "src", "d1")
    check("snapshot d1 of src: disk-only" in r.stdout, "a stopped VM: disk-only", r)
    check(pv.snapshots("src")["d1"]["type"] == "disk", "listed as disk")
    pv.error("snapshot", "src", "d1", want="src already has a snapshot named 'd1'")
    pv.error("snapshot", "src", "--diff", want="--diff: src is not running")
    pv.error("revert", "src", "d1", "--paused", want="'d1' is a disk-only snapshot")

    r = pv("clone", "src", "c5")
    check("a cold copy" in r.stdout, "a stopped VM is copied cold", r)
    info = json.loads(run_cmd([pv.binary, "img", "info", "--output=json",
                               pv.vmdir("c5") / "disk0.qcow2"], timeout=60, env=pv.env).stdout)
    check(Path(info["backing-filename"]).parent == pv.home / "images",
          f"the copy is on the same base image: {info}")
    check("restore_from" not in pv.definition("c5") and
          pv.definition("c5")["cloned_from"] == {"vm": "src", "snapshot": None},
          "a cold copy boots cold")
    r = pv("clone", "src", "c6", "--from", "d1")
    check("cloned src at disk snapshot d1 as c6" in r.stdout, "clone of a disk snapshot", r)
    check("restore_from" not in pv.definition("c6"), "a disk snapshot's clone boots cold")

    # a memory snapshot restores a stopped VM; --paused leaves it paused
    r = pv("revert", "src", "s1", "--paused")
    check(pv.states()["src"] == "paused", "revert --paused: paused", r)
    pv("resume", "src")
    n0, n1 = pv.marks["s1"]
    check_continues(pv, "src", n0, n1, "revert of the stopped VM to s1")
    pv("kill", "src")
    r = pv("revert", "src", "d1")
    check("it stays stopped" in r.stdout and pv.states()["src"] == "stopped",
          "revert to a disk snapshot of a stopped VM", r)

    for tag in ("s2", "s1", "d1", pv.marks["c4"]):
        pv("delete-snapshot", "src", tag)
        check(not pv.snapdir("src", tag).exists(), f"{tag} is gone")
    r = run_cmd([pv.binary, "img", "snapshot", "-l", pv.vmdir("src") / "disk0.qcow2"],
                timeout=60, env=pv.env)
    check(r.returncode == 0 and not any(t in r.stdout for t in ("s1", "s2", "d1", "clone-")),
          "the disk's internal snapshots went with them", r)
    check(pv.snapshots("src") == {}, "no snapshot left")

    # the source goes; c4 (never started) still starts from its snapshot
    pv("delete", "src")
    pv("start", "c4")
    check(pv.states()["c4"] == "running", "c4 runs without src")
    n, lines, ok = pv.log_state("c4")
    check(ok and lines == n, f"c4 continues the snapshot's guest ({n}, {lines}, {ok})")
    pv("kill", "c4")
    for c in ("c1", "c4", "c5", "c6"):
        pv("delete", c)
