"""The Foundation benchmark's printed report (``loadtest.bench``), read from its record only: what the
table says is what ``bench.jsonl`` holds."""

from __future__ import annotations

from typing import Any

from parley.loadtest.harness.latency import ratio
from parley.loadtest.harness.session import fmt

W = 26  # label column


def sustained(r: dict[str, Any]) -> bool:
    p99 = r["e2e"]["p99_ms"]
    return (r["delivered_ratio"] or 0) >= 0.9 and p99 is not None and p99 <= 1000 and not r.get("lost")


def header(record: dict[str, Any]) -> list[str]:
    a, mi, git = record["args"], record["machine"], record["git"]
    outside = git["changed_outside_loadtest"]
    return ["", f"Parley benchmark — {a['pairs']} pairs, {a['rate']:g} msg/s offered, {a['seconds']:g}s measured "
                f"(+{a['warmup']:g}s warm-up), body {a['body_bytes']} B, senders on node1 → receivers on node2",
            f"machine: {mi['cpu_count']} × {mi['cpu_model']}, {mi['memory_gb']} GB, Python {mi['python']}, "
            f"load avg at start {mi['loadavg_at_start']}; git {str(git['commit'])[:10]}"
            + (f" + uncommitted changes to {len(outside)} files outside loadtest/" if outside else ""), ""]


def versus_baseline(m: dict[str, Any], b: dict[str, Any]) -> list[str]:
    lines = [f"{'':{W}} {'Parley':>12} {'NATS core':>12} {'ratio':>8}",
             f"{'sent msg/s':{W}} {fmt(m['sent_rate']):>12} {fmt(b['sent_rate']):>12}",
             f"{'acked (sent) msg/s':{W}} {fmt(m['acked_rate']):>12} {'-':>12}",
             f"{'delivered msg/s':{W}} {fmt(m['delivered_rate']):>12} {fmt(b['delivered_rate']):>12}"]
    for key, label in (("p50_ms", "e2e p50"), ("p90_ms", "e2e p90"), ("p99_ms", "e2e p99"), ("max_ms", "e2e max")):
        rt = ratio(m["e2e"][key], b["e2e"][key])
        lines.append(f"{label + ' (ms)':{W}} {fmt(m['e2e'][key]):>12} {fmt(b['e2e'][key]):>12} "
                     f"{(fmt(rt) + '×') if rt is not None else '-':>8}")
    ack = m["ack_latency"]
    lines += [f"{'ack latency p50/p99 (ms)':{W}} {fmt(ack['p50_ms']) + '/' + fmt(ack['p99_ms']):>12}",
              f"{'lost (acked, undelivered)':{W}} {m['lost']:>12} {b['undelivered']:>12}",
              f"{'unacked / errors':{W}} {str(m['unacked']) + ' / ' + str(sum(m['errors'].values())):>12}",
              f"{'skipped (in-flight cap)':{W}} {m['skipped_inflight_cap']:>12} {b['skipped_inflight_cap']:>12}",
              f"{'client send lag p99 (ms)':{W}} {fmt(m['client_send_lag']['p99_ms']):>12} "
              f"{fmt(b['client_send_lag']['p99_ms']):>12}"]
    if m["errors"]:
        lines.append(f"errors: {m['errors']}")
    if not sustained(m):
        lines += ["NOTE: the offered rate is above what this machine sustains (see the max-throughput pass below):",
                  "      the latencies above are mostly queueing delay, not Parley's latency at a sustainable load."]
    if m["client_limited"] or b["client_limited"]:
        lines.append("NOTE: the load generator did not reach the offered rate (client-bound)")
    return lines + [""]


def cpu(m: dict[str, Any], b: dict[str, Any]) -> list[str]:
    cp, cb = m["cpu"], b["cpu"]
    mp, bp = m.get("cpu_ms_per_delivered_msg", {}), b.get("cpu_ms_per_delivered_msg", {})
    lines = [f"CPU over the measured window: % of one core (machine capacity {cp.get('capacity')}%), and CPU ms per "
             "delivered message", f"{'process':{W}} {'Parley %':>12} {'ms/msg':>8} {'NATS core %':>12} {'ms/msg':>8}"]
    for name, v in cp.get("per_process", {}).items():
        lines.append(f"{name:{W}} {fmt(v):>12} {fmt(mp.get(name)):>8} "
                     f"{fmt(cb.get('per_process', {}).get(name)):>12} {fmt(bp.get(name)):>8}")
    busiest = cp.get("busiest_server")
    return lines + [
        f"{'cluster total':{W}} {fmt(cp.get('cluster_total')):>12} {fmt(mp.get('cluster_total')):>8} "
        f"{fmt(cb.get('cluster_total')):>12} {fmt(bp.get('cluster_total')):>8}",
        f"{'other processes (machine)':{W}} {fmt(cp.get('other_processes')):>12} {'':>8} "
        f"{fmt(cb.get('other_processes')):>12}",
        f"busiest server process (the bottleneck when overloaded): {busiest} at {fmt(cp['per_process'].get(busiest))}%"
        + (f"; the client itself is at {fmt(cp.get('client'))}%" if cp.get("busiest_overall") == "client" else "")
        + f"; {cp.get('verdict')}", ""]


def step_line(s: dict[str, Any]) -> str:
    c = s["cpu"]
    bn = c.get("busiest_server")
    top = f"{bn} {fmt(c['per_process'].get(bn))}%"
    run = "main" if s["name"] == "parley" else "step"
    return (f"{run:>5} {s['offered_rate']:>8g} {fmt(s['sent_rate']):>9} {fmt(s['acked_rate']):>9} "
            f"{fmt(s['delivered_rate']):>11} {fmt(s['e2e']['p50_ms']):>9} {fmt(s['e2e']['p99_ms']):>9} "
            f"{fmt(s['e2e']['p50_trend']):>6} {s['lost']:>5} {top:>20} "
            f"{fmt(c.get('client')):>8} {fmt(c.get('other_processes')):>8}  {'yes' if sustained(s) else 'no'}")


def max_throughput(r: dict[str, Any]) -> list[str]:
    mt = r["max_throughput"]
    if mt.get("skipped"):
        return ["max throughput: skipped (--steps '')", ""]
    best = mt["best_sustained_delivered_rate"]
    lines = ["max throughput (stepped offered rate)",
             f"{'run':>5} {'offered':>8} {'sent/s':>9} {'acked/s':>9} {'delivered/s':>11} {'p50 ms':>9} "
             f"{'p99 ms':>9} {'trend':>6} {'lost':>5} {'busiest server':>20} {'client%':>8} {'others%':>8}  sustained",
             *[step_line(s) for s in mt["steps"]],
             f"highest sustained delivered rate: {fmt(best)} msg/s"
             + (f" (offered {mt['at_offered_rate']:g})" if best else "")
             + ("" if mt["limit_reached"] else "  [every step was sustained: the limit is above the last one]"),
             f"peak delivered rate (sustained or not): {fmt(mt['peak_delivered_rate'])} msg/s; sustained = "
             "delivered >= 90% of offered, p99 <= 1 s, nothing lost",
             "trend = p50 of the window's last quarter over its first: well above 1 means a queue was still growing"]
    rb = r.get("ratios_at_best_sustained")
    if rb and not sustained(r["parley"]):
        lines.append(f"Parley/baseline at the highest sustained rate ({rb['offered_rate']:g} msg/s): p50 "
                     f"{fmt(rb['p50'])}×, p99 {fmt(rb['p99'])}×")
    return lines + [""]


def health(record: dict[str, Any]) -> list[str]:
    r = record["results"]
    h = r["client_health"]
    lines = [f"client: {h['deliveries_to_receivers']:,} deliveries, {h['echoes_to_senders']:,} echoes to senders, "
             f"{h.get('gaps', h.get('out_of_order'))} gaps, {h['duplicates']} duplicates, "
             f"{h.get('resent', 0)} resent, {h['disconnected']} disconnected; "
             f"setup {r['setup_s']}s"]
    logs = record.get("log_issues") or {}
    if not logs:
        return lines + ["cluster logs: no warnings or errors"]
    lines.append("warnings/errors in the cluster logs: " + ", ".join(f"{k} {v['counts']}" for k, v in logs.items()))
    return lines + [f"  {k}: {s}" for k, v in logs.items() for s in v["samples"][:3]]


def report(record: dict[str, Any]) -> str:
    r = record["results"]
    m, b = r["parley"], r["baseline"]
    return "\n".join(header(record) + versus_baseline(m, b) + cpu(m, b) + max_throughput(r) + health(record))
