"""Benchmark: how long sends stall when the server leading the message stream is killed (kill -9).

A scratch Parley cluster on a 3-server JetStream cluster (R3 stream and buckets), ``--pairs`` DM pairs
sending one message at a time and resending on ``bus_unavailable`` (``harness.chatter``). Then, ``--kills``
times: find the stream's leader, SIGKILL it, wait until every sender is acknowledged again, measure the
stall (the longest time around the kill with no ack from any sender) and when sends resumed, start the
killed server again and wait until it is a current replica. Then ``--planned`` times the planned way
(the leader steps down, its server stops in lame-duck mode and starts again), for comparison. At the
end: every acked message reached its receiver, once. Prints the stalls and appends a record to
``loadtest/results/leader_kill.jsonl``.

    .venv/bin/python -m parley.loadtest.leader_kill [--kills 3] [--pairs 4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from typing import Any

import aiohttp
import nats
import nats.aio.client
from parley.loadtest.harness import accounts, record
from parley.loadtest.harness.chatter import Chatter, stall_around
from parley.loadtest.harness.session import (
    BenchError,
    guarded,
    run_async,
    say,
    scratch_cluster,
    stop_on_signals,
    within,
)
from parley.tools.client import Api, Device
from parley.tools.cluster import Cluster

from parley.bus.connection import connect_options
from parley.shards import stream_of

RESUMED_ACKS = 10  # acks each sender gets after a kill before the next step


async def stream_state(cluster: Cluster) -> tuple[str | None, dict[str, bool]]:
    """The stream's leader and, per other replica, whether it is current."""
    nc = await connect(cluster)
    try:
        info = await nc.jetstream().stream_info(stream_of(cluster.settings.stream_name, 0))
    finally:
        await nc.close()
    assert info.cluster is not None
    return info.cluster.leader, {p.name: bool(p.current and not p.offline) for p in info.cluster.replicas or []}


async def _quiet(err: Exception) -> None:
    pass  # a member is down on purpose: nats-py's default error callback would print its traceback


async def connect(cluster: Cluster) -> nats.aio.client.Client:
    return await nats.connect(**connect_options(cluster.settings), max_reconnect_attempts=2, error_cb=_quiet)


async def until(check: Any, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await check():
                return
        except (nats.errors.Error, OSError):
            pass
        await asyncio.sleep(0.1)
    raise BenchError(f"{what}: not within {timeout:.0f}s")


async def pairs(cluster: Cluster, http: aiohttp.ClientSession, count: int) -> list[Chatter]:
    api = Api(cluster.api_url, http)
    users = await accounts.sign_up(api, accounts.names("lk", 2 * count), concurrency=4)
    couples = [(users[2 * i], users[2 * i + 1]) for i in range(count)]
    await accounts.befriend(api, couples, concurrency=4)
    out = []
    for i, (a, b) in enumerate(couples):
        conv = await accounts.open_dm(api, a, b)
        sender = Device(http, cluster.node_url(i % 2), a.token)
        receiver = Device(http, cluster.node_url((i + 1) % 2), b.token)
        for dev in (sender, receiver):
            await dev.connect()
            await dev.synced.wait()
        out.append(Chatter(sender, receiver, conv))
    return out


async def one_kill(cluster: Cluster, everyone: list[Chatter], timeout: float) -> dict[str, Any]:
    servers = cluster.nats_servers
    assert servers is not None
    leader, _ = await stream_state(cluster)
    assert leader is not None
    killed_at = time.monotonic()
    servers.kill(leader)

    async def resumed() -> bool:
        return all(c.acked_after(killed_at) >= RESUMED_ACKS for c in everyone)

    await until(resumed, "sends resumed after the kill", timeout)
    stall, resumed_after = stall_around([t for c in everyone for t, _, _ in c.acked], killed_at)
    new_leader, _ = await stream_state(cluster)
    began = time.monotonic()
    servers.start_member(leader)

    async def rejoined() -> bool:
        now_leader, peers = await stream_state(cluster)
        return now_leader == leader or peers.get(leader, False)

    await until(rejoined, f"{leader} current again", timeout)
    out = {"killed": leader, "new_leader": new_leader, "stall_s": round(stall, 3),
           "resumed_after_s": round(resumed_after, 3), "rejoined_s": round(time.monotonic() - began, 2)}
    say(f"  killed {leader}: stall {stall:.2f}s, sends resumed {resumed_after:.2f}s after the kill, "
        f"new leader {new_leader}; {leader} current again after {out['rejoined_s']}s")
    return out


async def one_planned(cluster: Cluster, everyone: list[Chatter], timeout: float) -> dict[str, Any]:
    """The planned way: the leader steps down, its server stops in lame-duck mode and starts again."""
    servers = cluster.nats_servers
    assert servers is not None
    leader, _ = await stream_state(cluster)
    assert leader is not None
    began = time.monotonic()
    nc = await connect(cluster)
    try:
        handed = await servers.planned_restart(leader, nc)
    finally:
        await nc.close()
    await until(lambda: _resumed(everyone, began), "sends resumed after the planned restart", timeout)
    stall, _ = stall_around([t for c in everyone for t, _, _ in c.acked], began)
    out = {"restarted": leader, "handed_over": handed, "stall_s": round(stall, 3),
           "took_s": round(time.monotonic() - began, 1)}
    say(f"  planned restart of {leader} (step-down of {', '.join(handed)}, lame duck): longest stall "
        f"{stall:.2f}s, {out['took_s']}s in all")
    return out


async def _resumed(everyone: list[Chatter], at: float) -> bool:
    return all(c.acked_after(at) >= RESUMED_ACKS for c in everyone)


async def run(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        everyone = await pairs(cluster, http, args.pairs)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(c.run(stop)) for c in everyone]
        kills: list[dict[str, Any]] = []
        planned: list[dict[str, Any]] = []
        try:
            for _ in range(args.kills):
                await asyncio.sleep(args.between)
                kills.append(await one_kill(cluster, everyone, args.step_timeout))
            for _ in range(args.planned):
                await asyncio.sleep(args.between)
                planned.append(await one_planned(cluster, everyone, args.step_timeout))
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        for t in tasks:
            t.result()
        return await verdict(everyone, kills, planned)


async def verdict(everyone: list[Chatter], kills: list[dict[str, Any]],
                  planned: list[dict[str, Any]]) -> dict[str, Any]:
    lost = shown_twice = 0
    for c in everyone:
        ids = {id for _, id, _ in c.acked}
        try:
            await c.receiver.wait_for(lambda c=c, ids=ids: ids <= set(c.receiver.messages), timeout=60)
        except (TimeoutError, ConnectionError):
            pass
        lost += len(ids - set(c.receiver.messages))
        bodies = Counter(m["body"] for m in c.receiver.messages.values() if m["conv"] == c.conv)
        shown_twice += sum(n - 1 for n in bodies.values()) + c.receiver.duplicates
        await c.sender.close()
        await c.receiver.close()
    stalls = [k["stall_s"] for k in kills]
    refusals = sum((c.refusals for c in everyone), Counter())
    planned_stalls = [p["stall_s"] for p in planned]
    return {"kills": kills, "stall_median_s": round(statistics.median(stalls), 3), "stall_max_s": max(stalls),
            "planned": planned,
            "planned_stall_median_s": round(statistics.median(planned_stalls), 3) if planned_stalls else None,
            "acked": sum(len(c.acked) for c in everyone), "lost": lost, "shown_twice": shown_twice,
            "refusals": dict(refusals)}


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, record.Recorder]:
    p = argparse.ArgumentParser(prog="leader_kill", description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=within(1, 20, int), default=3, help="leader kills (default 3)")
    p.add_argument("--planned", type=within(0, 20, int), default=1,
                   help="planned restarts of the leader's server after the kills: step-down + lame duck (default 1)")
    p.add_argument("--pairs", type=within(1, 200, int), default=4, help="DM pairs sending (default 4)")
    p.add_argument("--between", type=within(0.5, 60), default=3.0, help="traffic before each kill, s (default 3)")
    p.add_argument("--step-timeout", type=within(10, 600), default=120.0, help="per kill at most, s (default 120)")
    p.add_argument("--keep-run-dir", action="store_true", help="keep the cluster's data and logs")
    record.add_options(p, "leader_kill.jsonl")
    args = p.parse_args(argv)
    return args, record.recorder(p, args)


def main(argv: list[str] | None = None) -> int:
    args, recorder = parse_args(argv)
    stop_on_signals()
    started = time.monotonic()
    rec = recorder.new_record(args)

    def work() -> dict[str, Any]:
        # one shard: every pair's conversation lives in the stream whose leader is killed
        with scratch_cluster(rec, "parley-leader-kill-", args.keep_run_dir, nats_servers=3,
                             log_level="INFO", shards=1) as cluster:
            return run_async(run(args, cluster))

    results = guarded("leader_kill", work)
    if results is None:
        return 1
    rec["results"] = results
    rec["duration_s"] = round(time.monotonic() - started, 1)
    note = recorder.append(rec)
    say(f"leader kill x{len(results['kills'])}, R3 on 3 servers, {args.pairs} DM pairs: stall median "
        f"{results['stall_median_s']}s (max {results['stall_max_s']}s); planned restart (step-down, lame duck) "
        f"stall median {results['planned_stall_median_s']}s; {results['acked']} acked, "
        f"{results['lost']} lost, {results['shown_twice']} shown twice; refusals {results['refusals']}")
    say(f"{note}; took {rec['duration_s']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
