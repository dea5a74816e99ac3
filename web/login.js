// The login form: POST /login {"token": ...}; the session is a cookie.
"use strict";
document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const err = document.getElementById("error");
  err.hidden = true;
  const r = await fetch("/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: document.getElementById("secret").value }),
  });
  if (r.ok) {
    location.href = "/";
    return;
  }
  let msg = "Login failed";
  try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
  err.textContent = r.status === 429 ? "Too many attempts: wait a minute." : msg;
  err.hidden = false;
});
