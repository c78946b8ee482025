"""A lean asyncio load generator for raw per-node capacity figures (Locust stays the SRE tool).

Locust's per-core limit (a few thousand WebSocket messages/s under gevent) would saturate before a
node does, so the figures the capacity model needs come from here: aiohttp WebSockets and orjson in
one asyncio process, no per-message bookkeeping beyond a counter and a latency sample.

What ``measure`` does on a cluster of its own (tests/integration/cluster.py: nats-server and every
role on 127.0.0.1 free ports; per-user rate limit off, cheap Argon2), all bounded in count and time:

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
import itertools
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil
from parley.loadtest.bench import ClusterProc, CpuMeter, latency_summary
from parley.tools.client import Api

PASSWORD = "raw-load-password-01"


@dataclass
class Conn:
    """One device's WebSocket: counts what arrives, keeps latency samples for bodies that carry a time."""

    ws: aiohttp.ClientWebSocketResponse
    user: str
    delivered: int = 0
    total_delivered: int = 0  # since connecting: a backlog from an overloaded step must clear before the next
    acks: int = 0
    pongs: int = 0
    cursor: int = 0
    latencies: array = field(default_factory=lambda: array("q"))  # type: ignore[type-arg]
    reader: asyncio.Task[None] | None = None


class Generator:
    def __init__(self, http: aiohttp.ClientSession, api: Api) -> None:
        self.http, self.api = http, api
        self.sem = asyncio.Semaphore(32)
        self.prefix = f"raw{int(time.time()) % 100000}"
        self.n = itertools.count()

    async def user(self) -> dict[str, Any]:
        async with self.sem:
            name = f"{self.prefix}-{next(self.n)}"
            await self.api.signup(name, PASSWORD)
            login = await self.api.login(name, PASSWORD)
            return {"id": login["user"]["id"], "token": login["token"]}

    async def users(self, n: int) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(self.user() for _ in range(n))))

    async def pair(self, a: dict[str, Any], b: dict[str, Any]) -> str:
        async with self.sem:
            await self.api.call("POST", "/v1/friends", a["token"], {"user_id": b["id"]})
            await self.api.call("POST", "/v1/friends", b["token"], {"user_id": a["id"]})
            out = await self.api.call("POST", "/v1/conversations", a["token"], {"user_id": b["id"]})
            return str(out["conversation"]["id"])

    async def connect(self, url: str, u: dict[str, Any], cursor: int | None = None) -> Conn:
        ws = await self.http.ws_connect(url, max_msg_size=0)
        hello: dict[str, Any] = {"type": "hello", "v": 1, "token": u["token"]}
        if cursor is not None:
            hello["cursor"] = cursor
        await ws.send_str(orjson.dumps(hello).decode())
        conn = Conn(ws, u["id"])
        while True:  # welcome, any missed messages, synced
            msg = await ws.receive(timeout=30)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"closed during hello: {ws.close_code}")
            f = orjson.loads(msg.data)
            if f.get("type") == "synced":
                conn.cursor = int(f["cursor"])
                break
            if f.get("type") == "error" and f.get("code") not in ("bad_cursor",):
                raise ConnectionError(f"refused: {f}")
        conn.reader = asyncio.get_running_loop().create_task(self.read(conn))
        return conn

    @staticmethod
    async def read(conn: Conn) -> None:
        async for msg in conn.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = msg.data
            if data.startswith('{"type":"msg"'):
                f = orjson.loads(data)
                if f["from"] != conn.user:
                    conn.delivered += 1
                    conn.total_delivered += 1
                    conn.latencies.append(time.perf_counter_ns() - int(f["body"].split(" ", 1)[0]))
                conn.cursor = max(conn.cursor, int(f["id"]))
            elif data.startswith('{"type":"ack"'):
                conn.acks += 1
            elif data.startswith('{"type":"pong"'):
                conn.pongs += 1

    async def close(self, conns: list[Conn]) -> None:
        await asyncio.gather(*(c.ws.close() for c in conns), return_exceptions=True)
        await asyncio.gather(*(c.reader for c in conns if c.reader), return_exceptions=True)


def procs_of(cluster: Any) -> list[ClusterProc]:
    out = [ClusterProc("nats-server", psutil.Process(cluster.nats.proc.pid))]
    for name, child in cluster.roles.items():
        out.append(ClusterProc(name, psutil.Process(child.proc.pid)))
    return out


def cpu_ms_per(cpu: dict[str, Any], count: int, names: tuple[str, ...]) -> dict[str, float | None]:
    wall = cpu["wall_s"]
    out: dict[str, float | None] = {}
    for name in names:
        v = cpu["per_process"].get(name)
        out[name] = round(v / 100 * wall * 1000 / count, 4) if v is not None and count else None
    return out


async def offered(gen: Generator, senders: list[Conn], convs: list[str], receivers: list[Conn], rate: float,
                  seconds: float, meter: CpuMeter) -> dict[str, Any]:
    """One open-loop step at ``rate`` msg/s; delivered counted within the step plus a 2 s drain."""
    owed = sum(s.acks for s in senders)  # every acked message is due at its receiver
    settle = time.perf_counter() + 20.0
    while time.perf_counter() < settle and sum(r.total_delivered for r in receivers) < owed:
        await asyncio.sleep(0.1)
    for r in receivers:
        r.delivered, r.latencies = 0, array("q")
    acks0 = sum(s.acks for s in senders)
    before = meter.snapshot()
    t0, sent = time.perf_counter(), 0
    pad = "x" * 60
    while (now := time.perf_counter()) - t0 < seconds:
        due = int((now - t0) * rate) - sent
        for _ in range(max(due, 0)):
            i = sent % len(senders)
            body = f"{time.perf_counter_ns()} {pad}"
            frame = orjson.dumps({"type": "send", "cid": f"r{sent}-{t0:.0f}", "conv": convs[i], "body": body})
            await senders[i].ws.send_str(frame.decode())
            sent += 1
        await asyncio.sleep(0.002)
    after = meter.snapshot()
    deadline = time.perf_counter() + 2.0
    while time.perf_counter() < deadline and sum(r.delivered for r in receivers) < sent:
        await asyncio.sleep(0.05)
    delivered = sum(r.delivered for r in receivers)
    lat = array("q", itertools.chain.from_iterable(r.latencies for r in receivers))
    cpu = CpuMeter.diff(before, after)
    window = after["t"] - before["t"]
    return {"offered_rate": rate, "sent": sent, "sent_rate": round(sent / window, 1),
            "acked": sum(s.acks for s in senders) - acks0, "delivered": delivered,
            "delivered_rate": round(delivered / window, 1), "lost_or_late": max(sent - delivered, 0),
            "e2e": latency_summary(lat), "cpu": cpu,
            "cpu_ms_per_msg": cpu_ms_per(cpu, delivered, ("node1", "node2", "nats-server", "archiver", "client"))}


def sustained(step: dict[str, Any]) -> bool:
    p99 = step["e2e"]["p99_ms"]
    return step["delivered"] >= 0.9 * step["sent"] and p99 is not None and p99 <= 1000 and not step["lost_or_late"]


async def throughput(gen: Generator, cluster: Any, meter: CpuMeter, pairs: int, rates: list[float],
                     seconds: float) -> dict[str, Any]:
    users = await gen.users(2 * pairs)
    convs = list(await asyncio.gather(*(gen.pair(users[2 * i], users[2 * i + 1]) for i in range(pairs))))
    senders = list(await asyncio.gather(*(gen.connect(cluster.node_url(0), users[2 * i]) for i in range(pairs))))
    receivers = list(await asyncio.gather(*(gen.connect(cluster.node_url(1), users[2 * i + 1])
                                            for i in range(pairs))))
    await offered(gen, senders, convs, receivers, 100, 1.0, meter)  # warm-up, not counted
    steps: list[dict[str, Any]] = []
    for rate in rates:
        steps.append(await offered(gen, senders, convs, receivers, rate, seconds, meter))
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
            s = await offered(gen, senders, convs, receivers, round(best["delivered_rate"] * share), seconds, meter)
            out[f"at_{int(share * 100)}pct"] = {"rate": s["offered_rate"], "delivered_rate": s["delivered_rate"],
                                                "lost_or_late": s["lost_or_late"], "e2e": s["e2e"],
                                                "busiest": s["cpu"]["busiest_overall"],
                                                "cpu": s["cpu"]["per_process"]}
    await gen.close(senders + receivers)
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


async def idle_and_reconnects(gen: Generator, cluster: Any, meter: CpuMeter, n: int, ping_rate: float,
                              concurrency: int) -> dict[str, Any]:
    node = psutil.Process(cluster.roles["node1"].proc.pid)
    users = await gen.users(n)
    await asyncio.sleep(1.0)
    rss0 = node.memory_info().rss
    t0 = time.perf_counter()
    conns = await bounded([lambda u=u: gen.connect(cluster.node_url(0), u) for u in users], concurrency)
    connect_s = time.perf_counter() - t0
    await asyncio.sleep(2.0)
    rss1 = node.memory_info().rss
    idle = {"connections": n, "rss_before_mb": round(rss0 / 2**20, 1), "rss_after_mb": round(rss1 / 2**20, 1),
            "rss_per_connection_kb": round((rss1 - rss0) / n / 1024, 1),
            "first_connects_per_s": round(n / connect_s, 1)}
    idle["heartbeats"] = await pings(conns, meter, ping_rate, 4.0)
    cursors = {c.user: c.cursor for c in conns}
    await gen.close(conns)
    await asyncio.sleep(1.0)
    before, t0 = meter.snapshot(), time.perf_counter()
    by_id = {u["id"]: u for u in users}
    conns = await bounded([lambda u=u: gen.connect(cluster.node_url(0), by_id[u], cursors[u]) for u in cursors],
                          concurrency)
    took = time.perf_counter() - t0
    cpu = CpuMeter.diff(before, meter.snapshot())
    await gen.close(conns)
    reconnects = {"reconnects": n, "concurrency": concurrency, "seconds": round(took, 2),
                  "reconnects_per_s": round(n / took, 1), "cpu_ms_per_reconnect": cpu_ms_per(cpu, n, (
                      "node1", "nats-server", "presence", "client")), "busiest": cpu["busiest_overall"],
                  "verdict": cpu["verdict"], "cpu": cpu["per_process"]}
    return {"idle": idle, "reconnects": reconnects}


async def bounded(makers: list[Any], n: int) -> list[Conn]:
    sem = asyncio.Semaphore(n)

    async def one(make: Any) -> Conn:
        async with sem:
            conn: Conn = await make()
            return conn

    return list(await asyncio.gather(*(one(m) for m in makers)))


async def pings(conns: list[Conn], meter: CpuMeter, rate: float, seconds: float) -> dict[str, Any]:
    for c in conns:
        c.pongs = 0
    before, t0, sent = meter.snapshot(), time.perf_counter(), 0
    while (now := time.perf_counter()) - t0 < seconds:
        for _ in range(max(int((now - t0) * rate) - sent, 0)):
            await conns[sent % len(conns)].ws.send_str('{"type":"ping"}')
            sent += 1
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.5)
    cpu = CpuMeter.diff(before, meter.snapshot())
    return {"pings": sent, "pongs": sum(c.pongs for c in conns), "rate": rate,
            "cpu_ms_per_ping": cpu_ms_per(cpu, sent, ("node1", "client"))["node1"], "busiest": cpu["busiest_overall"]}


async def measure(cluster: Any, pairs: int, rates: list[float], seconds: float, idle: int,
                  ping_rate: float, concurrency: int) -> dict[str, Any]:
    meter = CpuMeter(procs_of(cluster))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        gen = Generator(http, Api(cluster.api_url, http))
        out = {"throughput": await throughput(gen, cluster, meter, pairs, rates, seconds)}
        out.update(await idle_and_reconnects(gen, cluster, meter, idle, ping_rate, concurrency))
    return out


def start_cluster(root: Path) -> Any:
    from tests.integration.cluster import Cluster

    cluster = Cluster(root, nodes=2, rate_per_s=1_000_000.0, rate_burst=1_000_000, max_connections=100_000)
    cluster.start()
    return cluster
