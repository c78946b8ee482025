"""One command for a Locust scenario: a cluster (started here, or yours), seeded users, Locust, a report.

    .venv/bin/python -m parley.loadtest.run smoke                    # local cluster on free loopback ports
    .venv/bin/python -m parley.loadtest.run steady --run-dir .parley   # the cluster `parley up` runs there
    .venv/bin/python -m parley.loadtest.run steady --api http://127.0.0.1:8080 --users 100 --run-time 60
    .venv/bin/python -m parley.loadtest.run reconnect-storm --disrupt drain
    .venv/bin/python -m parley.loadtest.run live-event                 # live rooms: a hot room, a score burst

Steps: start a scratch cluster (``parley.tools.cluster``: nats-server and every role on 127.0.0.1 free
ports, in the output dir; cheap Argon2) unless ``--api`` names one or ``--run-dir`` names the run dir of a
running ``parley up`` (its run.json gives the API's URL); seed the scenario's users (``loadtest.seed``,
named ``lt-<run id>-<n>``: the API has no account deletion, so against your own cluster they stay; the
prefix tells them apart); run Locust headless as its own process with ``loadtest/locustfile.py``; for the
reconnect storm, kill node1 (SIGKILL) or drain it (``parley node drain node1``) at half time, only
when the cluster is the one started here; read Locust's CSV and the users' summary; print a table and
append one JSON line to ``<run dir>/results/locust.jsonl``, or with ``--record`` to the tracked
``loadtest/results/locust.jsonl`` (``--results FILE`` elsewhere; refused from a dirty tree without
``--allow-dirty``; none outside a source checkout). The HTML report, CSVs, roster and logs stay in
``--out`` (default ``.parley/loadtest/<scenario>-<time>/`` in the checkout, else in the current directory).

``live-event`` (``loadtest/live_event.py``) runs ``loadtest/live_locustfile.py`` instead: after seeding, the
roster's first user makes the scenario's live rooms (``roster["live"]["rooms"]``, the hot one first).

Exit status 0 only when Locust reported no failure, no acknowledged message was lost, and messages
were delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from parley.loadtest import seed as seeding
from parley.loadtest.harness import record
from parley.loadtest.live_event import SCENARIOS as LIVE_SCENARIOS
from parley.loadtest.live_event import LiveEvent, live_scenario, make_rooms
from parley.loadtest.traffic import MODEL, Scenario, scenario
from parley.tools.client import Api
from parley.tools.cluster import Cluster
from parley.tools.locate import locate

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
LIVE_LOCUSTFILE = Path(__file__).resolve().parent / "live_locustfile.py"
AnyScenario = Scenario | LiveEvent


def disrupt(cluster: Cluster, how: str) -> dict[str, Any]:
    """Kill node1 (SIGKILL) or drain it (``parley node drain``, as an operator would)."""
    t0 = time.monotonic()
    if how == "kill":
        cluster.kill("node1")
        return {"action": "kill node1 (SIGKILL)", "took_s": round(time.monotonic() - t0, 2)}
    env = {**os.environ, **cluster.settings.as_env()}
    out = subprocess.run([sys.executable, "-m", "parley", "node", "drain", "node1"], env=env,
                         capture_output=True, text=True, timeout=120)
    return {"action": "parley node drain node1", "exit": out.returncode, "output": out.stdout.strip()[-500:],
            "took_s": round(time.monotonic() - t0, 2)}


def locust_command(args: argparse.Namespace, sc: AnyScenario, out: Path, roster: Path) -> list[str]:
    live = isinstance(sc, LiveEvent)
    return [sys.executable, "-m", "locust", "-f", str(LIVE_LOCUSTFILE if live else LOCUSTFILE), "--headless",
            "--only-summary",
            "-u", str(sc.users), "-r", str(sc.spawn_rate), "-t", f"{sc.run_time_s}s", "--host", args.api,
            "--roster", str(roster), "--scenario", sc.name, "--loss-timeout", str(args.loss_timeout),
            "--summary-out", str(out / "summary.json"), "--csv", str(out / "locust"),
            "--html", str(out / "report.html"), "--logfile", str(out / "locust.log"), "--loglevel", "INFO"]


def read_summary(out: Path) -> dict[str, Any]:
    path = out / "summary.json"
    return dict(json.loads(path.read_text())) if path.exists() else {}


def run_locust(args: argparse.Namespace, sc: AnyScenario, out: Path, roster: Path,
               cluster: Cluster | None) -> tuple[int, dict[str, Any] | None, float]:
    cmd = locust_command(args, sc, out, roster)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    disruption: dict[str, Any] | None = None
    if getattr(sc, "disrupt", "") and cluster is not None:
        spawn_s = sc.users / sc.spawn_rate
        at = spawn_s + (sc.run_time_s - spawn_s) / 2
        result: dict[str, Any] = {}

        def later() -> None:
            time.sleep(at)
            if proc.poll() is None:
                result.update(disrupt(cluster, sc.disrupt), at_s=round(time.monotonic() - t0, 1))

        thread = threading.Thread(target=later, daemon=True)
        thread.start()
    try:
        output, _ = proc.communicate(timeout=sc.run_time_s + args.loss_timeout + 120)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
    (out / "locust.out").write_text(output)
    if getattr(sc, "disrupt", "") and cluster is not None:
        thread.join(timeout=150)
        disruption = result or {"action": f"{sc.disrupt} not done (Locust ended first)"}
    return proc.returncode, disruption, time.monotonic() - t0


def summarise(stats: list[dict[str, Any]], summary: dict[str, Any]) -> dict[str, Any]:
    failures = sum(r["failures"] for r in stats if r["name"] != "Aggregated")  # the total row is "Aggregated"
    delivered = sum(r["count"] for r in stats if r["name"].startswith("deliver"))
    lost = summary.get("ledger", {}).get("lost")
    return {"failures": failures, "deliveries": delivered, "lost": lost,
            "ok": failures == 0 and lost == 0 and delivered > 0}


def table(stats: list[dict[str, Any]]) -> list[str]:
    lines = [f"{'request':28} {'count':>7} {'fail':>5} {'per s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"]
    for r in stats:
        lines.append(f"{r['type'] + ' ' + r['name']:28.28} {r['count']:7d} {r['failures']:5d} {r['rps']:7.1f} "
                     f"{_cell(r['p50_ms'])} {_cell(r['p95_ms'])} {_cell(r['p99_ms'])}")
    return lines


def _cell(v: float | None) -> str:
    return f"{v:8.0f}" if v is not None else f"{'-':>8}"


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, record.Recorder]:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.run", description=__doc__.split("\n")[0])
    p.add_argument("scenario", help="smoke, steady, peak, reconnect-storm, presence-churn, live-event")
    p.add_argument("--api", default="", help="a running Parley API (default: start a local cluster here)")
    p.add_argument("--run-dir", default="", help="run against the cluster `parley up` runs from this run dir "
                                                 "(its run.json names the API; e.g. .parley)")
    p.add_argument("--users", type=int, default=0, help="clients (default: the scenario's)")
    p.add_argument("--run-time", type=int, default=0, help="seconds (default: the scenario's)")
    p.add_argument("--disrupt", choices=("kill", "drain", "none"), default="",
                   help="reconnect storm: kill or drain node1 at half time (local cluster only)")
    p.add_argument("--loss-timeout", type=float, default=10.0)
    p.add_argument("--out", default="", help="directory for the report, CSVs, roster and logs")
    record.add_options(p, "locust.jsonl", flag="--results")
    a = p.parse_args(argv)
    if a.users and not 1 <= a.users <= 5000 or a.run_time and not 1 <= a.run_time <= 3600:
        p.error("--users 1..5000, --run-time 1..3600")
    return a, record.recorder(p, a, flag="--results")


def main(argv: list[str] | None = None) -> int:
    args, recorder = parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.users:
        overrides["users"] = args.users
    if args.run_time:
        overrides["run_time_s"] = args.run_time
    if args.disrupt:
        overrides["disrupt"] = "" if args.disrupt == "none" else args.disrupt
    sc: AnyScenario = (live_scenario(args.scenario, **overrides) if args.scenario in LIVE_SCENARIOS
                       else scenario(args.scenario, **overrides))
    if args.run_dir and not args.api:
        where = locate(os.environ, args.run_dir)
        if not where.found:
            print(where.not_answering("api", "--api"), file=sys.stderr)
            return 1
        args.api = where.api
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = Path(args.out or (record.checkout() or Path.cwd()) / ".parley" / "loadtest" / f"{sc.name}-{stamp}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    cluster = None
    if not args.api:
        print(f"starting a local cluster in {out / 'cluster'} ...", flush=True)
        cluster = Cluster(out / "cluster", nodes=2, tie_to_parent=True)
        try:
            cluster.start()
        except BaseException:
            cluster.shutdown()
            raise
        args.api = cluster.api_url
    try:
        roster = out / "roster.json"
        data = asyncio.run(seeding.seed(args.api, max(sc.users, 2), cell=100,
                                        largest_group=getattr(sc, "group_size", 0), seed_value=1))
        if isinstance(sc, LiveEvent):
            data["live"] = {"rooms": asyncio.run(live_rooms(args.api, data, 1 + sc.small_rooms))}
        roster.write_text(json.dumps(data))
        print(f"seeded {len(data['users'])} users ({data['prefix']}-<n>), {len(data['groups'])} groups; running Locust "
              f"({sc.name}: {sc.users} users, {sc.run_time_s} s) ...", flush=True)
        code, disruption, took = run_locust(args, sc, out, roster, cluster)
    finally:
        if cluster is not None:
            cluster.shutdown()
    return report(args, recorder, sc, out, code, disruption, took, cluster is not None)


async def live_rooms(api_url: str, roster: dict[str, Any], count: int) -> list[str]:
    async with aiohttp.ClientSession() as http:
        return await make_rooms(Api(api_url, http), roster, count)


def report(args: argparse.Namespace, recorder: record.Recorder, sc: AnyScenario, out: Path, code: int,
           disruption: dict[str, Any] | None, took: float, local: bool) -> int:
    summary = read_summary(out)
    stats = summary.pop("stats", [])
    if not stats:
        print(f"Locust wrote no statistics (exit {code}); see {out / 'locust.out'} and {out / 'locust.log'}",
              file=sys.stderr)
        return 1
    verdict = summarise(stats, summary)
    print("\n".join(table(stats)))
    print(f"ledger: {json.dumps(summary.get('ledger', {}))}")
    print(f"counts: {json.dumps(summary.get('counts', {}))}")
    if disruption:
        print(f"disruption: {json.dumps(disruption)}")
    for f in summary.get("errors", [])[:10]:
        print(f"failure: {f['occurrences']} x {f['name']}: {f['error']}")
    print(f"{'OK' if verdict['ok'] else 'FAILED'}: {verdict['failures']} failures, {verdict['lost']} lost, "
          f"{verdict['deliveries']} deliveries; report {out / 'report.html'}")
    print(recorder.append(result_record(args, recorder, sc, stats, summary, verdict, disruption, code, took, local,
                                        out)))
    return 0 if verdict["ok"] and code == 0 else 1


def result_record(args: argparse.Namespace, recorder: record.Recorder, sc: AnyScenario, stats: list[dict[str, Any]],
                  summary: dict[str, Any], verdict: dict[str, Any], disruption: dict[str, Any] | None, code: int,
                  took: float, local: bool, out: Path) -> dict[str, Any]:
    model = ({"send_rate_per_client": sc.send_rate_per_client(MODEL), "messages_per_s": sc.messages_per_s(MODEL),
              "scale_factor": sc.scale_factor(MODEL)} if isinstance(sc, Scenario) else
             {"chatters": -(-sc.users // sc.chatter_every), "chat_rate": sc.chat_rate,
              "burst_rate": sc.chat_rate * sc.burst_factor})
    return {**recorder.new_record(args), "scenario": asdict(sc), "model": model,
            "target": "local cluster (started by the run)" if local else args.api,
            "verdict": verdict, "locust_exit": code, "stats": stats, "summary": summary, "disruption": disruption,
            "duration_s": round(took, 1), "artifacts": str(out)}


if __name__ == "__main__":
    sys.exit(main())

