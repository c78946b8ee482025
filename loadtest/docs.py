"""The docs' tables, written from the results files and the models so they cannot drift from them.

    .venv/bin/python -m parley.loadtest.docs            # rewrite the regions (also run by `make capacity`)
    .venv/bin/python -m parley.loadtest.docs --check    # exit 1, naming the files, if a region is stale

A region is the text between ``<!-- generated: <name> -->`` and ``<!-- end generated -->`` (each on a
line of its own) in docs/capacity.md or README.md; ``REGIONS[name]`` writes it from the newest usable
record of ``loadtest/results/*.jsonl`` (or from ``loadtest.traffic`` and ``loadtest.model``). Text
outside the markers is prose and stays as written: figures no results file holds belong there.
tests/loadtest/test_docs.py fails when a committed region differs from what this would write.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from parley.loadtest import efficiency_report, figures, live_report, model
from parley.loadtest.figures import dig
from parley.loadtest.traffic import MODEL, SCENARIOS, arithmetic, scenario_table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
FILES = ("docs/capacity.md", "README.md")
REGION = re.compile(r"^<!-- generated: (?P<name>[a-z0-9-]+) -->\n(?P<body>.*?)^<!-- end generated -->$", re.S | re.M)
START, END = re.compile(r"^<!-- generated: .* -->$", re.M), re.compile(r"^<!-- end generated -->$", re.M)
VCPUS_PER_MACHINE = 8  # Deployment's node memory assumes 8 node processes on an 8-vCPU machine
README_RUNS = 5  # newest bench.jsonl runs in the README's table


class StaleDocs(Exception):
    """A marker without its end, or a region name nothing writes."""


def render(text: str, regions: dict[str, Callable[[], str]]) -> str:
    def fill(m: re.Match[str]) -> str:
        name = m["name"]
        if name not in regions:
            raise StaleDocs(f"no generator for the region {name!r}")
        return f"<!-- generated: {name} -->\n{regions[name]().rstrip()}\n<!-- end generated -->"

    out = REGION.sub(fill, text)
    if len(START.findall(out)) != len(END.findall(out)):
        raise StaleDocs("a '<!-- generated: … -->' line has no '<!-- end generated -->' line after it")
    return out


# ---- reading the records -------------------------------------------------------------------------


def records(name: str) -> list[dict[str, Any]]:
    path = RESULTS / name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def ms(v: float | None) -> str:
    """A latency as the docs quote it: one decimal below 10 ms, whole milliseconds above."""
    if v is None:
        return "-"
    return f"{v:.2g}" if v < 1 else f"{v:.1f}" if v < 10 else f"{v:,.0f}"


def cost(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def n(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def commit(rec: dict[str, Any]) -> str:
    git = rec.get("git") or {}
    return f"{str(git.get('commit'))[:10]}" + (" + uncommitted changes" if git.get("dirty") else "")


def machine(rec: dict[str, Any]) -> str:
    m = rec["machine"]
    load = " / ".join(f"{x:g}" for x in m["loadavg_at_start"])
    return (f"{m['cpu_count']} × {m['cpu_model']}, {m['memory_gb']} GiB, Python {m['python']}, load average "
            f"{load} at the start")


# ---- docs/capacity.md ----------------------------------------------------------------------------


def traffic_arithmetic() -> str:
    return "```\n" + "\n".join(arithmetic()) + "\n```"


def scenarios() -> str:
    return "\n".join(scenario_table())


def capacity_record() -> tuple[dict[str, Any], dict[str, Any]]:
    results = RESULTS / "capacity.jsonl"
    cap = figures.last_record(results, lambda r: dig(r, "results", "raw", "throughput", "at_max") is not None)
    store = figures.last_record(RESULTS / "store.jsonl",
                              lambda r: dig(r, "results", "cassandra", "archiver", "cpu_s_per_1k", "cassandra"))
    return cap, store


def measured_rows(cap: dict[str, Any], store: dict[str, Any]) -> list[str]:
    raw, found = cap["results"]["raw"], cap["results"]["foundation"]
    t, idle, rc = raw["throughput"], raw["idle"], raw["reconnects"]
    at, half, most = t["at_max"], t["at_50pct"], t["at_80pct"]
    base = found.get("raw_nats_baseline_e2e") or {}
    offered = [s["offered_rate"] for s in t["steps"]]
    per_node = model.connections_per_node(measured_figures(), model.Deployment())
    beats = idle["heartbeats"]
    return [
        f"| highest sustained delivered rate, raw generator | **{n(t['max_sustained_delivered_rate'])} msg/s** | "
        f"open-loop steps {n(min(offered))}…{n(max(offered))}; sustained = ≥90% delivered, p99 ≤ 1 s, none lost |",
        f"| same, Foundation benchmark (`loadtest/bench.py`), same run | "
        f"{n(found.get('best_sustained_delivered_rate'))} msg/s | its client parses every frame and keeps the "
        f"books (acks, losses), so it costs more per message: raw/Foundation = "
        f"{cap['results']['comparison']['raw_over_foundation']} |",
        f"| node CPU per message, sender's node | {cost(at['node_cpu_ms_per_send'])} ms | publish, SENT ack, "
        "echo to the sender's device (node1 − node2) |",
        f"| node CPU per device delivery | {cost(at['node_cpu_ms_per_delivery'])} ms | node2 |",
        f"| **delivered msg/s per node core** | **{n(at['delivered_msgs_per_node_core'])}** | 1000 / "
        f"({cost(at['node_cpu_ms_per_send'])} + {cost(at['node_cpu_ms_per_delivery'])}) |",
        f"| e2e p50 / p99 at 50% of the maximum ({n(half['rate'])} msg/s) | **{ms(half['e2e']['p50_ms'])} / "
        f"{ms(half['e2e']['p99_ms'])} ms** | send time in the body → receiver, one clock |",
        f"| e2e p50 / p99 at 80% ({n(most['rate'])} msg/s) | **{ms(most['e2e']['p50_ms'])} / "
        f"{ms(most['e2e']['p99_ms'])} ms** | busiest process {most['busiest']} "
        f"({most['cpu'][most['busiest']]}% of a core) |",
        f"| raw NATS core publish→subscribe (Foundation baseline) | {ms(base.get('p50_ms'))} / "
        f"{ms(base.get('p99_ms'))} ms | the floor |",
        f"| idle connections held by one node | {n(idle['connections'])} opened (measured), **{n(per_node)} per "
        f"{model.Deployment().node_memory_mb / 1024:g} GiB process** (computed) | RSS {idle['rss_before_mb']} → "
        f"{idle['rss_after_mb']} MiB |",
        f"| **RSS per connection** | **{idle['rss_per_connection_kb']} KiB** | (RSS after − before) / "
        "connections, after 2 s settle |",
        f"| node CPU per heartbeat (ping → pong) | {cost(beats['cpu_ms_per_ping'])} ms | {n(beats['rate'])} "
        f"pings/s for {beats['pings'] / beats['rate']:.0f} s |",
        f"| **reconnects/s** (one node, {rc['concurrency']} in flight) | **{n(rc['reconnects_per_s'])}/s** | "
        f"hello → welcome → empty sync → subscriptions; {rc['cpu_ms_per_reconnect']['node1']:.2f} ms node CPU each |",
        f"| NATS CPU per message | {cost(at['nats_cpu_ms_per_message'])} ms | JetStream store (R1, file) + "
        "republish to the nodes |",
        f"| Cassandra CPU per message written (store.jsonl, {store['date'][:10]}) | "
        f"{cost(store['results']['cassandra']['archiver']['cpu_s_per_1k']['cassandra'])} ms | archiver into "
        f"Cassandra {dig(store, 'cassandra', 'version') or ''}, RF 1, one replica |",
    ]


def measured() -> str:
    cap, store = capacity_record()
    pairs = cap["args"]["pairs"]
    at = cap["results"]["raw"]["throughput"]["at_max"]
    busy = ", ".join(f"{name} {v:.0f}%" for name, v in sorted(at["cpu"].items(), key=lambda kv: -(kv[1] or 0))
                     if v and v >= 1)
    return "\n".join([
        f"Run of {cap['date'][:10]} (`loadtest/results/capacity.jsonl`, newest line; commit {commit(cap)}): "
        f"{machine(cap)}. Two edge nodes, senders on node1 and receivers on node2, {pairs} DM pairs.", "",
        "| figure | value | how |", "|---|---|---|", *measured_rows(cap, store), "",
        f"**Bottleneck.** At the maximum {at['busiest_server']} was the busiest server process; per process, % of "
        f"a core: {busy} (client = the load generator). Verdict: {at['verdict']}."])


def locust_key(rec: dict[str, Any]) -> tuple[int, str]:
    names = list(SCENARIOS)
    sc = rec["scenario"]
    return (names.index(sc["name"]) if sc["name"] in names else len(names), sc.get("disrupt") or "")


def p50_p99(stats: dict[str, dict[str, Any]], verb: str) -> str:
    """Locust's percentiles are whole milliseconds already."""
    parts = [f"{kind} {n(row['p50_ms'])} / {n(row['p99_ms'])}" for kind in ("dm", "group", "live", "live burst")
             if (row := stats.get(f"{verb} {kind}")) and row["count"]]
    return ", ".join(parts) or "-"


def locust_row(rec: dict[str, Any]) -> str:
    sc, verdict = rec["scenario"], rec["verdict"]
    stats = {row["name"]: row for row in rec["stats"]}
    label = sc["name"] + {"kill": ", node1 killed", "drain": ", node1 drained"}.get(sc.get("disrupt") or "", "")
    deliveries = f"{verdict['deliveries']:,} ({verdict['deliveries'] / sc['run_time_s']:,.0f}/s)"
    owed = dig(rec, "summary", "ledger", "owed_to_offline")
    if owed:
        deliveries += f" + {owed} owed to clients offline at the end"
    events = [f"{row['count']} {name} (p50 {n(row['p50_ms'])} ms)" for name in
              ("reconnect", "presence online", "presence offline") if (row := stats.get(name)) and row["count"]]
    return (f"| {label} ({sc['run_time_s']} s) | {rec['date'][:10]} | {sc['users']} | {deliveries} | "
            f"{p50_p99(stats, 'send')} | {p50_p99(stats, 'deliver')} | {'; '.join(events) or '-'} | "
            f"{verdict['failures']} | {verdict['lost']} |")


def locust_runs() -> str:
    newest: dict[tuple[int, str], dict[str, Any]] = {}
    for rec in records("locust.jsonl"):
        newest[locust_key(rec)] = rec  # appended in time order: the last one wins
    return "\n".join(["| scenario | date | clients | deliveries | send p50 / p99 ms | deliver p50 / p99 ms | "
                      "reconnects, presence | failures | lost |", "|---|---|---|---|---|---|---|---|---|",
                      *[locust_row(newest[k]) for k in sorted(newest)]])


def measured_figures() -> figures.Measured:
    return figures.measured_from(RESULTS / "capacity.jsonl", RESULTS / "store.jsonl", RESULTS / "scale.jsonl")


def note(rec: dict[str, Any]) -> str:
    text = str(rec.get("note") or "")
    return f"{text[:1].upper()}{text[1:]}." if text else ""


def scale_runs() -> str:
    """make bench-scale's newest shard run and presence run."""
    shard = figures.last_record(RESULTS / "scale.jsonl", figures.is_shard_run)
    pres = figures.last_record(RESULTS / "scale.jsonl", figures.is_presence_run)
    a = shard["args"]
    rows = ["| K shards | R (servers) | max msg/s | NATS CPU ms/msg at max | at 50%: msg/s, NATS ms/msg, ack p50 / "
            "p99 | at 80%: msg/s, NATS ms/msg, ack p50 / p99 | at max, % of a core: NATS / generators / subscriber "
            "/ other processes | busiest of ours |", "|---|---|---|---|---|---|---|---|"]
    for r in shard["summary"]:
        top = r["max"]
        cells = [f"{n(r[k]['publish_rate'])}, {cost(r[k]['nats_cpu_ms_per_msg'])}, {ms(r[k]['ack_p50_ms'])} / "
                 f"{ms(r[k]['ack_p99_ms'])} ms" if k in r else "-" for k in ("50%", "80%")]
        tops = [p for run in shard["runs"] if (run["shards"], run["replicas"]) == (r["shards"], r["replicas"])
                for p in run["phases"] if p["phase"] == "max"]
        sub = statistics.median(p["cpu"]["per_process"].get("subscriber") or 0 for p in tops)
        others = statistics.median(p["cpu"]["other_processes"] or 0 for p in tops)
        rows.append(f"| {r['shards']} | R{r['replicas']} | {n(top['publish_rate'])} | "
                    f"{cost(top['nats_cpu_ms_per_msg'])} | {cells[0]} | {cells[1]} | "
                    f"{top['nats_cpu_pct']:.0f} / {top['generators_cpu_pct']:.0f} / {sub:.0f} / {others:.0f} | "
                    f"{top['busiest']} |")
    prow = ["| heartbeat entries/s offered | presence worker CPU ms/entry | % of a core | nats-server CPU ms/entry |",
            "|---|---|---|---|", *[f"| {n(r['rate'])} | {r['presence_cpu_ms_per_entry']:.4f} | "
                                   f"{r['presence_cpu_pct']:.0f}% | {r['nats_cpu_ms_per_entry']:.4f} |"
                                   for r in pres["summary"]]]
    return "\n".join([
        f"Shard run of {shard['date'][:10]} (`loadtest/results/scale.jsonl`; commit {commit(shard)}): "
        f"{machine(shard)}. Medians of {a['reps']} repetitions; {a['generators']} publisher processes x "
        f"{a['inflight']} sends in flight, {a['conversations']:,} conversations, {a['body_bytes']}-byte payloads, "
        f"{a['seconds']:g} s windows. {note(shard)}", "", *rows, "",
        f"Presence run of {pres['date'][:10]} (commit {commit(pres)}; {pres['args']['users']:,} users online, "
        f"medians of {pres['args']['reps']}):", "", *prow, "", *push_rows()])


def push_rows() -> list[str]:
    try:
        rec = figures.last_record(RESULTS / "scale.jsonl", figures.is_push_run)
    except figures.NoFigures:
        return ["No pusher run recorded yet (`python -m parley.loadtest.push_cost`): the model assumes its costs."]
    a, s = rec["args"], rec["summary"]
    dm = statistics.median(r["dm"]["pusher_cpu_ms_per_message"] for r in rec["runs"])
    grp = statistics.median(r["group"]["pusher_cpu_ms_per_message"] for r in rec["runs"])
    return [f"Pusher run of {rec['date'][:10]} (commit {commit(rec)}; medians of {a['reps']}): {a['dms']} DMs to an "
            f"offline recipient cost the pusher **{dm:.2f} ms** of CPU each (one push), {a['group_messages']} "
            f"messages to a group of {a['recipients']} offline members **{grp:.1f} ms** each ({a['recipients']} "
            f"pushes): **{s['pusher_cpu_ms_per_push']:.2f} ms per push** and {besides(s['pusher_cpu_ms_per_message'])} "
            "per message besides (SQLite store, so its reads are inside the pusher process)."]


def besides(v: float) -> str:
    return f"{v:.2f} ms" if v >= 0 else f"≈ 0 ms (the difference came out at {v:.2f} ms: noise; the model takes 0)"


def plan_rows(lines: list[model.Line]) -> list[str]:
    return ["| component | count at the peak | bound by |", "|---|---|---|", *[
        f"| {x.component} | **{x.count:,}**"
        + (f" (≈ {math.ceil(x.count / VCPUS_PER_MACHINE)} machines of {VCPUS_PER_MACHINE} vCPUs)"
           if x.component.startswith("edge") else "") + f" | {x.driver} |" for x in lines]]


def capacity_table() -> str:
    """The README's short form: the counts and where they come from."""
    m = measured_figures()
    return "\n".join([f"{MODEL.dau:,} DAU, {MODEL.messages_per_s_peak():,.0f} msg/s at the peak (measured figures: "
                      f"{m.source}):", "", *plan_rows(model.plan(MODEL, m, model.Deployment()))])


def capacity_plan() -> str:
    m = measured_figures()
    lines = model.plan(MODEL, m, model.Deployment())
    arithmetic_lines = [f"{x.component}:\n  " + x.arithmetic.replace("\n", "\n  ") for x in lines]
    return "\n".join([f"Measured figures: {m.source}.", "", *plan_rows(lines), "", "```", *arithmetic_lines,
                      "```"])


# ---- README.md -----------------------------------------------------------------------------------


def bench_row(rec: dict[str, Any]) -> str:
    r = rec["results"]
    m, b, mt = r["parley"], r["baseline"], r["max_throughput"]
    best = mt["best_sustained_delivered_rate"]
    at = f"{n(best)} msg/s (offered {n(mt['at_offered_rate'])})" if best else "none"
    return (f"| {rec['date'][:10]} | {commit(rec)} | {rec['args']['pairs']} | {n(m['offered_rate'])} msg/s | "
            f"{n(m['delivered_rate'])} msg/s | {ms(m['e2e']['p50_ms'])} / {ms(m['e2e']['p99_ms'])} ms | "
            f"{ms(b['e2e']['p50_ms'])} / {ms(b['e2e']['p99_ms'])} ms | {m['lost']} | "
            f"{'not measured' if mt.get('skipped') or not rec['args'].get('steps') else at} |")


def bench_runs() -> str:
    recs = records("bench.jsonl")[-README_RUNS:][::-1]
    newest = recs[0]["results"]["parley"]["cpu"] if recs else {}
    busiest = newest.get("busiest_server")
    return "\n".join([
        "| date | commit | pairs | offered (main run) | delivered | e2e p50 / p99 | raw NATS p50 / p99 | lost | "
        "highest sustained |", "|---|---|---|---|---|---|---|---|---|", *[bench_row(r) for r in recs], "",
        f"Newest run: {machine(recs[0])}; busiest server process in its main run: {busiest} at "
        f"{newest['per_process'].get(busiest)}% of a core ({newest.get('verdict')})." if recs else ""])


def efficiency() -> str:
    """make bench-efficiency's newest run: Parley beside the bare baseline, with ratios (and the durable floor)."""
    return "\n".join(efficiency_report.region(records("efficiency.jsonl")))


REGIONS: dict[str, Callable[[], str]] = {
    "traffic-arithmetic": traffic_arithmetic,
    "scenarios": scenarios,
    "measured": measured,
    "locust-runs": locust_runs,
    "capacity-plan": capacity_plan,
    "scale-runs": scale_runs,
    "capacity-table": capacity_table,
    "bench-runs": bench_runs,
    "efficiency": efficiency,
    "live-runs": lambda: live_report.runs_text(records("live.jsonl")),
    "live-plan": lambda: live_report.plan_text(records("live.jsonl")),
    "live-figures": lambda: live_report.readme_text(records("live.jsonl")),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.docs", description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a region is stale")
    args = p.parse_args(argv)
    stale = []
    for name in FILES:
        path = ROOT / name
        if not path.exists():
            print(f"{path} not found: the docs live in a source checkout", file=sys.stderr)
            return 2
        text = path.read_text()
        new = render(text, REGIONS)
        if new != text:
            stale.append(name)
            if not args.check:
                path.write_text(new)
    verb = "stale" if args.check else "rewritten"
    print(f"{verb}: {', '.join(stale)}" if stale else "docs: every generated region is up to date")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
