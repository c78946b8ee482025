"""The groups and presence benchmark's printed report (``loadtest.groups_bench``), read from its record
only: what the tables say is what ``groups.jsonl`` holds."""

from __future__ import annotations

from typing import Any

from parley.loadtest.bench_report import sustained
from parley.loadtest.harness.session import fmt

PROCESS_ORDER = ["node1", "node2", "nats-server", "archiver", "api", "presence", "discovery", "client"]

def busiest(cpu: dict[str, Any]) -> str:
    name = cpu.get("busiest_overall")
    return f"{name} {fmt(cpu.get('per_process', {}).get(name))}%" if name else "-"


def message_table(series: dict[str, list[dict[str, Any]]]) -> list[str]:
    lines = [f"{'series':<12} {'offered':>7} {'sent/s':>7} {'fan-out':>7} {'delivered/s':>11} {'p50 ms':>8} "
             f"{'p99 ms':>8} {'lost':>9} {'err':>4} {'dups':>5} {'receipts/s':>10} {'closed':>6} {'busiest':>18}  "
             "sustained"]
    for name, steps in series.items():
        for r in steps:
            lost = f"{r['lost']}/{r['lost_deliveries']}"
            closed = sum(r["closed_before_step"].values())
            lines.append(f"{name:<12} {r['offered_rate']:>7g} {fmt(r['sent_rate']):>7} {fmt(r['fanout']):>7} "
                         f"{fmt(r['delivered_rate']):>11} {fmt(r['e2e']['p50_ms']):>8} {fmt(r['e2e']['p99_ms']):>8} "
                         f"{lost:>9} {r['unacked'] + sum(r['errors'].values()):>4} {r['duplicates']:>5} "
                         f"{fmt(r['receipts_per_s']):>10} {closed:>6} "
                         f"{busiest(r['cpu']):>18}  {'yes' if sustained(r) else 'no'}")
    lines.append("lost = messages/deliveries acked but missing at some member after the grace period; err = unacked "
                 "or refused sends; closed = devices the nodes closed during the previous step (reconnected)")
    return lines


def cpu_table(rows: list[tuple[str, dict[str, Any], dict[str, Any] | None]]) -> list[str]:
    names = PROCESS_ORDER
    lines = [f"{'step':<18} " + " ".join(f"{n[:9]:>9}" for n in names) + f" {'cluster':>8} {'machine':>8} "
             f"{'ms/dlv':>7} {'nodes':>6}"]
    for label, cpu, per_msg in rows:
        per = cpu.get("per_process", {})
        ms = fmt(per_msg.get("cluster_total")) if per_msg else "-"
        nodes = fmt(round(per_msg.get("node1", 0) + per_msg.get("node2", 0), 3)) if per_msg else "-"
        lines.append(f"{label:<18} " + " ".join(f"{fmt(per.get(n)):>9}" for n in names)
                     + f" {fmt(cpu.get('cluster_total')):>8} {fmt(cpu.get('machine_busy')):>8} {ms:>7} {nodes:>6}")
    return lines


def churn_table(steps: list[dict[str, Any]]) -> list[str]:
    lines = [f"{'target':>6} {'cycles/s':>8} {'conn p50/p99 ms':>16} {'err':>4} {'pres/s obs':>10} {'others':>7} "
             f"{'on/s':>5} {'off/s':>5} {'flapped':>10} {'long off':>9} {'online dly':>11} {'offline dly':>11}"]
    for r in steps:
        c, on, off = r["connect_latency"], r["online_delay_after_connect"], r["offline_delay_after_disconnect"]
        lines.append(
            f"{r['target_cycles_per_s']:>6g} {fmt(r['cycles_per_s']):>8} "
            f"{fmt(c['p50_ms']) + '/' + fmt(c['p99_ms']):>16} {r['connect_errors'] + r['skipped']:>4} "
            f"{fmt(r['presence_frames_per_s_observers']):>10} {fmt(r['presence_frames_per_s_others']):>7} "
            f"{fmt(r['announced_online_per_s']):>5} {fmt(r['announced_offline_per_s']):>5} "
            f"{str(r['flapped']) + '/' + str(r['reconnects_within_timeout']):>10} "
            f"{str(r['of_which_announced_offline']) + '/' + str(r['offline_longer_than_timeout_plus_1s']):>9} "
            f"{fmt(on['p50_ms']) + '/' + fmt(on['p99_ms']):>11} {fmt(off['p50_ms']):>11}")
    lines += ["cycles/s: completed (a cycle = one disconnect + one connect; connect = hello to synced); pres/s: "
              "presence frames/s at the observers and at other devices; on/s, off/s: transitions announced",
              "flapped: announced offline / reconnects within the timeout; long off: announced / offline periods "
              "longer than the timeout + 1 s; delays in ms (online: after the connect, offline: after the "
              "disconnect, p50)"]
    return lines


def comparison(series: dict[str, list[dict[str, Any]]]) -> list[str]:
    dm = {r["offered_rate"]: r for r in series.get("dm", [])}
    lines = []
    for name in ("group-noack", "group"):
        for r in series.get(name, []):
            d = dm.get(r["offered_rate"])
            g_ms = r["cpu_ms_per_delivered_msg"].get("cluster_total")
            d_ms = d["cpu_ms_per_delivered_msg"].get("cluster_total") if d else None
            if d is None or not d["delivered_rate"]:
                continue
            times = r["delivered_rate"] / d["delivered_rate"]
            lines.append(f"{name} vs dm at {r['offered_rate']:g} msg/s: delivered x{times:.0f}, cluster CPU "
                         f"{fmt(r['cpu']['cluster_total'])}% vs {fmt(d['cpu']['cluster_total'])}%, "
                         f"{fmt(g_ms)} vs {fmt(d_ms)} CPU ms per delivered message")
    return lines


def report(record: dict[str, Any]) -> str:
    r, a, m = record["results"], record["args"], record["machine"]
    lines = ["", f"Parley groups and presence benchmark — {a['users']} users, {a['groups']} groups of "
             f"{a['group_size']} (one device per user, alternating node1/node2), {a['step_seconds']:g}s steps, "
             f"body {a['body_bytes']} B, presence timeout {a['presence_timeout']:g}s, beats {a['presence_beat']:g}s",
             f"machine: {m['cpu_count']} x {m['cpu_model']}, {m['memory_gb']} GB, Python {m['python']}, load avg "
             f"at start {m['loadavg_at_start']}; git {str(record['git']['commit'])[:10]}"
             + (" (uncommitted changes)" if record["git"]["dirty"] else ""), "",
             "Messages: offered = messages/s over all senders; delivered = device-messages/s (sender's echo not "
             "counted)"]
    lines += message_table(r["messages"])
    lines += [""] + comparison(r["messages"])
    rows = [(s["name"], s["cpu"], s["cpu_ms_per_delivered_msg"]) for steps in r["messages"].values() for s in steps]
    churn = r.get("churn")
    if churn:
        rows += [(s["name"], s["cpu"], None) for s in churn["steps"]]
    lines += ["", "CPU % of one core per process over each measured window (capacity "
              f"{100 * (m['cpu_count'] or 1)}%); ms/dlv = cluster CPU ms per delivered device-message (nodes: node1 + "
              "node2 only; the rest includes the cluster's idle background)"]
    lines += cpu_table(rows)
    lines.append("bottleneck per step (client = this load generator):")
    lines += [f"  {label}: busiest {busiest(cpu)}, machine {fmt(cpu.get('machine_busy'))}% of {cpu.get('capacity')}%; "
              f"{cpu.get('verdict')}" for label, cpu, _ in rows]
    if churn:
        lines += ["", f"Presence churn: {churn['observers']} observers x {churn['friends_per_observer']} friends, "
                  f"half of the {a['users']} users online at a time"]
        lines += churn_table(churn["steps"])
    h = r["client_health"]
    lines += ["", f"client: {h['duplicates']} duplicates, {h.get('resent', 0)} resent after reconnects, "
              f"{h['echoes']:,} echoes to senders, {h['stale_deliveries']:,}"
              f" deliveries of an earlier step's messages, other errors {h['other_errors']}; setup {r['setup_s']}s",
              f"frames a node sent before welcome (the protocol puts welcome first): {h['frames_before_welcome']}"]
    logs = record.get("log_issues") or {}
    lines.append("warnings/errors in the cluster logs: " + (", ".join(f"{k} {v['counts']}" for k, v in logs.items())
                                                             or "none"))
    for k, v in logs.items():
        lines += [f"  {k}: {s}" for s in v["samples"][:3]]
    return "\n".join(lines)

