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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from parley.loadtest.live_accounting import sustained

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
    viewer_cap: float = 20.0  # msg/s a viewer could be sent at most, were a per-viewer cap built


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


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of y on x; None with fewer than two distinct x or a slope that is not positive
    (a shared machine's noise, not a cost)."""
    if len({x for x, _ in points}) < 2:
        return None
    mx, my = sum(x for x, _ in points) / len(points), sum(y for _, y in points) / len(points)
    b = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return b if b > 0 else None


def marginal(steps: Sequence[Mapping[str, Any]], per: str, names: Callable[[str], bool]) -> float | None:
    """CPU ms per delivery (``per`` = "delivery") or per message of the processes ``names`` picks: the slope
    of their CPU (cores) over the sustained steps' rates, so a fixed cost (heartbeats, idle upkeep) does not
    count as a per-delivery one. None when it cannot be told."""
    points = []
    for s in steps:
        if not sustained(s):
            continue
        w = s["window"]
        x = w["deliveries_per_s"] if per == "delivery" else s["sent_in_window"] / w["wall_s"]
        points.append((x, sum(v for k, v in w["cpu_pct"].items() if names(k) and v) / 100))
    b = slope(points)
    return None if b is None else 1000 * b


def costs(rec: Mapping[str, Any]) -> dict[str, tuple[float, str]]:
    """The per-delivery and per-message costs the plan uses, each with where it came from."""
    r = rec["results"]
    q, steps = r["quoted"], r.get("steps", [])
    n = sum(1 for s in steps if sustained(s))
    how = f"slope over {n} sustained steps"
    node = marginal(steps, "delivery", lambda k: k.startswith("node"))
    nats = marginal(steps, "message", lambda k: k == "nats-server")
    arch = marginal(steps, "message", lambda k: k == "archiver")
    per_msg = q["cpu_ms_per_message"]
    return {"node": (node, how) if node else (nodes_cpu(q), "at the quoted step"),
            "nats": (nats, how) if nats else (per_msg.get("nats-server") or 0.0, "at the quoted step"),
            "archiver": (arch, how) if arch else (per_msg.get("archiver") or 0.0, "at the quoted step")}


def edge_nodes(viewers: int, deliveries: float, node_ms: float) -> int:
    """Nodes for ``deliveries``/s at ``node_ms`` each, kept at ``NODE_TARGET``; never fewer than the viewers'
    connections need."""
    return max(math.ceil(deliveries * node_ms / 1000 / NODE_TARGET), math.ceil(viewers / VIEWERS_PER_NODE_MAX))


def plan(rec: Mapping[str, Any], ev: Event = EVENT) -> list[tuple[str, str, str]]:
    """(what, how many, the arithmetic) for an event of ``ev.viewers`` in one room."""
    c = costs(rec)
    (node_ms, node_how), (nats_ms, nats_how), (arch_ms, arch_how) = c["node"], c["nats"], c["archiver"]
    rate, burst = ev.messages_per_s, ev.messages_per_s * ev.burst_factor
    deliveries = ev.viewers * rate
    nodes = edge_nodes(ev.viewers, deliveries, node_ms)
    capped = edge_nodes(ev.viewers, ev.viewers * min(ev.viewer_cap, rate), node_ms)
    fb = frame_bytes(ev.body_bytes)
    gbit = deliveries * fb * 8 / 1e9
    measured_nodes = len(rec["results"]["viewers_per_node"])
    per_copy = nats_ms / (measured_nodes + 1)  # measured: one copy to each node and one to the archiver
    copies = rate * (nodes + 1)
    words_us = (rec["results"].get("filter_cost") or {}).get("judge_us_latin_short") or 0.0
    return [
        ("deliveries/s", f"{deliveries:,.0f} ({deliveries * ev.burst_factor:,.0f} in a burst)",
         f"{ev.viewers:,} viewers × {rate:g} msg/s"),
        ("edge nodes (1 core each)", f"**{nodes:,}**",
         f"{deliveries:,.0f} × {node_ms:.4f} ms per delivery (nodes; {node_how}) / {NODE_TARGET:g} of a core; at "
         f"least {ev.viewers:,} / {VIEWERS_PER_NODE_MAX:,} connections; {ev.viewers / nodes:,.0f} viewers per node"),
        ("burst on those nodes", f"{deliveries * ev.burst_factor * node_ms / 1000 / nodes:.1f} cores per node",
         f"× {ev.burst_factor:g}: nodes fall behind and drop slow viewers (`live_dropped`) unless the rate each "
         "viewer is sent is capped, or nodes are added before the event"),
        (f"edge nodes if each viewer is sent at most {ev.viewer_cap:g} msg/s", f"{capped:,}",
         f"{ev.viewers:,} × {min(ev.viewer_cap, rate):g} × {node_ms:.4f} ms / {NODE_TARGET:g}; the burst then meets "
         "the cap and costs no nodes (such a cap is not built)"),
        ("NATS fan-out", f"{copies:,.0f} msg/s out ({copies * ev.burst_factor:,.0f} in a burst)",
         f"one copy per node with viewers + the archiver: {rate:g} × ({nodes:,} + 1); about "
         f"{copies * per_copy / 1000:,.1f} nats-server cores at {per_copy:.4f} ms per copy ({nats_ms:.4f} ms per "
         f"message with {measured_nodes} nodes + the archiver; {nats_how})"),
        ("egress bandwidth", f"{gbit:,.1f} Gbit/s ({gbit / nodes:.2f} Gbit/s per node)",
         f"{deliveries:,.0f} frames/s × {fb} bytes (a {ev.body_bytes}-byte body)"),
        ("live archiver", f"{max(1, math.ceil(burst * arch_ms / 1000 / NODE_TARGET))} process(es)",
         f"{burst:,.0f} msg/s in a burst × {arch_ms:.4f} ms per message ({arch_how}); the store writes "
         f"{rate:g}–{burst:,.0f} rows/s into one room's partitions (65,536 ids each)"),
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
                      f"{'' if rec['clean_tree'] else ' + uncommitted changes'}). {sentence(rec.get('note', ''))}"])


def sentence(text: str) -> str:
    return f"{text[:1].upper()}{text[1:]}." if text else ""


def closed(books: Mapping[str, Any]) -> str:
    n = books.get("closed_viewers") or 0
    return f" ({n:,} viewers closed)" if n else ""


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
            f"| {books['lost']:,} lost of {books['expected_deliveries']:,}{closed(books)} | {load} |")


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


def big(rec: Mapping[str, Any]) -> str:
    r, top = rec["results"], rec["results"].get("max_sustained")
    held = (f"{top['offered_rate']:g} msg/s sustained ({top['deliveries_per_s']:,.0f} deliveries/s, p99 "
            f"{top['p99_ms']:.0f} ms)" if top else "no step sustained")
    return (f"{r['viewers']:,} viewers ({' + '.join(f'{n:,}' for n in r['viewers_per_node'])} per node), {held}, "
            f"{r['ledger']['lost']} of {r['ledger']['expected_deliveries']:,} deliveries lost")


def readme_text(recs: Sequence[Mapping[str, Any]]) -> str:
    rec = quotable(recs)
    if rec is None:
        return "No quotable live run yet (`make bench-live`)."
    r, q = rec["results"], rec["results"]["quoted"]
    # the newest of the biggest runs that kept every viewer connected (docs/capacity.md's table lists them all,
    # losses included; one 16,000-viewer line lost viewers to the harness's own fault, see the results README)
    whole = [x for x in recs if not x["results"]["ledger"].get("closed_viewers")] or list(recs)
    biggest = max(whole[::-1], key=lambda x: x["results"]["viewers"])
    nodes = next(b for a, b, _ in plan(rec) if a.startswith("edge nodes"))
    return (f"One live room, {r['viewers']:,} viewers over {len(r['viewers_per_node'])} nodes "
            f"({' + '.join(f'{n:,}' for n in r['viewers_per_node'])}): at {q['messages_per_s']:g} msg/s, "
            f"{q['deliveries_per_s']:,.0f} deliveries/s with delivery p50 {q['p50_ms']:.0f} ms / p99 "
            f"{q['p99_ms']:.0f} ms and {q['cpu_ms_per_delivery']:.4f} ms of server CPU per delivery "
            f"({nodes_cpu(q):.4f} ms on the nodes). Largest room: {big(biggest)}. "
            f"A 1M-viewer event at {EVENT.messages_per_s:g} msg/s "
            f"needs {nodes} edge nodes (docs/capacity.md §6). Measured {rec['date'][:10]} on "
            f"{rec['machine']['cpu_count']} cores shared with other work (`loadtest/results/live.jsonl`).")
