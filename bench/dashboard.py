#!/usr/bin/python3
"""Dashboard benchmark: prints figures, asserts nothing.

  bench/dashboard.py [--petrel build/petrel] [--vms 10] [--loads 10] [--keys 30]

Headless Chromium (Debian's chromium + chromium-driver, python3-selenium)
against one `petrel serve` with its own PETREL_HOME:

1. Page load: navigation to the VM list rendered (document.body.dataset.
   listReady, set after the first GET /api/v1/vms is in the table), with
   --vms VMs defined (stopped), median and max over --loads loads.
2. petrel serve's RSS with those VMs listed (after the loads).
3. The serial console's keystroke-to-echo latency in the browser: one VM
   booted, a key typed into xterm.js (its input path: the data event ->
   WebSocket -> console -> the guest's tty echo -> WebSocket -> xterm.js
   write) until the cursor moved, median and p95 over --keys keys.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


LATENCY_JS = """
const [n, done] = arguments;
const t = window.petrelTerm, core = t._core;
const out = [];
let i = 0;
function one() {
  if (i >= n) { done(out); return; }
  const x0 = core.buffer.x, y0 = core.buffer.y, t0 = performance.now();
  function check() {
    if (core.buffer.x !== x0 || core.buffer.y !== y0) {
      out.push(performance.now() - t0); i++; setTimeout(one, 30); return;
    }
    if (performance.now() - t0 > 5000) { out.push(null); i++; one(); return; }
    requestAnimationFrame(check);
  }
  core.handler(i % 10 === 9 ? "\\u0015" : "x");      // ^U every 10 keys clears the line
  if (i % 10 === 9) { i++; setTimeout(one, 100); return; }
  requestAnimationFrame(check);
}
one();
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--petrel", default=str(REPO / "build" / "petrel"))
    ap.add_argument("--vms", type=int, default=10)
    ap.add_argument("--loads", type=int, default=10)
    ap.add_argument("--keys", type=int, default=30)
    a = ap.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    home = tempfile.mkdtemp(prefix="petrel-bench-dash-")
    env = dict(os.environ, PETREL_HOME=home + "/state", HOME=home)
    for i in range(a.vms):
        subprocess.run([a.petrel, "vm", "create", f"vm{i}", "--ssh-key", "none", "--memory", "256M"],
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    srv = subprocess.Popen([a.petrel, "serve", "--listen", "127.0.0.1:0", "--sample-interval", "1"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    m = None
    while not m:
        m = re.search(r"open (http://[^/]+)/\?token=([0-9a-f]+)", srv.stdout.readline())
    url, token = m.group(1), m.group(2)
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1360,900"):
        o.add_argument(arg)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
    d.set_script_timeout(300)
    try:
        d.get(url + "/?token=" + token)
        loads = []
        for _ in range(a.loads):
            d.get("about:blank")
            t0 = time.monotonic()
            d.get(url + "/")
            while not d.execute_script("return document.body.dataset.listReady"):
                time.sleep(0.002)
            loads.append((time.monotonic() - t0) * 1000)
            n = d.execute_script("return document.querySelectorAll('#vms tr').length")
        print(f"page load to the VM list ({n} VMs): median {statistics.median(loads):.0f} ms, "
              f"max {max(loads):.0f} ms")
        print(f"petrel serve RSS with {a.vms} VMs listed: {rss_kib(srv.pid) / 1024:.1f} MiB")
        subprocess.run([a.petrel, "vm", "start", "vm0"], env=env, check=True, stdout=subprocess.DEVNULL)
        d.get(url + "/#/vm/vm0/console")
        deadline = time.monotonic() + 300
        while True:
            txt = d.execute_script("const t = window.petrelTerm; if (!t) return '';"
                                   "t.selectAll(); const s = t.getSelection(); t.clearSelection(); return s;")
            if "petrel:/#" in (txt or ""):
                break
            if time.monotonic() > deadline:
                sys.exit("no prompt on the console")
            d.execute_script("window.petrelTerm && window.petrelTerm._core.handler('\\r')")
            time.sleep(3)
        time.sleep(2)
        lat = [v for v in d.execute_async_script(LATENCY_JS, a.keys) if v is not None]
        lat.sort()
        if lat:
            print(f"console keystroke-to-echo in the browser ({len(lat)} keys): median "
                  f"{statistics.median(lat):.1f} ms, p95 {lat[int(len(lat) * 0.95) - 1 if len(lat) > 1 else 0]:.1f} ms")
        else:
            print("console keystroke-to-echo: no echo seen")
    finally:
        d.quit()
        subprocess.run([a.petrel, "vm", "kill", "vm0"], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        srv.terminate()
        srv.wait()
        subprocess.run(["rm", "-rf", home])


main()
