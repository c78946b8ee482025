"""``make bench-live``: one live room, as many viewers as this machine holds across the nodes, a set of
senders at stepped rates -> ``loadtest/results/live.jsonl`` (issue 16 item 8, docs/adr/0022).

    .venv/bin/python -m parley.loadtest.live_bench --viewers 10000 --record          # the big one
    .venv/bin/python -m parley.loadtest.live_bench --viewers 500 --rates 20,50,100,200,400 --no-save

A scratch cluster of ``--nodes`` nodes (per-user rate limit off, cheap Argon2; every other setting the
product's). One room; ``--viewers`` devices (``--devices-per-user`` logins of each viewer account) join it
round-robin over the nodes (``harness.viewer``: bare asyncio sockets that count ``live_msg`` frames;
``--sample`` of them parse each frame for latency and ids); ``--senders`` other users send to it from
both nodes without joining. Then, for each rate of ``--rates`` (msg/s in total, open loop, round-robin
over the senders) one step of ``--step-seconds``: deliveries and every server process's CPU over the same
window (its last 3/4), the sampled viewers' delivery latency (the send time in the body → arrival) for
messages sent in it, CPU per delivery and per message. A step that is not sustained is tried once more
(one stall of a shared machine is not a limit); the ladder stops at its second failure (``live_accounting``).
At the end, the loss ledger: every viewer owes every accepted message.

Bounded: at most 20,000 viewers, 2,000 msg/s, 12 steps of at most 30 s; loopback only. The file-descriptor
limit is raised to the hard limit first (the nodes inherit it). Nothing asserts on timing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import resource
import sys
import time
from array import array
from functools import partial
from typing import Any

import aiohttp
import orjson
from parley.loadtest import live_accounting as acc
from parley.loadtest.efficiency_accounting import Mark, window
from parley.loadtest.harness import accounts, procfs, record, viewer, wire
from parley.loadtest.harness.latency import latency_summary
from parley.loadtest.harness.meter import CLIENT, CpuMeter
from parley.loadtest.harness.session import (
    bounded,
    guarded,
    numbers,
    require_running,
    run_async,
    say,
    scratch_cluster,
    stop_on_signals,
    within,
)
from parley.tools.client import Api
from parley.tools.cluster import Cluster

# the product's hello timeout, not the scratch cluster's 2 s: thousands of handshakes at once on a loaded box
CLUSTER = dict(rate_per_s=1_000_000.0, rate_burst=1_000_000, max_connections=100_000, hello_timeout_s=10.0)
API_CONCURRENCY = 32
PAD = "x" * 60  # with the send time and the number: a ~90-byte body
WARM_SHARE = 0.25
WARM_RATE, WARM_S = 5.0, 2.0
DRAIN_S, SETTLE_S, STALL_S = 5.0, 60.0, 5.0
NOTE = ("generator, nodes, nats-server and workers share one machine; while this ran, other sessions "
        "used it too (see machine.loadavg_at_start and each step's cpu_pct / core_busy_pct)")


def raise_fd_limit(want: int) -> int:
    """The soft limit on open files up to ``want`` (at most the hard limit); the cluster's processes,
    started after, inherit it. Returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, want), hard) if hard != resource.RLIM_INFINITY else max(soft, want)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


class Sender:
    """One sending device: open-loop ``live_send`` frames; counts the room's answers."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, room: str) -> None:
        self.ws, self.room = ws, room
        self.accepted: list[int] = []
        self.errors: dict[str, int] = {}
        self.reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, http: aiohttp.ClientSession, url: str, token: str, room: str) -> Sender:
        """hello -> synced, then the reader in the background."""
        ws = await http.ws_connect(url, max_msg_size=0)
        await ws.send_str(wire.hello(token))
        while True:
            msg = await ws.receive(timeout=30)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"sender closed during hello: {ws.close_code}")
            if msg.data.startswith(wire.SYNCED_PREFIX):
                return cls(ws, room)

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            if msg.data.startswith('{"type":"live_sent"'):
                f = orjson.loads(msg.data)
                if not f["duplicate"]:
                    self.accepted.append(int(f["id"]))
            elif msg.data.startswith('{"type":"error"'):
                code = str(orjson.loads(msg.data).get("code"))
                self.errors[code] = self.errors.get(code, 0) + 1

    async def send(self, cid: str, body: str) -> None:
        await self.ws.send_str(orjson.dumps({"type": "live_send", "room": self.room, "cid": cid,
                                             "body": body}).decode())


class Room:
    """The run's room, its viewers and senders, and what they counted."""

    def __init__(self, cluster: Cluster, room: str, viewers: list[viewer.Viewer], senders: list[Sender],
                 placed: list[int]) -> None:
        self.cluster, self.room, self.viewers, self.senders, self.placed = cluster, room, viewers, senders, placed
        self.meter = CpuMeter(cluster.pids())
        self.sent = 0
        self.numbers = itertools.count()

    def delivered(self) -> int:
        return sum(v.tally.messages for v in self.viewers)

    def accepted(self) -> list[int]:
        return [i for s in self.senders for i in s.accepted]

    def owed(self) -> int:
        return len(self.accepted()) * len(self.viewers)

    def mark(self) -> Mark:
        snap = self.meter.snapshot()  # CPU and deliveries read at one instant: no await between them
        return Mark(snap.t, snap.cpu_s, self.delivered(), procfs.core_busy_seconds())

    async def send_one(self) -> None:
        n = next(self.numbers)
        await self.senders[n % len(self.senders)].send(f"b{n}", f"{time.perf_counter_ns()} {n} {PAD}")
        self.sent += 1

    async def settle(self, seconds: float, stall: float) -> None:
        """Until every viewer has every accepted message, ``seconds`` passed, or nothing moved for ``stall``."""
        deadline = time.perf_counter() + seconds
        seen, moved = -1, time.perf_counter()
        while (now := time.perf_counter()) < deadline:
            got = self.delivered()
            if got >= self.owed() and self.sent == len(self.accepted()) + self.refused():
                return
            if got > seen:
                seen, moved = got, now
            elif now - moved > stall:
                return
            await asyncio.sleep(0.05)

    def refused(self) -> int:
        return sum(sum(s.errors.values()) for s in self.senders)

    def latencies(self, t0_ns: int, t1_ns: int) -> array[int]:
        out = array("q")
        for v in self.viewers:
            if v.sampled:
                out.extend(lat for sent, lat in zip(v.tally.sent_ns, v.tally.latency_ns, strict=True)
                           if t0_ns <= sent < t1_ns)
        return out

    async def step(self, rate: float, seconds: float) -> dict[str, Any]:
        await self.settle(SETTLE_S, STALL_S)
        backlog = self.owed() - self.delivered()
        start, sent, a, sent_at_a = time.perf_counter(), 0, None, 0
        while (now := time.perf_counter()) - start < seconds:
            if a is None and now - start >= WARM_SHARE * seconds:
                a, sent_at_a, t0_ns = self.mark(), sent, time.perf_counter_ns()
            for _ in range(max(int((now - start) * rate) - sent, 0)):
                await self.send_one()
                sent += 1
            await asyncio.sleep(0.002)
        b, t1_ns = self.mark(), time.perf_counter_ns()
        assert a is not None
        require_running(self.cluster)
        await self.settle(DRAIN_S, DRAIN_S)
        w = window(a, b, set(self.cluster.pids()))
        in_window = sent - sent_at_a
        used = {k: v * w["wall_s"] / 100 for k, v in w["cpu_pct"].items() if v is not None}
        return {"offered_rate": rate, "viewers": len(self.viewers), "sent": sent, "sent_in_window": in_window,
                "backlog_at_start": backlog, "window": w,
                "offered_deliveries_per_s": round(rate * len(self.viewers), 1),
                "cpu_ms_per_message": acc.per_message({k: v for k, v in used.items() if k != CLIENT}, in_window),
                "missing_after_drain": max(self.owed() - self.delivered(), 0),
                "latency": latency_summary(self.latencies(t0_ns, t1_ns)),
                "refused": {k: v for s in self.senders for k, v in s.errors.items()}}


async def setup(cluster: Cluster, http: aiohttp.ClientSession, args: argparse.Namespace) -> Room:
    api = Api(cluster.api_url, http)
    owners = await accounts.sign_up(api, accounts.names("liveown", 1), 1)
    room = str((await api.call("POST", "/v1/live", owners[0].token, {"title": "bench", "description": "live"}))["id"])
    people = -(-args.viewers // args.devices_per_user)
    say(f"  {people} viewer accounts, {args.viewers} logins, {args.senders} senders ...")
    watchers = await accounts.sign_up(api, accounts.names("livev", people), API_CONCURRENCY)
    extra = [w for w in watchers for _ in range(args.devices_per_user - 1)][:args.viewers - people]
    tokens = [w.token for w in watchers] + [t["token"] for t in await bounded(
        [partial(accounts.log_in, api, w.name) for w in extra], API_CONCURRENCY)]
    urls = [cluster.node_url(i) for i in range(args.nodes)]
    every = max(1, args.viewers // max(args.sample, 1))  # counted per node: every node has sampled viewers
    say(f"  connecting {args.viewers} viewers over {args.nodes} nodes ({args.sample} sampled) ...")
    t0 = time.perf_counter()
    viewers = await bounded([partial(viewer.watch, urls[i % args.nodes], tok, room, (i // args.nodes) % every == 0)
                             for i, tok in enumerate(tokens)], args.concurrency)
    say(f"  {len(viewers)} viewers in the room after {time.perf_counter() - t0:.0f} s")
    talkers = await accounts.sign_up(api, accounts.names("lives", args.senders), API_CONCURRENCY)
    senders = [await Sender.connect(http, urls[i % args.nodes], t.token, room) for i, t in enumerate(talkers)]
    placed = [sum(1 for i in range(len(viewers)) if i % args.nodes == n) for n in range(args.nodes)]
    return Room(cluster, room, viewers, senders, placed)


async def measure(cluster: Cluster, args: argparse.Namespace) -> dict[str, Any]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        room = await setup(cluster, http, args)
        try:
            await room.step(WARM_RATE, WARM_S)
            steps: list[dict[str, Any]] = []
            rates = list(args.rates)
            while rates:
                steps.append(await room.step(rates[0], args.step_seconds))
                say(f"    {short(steps[-1])}")
                rates = acc.next_rates(steps, rates)
            await room.settle(SETTLE_S, STALL_S)
            books = acc.ledger(room.accepted(), [v.tally.messages for v in room.viewers],
                               {i: list(v.tally.ids) for i, v in enumerate(room.viewers) if v.sampled})
            books["dropped_viewers"] = sum(1 for v in room.viewers if v.tally.dropped)
            books["closed_viewers"] = sum(1 for v in room.viewers if v.closed)
            books["refused"] = room.refused()
            books["hello_retries"] = sum(v.retries for v in room.viewers)
        finally:
            for v in room.viewers:
                v.close()
            await asyncio.gather(*(s.ws.close() for s in room.senders), return_exceptions=True)
    return figures(room, steps, books)


def figures(room: Room, steps: list[dict[str, Any]], books: dict[str, Any]) -> dict[str, Any]:
    q = acc.quoted(steps)
    top = max((s for s in steps if acc.sustained(s)), key=lambda s: s["window"]["deliveries_per_s"], default=None)
    joined = [max((v.node_viewers for i, v in enumerate(room.viewers) if i % len(room.placed) == n), default=0)
              for n in range(len(room.placed))]
    return {"viewers": len(room.viewers), "viewers_per_node": room.placed, "node_count_at_join": joined,
            "senders": len(room.senders), "quote_rule": acc.RULE,
            "quoted": None if q is None else {
                "offered_rate": q["offered_rate"], "messages_per_s": round(q["sent_in_window"] / q["window"]["wall_s"],
                                                                           1),
                "deliveries_per_s": q["window"]["deliveries_per_s"], "p50_ms": q["latency"]["p50_ms"],
                "p99_ms": q["latency"]["p99_ms"], "cpu_ms_per_delivery": q["window"]["cpu_ms_per_delivery"],
                "cpu_ms_per_delivery_by_process": q["window"]["cpu_ms_per_delivery_by_process"],
                "cpu_ms_per_message": q["cpu_ms_per_message"], "cpu_pct": q["window"]["cpu_pct"]},
            "max_sustained": None if top is None else {
                "offered_rate": top["offered_rate"], "deliveries_per_s": top["window"]["deliveries_per_s"],
                "p99_ms": top["latency"]["p99_ms"], "cpu_ms_per_delivery": top["window"]["cpu_ms_per_delivery"]},
            "limit_reached": any(not acc.sustained(s) for s in steps),
            "ledger": books, "steps": steps}


def short(s: dict[str, Any]) -> str:
    w, lat = s["window"], s["latency"]
    return (f"{s['offered_rate']:g} msg/s x {s['viewers']} viewers -> {w['deliveries_per_s']} deliveries/s, "
            f"{w['cpu_ms_per_delivery']} ms server CPU each, p50/p99 {lat['p50_ms']}/{lat['p99_ms']} ms, "
            f"missing {s['missing_after_drain']}, client {w['cpu_pct'].get(CLIENT)}%")


def newest_words() -> dict[str, Any] | None:
    path = record.results_file("words.jsonl")
    if path is None or not path.exists():
        return None
    lines = [x for x in path.read_text().splitlines() if x.strip()]
    return dict(json.loads(lines[-1])) if lines else None


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, record.Recorder]:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.live_bench", description=__doc__.split("\n")[0])
    p.add_argument("--viewers", type=within(2, 20_000, int), default=10_000, help="viewers in the one room")
    p.add_argument("--nodes", type=within(2, 4, int), default=2)
    p.add_argument("--sample", type=within(1, 2_000, int), default=200, help="viewers that parse every frame")
    p.add_argument("--senders", type=within(1, 200, int), default=20)
    p.add_argument("--devices-per-user", type=within(1, 200, int), default=50, help="logins per viewer account")
    p.add_argument("--rates", type=numbers(0.5, 2_000), default=[2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 400.0],
                   help="msg/s steps, in order; the ladder stops at the first not sustained")
    p.add_argument("--step-seconds", type=within(1, 30), default=8.0)
    p.add_argument("--concurrency", type=within(1, 512, int), default=128, help="viewer connects in flight")
    p.add_argument("--keep-run-dir", action="store_true")
    record.add_options(p, "live.jsonl")
    a = p.parse_args(argv)
    if len(a.rates) > 12:
        p.error("--rates: at most 12 steps")
    return a, record.recorder(p, a)


def main(argv: list[str] | None = None) -> int:
    args, recorder = parse_args(argv)
    stop_on_signals()
    fds = raise_fd_limit(args.viewers + 2_000)
    t0 = time.monotonic()
    base = recorder.new_record(args)
    git = base["git"]
    base.update(kind="live", commit=git["commit"], clean_tree=git["dirty"] is False, note=NOTE,
                generator="harness.viewer (bare asyncio sockets), one process", fd_limit=fds)

    def run() -> dict[str, Any]:
        with scratch_cluster(base, "parley-live-", keep=args.keep_run_dir, nodes=args.nodes, **CLUSTER) as cluster:
            return run_async(measure(cluster, args))

    out = guarded("live_bench", run)
    if out is None:
        return 1
    out["filter_cost"] = acc.filter_cost(newest_words())
    base["duration_s"] = round(time.monotonic() - t0, 1)
    rec = {**base, "results": out}
    say(json.dumps({k: out[k] for k in ("viewers", "viewers_per_node", "quoted", "max_sustained", "ledger")}))
    say(recorder.append(rec))
    return 0 if out["ledger"]["lost"] == 0 and out["ledger"]["sampled_missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

