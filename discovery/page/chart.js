// Line charts drawn by hand on <canvas>: time on x, one line per series, gaps where data is missing.
// The canvas is an image to assistive technology; the page puts the latest values in text beside it.

const PAD = { left: 52, right: 12, top: 10, bottom: 24 };
const INK = "#5d6b7e";
const GRID = "#e6ebf2";

// A y-axis top that reads well in quarters: 1, 2, 4, 8 × 10^n at or above the highest value.
export function niceMax(value) {
  if (!(value > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 4, 8, 10]) if (m * p >= value) return m * p;
  return 10 * p;
}

function fitToPixels(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(200, Math.round(canvas.clientWidth || canvas.width));
  const height = Math.round(width * (Number(canvas.dataset.aspect) || canvas.height / canvas.width));
  if (!canvas.dataset.aspect) canvas.dataset.aspect = String(canvas.height / canvas.width);
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { ctx, width, height };
}

const tick = (v) => (v >= 100 ? v.toFixed(0) : String(Number(v.toFixed(2))));

function axes(ctx, width, height, top, from, to) {
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = INK;
  ctx.strokeStyle = GRID;
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const y = PAD.top + ((height - PAD.top - PAD.bottom) * i) / 4;
    ctx.beginPath();
    ctx.moveTo(PAD.left, Math.round(y) + 0.5);
    ctx.lineTo(width - PAD.right, Math.round(y) + 0.5);
    ctx.stroke();
    ctx.fillText(tick((top * (4 - i)) / 4), PAD.left - 6, y);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const span = to - from;
  for (let i = 0; i <= 6; i++) {
    const ago = Math.round((span * (6 - i)) / 6);
    const label = ago === 0 ? "now" : ago >= 120 ? `-${Math.round(ago / 60)} min` : `-${ago} s`;
    ctx.fillText(label, PAD.left + ((width - PAD.left - PAD.right) * i) / 6, height - PAD.bottom + 6);
  }
}

// series: [{label, color, points: [[t, value or null], ...]}]; a jump over `gap` seconds breaks a line;
// minTop keeps the y axis from zooming into noise (e.g. 4 for a count that is mostly 0).
// Returns how many points were drawn (also left on canvas.dataset.points for tests).
export function drawChart(canvas, { series, from, to, gap, minTop = 0 }) {
  const { ctx, width, height } = fitToPixels(canvas);
  ctx.clearRect(0, 0, width, height);
  let highest = 0;
  for (const s of series) for (const [t, v] of s.points) if (v != null && t >= from) highest = Math.max(highest, v);
  const top = niceMax(Math.max(highest, minTop));
  axes(ctx, width, height, top, from, to);
  const x = (t) => PAD.left + ((t - from) / Math.max(to - from, 1)) * (width - PAD.left - PAD.right);
  const y = (v) => height - PAD.bottom - (v / top) * (height - PAD.top - PAD.bottom);
  let drawn = 0;
  ctx.lineWidth = 2;
  ctx.lineJoin = "round";
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.beginPath();
    let last = null;
    for (const [t, v] of s.points) {
      if (t < from) continue;
      if (v == null) { last = null; continue; }
      if (last == null || t - last > gap) ctx.moveTo(x(t), y(v));
      else ctx.lineTo(x(t), y(v));
      last = t;
      drawn++;
    }
    ctx.stroke();
  }
  canvas.dataset.points = String(drawn);
  return drawn;
}
