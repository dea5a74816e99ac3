// Placeholder page: lists the VMs from GET /api/v1/vms every 5 s.  Names
// go into the page as text (textContent), never as markup.
"use strict";
const csrf = () => (document.cookie.match(/(?:^|; )petrel_csrf=([0-9a-f]+)/) || [])[1] || "";

function cell(tr, text, cls) {
  const td = document.createElement("td");
  const span = document.createElement("span");
  span.textContent = text;
  if (cls) span.className = cls;
  td.appendChild(span);
  tr.appendChild(td);
}

function rate(v) {
  if (v === null || v === undefined) return "–";
  if (v > 1e6) return (v / 1e6).toFixed(1) + " MB/s";
  if (v > 1e3) return (v / 1e3).toFixed(1) + " kB/s";
  return v.toFixed(0) + " B/s";
}

async function refresh() {
  const r = await fetch("/api/v1/vms");
  if (r.status === 401) { location.href = "/login"; return; }
  const vms = await r.json();
  const body = document.getElementById("vms");
  body.replaceChildren();
  for (const vm of vms) {
    const tr = document.createElement("tr");
    cell(tr, vm.name);
    cell(tr, vm.state, "state " + vm.state);
    cell(tr, vm.vcpus ?? "–");
    cell(tr, vm.memory_mib ? vm.memory_mib + " MiB" : "–");
    cell(tr, vm.cpu === null || vm.cpu === undefined ? "–" : (vm.cpu * 100).toFixed(1) + " %");
    cell(tr, rate(vm.net_rx_bps) + " / " + rate(vm.net_tx_bps));
    body.appendChild(tr);
  }
  document.getElementById("status").textContent =
    vms.length ? "" : "No VMs yet: petrel vm create NAME, or POST /api/v1/vms.";
}

document.getElementById("logout").addEventListener("click", async () => {
  await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": csrf() } });
  location.href = "/login";
});
refresh();
setInterval(refresh, 5000);
