// A time-series line chart on a <canvas> (no library): the last `span`
// seconds, several series, an automatic y scale with round ticks, gaps
// where a value is null.  canvas.dataset.points: how many points it drew
// (the tests read it).
const COLORS = ["#2f6fb2", "#e07b24", "#2e9e5b", "#9b59b6"];

function niceStep(max, n) {
  const raw = max / n, p = Math.pow(10, Math.floor(Math.log10(raw)));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
}

export function drawChart(canvas, { t, series, span = 3600, now, fmt, minMax = 1 }) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 300, h = canvas.clientHeight || 160;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const L = 62, R = 10, T = 8, B = 22, pw = w - L - R, ph = h - T - B;
  now = now || Date.now() / 1000;
  const t0 = now - span;
  let max = minMax;
  for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
  const step = niceStep(max, 4), top = Math.ceil(max / step) * step;
  const x = (tt) => L + ((tt - t0) / span) * pw, y = (v) => T + ph - (v / top) * ph;
  // grid and labels
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#6b7685";
  g.strokeStyle = "#e6eaef";
  g.lineWidth = 1;
  g.textAlign = "right";
  g.textBaseline = "middle";
  for (let v = 0; v <= top + step / 2; v += step) {
    const yy = Math.round(y(v)) + 0.5;
    g.beginPath(); g.moveTo(L, yy); g.lineTo(L + pw, yy); g.stroke();
    g.fillText(fmt(v), L - 6, yy);
  }
  g.textAlign = "center";
  g.textBaseline = "top";
  for (let m = 0; m <= span / 60; m += span >= 3600 ? 15 : 5) {
    const xx = Math.round(x(now - m * 60)) + 0.5;
    g.beginPath(); g.moveTo(xx, T); g.lineTo(xx, T + ph); g.stroke();
    g.fillText(m ? `-${m} min` : "now", Math.min(Math.max(xx, L + 16), L + pw - 14), T + ph + 5);
  }
  // series
  let points = 0;
  series.forEach((s, k) => {
    g.strokeStyle = s.color || COLORS[k % COLORS.length];
    g.fillStyle = g.strokeStyle + "22";
    g.lineWidth = 1.6;
    let run = [];
    const flush = () => {
      if (!run.length) return;
      g.beginPath();
      run.forEach(([xx, yy], i) => (i ? g.lineTo(xx, yy) : g.moveTo(xx, yy)));
      if (run.length === 1) g.arc(run[0][0], run[0][1], 1.8, 0, 2 * Math.PI);
      g.stroke();
      if (s.fill && run.length > 1) {
        g.lineTo(run[run.length - 1][0], y(0)); g.lineTo(run[0][0], y(0)); g.closePath(); g.fill();
      }
      run = [];
    };
    for (let i = 0; i < t.length; i++) {
      const v = s.values[i];
      if (v === null || v === undefined || t[i] < t0) { flush(); continue; }
      run.push([x(t[i]), y(Math.min(v, top))]);
      points++;
    }
    flush();
  });
  if (!points) {
    g.fillStyle = "#8a94a3";
    g.textAlign = "center";
    g.textBaseline = "middle";
    g.font = "13px system-ui, sans-serif";
    g.fillText("no samples yet", L + pw / 2, T + ph / 2);
  }
  canvas.dataset.points = String(points);
  return COLORS;
}
