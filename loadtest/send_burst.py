"""One connection's send burst: how fast one device's sends are acked, and whether pings wait for them.

    .venv/bin/python -m parley.loadtest.send_burst --messages 2000 --convs 8 --rounds 3

A scratch cluster of one node with the rate limit off (``raw.CLUSTER``); one user with ``--convs`` DMs
(the peers stay offline: the node's work is the sender's publishes, acks and own echoes). Each round
writes ``--messages`` send frames round-robin over the DMs as fast as the socket takes them (or, with
``--window W``, keeping at most W unanswered), with a ping after every ``--ping-every`` sends, and
waits for every ack. Printed per round and as the median of the rounds: msgs/s (first send → last
ack), ack latency p50/p99 (frame written → ack read), ping round trip p50/p99 during the burst, and
node and nats-server CPU ms per message over the same window.
Appends one record to ``loadtest/results/send_burst.jsonl`` (``--out``). To compare two commits side by
side, run this file with the other checkout's venv, alternating, with ``--out`` naming one file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import aiohttp
import orjson
from parley.loadtest import raw
from parley.loadtest.harness import accounts, record
from parley.loadtest.harness.latency import latency_summary
from parley.loadtest.harness.meter import CpuMeter, cpu_ms_per, cpu_share
from parley.loadtest.harness.session import run_async, say, scratch_cluster
from parley.tools.client import Api
from parley.tools.cluster import Cluster


async def connect(http: aiohttp.ClientSession, url: str, token: str) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(url, max_msg_size=0)
    await ws.send_str(orjson.dumps({"type": "hello", "v": 2, "token": token}).decode())
    while True:
        msg = await ws.receive(timeout=30)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"closed during hello: {ws.close_code}")
        if orjson.loads(msg.data)["type"] == "synced":
            return ws


async def one_round(ws: aiohttp.ClientWebSocketResponse, convs: list[str], n: int, ping_every: int,
                    meter: CpuMeter, tag: str, window: int = 0) -> dict[str, Any]:
    written: dict[str, int] = {}
    acked: dict[str, int] = {}
    pinged: dict[int, int] = {}
    ponged: dict[int, int] = {}
    errors: list[dict[str, Any]] = []
    done = asyncio.Event()
    room = asyncio.Semaphore(window or n)  # sends written and not yet answered

    async def read() -> None:
        async for msg in ws:
            f = orjson.loads(msg.data)
            kind = f["type"]
            if kind == "ack":
                acked[f["cid"]] = time.perf_counter_ns()
                room.release()
            elif kind == "pong":
                ponged[f["ts"]] = time.perf_counter_ns()
            elif kind == "error":
                errors.append(f)
                room.release()
            if len(acked) + len(errors) >= n and len(ponged) >= len(pinged):
                done.set()
                return

    reader = asyncio.get_running_loop().create_task(read())
    before = meter.snapshot()
    for i in range(n):
        cid = f"{tag}-{i}"
        await room.acquire()
        written[cid] = time.perf_counter_ns()
        await ws.send_str(orjson.dumps({"type": "send", "cid": cid, "conv": convs[i % len(convs)], "body": cid})
                          .decode())
        if i % ping_every == ping_every - 1:
            pinged[i] = time.perf_counter_ns()
            await ws.send_str(orjson.dumps({"type": "ping", "ts": i}).decode())
    await asyncio.wait_for(done.wait(), 300)
    after = meter.snapshot()
    await reader
    cpu = cpu_share(before, after)
    span_s = (max(acked.values()) - min(written.values())) / 1e9
    return {
        "msgs_per_s": round(len(acked) / span_s, 1),
        "ack": latency_summary([acked[c] - written[c] for c in acked]),
        "ping": latency_summary([ponged[i] - pinged[i] for i in ponged]),
        "pongs_after_the_last_ack": sum(1 for t in ponged.values() if t > max(acked.values())),
        "errors": len(errors),
        "cpu_ms_per_msg": cpu_ms_per(cpu, len(acked), ("node1", "nats-server")),
    }


async def measure(cluster: Cluster, n: int, k: int, rounds: int, ping_every: int, window: int) -> dict[str, Any]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        api = Api(cluster.api_url, http)
        people = await accounts.sign_up(api, accounts.names("burst", k + 1), 8)
        me, peers = people[0], people[1:]
        await accounts.befriend(api, [(me, p) for p in peers], 8)
        convs = [await accounts.open_dm(api, me, p) for p in peers]
        ws = await connect(http, cluster.node_url(0), me.token)
        pids = cluster.pids()
        meter = CpuMeter({name: pids[name] for name in ("node1", "nats-server")})
        await one_round(ws, convs, min(n, 200), ping_every, meter, "warm")
        out = []
        for r in range(rounds):
            res = await one_round(ws, convs, n, ping_every, meter, f"r{r}", window)
            say(f"  round {r}: {res['msgs_per_s']} msg/s, ack p50/p99 {res['ack']['p50_ms']}/{res['ack']['p99_ms']} ms,"
                f" ping p50/p99 {res['ping']['p50_ms']}/{res['ping']['p99_ms']} ms,"
                f" pongs after the last ack {res['pongs_after_the_last_ack']}, cpu ms/msg {res['cpu_ms_per_msg']}")
            out.append(res)
        await ws.close()
    def med(f: Any) -> float | None:
        vals = [v for v in (f(r) for r in out) if v is not None]
        return round(statistics.median(vals), 4) if vals else None

    return {"rounds": out, "median": {
        "msgs_per_s": med(lambda r: r["msgs_per_s"]),
        "ack_p50_ms": med(lambda r: r["ack"]["p50_ms"]), "ack_p99_ms": med(lambda r: r["ack"]["p99_ms"]),
        "ping_p50_ms": med(lambda r: r["ping"]["p50_ms"]), "ping_p99_ms": med(lambda r: r["ping"]["p99_ms"]),
        "node_cpu_ms_per_msg": med(lambda r: r["cpu_ms_per_msg"]["node1"]),
        "nats_cpu_ms_per_msg": med(lambda r: r["cpu_ms_per_msg"]["nats-server"]),
    }}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.send_burst", description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=2000)
    p.add_argument("--convs", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--ping-every", type=int, default=20)
    p.add_argument("--window", type=int, default=0, help="keep at most this many sends unanswered (0: all at once)")
    p.add_argument("--in-flight", type=int, default=None, help="PARLEY_SENDS_IN_FLIGHT (default: the node's)")
    p.add_argument("--label", default="")
    record.add_options(p, "send_burst.jsonl")
    args = p.parse_args()
    rec = record.recorder(p, args)
    out = rec.new_record(args)
    overrides: dict[str, object] = dict(raw.CLUSTER)
    if args.in_flight is not None:
        overrides["sends_in_flight"] = args.in_flight
    with scratch_cluster(out, "parley-burst-", keep=False, nodes=1, **overrides) as cluster:
        out.update(run_async(measure(cluster, args.messages, args.convs, args.rounds, args.ping_every,
                                     args.window)))
    say(json.dumps(out["median"]))
    say(rec.append(out))


if __name__ == "__main__":
    main()
