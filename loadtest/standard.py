"""``make bench``: the standard benchmark set, one results line an SRE can keep and compare.

    .venv/bin/python -m parley.loadtest.standard                 # about 3-4 minutes on 2 cores
    .venv/bin/python -m parley.loadtest.standard --no-foundation --idle 500

1. The raw generator (``loadtest.raw``) on a cluster of its own: the highest sustained delivered msg/s
   and each message's CPU cost per process (so delivered msg/s per node core), end-to-end p50/p99 at
   50% and 80% of that maximum, idle connections on one node with RSS per connection, CPU per
   heartbeat, reconnects/s.
2. The Foundation benchmark (``loadtest.bench``, its own cluster and a raw-NATS baseline), shortened,
   in the same run, so the two generators' maxima sit side by side (it appends to bench.jsonl too).
3. Appends one JSON line (machine, git, versions, args, both results, the comparison, the bottleneck)
   to ``loadtest/results/capacity.jsonl`` (``--out``) and prints the capacity model computed from it.

Everything runs on 127.0.0.1, bounded in users and time. No timing is asserted anywhere: a run that
fails to measure prints why and appends nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from parley.loadtest import bench, model, raw
from parley.loadtest.harness import record
from parley.loadtest.harness.session import guarded, run_async, say, scratch_cluster, stop_on_signals


def run_raw(args: argparse.Namespace, rec: dict[str, Any]) -> dict[str, Any]:
    with scratch_cluster(rec, "parley-raw-", keep=False, **raw.CLUSTER) as cluster:
        return run_async(raw.measure(cluster, args.pairs, args.rates, args.step_seconds, args.idle,
                                     args.ping_rate, args.concurrency))


def run_foundation(args: argparse.Namespace) -> dict[str, Any]:
    """The Foundation benchmark, shortened, recording to --foundation-out under the same rules as this run."""
    argv = ["--seconds", "4", "--warmup", "1", "--rate", "1000", "--steps", args.foundation_steps, "--refine", "1"]
    argv += ["--out", args.foundation_out] if args.foundation_out else ["--record"] if args.record else []
    argv += ["--no-save"] if args.no_save else ["--allow-dirty"] if args.allow_dirty else []
    done = bench.measure(*bench.parse_args(argv))
    if done is None:
        return {"error": "loadtest.bench failed (see above)"}
    rec, _ = done
    r = rec["results"]
    best = r["max_throughput"]
    return {"date": rec["date"], "args": rec["args"], "best_sustained_delivered_rate":
            best["best_sustained_delivered_rate"], "at_offered_rate": best["at_offered_rate"],
            "main_run": {"offered_rate": r["parley"]["offered_rate"], "delivered_rate": r["parley"]["delivered_rate"],
                         "e2e": r["parley"]["e2e"], "busiest": r["parley"]["cpu"]["busiest_overall"],
                         "cpu_ms_per_delivered_msg": r["parley"]["cpu_ms_per_delivered_msg"]},
            "raw_nats_baseline_e2e": r["baseline"].get("e2e"), "ratios": r["ratios"]}


def compare(rawr: dict[str, Any], foundation: dict[str, Any]) -> dict[str, Any]:
    a = rawr["throughput"].get("max_sustained_delivered_rate")
    b = foundation.get("best_sustained_delivered_rate")
    at_max = rawr["throughput"].get("at_max") or {}
    return {"raw_max_delivered_rate": a, "foundation_max_delivered_rate": b,
            "raw_over_foundation": round(a / b, 2) if a and b else None,
            "bottleneck": bottleneck(at_max)}


def bottleneck(at_max: dict[str, Any]) -> str:
    cpu = at_max.get("cpu") or {}
    if not cpu:
        return "unknown (no sustained step)"
    busiest = max(cpu, key=lambda k: cpu[k] or 0)
    return f"{busiest} ({cpu[busiest]}% of a core) at the maximum; {at_max.get('verdict', '')}"


def summary_lines(rec: dict[str, Any]) -> list[str]:
    r = rec["results"]
    t, idle, rc = r["raw"]["throughput"], r["raw"]["idle"], r["raw"]["reconnects"]
    at_max = t.get("at_max") or {}
    mach = rec["machine"]
    lines = [
        f"machine: {mach['cpu_count']} x {mach['cpu_model']}, load {mach['loadavg_at_start']}",
        f"max sustained delivered (raw generator): {t.get('max_sustained_delivered_rate')} msg/s; "
        f"Foundation benchmark: {r['foundation'].get('best_sustained_delivered_rate')} msg/s",
        f"node CPU per message: send {at_max.get('node_cpu_ms_per_send')} ms + delivery "
        f"{at_max.get('node_cpu_ms_per_delivery')} ms -> {at_max.get('delivered_msgs_per_node_core')} delivered msg/s "
        "per node core",
    ]
    for k in ("at_50pct", "at_80pct"):
        if k in t:
            lines.append(f"e2e at {k[3:5]}% ({t[k]['rate']} msg/s): p50 {t[k]['e2e']['p50_ms']} ms, "
                         f"p99 {t[k]['e2e']['p99_ms']} ms")
    return lines + [
        f"idle: {idle['connections']} connections on one node, {idle['rss_per_connection_kb']} KiB RSS each "
        f"(node {idle['rss_before_mb']} -> {idle['rss_after_mb']} MiB); ping {idle['heartbeats']['cpu_ms_per_ping']} "
        "ms CPU",
        f"reconnects: {rc['reconnects_per_s']}/s ({rc['concurrency']} at a time), node CPU "
        f"{rc['cpu_ms_per_reconnect']['node1']} ms each; busiest {rc['busiest']}",
        f"bottleneck: {r['comparison']['bottleneck']}",
    ]


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, record.Recorder]:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.standard", description=__doc__.split("\n")[0])
    p.add_argument("--pairs", type=int, default=20)
    p.add_argument("--rates", default="1000,2000,3000,4000,5000,6000,8000", help="offered msg/s steps")
    p.add_argument("--step-seconds", type=float, default=4.0)
    p.add_argument("--idle", type=int, default=1000, help="idle connections opened on one node")
    p.add_argument("--ping-rate", type=float, default=1000.0)
    p.add_argument("--concurrency", type=int, default=32, help="reconnects in flight")
    p.add_argument("--no-foundation", action="store_true", help="skip the Foundation benchmark")
    p.add_argument("--foundation-steps", default="2000,3000")
    p.add_argument("--foundation-out", default="",
                   help="where the Foundation run is recorded (default: bench.jsonl beside this run's line)")
    record.add_options(p, "capacity.jsonl")
    a = p.parse_args(argv)
    a.rates = [float(x) for x in a.rates.split(",") if x.strip()]
    if not 1 <= a.pairs <= 500 or not 10 <= a.idle <= 20_000 or not 0 < a.step_seconds <= 30 or not a.rates:
        p.error("--pairs 1..500, --idle 10..20000, --step-seconds up to 30, --rates not empty")
    return a, record.recorder(p, a)


def main(argv: list[str] | None = None) -> int:
    args, recorder = parse_args(argv)
    stop_on_signals()
    t0 = time.monotonic()
    rec = recorder.new_record(args)
    say("raw generator: throughput steps, latency at 50%/80%, idle connections, reconnects ...")
    rawr = guarded("standard", lambda: run_raw(args, rec))
    if rawr is None:
        return 1
    foundation: dict[str, Any] = {"skipped": True}
    if not args.no_foundation:
        say("Foundation benchmark (loadtest.bench, shortened) ...")
        foundation = run_foundation(args)
    rec["results"] = {"raw": rawr, "foundation": foundation, "comparison": compare(rawr, foundation)}
    rec["duration_s"] = round(time.monotonic() - t0, 1)
    if rawr["throughput"].get("at_max") is None:
        say("no sustained step: nothing appended", err=True)
        say(json.dumps(rawr["throughput"]["steps"][:1])[:2000], err=True)
        return 1
    say("\n".join(summary_lines(rec)))
    say(recorder.append(rec) + "\n")
    if recorder.out is None:
        return 0
    return model.main(["--results", str(recorder.out)])


if __name__ == "__main__":
    sys.exit(main())
