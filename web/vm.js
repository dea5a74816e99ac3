// A VM's page: its state and actions, the last hour's graphs (GET
// .../rrd), the serial console, the display, snapshots and the definition.
import { api, el, vmPath, bytes, rate, pct, duration, toast } from "./util.js";
import { actionButtons, ops } from "./actions.js";
import { drawChart } from "./chart.js";
import { openConsole } from "./console.js";
import { openDisplay } from "./display.js";

const active = (s) => s === "running" || s === "paused";

export function showVm(view, name, tab) {
  view.replaceChildren(document.getElementById("tpl-vm").content.cloneNode(true));
  const $ = (id) => document.getElementById(id);
  $("vm-name").textContent = name;
  let alive = true, vm = null, infoTimer = null, rrdTimer = null, rrd = null;
  let term = null, disp = null, snapsLoaded = false;

  const status = (id) => (text, kind) => { const s = $(id); s.textContent = text; s.className = kind || "muted"; };

  // tabs: links to #/vm/NAME/TAB (the browser's back button works)
  for (const a of $("tabs").querySelectorAll("a")) {
    a.href = "#/vm/" + encodeURIComponent(name) + "/" + a.dataset.tab;
    a.classList.toggle("active", a.dataset.tab === tab);
  }
  if (!$("tab-" + tab)) tab = "summary";
  for (const s of view.querySelectorAll("section.tab")) s.hidden = s.id !== "tab-" + tab;

  function fact(label, value) {
    return el("div", { class: "card stat" }, el("div", { class: "label", text: label }),
      el("div", { class: "value sm", text: value }));
  }

  async function refreshInfo() {
    clearTimeout(infoTimer);
    try {
      vm = await api("GET", vmPath(name));
    } catch (e) {
      if (!alive) return;
      if (e.status === 404) {
        view.replaceChildren(el("p", { class: "empty", text: `No VM named ${name}.` }),
          el("p", {}, el("a", { href: "#/", text: "Back to the list" })));
        return;
      }
      toast(e.message, "error");
      infoTimer = setTimeout(refreshInfo, 5000);
      return;
    }
    if (!alive) return;
    const d = vm.definition || {};
    $("vm-state").textContent = vm.state;
    $("vm-state").className = "state " + vm.state;
    if ($("vm-actions").dataset.state !== vm.state) {     // keep an open menu open
      $("vm-actions").replaceChildren(actionButtons({ name, state: vm.state }, refreshAll));
      $("vm-actions").dataset.state = vm.state;
    }
    const run = vm.run || {};
    $("vm-facts").replaceChildren(
      fact("State", vm.state + (vm.uptime_s != null ? " · up " + duration(vm.uptime_s) : "")),
      fact("vCPUs", String(d.vcpus ?? "–")),
      fact("Memory", d.memory_mib ? bytes(d.memory_mib * 1048576) : "–"),
      fact("CPU now", active(vm.state) ? pct(vm.cpu) : "–"),
      fact("VMM memory (RSS)", active(vm.state) ? bytes(vm.mem_bytes) : "–"),
      fact("SSH", run.ssh_port && active(vm.state) ? "127.0.0.1:" + run.ssh_port : "–"),
      fact("Display", d.display ? "yes (VNC)" : "no"),
      fact("Snapshots", String(vm.snapshots ?? 0)));
    $("definition").textContent = JSON.stringify(vm.definition ?? vm, null, 2);
    if (tab === "console" && !term && active(vm.state)) startConsole();
    if (tab === "console" && !active(vm.state) && !term)
      status("term-status")("the VM is " + vm.state + ": start it to use its console", "bad");
    if (tab === "display" && !disp) startDisplay();
    infoTimer = setTimeout(refreshInfo, 3000);
  }

  async function refreshRrd() {
    clearTimeout(rrdTimer);
    try {
      rrd = await api("GET", vmPath(name) + "/rrd?seconds=3600");
    } catch (e) {
      rrd = null;   // not sampled yet (404) or gone
    }
    if (!alive) return;
    drawGraphs();
    rrdTimer = setTimeout(refreshRrd, Math.max(2, (rrd && rrd.interval_s) || 5) * 1000);
  }

  function legend(id, items) {
    $(id).replaceChildren(...items.map(([c, label]) => el("span", { class: "key" },
      (() => { const s = el("i"); s.style.background = c; return s; })(), label)));
  }

  function drawGraphs() {
    if (tab !== "summary") return;
    const r = rrd || { t: [], cpu: [], mem_bytes: [], guest_mem_bytes: [], disk_read_bps: [],
                       disk_write_bps: [], net_rx_bps: [], net_tx_bps: [] };
    const last = (a) => { for (let i = a.length - 1; i >= 0; i--) if (a[i] !== null) return a[i]; return null; };
    const c = drawChart($("g-cpu"), { t: r.t, series: [{ values: r.cpu.map((v) => (v === null ? null : v * 100)), fill: true }],
      fmt: (v) => v.toFixed(0) + " %", minMax: 10 });
    legend("lg-cpu", [[c[0], "busy " + pct(last(r.cpu))]]);
    drawChart($("g-mem"), { t: r.t, series: [{ values: r.mem_bytes, fill: true },
      { values: r.guest_mem_bytes, color: "#9aa5b1" }], fmt: (v) => bytes(v), minMax: 1048576 });
    legend("lg-mem", [[c[0], "VMM RSS " + bytes(last(r.mem_bytes))], ["#9aa5b1", "guest RAM " + bytes(last(r.guest_mem_bytes))]]);
    drawChart($("g-disk"), { t: r.t, series: [{ values: r.disk_read_bps }, { values: r.disk_write_bps }],
      fmt: (v) => bytes(v, "B/s"), minMax: 1024 });
    legend("lg-disk", [[c[0], "read " + rate(last(r.disk_read_bps))], [c[1], "write " + rate(last(r.disk_write_bps))]]);
    drawChart($("g-net"), { t: r.t, series: [{ values: r.net_rx_bps }, { values: r.net_tx_bps }],
      fmt: (v) => bytes(v, "B/s"), minMax: 1024 });
    legend("lg-net", [[c[0], "rx " + rate(last(r.net_rx_bps))], [c[1], "tx " + rate(last(r.net_tx_bps))]]);
  }

  function startConsole() {
    term = openConsole($("terminal"), name, status("term-status"));
  }
  $("term-reconnect").addEventListener("click", () => {
    if (term) term.reconnect(); else startConsole();
  });

  async function startDisplay() {
    if (!vm) return;
    if (!vm.definition || !vm.definition.display) {
      status("vnc-status")("this VM has no display: create it with the display option, or " +
        "petrel vm set " + name + " --display on and restart it", "bad");
      return;
    }
    if (!active(vm.state)) {
      status("vnc-status")("the VM is " + vm.state + ": start it to see its screen", "bad");
      return;
    }
    disp = { close() {} };      // one attempt at a time
    disp = await openDisplay($("screen"), name, status("vnc-status"));
    if (!alive) disp.close();
  }
  $("vnc-paste").addEventListener("click", async () => {
    if (!disp || !disp.paste) return toast("the display is not connected", "error");
    const { promptDialog } = await import("./util.js");
    const v = await promptDialog("Paste text as key presses", [{ name: "text", label: "Text (typed into the VM as keys, US layout)", type: "textarea" }], "Type it");
    if (v && v.text) disp.paste(v.text);
  });
  $("vnc-cad").addEventListener("click", () => disp && disp.cad && disp.cad());
  $("vnc-full").addEventListener("click", () => disp && disp.fullscreen && disp.fullscreen());

  async function loadSnaps() {
    let list = [];
    try { list = await api("GET", vmPath(name) + "/snapshots"); } catch (e) { toast(e.message, "error"); }
    if (!alive) return;
    snapsLoaded = true;
    $("snaps").replaceChildren(...list.map((s) => el("tr", {},
      el("td", {}, el("code", { text: s.tag })), el("td", { text: s.created_utc || "–" }),
      el("td", { text: s.type + (s.complete ? "" : " (incomplete)") }), el("td", { text: bytes(s.size_bytes) }),
      el("td", { class: "actions-col" }, el("span", { class: "actions" },
        el("button", { type: "button", class: "ghost sm", text: "Revert", onclick: () => revert(s.tag) }),
        el("button", { type: "button", class: "ghost sm", text: "Clone…",
          onclick: () => ops.clone({ name, state: vm && vm.state }, refreshAll) }))))));
    $("snaps-empty").hidden = list.length > 0;
  }
  async function revert(tag) {
    const { confirmDialog } = await import("./util.js");
    if (!(await confirmDialog(`Revert ${name} to ${tag}?`, "Its disks and state go back to the snapshot; later changes are lost.", "Revert")))
      return;
    try { const r = await api("POST", vmPath(name) + "/revert", { tag }); toast(r.message || "reverted", "ok"); }
    catch (e) { toast("revert: " + e.message, "error"); }
    refreshAll();
  }
  $("snap-take").addEventListener("click", () => ops.snapshot({ name }, refreshAll));

  function refreshAll() {
    refreshInfo();
    if (tab === "snapshots" || snapsLoaded) loadSnaps();
  }
  const onRefresh = () => refreshAll();
  window.addEventListener("petrel-refresh", onRefresh);
  const onResize = () => drawGraphs();
  window.addEventListener("resize", onResize);

  refreshInfo();
  refreshRrd();
  if (tab === "snapshots") loadSnaps();
  return () => {
    alive = false;
    clearTimeout(infoTimer);
    clearTimeout(rrdTimer);
    window.removeEventListener("petrel-refresh", onRefresh);
    window.removeEventListener("resize", onResize);
    if (term) term.close();
    if (disp) disp.close();
  };
}
