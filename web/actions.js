// The operations on one VM, offered by state, shared by the list and the
// VM's page.  Each runs the API call, reports its outcome in a toast and
// calls done() to refresh the view.
import { api, el, vmPath, toast, confirmDialog, promptDialog } from "./util.js";

const active = (s) => s === "running" || s === "paused" || s === "starting";

async function run(label, fn, done) {
  try {
    const r = await fn();
    toast(r && r.message ? r.message : label + ": done", "ok");
  } catch (e) {
    toast(label + ": " + e.message, "error");
  }
  if (done) done();
}

export const ops = {
  start: (vm, done) => run("start " + vm.name, () => api("POST", vmPath(vm.name) + "/start"), done),
  pause: (vm, done) => run("pause " + vm.name, () => api("POST", vmPath(vm.name) + "/pause"), done),
  resume: (vm, done) => run("resume " + vm.name, () => api("POST", vmPath(vm.name) + "/resume"), done),
  async stop(vm, done) {
    if (!(await confirmDialog(`Stop ${vm.name}?`,
        "The guest gets the power button and 30 seconds to shut down; then it is stopped hard.", "Stop")))
      return;
    run("stop " + vm.name, () => api("POST", vmPath(vm.name) + "/stop", { timeout_s: 30 }), done);
  },
  async kill(vm, done) {
    if (!(await confirmDialog(`Power off ${vm.name}?`,
        "The VM is stopped at once, like pulling the plug: unsaved guest data is lost.", "Power off")))
      return;
    run("kill " + vm.name, () => api("POST", vmPath(vm.name) + "/kill"), done);
  },
  async delete(vm, done) {
    if (!(await confirmDialog(`Delete ${vm.name}?`,
        "Its definition, disks, snapshots and logs are removed. This cannot be undone.", "Delete")))
      return;
    run("delete " + vm.name, () => api("DELETE", vmPath(vm.name)), done);
  },
  async snapshot(vm, done) {
    const v = await promptDialog(`Snapshot of ${vm.name}`, [
      { name: "tag", label: "Tag (optional: a time stamp otherwise)", placeholder: "before-upgrade" }], "Take snapshot");
    if (!v) return;
    run("snapshot " + vm.name, () => api("POST", vmPath(vm.name) + "/snapshot", v.tag ? { tag: v.tag } : {}), done);
  },
  async clone(vm, done) {
    const v = await promptDialog(`Clone ${vm.name}`, [
      { name: "name", label: "New VM name", required: true, placeholder: vm.name + "-clone" },
      { name: "from", label: "From snapshot (optional: a cold copy otherwise)", placeholder: "tag" }], "Clone");
    if (!v) return;
    const body = { name: v.name };
    if (v.from) body.from = v.from;
    run("clone " + vm.name, () => api("POST", vmPath(vm.name) + "/clone", body), done);
  },
};

// The buttons for vm's state: the main ones, then a "more" menu.
export function actionButtons(vm, done, { compact = false } = {}) {
  const s = vm.state;
  const b = (op, label, cls) => el("button", {
    type: "button", class: (cls || "ghost") + (compact ? " sm" : ""), dataset: { op },
    title: label, text: label, onclick: (ev) => { ev.stopPropagation(); ops[op](vm, done); } });
  const main = [];
  if (!active(s)) main.push(b("start", "Start", "primary"));
  if (s === "running") main.push(b("pause", "Pause"));
  if (s === "paused") main.push(b("resume", "Resume", "primary"));
  if (active(s)) main.push(b("stop", "Stop"));
  const more = [];
  if (active(s)) more.push(["kill", "Power off"]);
  more.push(["snapshot", "Snapshot…"], ["clone", "Clone…"]);
  if (!active(s)) more.push(["delete", "Delete…"]);
  const menu = el("details", { class: "menu" },
    el("summary", { class: "ghost btn" + (compact ? " sm" : ""), title: "More actions", text: "⋯" }),
    el("div", { class: "menu-items" }, ...more.map(([op, label]) => el("button", {
      type: "button", class: op === "delete" || op === "kill" ? "item danger-text" : "item",
      dataset: { op }, text: label,
      onclick: (ev) => { ev.stopPropagation(); ev.target.closest("details").open = false; ops[op](vm, done); } }))));
  return el("span", { class: "actions" }, ...main, menu);
}
