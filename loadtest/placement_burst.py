"""A burst of logins: how evenly placement spreads them over the nodes.

    .venv/bin/python -m parley.loadtest.placement_burst --logins 200 --over-s 1 --rounds 3

A scratch cluster of ``--nodes`` edge nodes beating every ``--beat`` seconds (2 s, the production default:
the interval at which discovery learns the nodes' connection counts). Each round signs up ``--logins``
fresh users (sign-up places no one), waits until every node has beaten twice since, then logs them all
in open-loop, spread evenly over ``--over-s`` seconds, each device connecting (hello → welcome) to the
node its login was given and staying connected. With ``--preload N``, N devices are first connected to
node1 directly: a busy node beside idle ones (as beside a node that just started).
Printed per round: the node each login was placed on and the connections each node reports in the
registry once all are in (node1's share of the burst: its connections less the preloaded ones); a
round is ``even`` when every node's share of the burst is within 20% of ``logins / nodes``. Then every
device disconnects and the next round starts once the registry shows the nodes empty again.
Appends one record to ``loadtest/results/placement.jsonl`` (``--out``); compare commits by running this
file from each (a clean tree, as the harness requires).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from typing import Any

import aiohttp
from parley.loadtest.harness import accounts, record
from parley.loadtest.harness.session import BenchError, bounded, run_async, say, scratch_cluster, within
from parley.tools.client import Api, Device
from parley.tools.cluster import Cluster

EVEN_WITHIN = 0.20  # the bar: each node within 20% of an even share
WAIT_S = 60.0


async def registry(http: aiohttp.ClientSession, cluster: Cluster) -> list[dict[str, Any]]:
    async with http.get(f"{cluster.discovery_url}/v1/nodes") as r:
        return list((await r.json())["nodes"])


async def until(check: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        out = await check()
        if out:
            return out
        await asyncio.sleep(0.1)
    raise BenchError(f"timed out waiting for {what}")


async def beaten_since(http: aiohttp.ClientSession, cluster: Cluster, since: float) -> None:
    """Until every node's registry entry was written after ``since`` (discovery's estimates start afresh)."""
    async def fresh() -> bool:
        now = time.time()
        nodes = await registry(http, cluster)
        return len(nodes) == len(cluster.node_ports) and all(now - n["age_s"] > since for n in nodes)

    await until(fresh, "every node to beat")


async def settled(http: aiohttp.ClientSession, cluster: Cluster, total: int) -> dict[str, int]:
    """The connections each node reports once the registry counts ``total`` in all."""
    async def counts() -> dict[str, int] | None:
        nodes = await registry(http, cluster)
        out = {n["id"]: n["connections"] for n in nodes}
        return out if sum(out.values()) == total else None

    return dict(sorted((await until(counts, f"the registry to count {total} connections")).items()))


async def one_login(api: Api, http: aiohttp.ClientSession, name: str, at: float) -> tuple[str, Device, float]:
    await asyncio.sleep(max(0.0, at - time.monotonic()))  # the schedule: open-loop, not a wait for state
    login = await accounts.log_in(api, name)
    answered = time.monotonic()
    dev = Device(http, login["node"]["url"], login["token"])
    await dev.connect()
    return str(login["node"]["id"]), dev, answered


async def preloaded(http: aiohttp.ClientSession, cluster: Cluster, count: int) -> list[Device]:
    """``count`` devices connected to node1 directly (a busy node beside fresh ones), settled in the registry."""
    api = Api(cluster.api_url, http)
    people = await accounts.sign_up(api, accounts.names("busy", count), 8)

    async def one(token: str) -> Device:
        dev = Device(http, cluster.node_url(0), token)
        await dev.connect()
        return dev

    devices = await bounded([lambda t=p.token: one(t) for p in people], 8)
    await settled(http, cluster, count)
    return devices


async def burst(http: aiohttp.ClientSession, cluster: Cluster, logins: int, over_s: float,
                preload: int) -> dict[str, Any]:
    api = Api(cluster.api_url, http)
    busy = await preloaded(http, cluster, preload) if preload else []
    names = accounts.names("place", logins)
    await bounded([lambda n=n: api.signup(n, accounts.PASSWORD) for n in names], 8)
    for _ in range(2):  # two beats: the estimates start afresh and the setup's placements leave the share window
        await beaten_since(http, cluster, time.time())
    start = time.monotonic()
    results = await asyncio.gather(*(one_login(api, http, n, start + i * over_s / logins)
                                     for i, n in enumerate(names)))
    placed = dict(sorted(Counter(node for node, _, _ in results).items()))
    connections = await settled(http, cluster, logins + preload)
    for dev in [*busy, *(dev for _, dev, _ in results)]:
        await dev.close()
    await settled(http, cluster, 0)
    fair = logins / len(cluster.node_ports)
    counts = [connections.get(f"node{i + 1}", 0) - (preload if i == 0 else 0) for i in range(len(cluster.node_ports))]
    return {"placed": placed, "connections": connections, "preloaded_on_node1": preload,
            "logins_answered_within_s": round(max(t for _, _, t in results) - start, 3),
            "max_off_even": round(max(abs(c - fair) for c in counts) / fair, 3),
            "even": all(abs(c - fair) <= EVEN_WITHIN * fair for c in counts),
            "share_of_node1": round(counts[0] / logins, 3)}


async def measure(cluster: Cluster, logins: int, over_s: float, rounds: int, preload: int) -> dict[str, Any]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        out = []
        for r in range(rounds):
            res = await burst(http, cluster, logins, over_s, preload)
            say(f"  round {r}: placed {res['placed']}, connections {res['connections']}, off even by "
                f"{res['max_off_even']:.0%} (node1's share {res['share_of_node1']:.0%}), "
                f"logins answered within {res['logins_answered_within_s']} s")
            out.append(res)
    return {"rounds": out, "even_rounds": sum(r["even"] for r in out),
            "worst_off_even": max(r["max_off_even"] for r in out)}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.placement_burst",
                                description=__doc__.split("\n")[0])
    p.add_argument("--logins", type=within(2, 2000, int), default=200)
    p.add_argument("--over-s", type=within(0.01, 10), default=1.0, help="the logins start evenly over this long")
    p.add_argument("--nodes", type=within(2, 4, int), default=2)
    p.add_argument("--beat", type=within(0.1, 5), default=2.0, help="PARLEY_NODE_BEAT_S (ttl: 3 beats)")
    p.add_argument("--rounds", type=within(1, 10, int), default=3)
    p.add_argument("--preload", type=within(0, 5000, int), default=0,
                   help="connect this many devices to node1 first: how much of the burst the idle nodes take")
    p.add_argument("--label", default="")
    p.add_argument("--keep-run-dir", action="store_true")
    record.add_options(p, "placement.jsonl")
    args = p.parse_args()
    rec = record.recorder(p, args)
    out = rec.new_record(args)
    with scratch_cluster(out, "parley-placement-", keep=args.keep_run_dir, nodes=args.nodes,
                         node_beat_s=args.beat, node_ttl_s=3 * args.beat) as cluster:
        out.update(run_async(measure(cluster, args.logins, args.over_s, args.rounds, args.preload)))
    say(json.dumps({k: out[k] for k in ("even_rounds", "worst_off_even")}))
    say(rec.append(out))


if __name__ == "__main__":
    main()
