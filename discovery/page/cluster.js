// The live cluster page: polls GET /v1/cluster every 2 s and redraws the node tables, charts and lag.
// Every text goes in with textContent; elements are built with DOM APIs (the CSP forbids inline code).

import { drawChart } from "./chart.js";

const POLL_MS = 2000;
const TIMEOUT_MS = 4000;
const PALETTE = ["#2f6fde", "#e0731f", "#1f9d55", "#b4318d", "#7a5af5", "#c9a100", "#0b8fa3", "#b42318"];
const STATE_TEXT = { eligible: "serving", draining: "draining", full: "full", stale: "stale" };
const colors = new Map();
const $ = (id) => document.getElementById(id);
let lastGood = null;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "data") Object.assign(node.dataset, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function colorOf(id) {
  if (!colors.has(id)) colors.set(id, PALETTE[colors.size % PALETTE.length]);
  return colors.get(id);
}

const fmt = {
  rate: (v) => (v == null ? "–" : v >= 100 ? v.toFixed(0) : v.toFixed(1)),
  ms: (v) => (v == null ? "–" : v >= 100 ? v.toFixed(0) : v.toFixed(1)),
  int: (v) => (v == null ? "–" : Math.round(v).toLocaleString("en")),
  pct: (v) => `${(v * 100).toFixed(v < 0.1 ? 2 : 1)}%`,
  clock: (t) => new Date(t * 1000).toLocaleTimeString("en-GB"),
  age(s) {
    if (s < 90) return `${Math.round(s)} s`;
    if (s < 5400) return `${Math.round(s / 60)} min`;
    return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  },
};

function numberCell(field, value, text) {
  return el("td", { className: "num", text, data: { field, value: value == null ? "" : String(value) } });
}

function nodeRow(n) {
  const state = el("td", {}, el("span", { className: "badge", text: STATE_TEXT[n.state] || n.state,
                                          data: { state: n.state } }));
  if (n.state === "stale") state.append(el("span", { className: "note", text: `last seen ${fmt.age(n.age_s)} ago` }));
  else if (!n.scraped) state.append(el("span", { className: "note", text: "no /metrics" }));
  const load = el("td", { className: "num" }, el("span", { className: "load" },
    el("meter", { min: 0, max: 1, value: n.load, title: `load ${fmt.pct(n.load)}` }),
    el("span", { text: fmt.pct(n.load), data: { field: "load", value: String(n.load) } })));
  return el("tr", { data: { node: n.id, state: n.state } },
    el("th", { scope: "row" },
      el("span", { className: "swatch", "aria-hidden": "true" }), n.id, " ",
      el("span", { className: "url", text: n.url })),
    state,
    numberCell("connections", n.connections, `${fmt.int(n.connections)} / ${fmt.int(n.max_connections)}`),
    load,
    numberCell("delivered_per_s", n.delivered_per_s, fmt.rate(n.delivered_per_s)),
    numberCell("published_per_s", n.published_per_s, fmt.rate(n.published_per_s)),
    numberCell("p99_ms", n.p99_ms, fmt.ms(n.p99_ms)),
    numberCell("uptime_s", n.uptime_s, fmt.age(n.uptime_s)));
}

function regionTable(region, nodes) {
  const headId = `region-${region.replace(/[^a-zA-Z0-9_-]/g, "_")}`;
  const head = el("tr", {}, ...["Node", "State", "Connections", "Load", "Delivered msg/s", "Published msg/s",
                                "p99 e2e ms", "Up"].map((h, i) => el("th", { scope: "col", text: h,
                                                                          className: i >= 2 ? "num" : "" })));
  const rows = nodes.map(nodeRow);
  const card = el("section", { className: "region card", "aria-labelledby": headId, data: { region } },
    el("h3", { id: headId, text: `Region ${region}` }),
    el("table", {}, el("caption", { className: "visually-hidden", text: `Nodes in region ${region}` }),
       el("thead", {}, head), el("tbody", {}, ...rows)));
  // swatches are coloured through the CSSOM (allowed by the CSP, unlike style attributes)
  rows.forEach((row, i) => { row.querySelector(".swatch").style.backgroundColor = colorOf(nodes[i].id); });
  return card;
}

function renderNodes(data) {
  const byRegion = new Map();
  for (const n of data.nodes) {
    if (!byRegion.has(n.region)) byRegion.set(n.region, []);
    byRegion.get(n.region).push(n);
  }
  $("regions").replaceChildren(...[...byRegion.keys()].sort().map((r) => regionTable(r, byRegion.get(r))));
  $("no-nodes").hidden = data.nodes.length > 0;
  const conns = data.nodes.reduce((sum, n) => sum + n.connections, 0);
  const rate = data.nodes.reduce((sum, n) => sum + (n.delivered_per_s || 0), 0);
  $("summary").textContent = `${data.nodes.length} node${data.nodes.length === 1 ? "" : "s"} in ${byRegion.size} `
    + `region${byRegion.size === 1 ? "" : "s"} · ${fmt.int(conns)} connections · ${fmt.rate(rate)} msg/s delivered`;
}

function legend(list, items) {
  list.replaceChildren(...items.map(({ label, color, text, value }) => {
    const swatch = el("span", { className: "swatch", "aria-hidden": "true" });
    swatch.style.backgroundColor = color;
    return el("li", { data: { series: label, value: value == null ? "" : String(value) } },
              swatch, label, el("span", { className: "value", text }));
  }));
}

function timeRange(data, series) {
  let earliest = data.now;
  for (const s of series) if (s.points.length) earliest = Math.min(earliest, s.points[0][0]);
  return { from: Math.max(data.now - data.window_s, Math.min(earliest, data.now - 30)), to: data.now };
}

function renderCharts(data) {
  const gap = data.interval_s * 2.5;
  const delivered = data.nodes.map((n) => ({ label: n.id, color: colorOf(n.id),
                                             points: n.series.map((p) => [p.t, p.delivered]) }));
  const p99 = data.nodes.map((n) => ({ label: n.id, color: colorOf(n.id), points: n.series.map((p) => [p.t, p.p99_ms]) }));
  const range = timeRange(data, delivered);
  drawChart($("delivered-chart"), { series: delivered, ...range, gap });
  drawChart($("p99-chart"), { series: p99, ...range, gap });
  legend($("delivered-legend"), data.nodes.map((n) => ({ label: n.id, color: colorOf(n.id),
                                                         value: n.delivered_per_s, text: `${fmt.rate(n.delivered_per_s)} msg/s` })));
  legend($("p99-legend"), data.nodes.map((n) => ({ label: n.id, color: colorOf(n.id), value: n.p99_ms,
                                                   text: n.p99_ms == null ? "no deliveries" : `${fmt.ms(n.p99_ms)} ms` })));
  const workers = [["archiver", "#1f9d55"], ["pusher", "#b4318d"]].map(([name, color]) => ({ name, color, ...data.lag[name] }));
  drawChart($("lag-chart"), { series: workers.map((w) => ({ label: w.name, color: w.color, points: w.series })),
                              ...range, gap, minTop: 4 });
  legend($("lag-legend"), workers.map((w) => ({ label: w.name, color: w.color, value: w.lag,
    text: { ok: `${fmt.int(w.lag)} messages`, off: "off (push not configured)", down: "not answering",
            waiting: "waiting for the first sample" }[w.state] })));
  const span = range.to - range.from;
  const shown = span >= 90 ? `${Math.round(span / 60)} min` : `${Math.round(span)} s`;
  $("window").textContent = `(last ${shown}, sampled every ${data.interval_s} s)`;
}

function showStatus(state, text) {
  const status = $("status");
  status.dataset.state = state;
  status.textContent = text;
  document.body.classList.toggle("stale-data", state === "error");
}

async function poll() {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  try {
    const resp = await fetch("/v1/cluster", { signal: abort.signal, cache: "no-store" });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const data = await resp.json();
    renderNodes(data);
    renderCharts(data);
    lastGood = data.now;
    showStatus("live", `Live · updated ${fmt.clock(data.now)}`);
  } catch (err) {
    const since = lastGood == null ? "" : ` · showing data from ${fmt.clock(lastGood)}`;
    const why = err.name === "AbortError" ? "timed out" : err.message;
    showStatus("error", `Discovery not reachable (${why}); retrying${since}`);
  } finally {
    clearTimeout(timer);
    setTimeout(poll, POLL_MS);
  }
}

poll();
