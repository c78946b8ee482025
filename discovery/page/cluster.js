// The live cluster page: polls GET /v1/cluster every 2 s and redraws the node tables, charts, lag and
// the health panel (health.js). A node that drained, left or fell silent stays listed, greyed, with its
// state and when it happened, until discovery stops reporting it (5 min later); its chart line stays,
// dashed grey, for as long.

import { drawChart, FADED } from "./chart.js";
import { $, badge, el, fmt, numberCell, scrollTable } from "./dom.js";
import { renderHealth } from "./health.js";
import { renderLive } from "./live.js";

const POLL_MS = 2000;
const TIMEOUT_MS = 4000;
const PALETTE = ["#2f6fde", "#e0731f", "#1f9d55", "#b4318d", "#7a5af5", "#c9a100", "#0b8fa3", "#b42318"];
const STATES = {
  eligible: ["serving", "Registered and taking new clients"],
  full: ["full", "At its connection limit: discovery places no new clients here"],
  draining: ["draining", "Moving its clients to other nodes; discovery places no new clients here"],
  drained: ["drained", "Drained its clients and left the cluster"],
  left: ["left", "Stopped without draining (its clients reconnect elsewhere)"],
  stale: ["silent", "Its registry entry is older than the TTL: not beating (killed, hung or cut off)"],
};
const colors = new Map();
let lastGood = null;

function colorOf(id) {
  if (!colors.has(id)) colors.set(id, PALETTE[colors.size % PALETTE.length]);
  return colors.get(id);
}

function stateNote(n) {
  if (n.state === "draining" && n.since) return `since ${fmt.clock(n.since)}`;
  if (n.state === "stale") return `last seen ${fmt.age(n.age_s)} ago`;
  if (n.gone && n.since) return `at ${fmt.clock(n.since)}`;
  if (!n.scraped && !n.gone) return "no /metrics";
  return null;
}

function nodeRow(n) {
  const [text, meaning] = STATES[n.state] || [n.state, ""];
  const hides = n.hides_in_s == null ? "" : ` · hidden from this page in ${fmt.age(n.hides_in_s)}`;
  const note = stateNote(n);
  const state = el("td", {}, badge(n.state, text, meaning + hides),
                   note && el("span", { className: "note", text: note, title: meaning + hides }));
  const load = el("td", { className: "num" }, el("span", { className: "load" },
    el("meter", { min: 0, max: 1, value: n.load, title: `load ${fmt.pct(n.load)} of ${fmt.int(n.max_connections)}` }),
    el("span", { text: fmt.pct(n.load), data: { field: "load", value: String(n.load) } })));
  const swatch = el("span", { className: "swatch", "aria-hidden": "true" });
  swatch.style.backgroundColor = n.gone ? FADED : colorOf(n.id);  // CSSOM: allowed by the CSP
  return el("tr", { className: n.gone ? "gone" : "", data: { node: n.id, state: n.state } },
    el("th", { scope: "row", title: n.url }, swatch, n.id, el("span", { className: "url", text: n.url })),
    state,
    numberCell("connections", n.connections, `${fmt.int(n.connections)} / ${fmt.int(n.max_connections)}`,
               "connected devices / capacity"),
    load,
    numberCell("delivered_per_s", n.delivered_per_s, fmt.rate(n.delivered_per_s)),
    numberCell("published_per_s", n.published_per_s, fmt.rate(n.published_per_s)),
    numberCell("errors_per_s", n.errors_per_s, fmt.rate(n.errors_per_s), "error frames sent to clients per second"),
    numberCell("p99_ms", n.p99_ms, fmt.ms(n.p99_ms),
               n.p99_window_ms == null ? null : `p99 over the whole chart window: ${fmt.ms(n.p99_window_ms)} ms`),
    numberCell("uptime_s", n.uptime_s, fmt.age(n.uptime_s), n.gone ? "how long it ran" : null));
}

const NODE_HEADERS = [
  ["Node", "Node id and the WebSocket URL clients are given"],
  ["State", "What discovery makes of its registry entry"],
  ["Connections", "Connected devices / capacity (PARLEY_MAX_CONNECTIONS)", true],
  ["Load", "Connections as a share of capacity; placement prefers the least loaded", true],
  ["Delivered (msg/s)", "Messages handed to devices per second, last sample", true],
  ["Published (msg/s)", "Messages its clients sent per second, last sample", true],
  ["Errors (/s)", "Error frames sent to clients per second (parley_node_errors_total)", true],
  ["p99 (ms)", "End-to-end delivery p99 over the trailing 10 s", true],
  ["Up", "Uptime", true],
];

function regionTable(region, nodes) {
  const headId = `region-${region.replace(/[^a-zA-Z0-9_-]/g, "_")}`;
  return el("section", { className: "region card", "aria-labelledby": headId, data: { region } },
    el("h3", { id: headId, text: `Region ${region}` }),
    scrollTable(`Nodes in region ${region}`, NODE_HEADERS, nodes.map(nodeRow)));
}

function renderNodes(data) {
  const byRegion = new Map();
  for (const n of data.nodes) {
    if (!byRegion.has(n.region)) byRegion.set(n.region, []);
    byRegion.get(n.region).push(n);
  }
  $("regions").replaceChildren(...[...byRegion.keys()].sort().map((r) => regionTable(r, byRegion.get(r))));
  $("no-nodes").hidden = data.nodes.length > 0;
  const live = data.nodes.filter((n) => !n.gone);
  const conns = live.reduce((sum, n) => sum + n.connections, 0);
  const rate = live.reduce((sum, n) => sum + (n.delivered_per_s || 0), 0);
  const gone = data.nodes.length - live.length;
  $("summary").textContent = `${live.length} node${live.length === 1 ? "" : "s"}${gone ? ` (+${gone} gone)` : ""} · `
    + `${fmt.int(conns)} connections · ${fmt.rate(rate)} msg/s delivered`;
}

function legend(list, items) {
  list.replaceChildren(...items.map(({ label, color, text, value, title }) => {
    const swatch = el("span", { className: "swatch", "aria-hidden": "true" });
    swatch.style.backgroundColor = color;
    return el("li", { title, data: { series: label, value: value == null ? "" : String(value) } },
              swatch, label, el("span", { className: "value", text }));
  }));
}

function timeRange(data, series) {
  let earliest = data.now;
  for (const s of series) if (s.points.length) earliest = Math.min(earliest, s.points[0][0]);
  return { from: Math.max(data.now - data.window_s, Math.min(earliest, data.now - 30)), to: data.now };
}

function nodeSeries(data, field) {
  return data.nodes.map((n) => ({ label: n.id, color: colorOf(n.id), faded: n.gone,
                                  note: n.gone ? (STATES[n.state] || [n.state])[0] : null,
                                  points: n.series.map((p) => [p.t, p[field]]) }));
}

function nodeLegend(data, value, text) {
  return data.nodes.map((n) => ({ label: n.id, color: n.gone ? FADED : colorOf(n.id), value: value(n),
                                  text: n.gone ? (STATES[n.state] || [n.state])[0] : text(n) }));
}

function renderCharts(data) {
  const gap = data.interval_s * 2.5;
  const delivered = nodeSeries(data, "delivered");
  const range = timeRange(data, delivered);
  drawChart($("delivered-chart"), { series: delivered, ...range, gap, unit: "msg/s", format: fmt.rate });
  drawChart($("p99-chart"), { series: nodeSeries(data, "p99_ms"), ...range, gap, unit: "ms", format: fmt.ms });
  drawChart($("errors-chart"), { series: nodeSeries(data, "errors"), ...range, gap, unit: "errors/s", minTop: 1,
                                 format: fmt.rate });
  legend($("delivered-legend"), nodeLegend(data, (n) => n.delivered_per_s, (n) => `${fmt.rate(n.delivered_per_s)} msg/s`));
  legend($("p99-legend"), nodeLegend(data, (n) => n.p99_ms,
                                     (n) => (n.p99_ms == null ? "no deliveries" : `${fmt.ms(n.p99_ms)} ms`)));
  legend($("errors-legend"), nodeLegend(data, (n) => n.errors_per_s, (n) => `${fmt.rate(n.errors_per_s)} /s`));
  const workers = [["archiver", "#1f9d55"], ["pusher", "#b4318d"]].map(([name, color]) => ({ name, color, ...data.lag[name] }));
  drawChart($("lag-chart"), { series: workers.map((w) => ({ label: w.name, color: w.color, points: w.series })),
                              ...range, gap, minTop: 4, unit: "messages", format: fmt.int });
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
    renderHealth(data.health);
    renderLive(data.live);
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
