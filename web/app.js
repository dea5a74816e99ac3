// The dashboard: a hash router over two views, the VM list (#/) and a
// VM's page (#/vm/NAME[/tab]).  The list polls GET /api/v1/vms every 3 s.
import { api, el, csrf, vmPath, bytes, rate, pct, duration, toast } from "./util.js";
import { actionButtons, ops } from "./actions.js";
import { showVm } from "./vm.js";

const view = document.getElementById("view");
let stopView = null;            // the current view's clean-up (timers, sockets)

function crumbs(...parts) {
  const nav = document.getElementById("crumbs");
  nav.replaceChildren(...parts.flatMap((p, i) => [
    el("span", { class: "sep", text: "/" }),
    p.href ? el("a", { href: p.href, text: p.text }) : el("span", { text: p.text })]));
}

function stateBadge(s) { return el("span", { class: "state " + s, text: s }); }

const live = (vm) => vm.state === "running" || vm.state === "paused";

function cpuCell(vm) {
  if (!live(vm) || vm.cpu === null || vm.cpu === undefined) return el("span", { class: "muted", text: "–" });
  const bar = el("span", { class: "bar" }, el("span", { class: "fill" }));
  bar.firstChild.style.width = Math.min(100, vm.cpu * 100).toFixed(1) + "%";
  return el("span", { class: "cpu" }, bar, el("span", { class: "num", text: pct(vm.cpu) }));
}

function summaryCards(vms) {
  const run = vms.filter((v) => v.state === "running").length;
  const paused = vms.filter((v) => v.state === "paused").length;
  const cpus = vms.filter((v) => v.state === "running" || v.state === "paused")
    .reduce((a, v) => a + (v.vcpus || 0), 0);
  const mem = vms.filter((v) => v.state === "running" || v.state === "paused")
    .reduce((a, v) => a + (v.memory_mib || 0), 0);
  const card = (label, value, sub) => el("div", { class: "card stat" },
    el("div", { class: "label", text: label }), el("div", { class: "value", text: value }),
    sub ? el("div", { class: "sub muted", text: sub }) : null);
  return [card("VMs", String(vms.length), `${run} running, ${paused} paused`),
    card("vCPUs in use", String(cpus)), card("Guest memory in use", bytes(mem * 1048576))];
}

function showList() {
  crumbs();
  view.replaceChildren(document.getElementById("tpl-list").content.cloneNode(true));
  document.getElementById("btn-create").addEventListener("click", openCreate);
  document.getElementById("empty-create").addEventListener("click", (e) => { e.preventDefault(); openCreate(); });
  let timer = null, alive = true;
  async function refresh() {
    clearTimeout(timer);
    let vms;
    try {
      vms = await api("GET", "/vms");
    } catch (e) {
      if (alive) toast("cannot list the VMs: " + e.message, "error");
      timer = setTimeout(refresh, 5000);
      return;
    }
    if (!alive) return;
    const body = document.getElementById("vms");
    const open = new Set([...body.querySelectorAll("details[open]")].map((d) => d.closest("tr").dataset.name));
    body.replaceChildren(...vms.map((vm) => {
      const tr = el("tr", { dataset: { name: vm.name, state: vm.state }, class: "row",
        onclick: () => { location.hash = "#/vm/" + encodeURIComponent(vm.name); } },
        el("td", {}, el("a", { class: "vm-link", href: "#/vm/" + encodeURIComponent(vm.name), text: vm.name }),
          vm.error ? el("div", { class: "error small", text: vm.error }) : null),
        el("td", {}, stateBadge(vm.state)),
        el("td", { text: vm.vcpus ?? "–" }),
        el("td", { text: vm.memory_mib ? bytes(vm.memory_mib * 1048576) : "–" }),
        el("td", {}, cpuCell(vm)),
        el("td", { class: "num", text: live(vm) ? rate(vm.net_rx_bps) + " / " + rate(vm.net_tx_bps) : "–" }),
        el("td", { text: duration(vm.uptime_s) }),
        el("td", { class: "actions-col" }, actionButtons(vm, refresh, { compact: true })));
      if (open.has(vm.name)) { const d = tr.querySelector("details"); if (d) d.open = true; }
      return tr;
    }));
    document.getElementById("summary").replaceChildren(...summaryCards(vms));
    document.getElementById("empty").hidden = vms.length > 0;
    document.getElementById("host-summary").textContent =
      `${vms.filter((v) => v.state === "running").length} of ${vms.length} running`;
    document.body.dataset.listReady = "1";       // for the benchmark and the tests
    timer = setTimeout(refresh, 3000);
  }
  refresh();
  return () => { alive = false; clearTimeout(timer); };
}

// --- the create form -------------------------------------------------------

function syncCreateForm(form) {
  for (const l of form.querySelectorAll("[data-show]")) {
    const [field, values] = l.dataset.show.split("=");
    l.hidden = !values.split(",").includes(form.elements[field].value);
  }
}

function openCreate() {
  const d = document.getElementById("dlg-create"), form = document.getElementById("create-form");
  form.reset();
  syncCreateForm(form);
  document.getElementById("create-error").hidden = true;
  d.showModal();
  form.elements.name.focus();
}

function createBody(f) {
  const b = { name: f.name.value.trim(), vcpus: Number(f.vcpus.value), memory: f.memory.value };
  const disk = f.disk.value;
  if (disk === "base") b.base = f.base.value.trim();
  if (disk === "blank") b.base = "none";
  if (disk === "nodisk") { b.base = "none"; b.disk_size = "0"; }
  else if (f.disk_size.value.trim()) b.disk_size = f.disk_size.value.trim();
  const n = f.network.value;
  b.network = n === "private" ? "private:" + f.net_name.value.trim()
            : n === "tap" ? "tap:" + f.tap_name.value.trim() : n;
  if (f.display.checked) b.display = true;
  if (f.autostart.checked) b.autostart = true;
  return b;
}

function setupCreate() {
  const d = document.getElementById("dlg-create"), form = document.getElementById("create-form");
  form.addEventListener("change", () => syncCreateForm(form));
  document.getElementById("create-cancel").addEventListener("click", () => d.close());
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const err = document.getElementById("create-error"), btn = document.getElementById("create-submit");
    err.hidden = true;
    const body = createBody(form.elements), start = form.elements.start_now.checked;
    btn.disabled = true;
    btn.textContent = "Creating…";
    try {
      await api("POST", "/vms", body);
      d.close();
      toast(`created ${body.name}`, "ok");
      location.hash = "#/vm/" + encodeURIComponent(body.name);
      if (start) await ops.start({ name: body.name }, () => window.dispatchEvent(new Event("petrel-refresh")));
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    } finally {
      btn.disabled = false;
      btn.textContent = "Create";
    }
  });
}

// --- routing ---------------------------------------------------------------

function route() {
  if (stopView) stopView();
  stopView = null;
  const m = location.hash.match(/^#\/vm\/([^/]+)(?:\/(\w+))?$/);
  if (m) {
    let name;
    try { name = decodeURIComponent(m[1]); } catch (e) { name = ""; }
    crumbs({ text: "VMs", href: "#/" }, { text: name });
    document.getElementById("host-summary").textContent = "";
    stopView = showVm(view, name, m[2] || "summary");
  } else {
    stopView = showList();
  }
}

document.getElementById("logout").addEventListener("click", async () => {
  await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": csrf() } });
  location.href = "/login";
});
setupCreate();
window.addEventListener("hashchange", route);
route();
export { vmPath };
