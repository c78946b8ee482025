"""A lean asyncio load generator for raw per-node capacity figures (Locust stays the SRE tool).

Locust's per-core limit (a few thousand WebSocket messages/s under gevent) would saturate before a
node does, so the figures the capacity model needs come from here: aiohttp WebSockets and orjson in
one asyncio process (``harness.device.LeanDevice``), no per-message bookkeeping beyond a counter and
a latency sample.

What ``measure`` does on a scratch cluster of its own (``CLUSTER``: per-user rate limit off, cheap
Argon2; ``loadtest.standard`` starts it), all bounded in count and time:

1. ``throughput``: ``pairs`` DM pairs, senders on node1, receivers on node2, an open-loop offered rate
   stepped up until a step is not sustained (delivered < 90% of sent, p99 > 1 s, or a loss); the
   highest sustained delivered rate is the maximum. CPU per process is sampled over each step, so
   each message's cost on the sending node (publish, SENT ack, the echo to the sender's device) and
   on the receiving node (one delivery) is known, and the busiest process is named.
2. ``latency``: end-to-end p50/p99 (send time in the body → arrival; one clock) at 50% and 80% of it.
3. ``idle``: ``idle`` more users, one connection each, to node1: its RSS before and after, per
   connection; then pings from all of them at a fixed rate (CPU per heartbeat).
4. ``reconnects``: those connections closed and reopened, ``concurrency`` at a time: reconnects/s
   (hello → synced) and CPU per reconnect on the node.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import aiohttp
from parley.loadtest.harness import accounts, procfs
from parley.loadtest.harness.accounts import Account
from parley.loadtest.harness.device import LeanDevice, close_all, latencies_of
from parley.loadtest.harness.latency import latency_summary
from parley.loadtest.harness.meter import CpuMeter, cpu_ms_per, cpu_share
from parley.loadtest.harness.session import bounded
from parley.tools.client import Api
from parley.tools.cluster import Cluster

CLUSTER = dict(rate_per_s=1_000_000.0, rate_burst=1_000_000, max_connections=100_000)
API_CONCURRENCY = 32
PAD = "x" * 60
WARM_RATE, WARM_S = 100, 1.0  # the uncounted step before the measured ones
SETTLE_S, DRAIN_S = 20.0, 2.0  # before a step: a backlog clears; after: deliveries counted this much longer


class Generator:
    def __init__(self, http: aiohttp.ClientSession, cluster: Cluster) -> None:
        self.http, self.cluster = http, cluster
        self.api = Api(cluster.api_url, http)
        self.meter = CpuMeter(cluster.pids())

    async def users(self, n: int) -> list[Account]:
        return await accounts.sign_up(self.api, accounts.names("raw", n), API_CONCURRENCY)

    async def pair(self, a: Account, b: Account) -> str:
        await accounts.befriend(self.api, [(a, b)], 1)
        return await accounts.open_dm(self.api, a, b)

    async def connect(self, node: int, u: Account, cursor: str | None = None) -> LeanDevice:
        return await LeanDevice.connect(self.http, self.cluster.node_url(node), u.id, u.token, cursor)


async def offered(gen: Generator, senders: list[LeanDevice], convs: list[str], receivers: list[LeanDevice],
                  rate: float, seconds: float) -> dict[str, Any]:
    """One open-loop step at ``rate`` msg/s; delivered counted within the step plus a short drain."""
    owed = sum(s.acks for s in senders)  # every acked message is due at its receiver
    settle = time.perf_counter() + SETTLE_S
    while time.perf_counter() < settle and sum(r.total_delivered for r in receivers) < owed:
        await asyncio.sleep(0.1)
    for r in receivers:
        r.delivered, r.latencies = 0, array("q")
    acks0 = sum(s.acks for s in senders)
    before = gen.meter.snapshot()
    t0, sent = time.perf_counter(), 0
    while (now := time.perf_counter()) - t0 < seconds:
        for _ in range(max(int((now - t0) * rate) - sent, 0)):
            i = sent % len(senders)
            await senders[i].send_message(f"r{sent}-{t0:.0f}", convs[i], f"{time.perf_counter_ns()} {PAD}")
            sent += 1
        await asyncio.sleep(0.002)
    after = gen.meter.snapshot()
    deadline = time.perf_counter() + DRAIN_S
    while time.perf_counter() < deadline and sum(r.delivered for r in receivers) < sent:
        await asyncio.sleep(0.05)
    delivered = sum(r.delivered for r in receivers)
    cpu = cpu_share(before, after)
    window = after.t - before.t
    return {"offered_rate": rate, "sent": sent, "sent_rate": round(sent / window, 1),
            "acked": sum(s.acks for s in senders) - acks0, "delivered": delivered,
            "delivered_rate": round(delivered / window, 1), "lost_or_late": max(sent - delivered, 0),
            "e2e": latency_summary(latencies_of(receivers)), "cpu": cpu,
            "cpu_ms_per_msg": cpu_ms_per(cpu, delivered, ("node1", "node2", "nats-server", "archiver", "client"))}


def sustained(step: dict[str, Any]) -> bool:
    p99 = step["e2e"]["p99_ms"]
    return step["delivered"] >= 0.9 * step["sent"] and p99 is not None and p99 <= 1000 and not step["lost_or_late"]


async def throughput(gen: Generator, pairs: int, rates: list[float], seconds: float) -> dict[str, Any]:
    users = await gen.users(2 * pairs)
    convs = await bounded([partial(gen.pair, users[2 * i], users[2 * i + 1]) for i in range(pairs)],
                                   API_CONCURRENCY)
    senders = list(await asyncio.gather(*(gen.connect(0, users[2 * i]) for i in range(pairs))))
    receivers = list(await asyncio.gather(*(gen.connect(1, users[2 * i + 1]) for i in range(pairs))))
    step = partial(offered, gen, senders, convs, receivers)
    await step(WARM_RATE, WARM_S)
    steps: list[dict[str, Any]] = []
    for rate in rates:
        steps.append(await step(rate, seconds))
        if not sustained(steps[-1]):
            break
        await asyncio.sleep(0.5)
    good = [s for s in steps if sustained(s)]
    best = max(good, key=lambda s: s["delivered_rate"]) if good else None
    out: dict[str, Any] = {"pairs": pairs, "steps": steps, "max_sustained_delivered_rate":
                           best["delivered_rate"] if best else None, "limit_reached": len(good) < len(steps)}
    if best:
        out["at_max"] = per_message_costs(best)
        for share in (0.5, 0.8):
            s = await step(round(best["delivered_rate"] * share), seconds)
            out[f"at_{int(share * 100)}pct"] = {"rate": s["offered_rate"], "delivered_rate": s["delivered_rate"],
                                                "lost_or_late": s["lost_or_late"], "e2e": s["e2e"],
                                                "busiest": s["cpu"]["busiest_overall"],
                                                "cpu": s["cpu"]["per_process"]}
    await close_all(senders + receivers)
    return out


def per_message_costs(step: dict[str, Any]) -> dict[str, Any]:
    """node2 only delivers (one device); node1 publishes, acks and echoes to the sender's device."""
    ms = step["cpu_ms_per_msg"]
    deliver = ms["node2"]
    send = None if ms["node1"] is None or deliver is None else round(max(ms["node1"] - deliver, 0.0), 4)
    node_ms = None if ms["node1"] is None or deliver is None else ms["node1"] + deliver
    return {"delivered_rate": step["delivered_rate"], "node_cpu_ms_per_delivery": deliver,
            "node_cpu_ms_per_send": send, "node_cpu_ms_per_message": node_ms,
            "delivered_msgs_per_node_core": round(1000 / node_ms, 1) if node_ms else None,
            "nats_cpu_ms_per_message": ms["nats-server"], "archiver_cpu_ms_per_message": ms["archiver"],
            "busiest": step["cpu"]["busiest_overall"], "busiest_server": step["cpu"]["busiest_server"],
            "verdict": step["cpu"]["verdict"], "cpu": step["cpu"]["per_process"]}


async def hold_idle(gen: Generator, users: list[Account], ping_rate: float,
               concurrency: int) -> tuple[dict[str, Any], list[LeanDevice]]:
    node = gen.cluster.pids()["node1"]
    await asyncio.sleep(1.0)
    rss0 = procfs.rss_bytes(node) or 0
    t0 = time.perf_counter()
    conns = await bounded([partial(gen.connect, 0, u) for u in users], concurrency)
    connect_s = time.perf_counter() - t0
    await asyncio.sleep(2.0)
    rss1 = procfs.rss_bytes(node) or 0
    n = len(users)
    return {"connections": n, "rss_before_mb": round(rss0 / 2**20, 1), "rss_after_mb": round(rss1 / 2**20, 1),
            "rss_per_connection_kb": round((rss1 - rss0) / n / 1024, 1),
            "first_connects_per_s": round(n / connect_s, 1),
            "heartbeats": await pings(gen.meter, conns, ping_rate, 4.0)}, conns


async def reconnects(gen: Generator, users: list[Account], cursors: dict[str, str | None],
                     concurrency: int) -> dict[str, Any]:
    before, t0 = gen.meter.snapshot(), time.perf_counter()
    calls: list[Callable[[], Awaitable[LeanDevice]]] = [partial(gen.connect, 0, u, cursors[u.id]) for u in users]
    conns = await bounded(calls, concurrency)
    took = time.perf_counter() - t0
    cpu = cpu_share(before, gen.meter.snapshot())
    await close_all(conns)
    n = len(users)
    return {"reconnects": n, "concurrency": concurrency, "seconds": round(took, 2),
            "reconnects_per_s": round(n / took, 1),
            "cpu_ms_per_reconnect": cpu_ms_per(cpu, n, ("node1", "nats-server", "presence", "client")),
            "busiest": cpu["busiest_overall"], "verdict": cpu["verdict"], "cpu": cpu["per_process"]}


async def idle_and_reconnects(gen: Generator, n: int, ping_rate: float, concurrency: int) -> dict[str, Any]:
    users = await gen.users(n)
    out, conns = await hold_idle(gen, users, ping_rate, concurrency)
    cursors = {c.user: c.cursor for c in conns}
    await close_all(conns)
    await asyncio.sleep(1.0)
    return {"idle": out, "reconnects": await reconnects(gen, users, cursors, concurrency)}


async def pings(meter: CpuMeter, conns: list[LeanDevice], rate: float, seconds: float) -> dict[str, Any]:
    for c in conns:
        c.pongs = 0
    before, t0, sent = meter.snapshot(), time.perf_counter(), 0
    while (now := time.perf_counter()) - t0 < seconds:
        for _ in range(max(int((now - t0) * rate) - sent, 0)):
            await conns[sent % len(conns)].ping()
            sent += 1
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.5)
    cpu = cpu_share(before, meter.snapshot())
    return {"pings": sent, "pongs": sum(c.pongs for c in conns), "rate": rate,
            "cpu_ms_per_ping": cpu_ms_per(cpu, sent, ("node1", "client"))["node1"], "busiest": cpu["busiest_overall"]}


async def measure(cluster: Cluster, pairs: int, rates: list[float], seconds: float, idle: int,
                  ping_rate: float, concurrency: int) -> dict[str, Any]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        gen = Generator(http, cluster)
        out = {"throughput": await throughput(gen, pairs, rates, seconds)}
        out.update(await idle_and_reconnects(gen, idle, ping_rate, concurrency))
    return out
