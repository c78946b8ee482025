// Line charts drawn by hand on <canvas>: time on x, one line per series, gaps where data is missing.
// Each axis has one unit, written once (y: above the axis; x: "s ago" or "min ago" below it), and ticks
// on round steps, so no label repeats. Pointing at a line shows its value in a tooltip; the page also
// puts the latest values in text beside each chart (the canvas is an image to assistive technology).

const PAD = { left: 46, right: 12, top: 20, bottom: 36 };
const INK = "#5d6b7e";
const GRID = "#e6ebf2";
export const FADED = "#a3adba";  // the line of a node that left (drained, left, stale)
const HIT_PX = 14;

// A y axis: a round step (1, 2, 2.5 or 5 × 10^n) giving at most 5 intervals from 0 to at least `value`;
// the labels use the step's decimals, so two ticks never print the same text.
export function yTicks(value) {
  const top = value > 0 ? value : 1;
  const raw = top / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s * 5 >= top - 1e-12);
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9) + (step / p === 2.5 ? 1 : 0));
  const count = Math.ceil(top / step - 1e-9);
  return Array.from({ length: count + 1 }, (_, i) => ({ value: i * step, label: (i * step).toFixed(decimals) }));
}

// An x axis over `span` seconds back from now: a round step, one unit (s or min) for every label.
export function timeTicks(span) {
  const step = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800].find((s) => span / s <= 6) || 3600;
  const unit = step >= 60 ? "min" : "s";
  const out = [];
  for (let ago = 0; ago <= span + 1e-9; ago += step) {
    out.push({ ago, label: ago === 0 ? "now" : String(unit === "min" ? ago / 60 : ago) });
  }
  return { ticks: out, unit: `${unit} ago` };
}

function fitToPixels(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(200, Math.round(canvas.clientWidth || canvas.width));
  if (!canvas.dataset.aspect) canvas.dataset.aspect = String(canvas.height / canvas.width);
  const height = Math.max(150, Math.round(width * Number(canvas.dataset.aspect)));
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { ctx, width, height };
}

function axes(ctx, width, height, y, x, yLabels, unit) {
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = INK;
  ctx.strokeStyle = GRID;
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const t of yLabels) {
    ctx.beginPath();
    ctx.moveTo(PAD.left, Math.round(y(t.value)) + 0.5);
    ctx.lineTo(width - PAD.right, Math.round(y(t.value)) + 0.5);
    ctx.stroke();
    ctx.fillText(t.label, PAD.left - 6, y(t.value));
  }
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  ctx.fillText(unit, 4, 2);
}

function timeAxis(ctx, width, height, x, to, span) {
  const { ticks, unit } = timeTicks(span);
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const t of ticks) ctx.fillText(t.label, x(to - t.ago), height - PAD.bottom + 6);
  ctx.fillText(unit, PAD.left + (width - PAD.left - PAD.right) / 2, height - PAD.bottom + 20);
  return ticks.map((t) => t.label);
}

// series: [{label, color, faded, points: [[t, value or null], ...]}]; a jump over `gap` seconds breaks a
// line; `unit` names the y axis ("msg/s"); minTop keeps the y axis from zooming into noise (e.g. 4 for a
// count that is mostly 0). Returns how many points were drawn (also left on canvas.dataset.points, and
// the axis labels on dataset.yLabels / xLabels, for tests).
export function drawChart(canvas, { series, from, to, gap, unit, minTop = 0, format = String }) {
  const { ctx, width, height } = fitToPixels(canvas);
  ctx.clearRect(0, 0, width, height);
  let highest = 0;
  for (const s of series) for (const [t, v] of s.points) if (v != null && t >= from) highest = Math.max(highest, v);
  const labels = yTicks(Math.max(highest, minTop));
  const top = labels[labels.length - 1].value;
  const x = (t) => PAD.left + ((t - from) / Math.max(to - from, 1)) * (width - PAD.left - PAD.right);
  const y = (v) => height - PAD.bottom - (v / top) * (height - PAD.top - PAD.bottom);
  axes(ctx, width, height, y, x, labels, unit);
  const xLabels = timeAxis(ctx, width, height, x, to, to - from);
  const hits = [];
  ctx.lineWidth = 2;
  ctx.lineJoin = "round";
  for (const s of [...series].sort((a, b) => Number(b.faded || 0) - Number(a.faded || 0))) {  // faded below
    ctx.strokeStyle = s.faded ? FADED : s.color;
    ctx.setLineDash(s.faded ? [5, 4] : []);
    ctx.beginPath();
    let last = null;
    for (const [t, v] of s.points) {
      if (t < from) continue;
      if (v == null) { last = null; continue; }
      if (last == null || t - last > gap) ctx.moveTo(x(t), y(v));
      else ctx.lineTo(x(t), y(v));
      last = t;
      hits.push({ x: x(t), y: y(v), label: s.label, t, v, note: s.note });
    }
    ctx.stroke();
  }
  ctx.setLineDash([]);
  canvas.dataset.points = String(hits.length);
  canvas.dataset.yLabels = JSON.stringify(labels.map((l) => l.label));
  canvas.dataset.xLabels = JSON.stringify(xLabels);
  canvas.dataset.unit = unit;
  canvas.hits = hits;
  canvas.format = (v) => `${format(v)} ${unit}`;
  attachTooltip(canvas);
  return hits.length;
}

// The nearest drawn point within HIT_PX of the pointer, shown in the figure's tooltip element.
function attachTooltip(canvas) {
  if (canvas.dataset.tips) return;
  canvas.dataset.tips = "on";
  const tip = canvas.parentElement.querySelector(".tooltip");
  const show = (event) => {
    const box = canvas.getBoundingClientRect();
    const px = event.clientX - box.left;
    const py = event.clientY - box.top;
    let best = null;
    let bestD = HIT_PX;
    for (const h of canvas.hits || []) {
      const d = Math.hypot(h.x - px, h.y - py);
      if (d <= bestD) { best = h; bestD = d; }
    }
    if (!best) { tip.hidden = true; return; }
    const when = new Date(best.t * 1000).toLocaleTimeString("en-GB");
    tip.textContent = `${best.label}${best.note ? ` (${best.note})` : ""} · ${when} · ${canvas.format(best.v)}`;
    tip.hidden = false;
    const left = Math.min(Math.max(0, canvas.offsetLeft + best.x - tip.offsetWidth / 2),
                          canvas.parentElement.clientWidth - tip.offsetWidth);
    tip.style.left = `${Math.max(0, left)}px`;
    tip.style.top = `${canvas.offsetTop + best.y - tip.offsetHeight - 8}px`;
  };
  canvas.addEventListener("pointermove", show);
  canvas.addEventListener("pointerdown", show);
  canvas.addEventListener("pointerleave", () => { tip.hidden = true; });
}
