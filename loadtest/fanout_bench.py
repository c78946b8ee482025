"""One node's delivery path and per-connection cost: group fan-out CPU, idle memory and CPU, connects/s.

    .venv/bin/python -m parley.loadtest.fanout_bench [--groups 4] [--size 100] [--rate 40] [--seconds 10]
        [--idle 3000] [--idle-seconds 10] [--profile DIR] [--out FILE | --no-save] [--allow-dirty]

A scratch cluster with one node (``parley.tools.cluster``, per-user rate limit off, cheap Argon2); every
device on that node, so the node does all the delivering. Three measurements, in order, one run:

1. ``fanout``: ``--groups`` groups of ``--size`` members (owner included); the owners send round-robin at
   ``--rate`` messages/s in total (open loop) for ``--seconds``; devices do not ack. CPU ms per delivered
   device-message for node1 and nats-server over the sending window plus the drain until all arrived.
2. ``idle``: ``--idle`` more users connect (hello, auth, an empty sync), 64 at a time: connects/s, then RSS
   deltas of node1 and nats-server per connection, then node1's and nats-server's CPU over
   ``--idle-seconds`` with nothing happening (scaled to 10k connections).

Prints the figures and appends a record to ``loadtest/results/fanout.jsonl`` (``harness.record``: date,
machine, commit, versions, args; ``results.fanout`` / ``results.idle``). ``--profile DIR``: py-spy flame
graphs of node1 for the fan-out window, the connects and the idle window. Nothing asserts on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from parley.loadtest.harness import accounts, procfs, record
from parley.loadtest.harness.accounts import Account
from parley.loadtest.harness.device import LeanDevice, close_all
from parley.loadtest.harness.meter import CpuMeter, cpu_seconds_between
from parley.loadtest.harness.session import bounded
from parley.tools.client import Api
from parley.tools.cluster import Cluster

CLUSTER = dict(rate_per_s=1_000_000.0, rate_burst=1_000_000, max_connections=100_000,
               presence_beat_s=5.0, presence_timeout_s=30.0)  # production's beat, not the scratch cluster's 0.5 s
CONCURRENCY = 32
PAD = "x" * 60


def profile(cluster: Cluster, args: argparse.Namespace, name: str,
            seconds: float | None) -> subprocess.Popen[bytes] | None:
    """py-spy on node1 for ``seconds`` (``--profile DIR``), or until ``stop``: a flame graph per measurement."""
    if args.profile is None:
        return None
    args.profile.mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).parent / "py-spy")
    duration = ["--duration", str(int(seconds))] if seconds is not None else []
    return subprocess.Popen([spy, "record", "--pid", str(cluster.pids()["node1"]), *duration,
                             "--nonblocking", "-o", str(args.profile / f"{name}.svg")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its flame graph on Ctrl-C
        spy.wait()


async def groups(api: Api, users: list[Account], size: int) -> list[tuple[Account, str]]:
    out = []
    for g in range(len(users) // size):
        owner, members = users[g * size], users[g * size + 1:(g + 1) * size]
        await accounts.befriend(api, [(owner, m) for m in members], CONCURRENCY)
        made = await api.call("POST", "/v1/groups", owner.token, {"name": f"f{g}", "members": [m.id for m in members]})
        out.append((owner, str(made["conversation"]["id"])))
    return out


async def fanout(http: aiohttp.ClientSession, cluster: Cluster, meter: CpuMeter, api: Api,
                 args: argparse.Namespace) -> dict[str, Any]:
    users = await accounts.sign_up(api, accounts.names("fan", args.groups * args.size), CONCURRENCY)
    convs = await groups(api, users, args.size)
    url = cluster.node_url(0)
    devs = await bounded([partial(LeanDevice.connect, http, url, u.id, u.token) for u in users], CONCURRENCY)
    owners = {o.id for o, _ in convs}
    senders = [d for d in devs if d.user in owners]
    for i in range(20):  # warm up
        await senders[i % len(senders)].send_message(f"w{i}", convs[i % len(convs)][1], f"{time.perf_counter_ns()}")
    await asyncio.sleep(2)
    each = args.size - 1
    base = sum(d.total_delivered for d in devs)
    spy = profile(cluster, args, "fanout", args.seconds)
    before, t0, sent = meter.snapshot(), time.perf_counter(), 0
    while (now := time.perf_counter()) - t0 < args.seconds:
        for _ in range(max(int((now - t0) * args.rate) - sent, 0)):
            i = sent % len(senders)
            await senders[i].send_message(f"m{sent}", convs[i][1], f"{time.perf_counter_ns()} {PAD}")
            sent += 1
        await asyncio.sleep(0.005)
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline and sum(d.total_delivered for d in devs) - base < sent * each:
        await asyncio.sleep(0.02)
    after = meter.snapshot()
    delivered = sum(d.total_delivered for d in devs) - base
    cpu = cpu_seconds_between(before, after)
    if spy is not None:
        spy.wait()
    await close_all(devs)
    return {"sent": sent, "delivered": delivered, "expected": sent * each, "seconds": round(after.t - before.t, 2),
            "node_ms_per_delivery": round(1000 * cpu["node1"] / max(delivered, 1), 5),
            "nats_ms_per_delivery": round(1000 * cpu["nats-server"] / max(delivered, 1), 5),
            "node_cpu_pct": round(100 * cpu["node1"] / (after.t - before.t), 1)}


async def idle(http: aiohttp.ClientSession, cluster: Cluster, meter: CpuMeter, api: Api,
               args: argparse.Namespace) -> dict[str, Any]:
    users = await accounts.sign_up(api, accounts.names("idle", args.idle), CONCURRENCY)
    pids = cluster.pids()
    await asyncio.sleep(2)
    rss0 = {n: procfs.rss_bytes(pids[n]) or 0 for n in ("node1", "nats-server")}
    spy = profile(cluster, args, "connect", None)
    url, t0, at_start = cluster.node_url(0), time.perf_counter(), meter.snapshot()
    devs = await bounded([partial(LeanDevice.connect, http, url, u.id, u.token) for u in users], 64)
    took = time.perf_counter() - t0
    connecting = cpu_seconds_between(at_start, meter.snapshot())
    stop(spy)
    await asyncio.sleep(3)
    rss1 = {n: procfs.rss_bytes(pids[n]) or 0 for n in ("node1", "nats-server")}
    spy = profile(cluster, args, "idle", args.idle_seconds)
    before = meter.snapshot()
    await asyncio.sleep(args.idle_seconds)
    after = meter.snapshot()
    if spy is not None:
        spy.wait()
    cpu = cpu_seconds_between(before, after)
    scale = 10_000 / len(devs) * 100 / (after.t - before.t)
    await close_all(devs)
    return {"connections": len(devs), "connects_per_s": round(len(devs) / took, 1),
            "connect_cpu_ms": {k: round(1000 * v / len(devs), 3) for k, v in connecting.items()},
            "node_kb_per_conn": round((rss1["node1"] - rss0["node1"]) / len(devs) / 1024, 1),
            "nats_kb_per_conn": round((rss1["nats-server"] - rss0["nats-server"]) / len(devs) / 1024, 1),
            "node_idle_pct_per_10k": round(cpu["node1"] * scale, 2),
            "nats_idle_pct_per_10k": round(cpu["nats-server"] * scale, 2)}


async def run(cluster: Cluster, args: argparse.Namespace) -> dict[str, Any]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        api, meter = Api(cluster.api_url, http), CpuMeter(cluster.pids())
        out: dict[str, Any] = {}
        if args.rate > 0:
            out["fanout"] = await fanout(http, cluster, meter, api, args)
            print(orjson.dumps(out).decode(), flush=True)
        if args.idle > 0:
            out["idle"] = await idle(http, cluster, meter, api, args)
        return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--groups", type=int, default=4)
    p.add_argument("--size", type=int, default=100)
    p.add_argument("--rate", type=float, default=40.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--idle", type=int, default=3000)
    p.add_argument("--idle-seconds", type=float, default=10.0)
    p.add_argument("--profile", type=Path, default=None, help="write py-spy flame graphs of node1 here")
    record.add_options(p, "fanout.jsonl")
    args = p.parse_args(argv)
    rec = record.recorder(p, args)
    with tempfile.TemporaryDirectory(prefix="parley-fanout-") as tmp:
        cluster = Cluster(Path(tmp), nodes=1, tie_to_parent=True, **CLUSTER)
        try:
            cluster.start()
            out = asyncio.run(run(cluster, args))
        finally:
            cluster.shutdown()
    print(orjson.dumps(out).decode())
    print(rec.append(rec.new_record(args) | {"results": out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
