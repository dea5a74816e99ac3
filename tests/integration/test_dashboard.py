"""The dashboard in a real browser: headless Chromium (Debian's chromium +
chromium-driver) driven by Selenium (python3-selenium), against one
`petrel serve` with its own PETREL_HOME.

One Linux boot (a VM with a display): log in through the login page,
create the VM from the form (markup in a name is refused and shown as
text), it starts, `uname -m` typed into the serial console (xterm.js)
shows `riscv64`, the CPU graph gets points, the graphical console (noVNC)
shows a non-blank screen that changes after key presses (pasted text typed
as keys), stop and delete through the buttons and the confirmation dialog.
Then an unauthenticated request (401) and a state-changing request without
the CSRF header (403).  Screenshots of each page go to
build/test-artifacts/dashboard-*.png."""

import http.client
import json
import os
import re
import time
import urllib.error
import urllib.request

import pytest

from api_helpers import serve_started
from petrel_helpers import BUILD_DIR, check, fail, require_guest

BOOT_TIMEOUT = 300
ARTIFACTS = BUILD_DIR / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def need_browser():
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("python3-selenium is missing (scripts/deps.sh test installs it)")
    for p in (CHROMIUM, CHROMEDRIVER):
        if not os.access(p, os.X_OK):
            pytest.skip(f"{p} is missing (scripts/deps.sh test installs chromium, chromium-driver)")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    need_browser()
    require_guest()
    with serve_started(tmp_path_factory.mktemp("dash")) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser(srv):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1360,900", "--disable-extensions", "--no-first-run"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    d.set_script_timeout(30)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield d
    finally:
        d.quit()


def wait(what, fn, timeout=30, interval=0.3, details=None):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            fail(f"timed out waiting for {what}", details() if details else None)
        time.sleep(interval)


def shot(d, name):
    d.save_screenshot(str(ARTIFACTS / f"dashboard-{name}.png"))


def term_text(d):
    return d.execute_script("const t = window.petrelTerm; if (!t) return '';"
                            "t.selectAll(); const s = t.getSelection(); t.clearSelection(); return s;")


# the noVNC canvas: how many distinct colours (a blank screen has 1) and a hash
CANVAS_JS = """
const c = document.querySelector('#screen canvas');
if (!c || !c.width) return null;
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let h = 0, colours = new Set();
for (let i = 0; i < d.length; i += 4) {
  const v = d[i] << 16 | d[i + 1] << 8 | d[i + 2];
  h = (h * 31 + v) | 0;
  if (colours.size < 64) colours.add(v);
}
return [c.width, c.height, colours.size, h];
"""


def click_op(d, op, scope="#vm-actions"):
    from selenium.webdriver.common.by import By
    sel = f"{scope} button[data-op='{op}']"
    btn = wait(f"the {op} button", lambda: d.find_elements(By.CSS_SELECTOR, sel))
    # in the "more" menu: open it first
    d.execute_script("const m = arguments[0].closest('details'); if (m) m.open = true;", btn[0])
    try:
        btn[0].click()
    except Exception:
        shot(d, f"failed-{op}")
        raise


def state(d):
    return d.execute_script("const s = document.getElementById('vm-state'); return s && s.textContent;")


def test_dashboard(srv, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.common.action_chains import ActionChains
    d = browser
    t0 = time.monotonic()
    # log in through the page
    d.get(srv.url + "/")
    wait("the login page", lambda: "/login" in d.current_url)
    shot(d, "login")
    d.find_element(By.ID, "secret").send_keys("0" * 48 + Keys.ENTER)
    wait("the wrong token refused", lambda: d.find_element(By.ID, "error").is_displayed())
    d.find_element(By.ID, "secret").clear()
    d.find_element(By.ID, "secret").send_keys(srv.token + Keys.ENTER)
    wait("the VM list", lambda: d.execute_script("return document.body.dataset.listReady"))
    check(d.find_element(By.ID, "empty").is_displayed(), "an empty list says so")
    shot(d, "list-empty")

    # the create form: markup in a name is refused, and the error is text
    d.find_element(By.ID, "btn-create").click()
    form = d.find_element(By.ID, "create-form")
    name = form.find_element(By.NAME, "name")
    d.execute_script("arguments[0].removeAttribute('pattern')", name)
    name.send_keys("<img src=x onerror=window.pwned=1>")
    form.find_element(By.ID, "create-submit").click()
    err = wait("the create error", lambda: d.find_element(By.ID, "create-error").text)
    check("invalid VM name" in err and not d.execute_script("return window.pwned"),
          f"markup in a name: {err!r}")
    check(not d.find_elements(By.CSS_SELECTOR, "#dlg-create img"), "no markup inserted")
    name.clear()
    name.send_keys("dash1")
    from selenium.webdriver.support.ui import Select
    Select(form.find_element(By.NAME, "memory")).select_by_value("256M")
    form.find_element(By.NAME, "display").click()
    shot(d, "create-form")
    form.find_element(By.ID, "create-submit").click()
    wait("the VM's page", lambda: d.current_url.endswith("#/vm/dash1"))
    wait("the VM running", lambda: state(d) == "running", timeout=60,
         details=lambda: d.find_element(By.ID, "toasts").text)
    vmj = json.loads((srv.home / "vms" / "dash1" / "vm.json").read_text())
    check(vmj.get("display") is True and vmj["memory_mib"] == 256, f"created from the form: {vmj}")

    # the serial console
    d.find_element(By.CSS_SELECTOR, "#tabs a[data-tab=console]").click()
    wait("the console connected", lambda: d.find_element(By.ID, "term-status").text == "connected")
    ta = d.find_element(By.CSS_SELECTOR, "#terminal textarea")
    deadline = time.monotonic() + BOOT_TIMEOUT
    while "petrel:/#" not in term_text(d):
        if time.monotonic() > deadline:
            fail("no shell prompt in the page's terminal", term_text(d)[-2000:])
        ta.send_keys(Keys.ENTER)
        time.sleep(3)
    boot_s = time.monotonic() - t0
    ta.send_keys("uname -m" + Keys.ENTER)
    wait("riscv64 in the terminal", lambda: re.search(r"uname -m\s*\n\s*riscv64", term_text(d)),
         timeout=60, details=lambda: term_text(d)[-2000:])
    shot(d, "console")

    # the graphs get points
    d.find_element(By.CSS_SELECTOR, "#tabs a[data-tab=summary]").click()
    wait("CPU graph points", lambda: int(d.find_element(By.ID, "g-cpu").get_attribute("data-points") or 0) >= 2,
         timeout=30)
    mem_pts = int(d.find_element(By.ID, "g-mem").get_attribute("data-points") or 0)
    check(mem_pts >= 2, f"memory graph points: {mem_pts}")
    shot(d, "summary")

    # the graphical console: non-blank, and it changes after key presses
    d.find_element(By.CSS_SELECTOR, "#tabs a[data-tab=display]").click()
    wait("the display connected", lambda: d.find_element(By.ID, "vnc-status").text.startswith("connected"),
         timeout=30, details=lambda: d.find_element(By.ID, "vnc-status").text)
    # the fbcon shell on tty1: wake it until the screen shows something
    first = wait("a non-blank screen", lambda: (lambda c: c if c and c[2] > 1 else None)(
        d.execute_script(CANVAS_JS)), timeout=60)
    before = d.execute_script(CANVAS_JS)
    canvas = d.find_element(By.CSS_SELECTOR, "#screen canvas")
    ActionChains(d).move_to_element(canvas).click().send_keys("echo typed-in-browser").perform()
    wait("the screen changing after key presses", lambda: d.execute_script(CANVAS_JS)[3] != before[3],
         timeout=30)
    # paste: text typed as key presses
    d.find_element(By.ID, "vnc-paste").click()
    d.find_element(By.CSS_SELECTOR, "#prompt-fields textarea").send_keys("\necho pasted-$((6*7))")
    d.find_element(By.ID, "prompt-ok").click()
    mid = d.execute_script(CANVAS_JS)
    wait("the screen changing after a paste", lambda: d.execute_script(CANVAS_JS)[3] != mid[3], timeout=30)
    time.sleep(1)
    check(first[0] >= 640 and first[1] >= 480, f"screen size {first[:2]}")
    shot(d, "display")

    # the definition tab shows it as text
    d.find_element(By.CSS_SELECTOR, "#tabs a[data-tab=definition]").click()
    check('"display": true' in d.find_element(By.ID, "definition").text, "the definition")

    # no CSRF header: refused (the page's own session cookie)
    st = d.execute_async_script("const done = arguments[0];"
                                "fetch('/api/v1/vms/dash1/pause', {method: 'POST'}).then(r => done(r.status));")
    check(st == 403, f"POST without X-CSRF-Token: {st}")
    # no session at all
    try:
        urllib.request.urlopen(srv.url + "/api/v1/vms", timeout=10)
        code = 200
    except urllib.error.HTTPError as e:
        code = e.code
    check(code == 401, f"unauthenticated GET /api/v1/vms: {code}")
    c = http.client.HTTPConnection(srv.url.split("//")[1], timeout=10)
    c.request("GET", "/vendor/novnc/core/rfb.js")
    r = c.getresponse()
    check(r.status == 303 and r.getheader("Location") == "/login",
          f"unauthenticated vendor file: {r.status}")
    c.close()

    # stop and delete through the buttons and the confirmation dialog
    d.find_element(By.CSS_SELECTOR, "#tabs a[data-tab=summary]").click()
    click_op(d, "stop")
    wait("the confirmation", lambda: d.find_element(By.ID, "dlg-confirm").is_displayed())
    shot(d, "confirm-stop")
    d.find_element(By.ID, "confirm-yes").click()
    wait("the VM stopped", lambda: state(d) == "stopped", timeout=60)
    click_op(d, "delete")
    wait("the confirmation", lambda: d.find_element(By.ID, "dlg-confirm").is_displayed())
    d.find_element(By.ID, "confirm-yes").click()
    wait("the VM gone", lambda: not (srv.home / "vms" / "dash1").exists(), timeout=30)
    d.get(srv.url + "/#/")
    wait("the empty list", lambda: d.execute_script("return document.body.dataset.listReady")
         and d.find_element(By.ID, "empty").is_displayed())
    print(f"dashboard test: boot to prompt {boot_s:.1f}s, total {time.monotonic() - t0:.1f}s")
