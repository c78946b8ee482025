"""The live-room figures in the docs, written from ``loadtest/results/live.jsonl`` (``loadtest.docs`` calls these):
the runs table, the sizing of a 1M-viewer event, and the README's short form.

The sizing is arithmetic on the newest run that has a quoted step (``live_accounting.quoted``: sustained,
p99 ≤ 250 ms), never on a saturated one: node cores = deliveries/s × the nodes' CPU ms per delivery; the bus
carries each message once per node with viewers (plus the archiver's pull), so its cost grows with nodes,
not viewers; egress = deliveries/s × the bytes of one ``live_msg`` frame; the archiver and the store take
each message once. Pure: records in, text out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from parley import protocol
from parley.live.rooms import message_frame

NODE_TARGET = 0.6  # of a node's core at the event's calm rate: the burst above it is absorbed by headroom
VIEWERS_PER_NODE_MAX = 50_000  # PARLEY_MAX_CONNECTIONS' default: a node's connection capacity
FRAME_OVERHEAD = 8  # WebSocket header bytes per frame (2-4) plus TCP/IP's share when frames coalesce, rounded up


@dataclass(frozen=True)
class Event:
    viewers: int = 1_000_000
    messages_per_s: float = 200.0  # the figure for the hot room
    burst_factor: float = 10.0  # a score burst
    body_bytes: int = 120  # TrafficModel's mean body


EVENT = Event()


def frame_bytes(body_bytes: int) -> int:
    """One ``live_msg`` frame on the wire: the node's own encoding of a body of that size."""
    payload = orjson.dumps({"from": "a" * 16, "cid": "c" * 12, "body": "x" * body_bytes, "ts": 1_765_000_000_000})
    return len(protocol.frame_bytes(message_frame("r" * 16, 10**9, payload))) + FRAME_OVERHEAD


def quotable(recs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The newest run with a quoted step, among those with the most viewers."""
    good = [r for r in recs if r.get("results", {}).get("quoted")]
    if not good:
        return None
    most = max(r["results"]["viewers"] for r in good)
    return [r for r in good if r["results"]["viewers"] == most][-1]


def nodes_cpu(q: Mapping[str, Any]) -> float:
    return float(sum(v for k, v in q["cpu_ms_per_delivery_by_process"].items() if k.startswith("node") and v))


def plan(rec: Mapping[str, Any], ev: Event = EVENT) -> list[tuple[str, str, str]]:
    """(what, how many, the arithmetic) for an event of ``ev.viewers`` in one room."""
    q = rec["results"]["quoted"]
    node_ms = nodes_cpu(q)
    per_msg = q["cpu_ms_per_message"]
    rate, burst = ev.messages_per_s, ev.messages_per_s * ev.burst_factor
    deliveries = ev.viewers * rate
    cores = deliveries * node_ms / 1000 / NODE_TARGET
    nodes = max(math.ceil(cores), math.ceil(ev.viewers / VIEWERS_PER_NODE_MAX))
    fb = frame_bytes(ev.body_bytes)
    nats_ms, arch_ms = per_msg.get("nats-server") or 0.0, per_msg.get("archiver") or 0.0
    measured_nodes = len(rec["results"]["viewers_per_node"])
    nats_per_node_msg = nats_ms / (measured_nodes + 1)  # measured: one delivery to each node and the archiver
    words_us = (rec["results"].get("filter_cost") or {}).get("judge_us_latin_short") or 0.0
    return [
        ("deliveries/s", f"{deliveries:,.0f} ({deliveries * ev.burst_factor:,.0f} in a burst)",
         f"{ev.viewers:,} viewers × {rate:g} msg/s"),
        ("edge nodes (1 core each)", f"**{nodes:,}**",
         f"{deliveries:,.0f} × {node_ms:.4f} ms per delivery (nodes) / {NODE_TARGET:g} of a core; at least "
         f"{ev.viewers:,} / {VIEWERS_PER_NODE_MAX:,} connections; {ev.viewers / nodes:,.0f} viewers per node"),
        ("burst on those nodes", f"{deliveries * ev.burst_factor * node_ms / 1000 / nodes:.1f} cores per node",
         f"× {ev.burst_factor:g} for the burst: nodes fall behind, and slow viewers are dropped "
         f"(`live_dropped`) unless the burst rate is capped per viewer or nodes are added before the event"),
        ("NATS fan-out", f"{rate * (nodes + 1):,.0f} msg/s out ({burst * (nodes + 1):,.0f} in a burst)",
         f"one copy per node with viewers + the archiver: {rate:g} × ({nodes:,} + 1); about "
         f"{rate * (nodes + 1) * nats_per_node_msg / 1000:.1f} nats-server cores at {nats_per_node_msg:.3f} ms "
         f"per copy (measured {nats_ms:.3f} ms per message with {measured_nodes} nodes + the archiver)"),
        ("egress bandwidth", f"{deliveries * fb * 8 / 1e9:,.1f} Gbit/s ({deliveries * fb * 8 / 1e9 / nodes:.2f} "
                             f"per node)", f"{deliveries:,.0f} frames/s × {fb} bytes (a {ev.body_bytes}-byte body)"),
        ("live archiver", f"{max(1, math.ceil(burst * arch_ms / 1000 / NODE_TARGET))} process(es)",
         f"{burst:,.0f} msg/s in a burst × {arch_ms:.3f} ms per message; the store writes {rate:g}–{burst:,.0f} "
         f"rows/s into one room's partitions (65,536 ids each)"),
        ("banned-word screen", f"{burst * words_us / 1e6:.2f} cores in a burst",
         f"once per send on the sender's node, never per delivery: {burst:,.0f} × {words_us:g} µs (10k entries)"),
    ]


def plan_text(recs: Sequence[Mapping[str, Any]], ev: Event = EVENT) -> str:
    rec = quotable(recs)
    if rec is None:
        return "No run in `loadtest/results/live.jsonl` has a quoted step yet (`make bench-live`)."
    q = rec["results"]["quoted"]
    rows = ["| what | for the event | arithmetic |", "|---|---|---|",
            *[f"| {a} | {b} | {c} |" for a, b, c in plan(rec, ev)]]
    return "\n".join([*rows, "", f"From the run of {rec['date'][:10]} ({rec['results']['viewers']:,} viewers, "
                      f"quoted at {q['messages_per_s']:g} msg/s, {q['deliveries_per_s']:,.0f} deliveries/s, p99 "
                      f"{q['p99_ms']:.0f} ms; commit {str(rec['commit'])[:10]}"
                      f"{'' if rec['clean_tree'] else ' + uncommitted changes'}). {rec.get('note', '')}."])


def run_row(rec: Mapping[str, Any]) -> str:
    r = rec["results"]
    q, top, books = r.get("quoted"), r.get("max_sustained"), r["ledger"]
    quote = (f"{q['messages_per_s']:g} msg/s → {q['deliveries_per_s']:,.0f}/s, p50 {q['p50_ms']:.0f} / p99 "
             f"{q['p99_ms']:.0f} ms, {q['cpu_ms_per_delivery']:.4f} ms ({nodes_cpu(q):.4f} nodes)") if q else "none"
    best = (f"{top['deliveries_per_s']:,.0f}/s at {top['offered_rate']:g} msg/s (p99 {top['p99_ms']:.0f} ms)"
            if top else "none sustained")
    load = " / ".join(f"{x:g}" for x in rec["machine"]["loadavg_at_start"])
    return (f"| {rec['date'][:16].replace('T', ' ')} | {str(rec['commit'])[:10]}{'' if rec['clean_tree'] else '*'} "
            f"| {r['viewers']:,} ({' + '.join(f'{n:,}' for n in r['viewers_per_node'])}) | {quote} | {best} "
            f"| {books['lost']} lost of {books['expected_deliveries']:,} | {load} |")


def runs_text(recs: Sequence[Mapping[str, Any]]) -> str:
    if not recs:
        return "No run recorded yet (`make bench-live`)."
    newest = recs[-1]["results"].get("filter_cost") or {}
    return "\n".join([
        "| date | commit | viewers (per node) | quoted: rate → deliveries, latency, server CPU ms per delivery | "
        "highest sustained | ledger | load average at the start |", "|---|---|---|---|---|---|---|",
        *[run_row(r) for r in recs[::-1]], "",
        f"Banned-word screen: {newest.get('judge_us_latin_short')} µs (Latin) / {newest.get('judge_us_korean_short')} "
        f"µs (Korean) per short message with {newest.get('entries')} entries, once per send on the sender's node "
        f"(`{newest.get('source')}`, {str(newest.get('date'))[:10]}): at these rates it is below the noise of "
        f"the servers' CPU, so it is taken from that benchmark rather than from a run with and without a list."])


def readme_text(recs: Sequence[Mapping[str, Any]]) -> str:
    rec = quotable(recs)
    if rec is None:
        return "No quotable live run yet (`make bench-live`)."
    r, q = rec["results"], rec["results"]["quoted"]
    biggest = max(recs, key=lambda x: x["results"]["viewers"])
    nodes = next(b for a, b, _ in plan(rec) if a.startswith("edge nodes"))
    return (f"One live room, {r['viewers']:,} viewers over {len(r['viewers_per_node'])} nodes "
            f"({' + '.join(f'{n:,}' for n in r['viewers_per_node'])}): at {q['messages_per_s']:g} msg/s, "
            f"{q['deliveries_per_s']:,.0f} deliveries/s with delivery p50 {q['p50_ms']:.0f} ms / p99 "
            f"{q['p99_ms']:.0f} ms and {q['cpu_ms_per_delivery']:.4f} ms of server CPU per delivery "
            f"({nodes_cpu(q):.4f} ms on the nodes). Largest room run: {biggest['results']['viewers']:,} viewers, "
            f"{biggest['results']['ledger']['lost']} lost. A 1M-viewer event at {EVENT.messages_per_s:g} msg/s "
            f"needs {nodes} edge nodes (docs/capacity.md §6). Measured {rec['date'][:10]} on "
            f"{rec['machine']['cpu_count']} cores shared with other work (`loadtest/results/live.jsonl`).")
