// The serial console in the page: xterm.js (Debian's node-xterm, bundled
// by the build as window.Terminal) over GET /api/v1/vms/NAME/console, a
// WebSocket carrying the console's raw bytes both ways.  Every viewer has
// its own WebSocket onto the same console; closing it leaves the VM running.
const wsUrl = (name, what) =>
  (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
  "/api/v1/vms/" + encodeURIComponent(name) + "/" + what;
export { wsUrl };

export function openConsole(box, name, setStatus) {
  if (!window.Terminal) {
    setStatus("xterm.js is not installed (Debian's node-xterm; rebuild petrel)", "bad");
    return { close() {}, reconnect() {} };
  }
  const term = new window.Terminal({
    cursorBlink: true, fontSize: 14, scrollback: 5000,
    fontFamily: '"DejaVu Sans Mono", "Liberation Mono", monospace',
    theme: { background: "#0f141a", foreground: "#d8dee6", cursor: "#9cc3ff" },
  });
  term.open(box);
  const fit = () => {
    if (window.xtermFit && box.clientWidth) {
      try { window.xtermFit.fit(term); } catch (e) { /* hidden */ }
    }
  };
  fit();
  window.petrelTerm = term;           // for the tests and the curious
  let ws = null, closed = false;
  const enc = new TextEncoder();
  let dec = new TextDecoder();
  function connect() {
    dec = new TextDecoder();
    ws = new WebSocket(wsUrl(name, "console"));
    ws.binaryType = "arraybuffer";
    setStatus("connecting…");
    ws.onopen = () => {
      setStatus("connected", "ok");
      ws.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
      term.focus();
    };
    ws.onmessage = (m) => {
      term.write(typeof m.data === "string" ? m.data : dec.decode(new Uint8Array(m.data), { stream: true }));
    };
    ws.onclose = (ev) => {
      if (closed) return;
      setStatus("disconnected" + (ev.reason ? ": " + ev.reason : "") + " (Reconnect to try again)", "bad");
    };
  }
  term.on("data", (d) => { if (ws && ws.readyState === 1) ws.send(enc.encode(d)); });
  term.on("resize", (s) => {
    if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: "resize", cols: s.cols, rows: s.rows }));
  });
  const onResize = () => fit();
  window.addEventListener("resize", onResize);
  connect();
  return {
    fit,
    focus: () => term.focus(),
    reconnect() { if (ws) { ws.onclose = null; ws.close(); } connect(); },
    close() {
      closed = true;
      window.removeEventListener("resize", onResize);
      if (ws) ws.close();
      term.destroy();
      if (window.petrelTerm === term) window.petrelTerm = null;
    },
  };
}
