"""The REST API end to end, driven by a generic HTTP client over the unix
socket (no Petrel code on the client side):

- a whole lifecycle (configure, InstanceStart, pause: the guest's clock and
  instruction count stop; resume, metrics, stop) on the ASan build, so the
  API, the event loop and the pause path run under the sanitizers;
- bad requests while the guest runs (malformed JSON, unknown fields, wrong
  types, bodies over the cap, wrong state, many clients at once, a client
  that never sends): 4xx with a fault_message, and the guest goes on;
- Firecracker's --config-file layout boots the riscv64 guest (--no-api).
"""

import json
import re
import socket
import threading
import time

from api_helpers import Vmm, api
from petrel_helpers import (EXIT_POWEROFF, GUEST_DIR, assert_no_sanitizer_report, check,
                            fail, require_guest, run_petrel)

PROMPT = "petrel:/# "


def fault(status, body, want_status, want_text):
    check(status == want_status and isinstance(body, dict) and "fault_message" in body
          and want_text in body["fault_message"],
          f"expected {want_status} with a fault_message containing {want_text!r}, "
          f"got {status} {body!r}")


def guest_uptime(con):
    """The guest's own clock: seconds since its boot (/proc/uptime)."""
    con.send("cat /proc/uptime\n")
    out = con.expect(PROMPT, timeout=60)
    m = re.search(r"^(\d+\.\d+) ", out, re.M)
    if not m:
        fail(f"no uptime in {out!r}")
    return float(m.group(1))


def metrics(vmm):
    st, m = vmm.api("GET", "/petrel/metrics")
    check(st == 200, f"GET /petrel/metrics: {st} {m!r}")
    return m


def test_api_lifecycle(tmp_path):
    """Configure, start, pause, resume, metrics, stop: API calls only."""
    require_guest()
    disk = tmp_path / "data.img"
    disk.write_bytes(b"\xab" * (1 << 20))
    # the command line pre-fills what the API does not configure: a keyboard
    # (the power button the graceful stop presses)
    vmm = Vmm("asan", tmp_path, ["--id", "api-test", "--device", "virtio-keyboard"])
    try:
        st, info = vmm.api("GET", "/")
        check(st == 200 and info.get("state") == "Not started" and info.get("id") == "api-test",
              f"GET / before start: {st} {info!r}")
        for method, path, body in [
            ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 256}),
            ("PUT", "/boot-source", {"kernel_image_path": str(GUEST_DIR / "Image"),
                                     "initrd_path": str(GUEST_DIR / "initramfs.cpio.gz"),
                                     "boot_args": "console=ttyS0 earlycon=sbi"}),
            ("PUT", "/drives/data", {"drive_id": "data", "path_on_host": str(disk),
                                     "is_root_device": False, "is_read_only": True}),
            ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0",
                                                 "host_dev_name": "petrel:net=user"}),
            ("PUT", "/entropy", {}),
        ]:
            st, body_ = vmm.api(method, path, body)
            check(st == 204, f"{method} {path}: {st} {body_!r}")
        # bad requests before start leave the configuration alone
        fault(*vmm.api("PUT", "/machine-config", {"vcpu_count": "two", "mem_size_mib": 256}),
              400, "vcpu_count")
        fault(*vmm.api("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 256,
                                                  "bogus": 1}), 400, "bogus")
        fault(*vmm.api("PATCH", "/vm", {"state": "Paused"}), 400, "")
        st, cfg = vmm.api("GET", "/vm/config")
        check(st == 200 and cfg["machine-config"]["mem_size_mib"] == 256
              and cfg["drives"][0]["drive_id"] == "data", f"GET /vm/config: {st} {cfg!r}")

        st, body = vmm.api("PUT", "/actions", {"action_type": "InstanceStart"})
        check(st == 204, f"InstanceStart: {st} {body!r}")
        fault(*vmm.api("PUT", "/actions", {"action_type": "InstanceStart"}), 400, "")
        fault(*vmm.api("PUT", "/drives/late", {"drive_id": "late", "path_on_host": str(disk),
                                                "is_root_device": False,
                                                "is_read_only": True}), 400, "")
        con = vmm.console()
        con.expect(PROMPT, timeout=120)
        st, info = vmm.api("GET", "/")
        check(info.get("state") == "Running", f"GET / after start: {info!r}")

        # the guest reads its disk and sends DHCP requests: device counters move
        con.send("dd if=/dev/vda of=/dev/null bs=4096 count=64 2>/dev/null; "
                 "ip link set eth0 up; udhcpc -i eth0 -n -q -t 3 >/dev/null 2>&1; echo dd-done\n")
        con.expect("dd-done", timeout=120)
        con.expect(PROMPT)
        m = metrics(vmm)
        blk = {d["id"]: d for d in m["block"]}
        net = {d["id"]: d for d in m["net"]}
        check("vda" in blk and blk["vda"]["read_bytes"] >= 64 * 4096 and blk["vda"]["read_ops"] > 0,
              f"block metrics after the guest read 256 KiB: {m['block']!r}")
        check("net0" in net and net["net0"]["tx_packets"] > 0 and net["net0"]["rx_packets"] > 0,
              f"net metrics after DHCP: {m['net']!r}")
        check(m["vcpus"][0]["instructions"] > 0 and m["memory"]["vmm_rss_bytes"] > 0,
              f"vcpu/memory metrics: {m!r}")

        # pause: instructions and guest time stop; resume: no jump
        before = guest_uptime(con)
        t0 = time.monotonic()
        st, body = vmm.api("PATCH", "/vm", {"state": "Paused"})
        check(st == 204, f"PATCH /vm Paused: {st} {body!r}")
        st, info = vmm.api("GET", "/")
        check(info.get("state") == "Paused", f"GET / while paused: {info!r}")
        m1 = metrics(vmm)
        time.sleep(2.0)
        m2 = metrics(vmm)
        check(m1["vcpus"][0]["instructions"] == m2["vcpus"][0]["instructions"],
              f"instructions moved while paused: {m1['vcpus']} -> {m2['vcpus']}")
        check(m1["uptime_s"] == m2["uptime_s"], f"uptime moved while paused: "
              f"{m1['uptime_s']} -> {m2['uptime_s']}")
        st, body = vmm.api("PATCH", "/vm", {"state": "Resumed"})
        check(st == 204, f"PATCH /vm Resumed: {st} {body!r}")
        after = guest_uptime(con)
        wall = time.monotonic() - t0
        check(after - before < wall - 1.5,
              f"the guest's clock ran while paused: {after - before:.2f} s of guest time "
              f"over {wall:.2f} s wall with a 2 s pause")
        check(after > before, f"the guest's clock went backwards: {before} -> {after}")

        # the guest still answers
        con.send("echo still-$((40+2))\n")
        con.expect("still-42")
        # a graceful stop: the power button; the guest powers itself off
        st, body = vmm.api("PUT", "/petrel/stop", {"timeout_s": 60})
        check(st == 204, f"PUT /petrel/stop: {st} {body!r}")
        con.expect("reboot: Power down", timeout=60)
        rc = vmm.wait(60)
        check(rc == EXIT_POWEROFF, f"VMM exit status {rc} after a stop, want 0\n{vmm.output()}")
        check("petrel: stopped" not in vmm.output(),
              f"the VMM stopped the guest instead of the guest powering off:\n{vmm.output()}")
    finally:
        vmm.kill()
    assert_no_sanitizer_report(type("R", (), {"stdout": "", "stderr": vmm.output()})())


def slow_client(path, stop):
    """Connects and never sends a byte."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    stop.wait(30)
    s.close()


def test_api_bad_requests_while_running(tmp_path):
    """Malformed and hostile requests get 4xx answers; the guest goes on."""
    require_guest()
    vmm = Vmm("default", tmp_path, ["--boot", "--memory", "256M"])
    try:
        con = vmm.console()
        con.expect(PROMPT, timeout=120)
        stop = threading.Event()
        idle = [threading.Thread(target=slow_client, args=(vmm.api_sock, stop))
                for _ in range(4)]
        for t in idle:
            t.start()
        try:
            fault(*vmm.api("PUT", "/machine-config", raw=b'{"vcpu_count": 1,'), 400, "")
            fault(*vmm.api("PUT", "/machine-config", raw=b'[1, 2]'), 400, "")
            fault(*vmm.api("PATCH", "/vm", {"state": "Sleeping"}), 400, "state")
            fault(*vmm.api("PATCH", "/vm", {"state": "Paused", "extra": True}), 400, "extra")
            fault(*vmm.api("PUT", "/actions", {"action_type": 7}), 400, "action_type")
            fault(*vmm.api("PUT", "/actions", {"action_type": "Explode"}), 400, "")
            fault(*vmm.api("PUT", "/boot-source", {"kernel_image_path": "/nonexistent"}), 400, "")
            st, body = vmm.api("GET", "/no/such/path")
            check(400 <= st < 500, f"unknown path: {st} {body!r}")
            st, body = vmm.api("DELETE", "/machine-config")
            check(400 <= st < 500, f"wrong method: {st} {body!r}")
            st, body = vmm.api("PUT", "/machine-config", raw=b"{" + b" " * (1 << 20) + b"}")
            check(400 <= st < 500, f"a 1 MiB body: {st} {body!r}")
            fault(*vmm.api("PUT", "/drives/x", {"drive_id": "y", "path_on_host": "/dev/null",
                                                 "is_root_device": False}), 400, "")
            # many clients at once, while four idle connections are open
            results = []

            def get_root():
                results.append(api(vmm.api_sock, "GET", "/", timeout=30)[0])
            threads = [threading.Thread(target=get_root) for _ in range(40)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            check(results.count(200) == 40, f"40 concurrent GET /: {results}")
        finally:
            stop.set()
            for t in idle:
                t.join()
        con.send("echo alive-$((6*7))\n")
        con.expect("alive-42", timeout=60)
        st, info = vmm.api("GET", "/")
        check(st == 200 and info["state"] == "Running", f"GET / after the abuse: {st} {info!r}")
        vmm.api("PUT", "/petrel/stop", {"timeout_s": 0, "force": True})
        rc = vmm.wait(60)
        check(rc == EXIT_POWEROFF, f"exit status {rc}\n{vmm.output()}")
    finally:
        vmm.kill()


def test_config_file_boots(tmp_path):
    """Firecracker's --config-file layout (no API) boots the riscv64 guest."""
    require_guest()
    cfg = {
        "boot-source": {"kernel_image_path": str(GUEST_DIR / "Image"),
                        "initrd_path": str(GUEST_DIR / "initramfs.cpio.gz"),
                        "boot_args": "console=ttyS0 earlycon=sbi"},
        "drives": [],
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 192, "smt": False,
                           "track_dirty_pages": False},
        "network-interfaces": [],
    }
    path = tmp_path / "vm_config.json"
    path.write_text(json.dumps(cfg, indent=2))
    r = run_petrel("default", ["run", "--config-file", str(path), "--no-api"],
                   input=b"grep MemTotal /proc/meminfo\npoweroff -f\n", timeout=120)
    check(r.returncode == EXIT_POWEROFF, f"exit status {r.returncode}", r)
    m = re.search(r"MemTotal:\s+(\d+) kB", r.stdout)
    # a 192M guest reports about 124 MiB (firmware, kernel and initrd
    # reserved); the default 512M would report about 450
    check(m and 100 * 1024 < int(m.group(1)) <= 192 * 1024,
          "the guest did not boot with the config file's 192 MiB", r)
    # a bad config file: one line naming the file and the field
    cfg["machine-config"]["vcpu_count"] = "one"
    path.write_text(json.dumps(cfg))
    r = run_petrel("default", ["run", "--config-file", str(path), "--no-api"], timeout=30)
    check(r.returncode == 1 and "vcpu_count" in r.stderr and str(path.name) in r.stderr,
          "a bad --config-file must fail naming the file and the field", r)


def test_firecracker_command_line(tmp_path):
    """A Firecracker client runs `firecracker --api-sock P --id ID`: the same
    flags on the petrel binary (no subcommand) start a VMM that waits for
    configuration; a stop before InstanceStart ends it cleanly."""
    import subprocess
    from api_helpers import wait_for_socket
    from petrel_helpers import kill_group, petrel_env, require_petrel
    sock = str(tmp_path / "fc.sock")
    proc = subprocess.Popen([require_petrel("default"), "--api-sock", sock, "--id", "fc-7",
                             "--seccomp-level", "0"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=petrel_env("default"), start_new_session=True)
    try:
        wait_for_socket(sock, proc)
        st, info = api(sock, "GET", "/")
        check(st == 200 and info["id"] == "fc-7" and info["state"] == "Not started",
              f"GET /: {st} {info!r}")
        st, ver = api(sock, "GET", "/version")
        check(st == 200 and "firecracker_version" in ver, f"GET /version: {st} {ver!r}")
        st, body = api(sock, "PUT", "/petrel/stop", {"force": True})
        check(st == 204, f"stop before start: {st} {body!r}")
        rc = proc.wait(timeout=30)
        check(rc == 0, f"exit status {rc}: {proc.stdout.read()!r}")
        check(not (tmp_path / "fc.sock").exists(), "the API socket was left behind")
    finally:
        if proc.poll() is None:
            kill_group(proc)
