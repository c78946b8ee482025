"""The efficiency table (Parley beside the bare baseline, with ratios), from ``efficiency.jsonl`` records.

Pure: records in, Markdown lines out. ``newest_run`` picks the lines of the newest run (they share
``run``); ``table`` puts each figure of each workload in a row: Parley, baseline, Parley / baseline, and
``spread`` says how Parley's main figures varied over every run recorded of the same commit.
The docs' ``efficiency`` region (``loadtest.docs``) and the bench's own printout both use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from statistics import median
from typing import Any

from parley.loadtest.efficiency_accounting import same_load

SYSTEMS = ("parley", "baseline")
TITLES = {"parley": "Parley"}  # in the table's head; other systems as named (baseline, picows: docs/adr/0057)
# the tables the bench prints, for the systems it ran: durable is the durable path's floor (docs/adr/0068)
PAIRS = (("parley", "baseline"), ("picows", "baseline"), ("durable", "baseline"), ("parley", "durable"))
# the process holding the WebSockets, one name in per-process rows: Parley's node, the floor's relay, a bare relay
EDGE = {"node1": "edge (node1, relay)", "relay": "edge (node1, relay)", "baseline": "edge (node1, relay)",
        "picows": "edge (node1, relay)"}
MAX = "max deliveries/s"
Fmt = Callable[[Any], str]


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def times(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}×" if v < 10 else f"{v:.0f}×"


def cost(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def whole(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def one(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def newest_run(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    if not records:
        return []
    run = records[-1]["run"]
    return [r for r in records if r["run"] == run]


# (workload, label, how to read it, format): a row per figure
ROWS: list[tuple[str, str, Callable[[dict[str, Any]], Any], Fmt]] = [
    ("dm", "server CPU ms per delivery", lambda r: r["cpu_ms_per_delivery"], cost),
    ("dm", "server CPU ms per delivery at max", lambda r: r.get("cpu_ms_per_delivery_at_max"), cost),
    ("dm", MAX, lambda r: r["max_deliveries_per_s"], whole),
    ("dm", "p50 ms at 80% of max", lambda r: r["p50_ms"], one),
    ("dm", "p99 ms at 80% of max", lambda r: r["p99_ms"], one),
    ("fanout", "server CPU ms per delivery", lambda r: r["cpu_ms_per_delivery"], cost),
    ("fanout", "server CPU ms per delivery at max", lambda r: r.get("cpu_ms_per_delivery_at_max"), cost),
    ("fanout", MAX, lambda r: r["max_deliveries_per_s"], whole),
    ("fanout", "p50 ms at 80% of max", lambda r: r["p50_ms"], one),
    ("fanout", "p99 ms at 80% of max", lambda r: r["p99_ms"], one),
    ("idle", "KB per connection (all server processes)", lambda r: r["kb_per_conn"], one),
    ("idle", "connects/s (hello → synced)", lambda r: r["connects_per_s"], whole),
    ("idle", "server CPU while idle, % of a core", lambda r: r["idle"]["idle_cpu_pct"], one),
]


def table(records: Sequence[dict[str, Any]], pair: tuple[str, str] = SYSTEMS) -> list[str]:
    """The newest run as Markdown: a row per figure, the ratio Parley / baseline last (or ``pair``'s first system /
    its second: ``("picows", "baseline")``)."""
    run = newest_run(records)
    by = {(r["system"], r["workload"]): r for r in run}
    a, b_ = (TITLES.get(s, s) for s in pair)
    out = [f"| workload | figure | {a} | {b_} | {a} / {b_} |", "|---|---|---|---|---|"]
    for workload, label, read, fmt in ROWS:
        p, b = (by.get((s, workload)) for s in pair)
        pv, bv = (read(x) if x else None for x in (p, b))
        out.append(f"| {workload} | {label} | {cell(p, label, fmt(pv))} | {cell(b, label, fmt(bv))} | "
                   f"{times(ratio(pv, bv))} |")
        if label == MAX:
            out.append(same_load_row(workload, p, b))
            if "durable" in pair:
                out.extend(process_rows(workload, p, b))
    return out + ["", *notes(run, by, pair), *(spread(records) if pair == SYSTEMS else [])]


def region(records: Sequence[dict[str, Any]]) -> list[str]:
    """The docs' region: Parley beside the bare baseline; and, when the newest run also ran the durable floor
    (``--systems baseline,durable,parley``, ADR 0068), Parley beside the floor, each process at the same load."""
    out = table(records)
    if any(r["system"] == "durable" for r in newest_run(records)):
        out += ["", "Beside the durable floor in the same run (the bare relay over JetStream with an archiving worker: "
                    "what a DM's durable path costs with no Parley logic, ADR 0068):", "",
                *table(records, ("parley", "durable"))]
    return out


def same_load_row(workload: str, p: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    """Both systems' CPU per delivery at the busiest offered rate both sustained (the ladders share rates)."""
    pair = same_load(p["steps"], b["steps"]) if p and b and "steps" in p and "steps" in b else None
    label = "server CPU ms per delivery at the same load"
    if pair is None:
        return f"| {workload} | {label} (none both sustained) | - | - | - |"
    pv, bv = (s["window"]["cpu_ms_per_delivery"] for s in pair)
    return (f"| {workload} | {label} ({whole(pair[0]['offered_rate'])} msg/s offered) | {cost(pv)} | {cost(bv)} | "
            f"{times(ratio(pv, bv))} |")


def process_rows(workload: str, p: dict[str, Any] | None, b: dict[str, Any] | None) -> list[str]:
    """Each server process's CPU per delivery at the busiest offered rate both sustained (the floor's ``relay``
    beside Parley's ``node1``; nats-server beside nats-server, archiver beside archiver); a process that used no
    CPU tick in either window is left out."""
    pair = same_load(p["steps"], b["steps"]) if p and b and "steps" in p and "steps" in b else None
    if pair is None:
        return []
    pa, pb = ({EDGE.get(k, k): v for k, v in s["window"]["cpu_ms_per_delivery_by_process"].items()} for s in pair)
    return [f"| {workload} | … of which {name} | {cost(pa.get(name))} | {cost(pb.get(name))} | "
            f"{times(ratio(pa.get(name), pb.get(name)))} |" for name in sorted(set(pa) | set(pb))
            if pa.get(name) or pb.get(name)]


def cell(rec: dict[str, Any] | None, label: str, text: str) -> str:
    """A maximum the ladder did not reach (it ran out of steps first) is a floor: "≥"."""
    return f"≥ {text}" if rec and label == MAX and rec.get("limit_reached") is False else text


def generator(by: dict[tuple[str, str], dict[str, Any]], systems: tuple[str, str] = SYSTEMS) -> str:
    """At each maximum: the generator's share of its core (near 100%: it was the limit) and how busy the
    server core was, the servers' share of it first (the rest: other processes on the machine)."""
    parts = []
    for s in systems:
        for w in ("dm", "fanout"):
            r = by.get((s, w)) or {}
            pct, busy = r.get("cpu_pct_at_max") or {}, r.get("core_busy_pct_at_max") or {}
            if "client" in pct:
                servers = sum(v for k, v in pct.items() if k != "client" and v is not None)
                core0 = f", server core {servers:.0f}% ours of {busy['0']:.0f}% busy" if "0" in busy else ""
                parts.append(f"{s} {w}: generator {pct['client']:.0f}%{core0}")
    return f" At each maximum, % of a core: {'; '.join(parts)}." if parts else ""


def notes(run: list[dict[str, Any]], by: dict[tuple[str, str], dict[str, Any]],
          systems: tuple[str, str] = SYSTEMS) -> list[str]:
    if not run:
        return ["No efficiency run recorded yet (`make bench-efficiency`)."]
    first = run[0]
    lost = ", ".join(f"{s} {w}: {by[(s, w)]['lost']} lost, {by[(s, w)].get('duplicates', 0)} doubled"
                     for s in systems for w in ("dm", "fanout") if (s, w) in by)
    rules = "; ".join(f"{s} {w} at {whole(q.get('deliveries_per_s'))} deliveries/s ({q['rule']})"
                      for s in systems for w in ("dm", "fanout")
                      if (q := (by.get((s, w)) or {}).get("quoted_at")))
    a = first["args"]
    tree = "clean tree" if first["clean_tree"] else "uncommitted changes"
    return [f"Run of {first['run'][:10]} (`loadtest/results/efficiency.jsonl`; commit {str(first['commit'])[:10]}, "
            f"{tree}; {first['machine']['cpu_count']} × {first['machine']['cpu_model']}, load average "
            f"{' / '.join(f'{x:g}' for x in first['machine']['loadavg_at_start'])} at the start; {first['pinning']}). "
            f"DMs: {a['pairs']} pairs; fan-out: {a['rooms']} rooms of {a['room_size']}; idle: {a['idle']} "
            f"connections; Parley is one node with every worker and nats-server, all counted. "
            f"CPU and deliveries over the same window; costs quoted at: {rules}. Ledger: {lost}."
            f"{generator(by, systems)}"]


# Parley's figures compared across runs of one commit: (workload, label, how to read it, format)
SPREAD: list[tuple[str, str, Callable[[dict[str, Any]], Any], Fmt]] = [
    ("dm", "dm CPU ms per delivery (quoted)", lambda r: r["cpu_ms_per_delivery"], cost),
    ("dm", "at max", lambda r: r.get("cpu_ms_per_delivery_at_max"), cost),
    ("fanout", "fan-out (quoted)", lambda r: r["cpu_ms_per_delivery"], cost),
    ("fanout", "at max", lambda r: r.get("cpu_ms_per_delivery_at_max"), cost),
    ("idle", "KB per connection", lambda r: r["kb_per_conn"], one),
    ("idle", "connects/s", lambda r: r["connects_per_s"], whole),
]


def spread(records: Sequence[dict[str, Any]]) -> list[str]:
    """When the newest run's commit was recorded more than once (same tree state): each figure's lowest,
    highest and median over those runs — on a shared machine one run's quoted figure can be luck."""
    run = newest_run(records)
    if not run:
        return []
    commit, clean = run[0]["commit"], run[0]["clean_tree"]
    same = [r for r in records if r["system"] == "parley" and r["commit"] == commit and r["clean_tree"] == clean]
    runs = {r["run"] for r in same}
    if len(runs) < 2:
        return []
    parts = []
    for workload, label, read, fmt in SPREAD:
        values = sorted(v for r in same if r["workload"] == workload and (v := read(r)) is not None)
        if values:
            parts.append(f"{label} {fmt(values[0])}–{fmt(values[-1])} (median {fmt(median(values))})")
    return ["", f"Parley over the {len(runs)} runs of commit {str(commit)[:10]}: {'; '.join(parts)}."]
