// Small helpers shared by the dashboard's views: the API, elements built
// with textContent only (VM names and every other datum are text, never
// markup), formatting, dialogs and toasts.
export const csrf = () =>
  (document.cookie.match(/(?:^|; )petrel_csrf=([0-9a-f]+)/) || [])[1] || "";

export class ApiError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

// fetch /api/v1 + path; JSON in and out; 401 goes back to the login page.
export async function api(method, path, body) {
  const opt = { method, headers: {} };
  if (method !== "GET") opt.headers["X-CSRF-Token"] = csrf();
  if (body !== undefined) {
    opt.headers["Content-Type"] = "application/json";
    opt.body = JSON.stringify(body);
  }
  const r = await fetch("/api/v1" + path, opt);
  if (r.status === 401) { location.href = "/login"; throw new ApiError(401, "not logged in"); }
  let j = null;
  try { j = await r.json(); } catch (e) { /* empty or not JSON */ }
  if (!r.ok) throw new ApiError(r.status, (j && j.error) || `HTTP ${r.status}`);
  return j;
}

// el("td", {class: "x", text: name}, child, ...): attributes are set as
// properties or attributes, text as textContent.
export function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of kids) if (c !== null && c !== undefined) e.append(c);
  return e;
}

export const vmPath = (name) => "/vms/" + encodeURIComponent(name);

export function bytes(v, unit = "B") {
  if (v === null || v === undefined) return "–";
  const u = ["", "Ki", "Mi", "Gi", "Ti"];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(v < 10 ? 1 : 0) : v.toFixed(0)) + " " + u[i] + unit;
}
export const rate = (v) => (v === null || v === undefined ? "–" : bytes(v, "B/s"));
export const pct = (v) => (v === null || v === undefined ? "–" : (v * 100).toFixed(v < 0.1 ? 1 : 0) + " %");
export function duration(s) {
  if (s === null || s === undefined) return "–";
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

export function toast(msg, kind = "info") {
  const t = el("div", { class: "toast " + kind, role: kind === "error" ? "alert" : "status", text: msg });
  document.getElementById("toasts").append(t);
  setTimeout(() => t.remove(), kind === "error" ? 9000 : 4500);
}

// A yes/no dialog: resolves true when confirmed.
export function confirmDialog(title, text, yesLabel = "Confirm") {
  const d = document.getElementById("dlg-confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-yes").textContent = yesLabel;
  d.returnValue = "";
  d.showModal();
  return new Promise((res) => d.addEventListener("close", () => res(d.returnValue === "yes"), { once: true }));
}

// A small form dialog: fields [{name, label, placeholder, value, type}];
// resolves to {name: value} or null.
export function promptDialog(title, fields, okLabel = "OK") {
  const d = document.getElementById("dlg-prompt");
  document.getElementById("prompt-title").textContent = title;
  document.getElementById("prompt-ok").textContent = okLabel;
  const box = document.getElementById("prompt-fields");
  box.replaceChildren(...fields.map((f) => el("label", { class: f.type === "textarea" ? "wide" : "" },
    f.label, f.type === "textarea"
      ? el("textarea", { name: f.name, rows: 6, placeholder: f.placeholder || "" })
      : el("input", { name: f.name, placeholder: f.placeholder || "", value: f.value || "",
                      required: !!f.required, autocomplete: "off" }))));
  const form = document.getElementById("prompt-form");
  return new Promise((res) => {
    const cancel = document.getElementById("prompt-cancel");
    const onCancel = () => { d.close(); };
    cancel.addEventListener("click", onCancel, { once: true });
    const onSubmit = (ev) => {
      ev.preventDefault();
      const out = {};
      for (const f of fields) out[f.name] = form.elements[f.name].value;
      cleanup(); d.close(); res(out);
    };
    const onClose = () => { cleanup(); res(null); };
    const cleanup = () => {
      form.removeEventListener("submit", onSubmit);
      d.removeEventListener("close", onClose);
      cancel.removeEventListener("click", onCancel);
    };
    form.addEventListener("submit", onSubmit);
    d.addEventListener("close", onClose);
    d.showModal();
    const first = box.querySelector("input,textarea");
    if (first) first.focus();
  });
}
