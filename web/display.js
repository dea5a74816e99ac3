// The graphical console in the page: noVNC (Debian's novnc, its ES
// modules served under /vendor/novnc/) over GET /api/v1/vms/NAME/vnc, a
// WebSocket bridged to the VM's VNC server (vnc.sock; VMs created with a
// display).  Paste types text as key presses; full screen is the browser's.
import { wsUrl } from "./console.js";

let RFB = null, keysyms = null;
async function load() {
  if (!RFB) {
    RFB = (await import("/vendor/novnc/core/rfb.js")).default;
    keysyms = (await import("/vendor/novnc/core/input/keysymdef.js")).default;
  }
}

const XK_Return = 0xff0d, XK_Tab = 0xff09, XK_BackSpace = 0xff08;

// Type text as key presses (the server adds Shift where a character needs it).
export function typeText(rfb, text) {
  for (const ch of text.replace(/\r\n?/g, "\n")) {
    const cp = ch.codePointAt(0);
    const sym = ch === "\n" ? XK_Return : ch === "\t" ? XK_Tab : ch === "\b" ? XK_BackSpace
              : keysyms.lookup(cp);
    rfb.sendKey(sym, null, true);
    rfb.sendKey(sym, null, false);
  }
}

export async function openDisplay(box, name, setStatus) {
  try {
    await load();
  } catch (e) {
    setStatus("noVNC is not installed (Debian's novnc)", "bad");
    return { close() {} };
  }
  setStatus("connecting…");
  const rfb = new RFB(box, wsUrl(name, "vnc"), { shared: true });
  rfb.scaleViewport = true;
  rfb.resizeSession = false;
  rfb.focusOnClick = true;
  rfb.background = "#0f141a";
  window.petrelRfb = rfb;
  rfb.addEventListener("connect", () => { setStatus("connected", "ok"); rfb.focus(); });
  rfb.addEventListener("disconnect", (e) =>
    setStatus(e.detail.clean ? "disconnected" : "connection lost (does the VM have a display? it must run)", "bad"));
  rfb.addEventListener("desktopname", (e) => setStatus("connected: " + e.detail.name, "ok"));
  return {
    rfb,
    paste: (text) => { typeText(rfb, text); rfb.focus(); },
    cad: () => rfb.sendCtrlAltDel(),
    fullscreen: () => (document.fullscreenElement ? document.exitFullscreen() : box.requestFullscreen()),
    close() { try { rfb.disconnect(); } catch (e) { /* already closed */ } if (window.petrelRfb === rfb) window.petrelRfb = null; },
  };
}
