// The cluster page's health panel, from /v1/cluster's `health`: the API and workers (state, errors/s,
// store, gauges), NATS and JetStream (servers, each stream's leader and replicas, storage used) and the
// alerts Prometheus has firing (or why there are none to show).

import { $, badge, el, fmt, numberCell, scrollTable } from "./dom.js";

const PROCESS_STATES = {
  up: ["up", "Its /metrics answered the last sample"],
  down: ["down", "Its /metrics did not answer the last sample"],
  off: ["off", "Not expected to run (push is not configured)"],
  waiting: ["waiting", "Not sampled yet"],
};
const ERRORS_MEANING = { api: "HTTP 5xx answers per second", archiver: "store write errors per second",
                         pusher: "pushes given up after every retry, per second" };

function processRow(p) {
  const [text, meaning] = PROCESS_STATES[p.state] || [p.state, ""];
  const gauges = Object.entries(p.gauges || {}).map(([k, v]) => `${k} ${fmt.int(v)}`).join(" · ");
  return el("tr", { data: { process: p.name, role: p.role, state: p.state } },
    el("th", { scope: "row", title: p.url }, p.name, el("span", { className: "url", text: p.url })),
    el("td", {}, badge(p.state, text, meaning)),
    numberCell("errors_per_s", p.errors_per_s, fmt.rate(p.errors_per_s), ERRORS_MEANING[p.role]),
    el("td", {}, p.store == null ? "–" : badge(p.store === "up" ? "up" : "down", p.store,
                                               "The store (Cassandra/SQLite) answered its last probe")),
    el("td", { text: gauges || "–" }));
}

function renderProcesses(health) {
  const counts = Object.entries(health.summary).map(([state, n]) => `${n} ${state}`).join(" · ");
  $("processes-summary").textContent = counts;
  $("processes").replaceChildren(scrollTable("API and workers", [
    ["Process"], ["State"], ["Errors (/s)", "API: 5xx answers/s; archiver: store errors/s; pusher: pushes given up/s", true],
    ["Store", "parley_store_up"], ["Now", "Lag, online users, pending batches"],
  ], health.processes.map(processRow)));
}

function peerText(p) {
  if (p.role === "leader") return `${p.name} (leader)`;
  return `${p.name}: ${p.state}${p.lag ? `, ${fmt.int(p.lag)} behind` : ""}`;
}

function streamRow(s) {
  const replicas = s.peers.filter((p) => p.role === "replica");
  const peers = el("td", {}, ...s.peers.map((p) => el("span", {
    className: "peer", text: peerText(p), data: { state: p.role === "leader" ? "current" : p.state },
    title: p.role === "leader" ? "Leads the stream: takes its writes" : `last heard ${p.active_s} s ago`,
  })));
  return el("tr", { data: { stream: s.name, kind: s.kind, leader: s.leader || "" } },
    el("th", { scope: "row", text: s.name, title: { messages: "A shard's message stream", bucket: "A KV bucket" }[s.kind] }),
    el("td", { className: "num", text: `R${s.replicas}`, title: `${s.replicas} replica(s) configured` }),
    el("td", {}, s.leader ? s.leader : badge("down", "no leader", "Electing a leader: writes wait")),
    replicas.length || s.replicas > 1 ? peers : el("td", { text: "single copy" }),
    numberCell("messages", s.messages, fmt.int(s.messages)),
    numberCell("bytes", s.bytes, fmt.bytes(s.bytes), `${fmt.int(s.bytes)} bytes`));
}

function renderNats(nats) {
  const box = $("nats");
  box.dataset.state = nats.state;
  const c = nats.connected || {};
  const head = nats.state === "waiting" ? "Waiting for the first sample"
    : nats.state === "down" ? `JetStream API not answering: ${nats.error}`
    : `Connected to ${c.server || "?"}${c.version ? ` (nats-server ${c.version})` : ""} · `
      + `${nats.servers.length} server${nats.servers.length === 1 ? "" : "s"} · storage used ${fmt.bytes(nats.storage_bytes)}`
      + ` · memory ${fmt.bytes(nats.memory_bytes)}`;
  const stateText = nats.state;
  const servers = nats.servers.map((s) => el("li", { data: { server: s.name, state: s.state },
    title: `leads ${s.leads} stream(s), replicates ${s.replicates}${s.connected ? "; discovery is connected to it" : ""}` },
    badge(s.state === "ok" ? "up" : s.state === "offline" ? "down" : "warn", s.state), ` ${s.name}`));
  box.replaceChildren(
    el("p", { className: "line" }, badge({ ok: "up", down: "down" }[nats.state] || "warn", stateText,
                                         "degraded: a stream without a leader or a replica offline or behind"), ` ${head}`),
    el("ul", { className: "servers", "aria-label": "NATS servers" }, ...servers),
    scrollTable("JetStream streams", [
      ["Stream"], ["Replicas", "Configured replicas", true], ["Leader"],
      ["Copies", "Each replica: current, catching up (with how far behind) or offline"],
      ["Messages", "Messages held now", true], ["Storage", "Bytes held now", true],
    ], nats.streams.map(streamRow)));
}

function renderAlerts(alerts) {
  const box = $("alerts");
  box.dataset.state = alerts.state;
  const line = {
    off: "Prometheus not configured (set PARLEY_PROMETHEUS_URL to show its alerts here).",
    waiting: `Asking Prometheus at ${alerts.url}…`,
    unreachable: `Prometheus at ${alerts.url} not answering: ${alerts.error}`,
    ok: `No alert firing (Prometheus at ${alerts.url}).`,
    firing: `Firing (Prometheus at ${alerts.url}):`,
  }[alerts.state];
  const items = alerts.alerts.map((a) => {
    const labels = Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(", ");
    const title = [a.description, labels].filter(Boolean).join("\n");
    return el("li", { data: { alert: a.name, state: a.state, severity: a.severity }, title },
      badge(a.state === "firing" ? "down" : "warn", a.state, a.state === "pending" ? "Its condition holds, not yet for its `for:` time" : null),
      a.severity ? el("span", { className: "severity", text: a.severity }) : null,
      el("strong", { text: ` ${a.name}` }),
      el("span", { text: `${a.summary || a.description ? ` — ${a.summary || a.description}` : ""}${a.since ? ` (since ${fmt.clock(a.since)})` : ""}` }));
  });
  box.replaceChildren(el("p", { className: "line", text: line }), ...(items.length ? [el("ul", { className: "alert-list" }, ...items)] : []));
}

export function renderHealth(health) {
  renderProcesses(health);
  renderNats(health.nats);
  renderAlerts(health.alerts);
}
