"""``make bench-efficiency``: Parley and the bare aiohttp baseline (``loadtest.baseline``) side by side, in
one run, with the same generator and the same pinning -> ``loadtest/results/efficiency.jsonl``.

    .venv/bin/python -m parley.loadtest.efficiency                # about 4-5 minutes on 2 cores
    .venv/bin/python -m parley.loadtest.efficiency --no-save --step-seconds 2 --idle 200
    .venv/bin/python -m parley.loadtest.efficiency --systems baseline,picows   # aiohttp vs picows, bare (ADR 0057)

``--systems`` picks which run, in its order: ``baseline`` (aiohttp), ``picows`` (the same bare relay over
picows, ``loadtest.baseline_picows``; picows is in the ``test`` extra), ``durable`` (the bare relay over one
JetStream shard stream with an archiving worker into SQLite, no Parley logic: the durable path's floor,
``loadtest.baseline_durable``, ADR 0068; its processes ``relay``, ``nats-server``, ``archiver``), ``parley``.

Each system in turn (the baseline first): its server processes are pinned to core 0 (every Parley
process: node, nats-server, archiver, presence, api, discovery), this generator to core 1. On the same
users and conversations (``--pairs`` DM pairs; ``--rooms`` rooms of ``--room-size`` members from the
same users), three workloads:

- ``dm`` and ``fanout``: open-loop offered rates from ``--dm-rate`` / ``--fanout-rate`` msg/s, doubled
  until a step is not sustained twice (``efficiency_accounting.sustained``, ``next_rate``; halved
  while none has been), at most ``--max-steps``; then a
  step at 80% of the maximum for p50/p99. Server CPU and deliveries are counted over the same window
  (the last ``1 - WARM_SHARE`` of each step's sending); per-delivery costs are quoted at the busiest
  sustained step with p99 ≤ 50 ms, else at 80% of the maximum (the record says which) — up to ``--refine``
  steps halfway between that step and the next rate tried above it look for a busier one (``acc.refine``,
  the doubling being coarse there); each window
  also says how busy each core was (``/proc/stat``), so what else ran on the server core shows. Every message
  is numbered; after the last step the ledger checks each was delivered exactly once to each member
  (``settled_ledger``: once the backlog stops moving, a device still owed a message connects again and
  syncs, as a client does; lost = SENT to its sender and still missing then, late = brought by that).
- ``idle`` (first, on the fresh processes): ``--idle`` connections, ``--concurrency`` at a time:
  connects/s (hello → synced), the servers' RSS growth per connection (all processes), and their CPU
  while the connections sit idle.

One line per (system, workload) is appended, each with the commit and clean-tree flag. Loopback only,
bounded in users, steps and seconds; no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import random
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import orjson
from parley.loadtest import efficiency_accounting as acc
from parley.loadtest import efficiency_report as report
from parley.loadtest.harness import accounts, pinning, procfs, record, wire
from parley.loadtest.harness.device import LeanDevice, close_all, latencies_of
from parley.loadtest.harness.latency import latency_summary
from parley.loadtest.harness.meter import CLIENT, CpuMeter, cpu_seconds_between
from parley.loadtest.harness.session import (
    BenchError,
    bounded,
    guarded,
    run_async,
    say,
    scratch_cluster,
    stop_on_signals,
    within,
)
from parley.loadtest.raw import CLUSTER
from parley.tools.client import Api
from parley.tools.cluster import Cluster, die_with_parent, free_port

from parley.settings import Settings

PAD = "x" * 60  # with the send time and the number: a ~100-byte body
WARM_SHARE = 0.25  # of each step's sending, before the counted window opens
WARM_RATE, WARM_S = 50, 1.0
DRAIN_S = 3.0  # after a step's sending: what is missing then counts against the step
SETTLE_S, STALL_S = 60.0, 3.0  # a backlog clears before the next step: at most this long, while it moves
# the ledger: the backlog clears for at most this long while it moves, and after a resync nothing may move
# for RESYNC_STALL_S before what is still missing counts as lost
LEDGER_SETTLE_S, RESYNC_STALL_S = 600.0, 10.0
IDLE_HOLD_S = 3.0
API_CONCURRENCY = 32
LOAD_NUMBERS = 10**9  # message numbers per load


# ---- the generator's device: the lean one, plus each message's number for the ledger --------------


@dataclass
class NumberedDevice(LeanDevice):
    seqs: array[int] = field(default_factory=lambda: array("q"))
    acking: bool = False  # ack each cursor offered, as a client does (unless ``--no-ack``): delivered receipts flow
    sent_ok: array[int] = field(default_factory=lambda: array("q"))  # numbers of its sends answered SENT
    refused: Counter[str] = field(default_factory=Counter)  # its sends answered with an error, by code
    closed_with: int | None = None  # the close code, when the node closed the connection
    held: set[int] | None = None  # after a resync: the numbers it had, re-sent ones dropped (protocol.md §7)
    again: tuple[aiohttp.ClientSession, str, str] | None = None  # (http, url, token): to connect again
    resyncing: bool = False

    @classmethod
    async def connect(cls, http: aiohttp.ClientSession, url: str, user: str, token: str,
                      cursor: str | None = None) -> NumberedDevice:
        dev = await super().connect(http, url, user, token, cursor)
        assert isinstance(dev, NumberedDevice)
        dev.again = (http, url, token)
        return dev

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = msg.data
            if data.startswith(wire.MSG_PREFIX):
                f = orjson.loads(data)
                if f["from"] != self.user:
                    sent_ns, seq, _ = f["body"].split(" ", 2)
                    if self.held is not None and int(seq) in self.held:
                        continue  # re-sent by the resync: held already
                    self.delivered += 1
                    self.total_delivered += 1
                    self.latencies.append(time.perf_counter_ns() - int(sent_ns))
                    self.seqs.append(int(seq))
            elif data.startswith(wire.ACK_PREFIX):
                self.acks += 1
                self.sent_ok.append(int(orjson.loads(data)["cid"][1:]))  # cid "e<number>"
            elif data.startswith(wire.PONG_PREFIX):
                self.pongs += 1
            elif self.acking and data.startswith(wire.CURSOR_PREFIX):  # it covers every frame before it
                await self.ws.send_str(wire.ack(orjson.loads(data)["cursor"]))
            elif data.startswith(wire.ERROR_PREFIX):
                f = orjson.loads(data)
                if f.get("ref"):  # a send's answer (other errors: a sync round's, retried by the node)
                    self.refused[str(f.get("code"))] += 1
        if not self.resyncing:  # the node closed it (the ledger is read before the generator closes any)
            self.closed_with = self.ws.close_code

    async def resync(self) -> None:
        """Connect again with the device's stored cursor, as a client does after a close or to check: the
        node syncs what it misses; what it held already is dropped (protocol.md: drop ids you hold)."""
        assert self.again is not None
        http, url, token = self.again
        self.resyncing = True
        await self.ws.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)
        self.held = set(self.seqs)
        self.ws = await http.ws_connect(url, max_msg_size=0)
        await self.ws.send_str(wire.hello(token))
        self.reader = asyncio.get_running_loop().create_task(self._read())
        self.resyncing = False


# ---- the two systems -------------------------------------------------------------------------------


@dataclass(frozen=True)
class User:
    id: str
    token: str


class Target(Protocol):
    name: str
    url: str

    def pids(self) -> dict[str, int]: ...
    async def users(self, n: int) -> list[User]: ...
    async def conversation(self, owner: User, members: list[User], key: str) -> str: ...


class Baseline:
    name = "baseline"

    def __init__(self, http: aiohttp.ClientSession, port: int, pid: int) -> None:
        self.http, self.port, self.pid = http, port, pid
        self.url = f"ws://127.0.0.1:{port}/ws"
        self.made = 0

    def pids(self) -> dict[str, int]:
        return {"baseline": self.pid}

    async def users(self, n: int) -> list[User]:
        self.made += n
        return [User(f"u{i}", f"u{i}") for i in range(self.made - n, self.made)]

    async def conversation(self, owner: User, members: list[User], key: str) -> str:
        async with self.http.post(f"http://127.0.0.1:{self.port}/rooms",
                                  data=orjson.dumps({key: [owner.id] + [m.id for m in members]})) as r:
            r.raise_for_status()
        return key


class Picows(Baseline):
    """The bare relay over picows: the same, but conversations are registered with a GET (picows serves no POST)."""

    name = "picows"

    def pids(self) -> dict[str, int]:
        return {"picows": self.pid}

    async def conversation(self, owner: User, members: list[User], key: str) -> str:
        from parley.loadtest.baseline_picows import register_path  # picows is an optional dependency

        async with self.http.get(f"http://127.0.0.1:{self.port}"
                                 f"{register_path({key: [owner.id] + [m.id for m in members]})}") as r:
            r.raise_for_status()
        return key


class Durable(Baseline):
    """The durable floor (``loadtest.baseline_durable``): the bare relay's frames over JetStream, three processes."""

    name = "durable"

    def __init__(self, http: aiohttp.ClientSession, port: int, pids: dict[str, int]) -> None:
        super().__init__(http, port, pids["relay"])
        self._pids = pids

    def pids(self) -> dict[str, int]:
        return dict(self._pids)


BARE = {"baseline": (Baseline, "parley.loadtest.baseline"), "picows": (Picows, "parley.loadtest.baseline_picows")}
SYSTEM_NAMES = ("baseline", "picows", "durable", "parley")


class Parley:
    name = "parley"

    def __init__(self, http: aiohttp.ClientSession, cluster: Cluster) -> None:
        self.cluster, self.api = cluster, Api(cluster.api_url, http)
        self.url = cluster.node_url(0)
        self.friends: set[frozenset[str]] = set()

    def pids(self) -> dict[str, int]:
        return self.cluster.pids()

    async def users(self, n: int) -> list[User]:
        made = await accounts.sign_up(self.api, accounts.names("eff", n), API_CONCURRENCY)
        return [User(a.id, a.token) for a in made]

    async def conversation(self, owner: User, members: list[User], key: str) -> str:
        new = [m for m in members if frozenset((owner.id, m.id)) not in self.friends]
        self.friends.update(frozenset((owner.id, m.id)) for m in new)
        acct = partial(accounts.Account, "")
        await accounts.befriend(self.api, [(acct(owner.id, owner.token), acct(m.id, m.token)) for m in new],
                                API_CONCURRENCY)
        if len(members) == 1:
            return await accounts.open_dm(self.api, acct(owner.id, owner.token), acct(members[0].id, members[0].token))
        out = await self.api.call("POST", "/v1/groups", owner.token, {"name": key, "members": [m.id for m in members]})
        return str(out["conversation"]["id"])


@contextlib.contextmanager
def baseline_server(module: str = "parley.loadtest.baseline") -> Iterator[tuple[int, int]]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", module, "--port", str(port)],
                            preexec_fn=die_with_parent, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError("the baseline server did not start")
            time.sleep(0.1)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


# ---- a workload: conversations, numbered messages, open-loop steps ---------------------------------


@dataclass
class Load:
    target: Target
    meter: CpuMeter
    devices: dict[str, NumberedDevice]
    senders: list[tuple[NumberedDevice, str]]  # (device, conversation), sent to round-robin
    recipients: dict[str, set[str]]  # conversation -> users who must get its messages
    base: int  # this load's message numbers are base + 0, 1, ...: two loads on the same devices never mix
    sent_conv: list[str] = field(default_factory=list)  # message number - base -> its conversation
    earlier: int = 0  # deliveries the devices had counted before this load (an earlier load's)

    def __post_init__(self) -> None:
        self.earlier = sum(d.total_delivered for d in self.devices.values())

    def mark(self) -> acc.Mark:
        snap = self.meter.snapshot()
        return acc.Mark(snap.t, snap.cpu_s, sum(d.total_delivered for d in self.devices.values()),
                        procfs.core_busy_seconds())

    def numbered(self, dev: NumberedDevice) -> list[int]:
        """What ``dev`` received of this load's messages, numbered from 0."""
        return [s - self.base for s in dev.seqs if self.base <= s < self.base + LOAD_NUMBERS]

    def received(self) -> dict[str, list[int]]:
        return {u: self.numbered(d) for u, d in self.devices.items()}

    def acked(self) -> set[int]:
        """This load's messages answered SENT to their senders, numbered from 0."""
        return {s - self.base for d, _ in self.senders for s in d.sent_ok if self.base <= s < self.base + LOAD_NUMBERS}

    def owed(self, acked: set[int]) -> set[str]:
        """The users whose devices still miss a message SENT to them."""
        got = {u: set(seqs) for u, seqs in self.received().items()}
        return {u for s in acked for u in self.recipients[self.sent_conv[s]] if s not in got[u]}

    async def wait_moving(self, more: int, seconds: float, stall: float) -> None:
        """Until ``more`` new messages arrived (re-sent ones dropped), nothing new did for ``stall``, or
        ``seconds`` passed."""
        deadline, seen, moved = time.perf_counter() + seconds, -1, time.perf_counter()
        until = sum(len(d.seqs) for d in self.devices.values()) + more
        while (now := time.perf_counter()) < deadline and now - moved < stall and seen < until:
            if (got := sum(len(d.seqs) for d in self.devices.values())) != seen:
                seen, moved = got, now
            await asyncio.sleep(0.05)

    def expected(self) -> int:
        return sum(len(self.recipients[c]) for c in self.sent_conv)

    def delivered(self) -> int:
        """This load's deliveries so far (counts only; the ledger checks which)."""
        return sum(d.total_delivered for d in self.devices.values()) - self.earlier

    async def wait_delivered(self, seconds: float, stall: float | None = None) -> None:
        """Until every message sent so far arrived, ``seconds`` passed, or nothing arrived for ``stall``."""
        deadline = time.perf_counter() + seconds
        seen, moved = self.delivered(), time.perf_counter()
        while (now := time.perf_counter()) < deadline and (got := self.delivered()) < self.expected():
            if got > seen:
                seen, moved = got, now
            elif stall is not None and now - moved > stall:
                return
            await asyncio.sleep(0.05)

    async def send_one(self) -> None:
        dev, conv = self.senders[len(self.sent_conv) % len(self.senders)]
        seq = self.base + len(self.sent_conv)
        self.sent_conv.append(conv)
        await dev.send_message(f"e{seq}", conv, f"{time.perf_counter_ns()} {seq} {PAD}")

    async def step(self, rate: float, seconds: float) -> dict[str, Any]:
        """One open-loop step at ``rate`` msg/s; the counted window is its last ``1 - WARM_SHARE``."""
        await self.wait_delivered(SETTLE_S, STALL_S)  # an earlier step's backlog clears first
        backlog = self.expected() - self.delivered()
        for d in self.devices.values():
            d.latencies = array("q")
        fanout = sum(len(self.recipients[c]) for _, c in self.senders) / len(self.senders)
        t0, sent, a = time.perf_counter(), 0, None
        while (now := time.perf_counter()) - t0 < seconds:
            if a is None and now - t0 >= WARM_SHARE * seconds:
                a = self.mark()
            for _ in range(max(int((now - t0) * rate) - sent, 0)):
                if a is None and time.perf_counter() - t0 >= WARM_SHARE * seconds:
                    a = self.mark()  # an overloaded generator's burst can outlast the warm-up, even the step
                await self.send_one()
                sent += 1
            await asyncio.sleep(0.002)
        b = self.mark()
        assert a is not None, "a send outlasted the whole step"
        await self.wait_delivered(DRAIN_S)
        servers = set(self.target.pids())
        return {"offered_rate": rate, "offered_deliveries_per_s": round(rate * fanout, 1), "sent": sent,
                "backlog_at_start": backlog,
                "window": acc.window(a, b, servers), "missing_after_drain": max(self.expected() - self.delivered(), 0),
                "e2e": latency_summary(latencies_of(list(self.devices.values())))}


async def ladder(load: Load, first_rate: float, max_steps: int, seconds: float,
                 refine_steps: int = 0) -> dict[str, Any]:
    await load.step(WARM_RATE, WARM_S)
    steps: list[dict[str, Any]] = []
    rate: float | None = first_rate
    while rate is not None and len(steps) < max_steps:
        steps.append(await load.step(rate, seconds))
        say(f"    {load.target.name}: {short(steps[-1])}")
        rate = acc.next_rate(steps)
    best = acc.maximum(steps)
    at_80 = None
    if best is not None:
        at_80 = await load.step(round(0.8 * best["offered_rate"], 1), seconds)
        say(f"    {load.target.name} at 80%: {short(at_80)}")
    refined: list[dict[str, Any]] = []  # the doubling is coarse near p99 = 50 ms: halfway steps, judged alike
    while len(refined) < refine_steps and (rate := acc.refine(steps + refined + ([at_80] if at_80 else []))):
        refined.append(await load.step(rate, seconds))
        say(f"    {load.target.name} refining: {short(refined[-1])}")
    steps += refined
    quote, rule = acc.quoted(steps + ([at_80] if at_80 else []), at_80)
    books = await settled_ledger(load)
    return {"steps": steps, "at_80pct": at_80, "max": best, "quoted": quote, "quote_rule": rule, "ledger": books,
            "limit_reached": any(not acc.sustained(s) for s in steps)}


async def settled_ledger(load: Load) -> dict[str, Any]:
    """The ledger, as a client would see it: once the backlog stopped moving (``STALL_S``; at most
    ``LEDGER_SETTLE_S``), every device still owed a message connects again with its stored cursor and syncs
    (the node closed it, or it is simply behind); then **lost** = a message its sender got SENT for that has
    still not arrived, **late** = one missing at the first look that came after; sends never answered SENT
    (refused, or still unread by the node when the load ended) are counted apart, never as lost."""
    await load.wait_delivered(LEDGER_SETTLE_S, STALL_S)
    acked = load.acked()
    first = acc.ledger(load.sent_conv, load.recipients, load.received(), acked)
    owed = [load.devices[u] for u in load.owed(acked)]
    closed = Counter(str(d.closed_with) for d in load.devices.values() if d.closed_with is not None)
    await bounded([d.resync for d in owed], API_CONCURRENCY)
    await load.wait_moving(first["lost"], LEDGER_SETTLE_S, RESYNC_STALL_S)
    books = acc.ledger(load.sent_conv, load.recipients, load.received(), load.acked())
    refused = sum((d.refused for d in load.devices.values()), Counter[str]())
    return {**books, "late": first["lost"] - books["lost"], "resynced_devices": len(owed),
            "closed_by_node": dict(closed), "refused": dict(refused)}


def short(s: dict[str, Any]) -> str:
    w = s["window"]
    return (f"{s['offered_rate']:g} msg/s offered -> {w['deliveries_per_s']} deliveries/s, "
            f"{w['cpu_ms_per_delivery']} ms CPU each, p50/p99 {s['e2e']['p50_ms']}/{s['e2e']['p99_ms']} ms, "
            f"missing {s['missing_after_drain']}, client {w['cpu_pct'].get(CLIENT)}%")


# ---- one system: setup, the three workloads ----------------------------------------------------------


async def conversations(target: Target, users: list[User], pairs: int, rooms: int, size: int,
                        seed: int) -> tuple[list[tuple[User, str, list[User]]], list[tuple[User, str, list[User]]]]:
    dms = [(users[2 * i], users[2 * i + 1]) for i in range(pairs)]
    rng = random.Random(seed)
    groups = [(users[g], rng.sample([u for u in users if u is not users[g]], size - 1)) for g in range(rooms)]
    dm_convs = await bounded([partial(target.conversation, a, [b], f"dm{i}") for i, (a, b) in enumerate(dms)],
                             API_CONCURRENCY)
    room_convs = [await target.conversation(o, m, f"room{g}") for g, (o, m) in enumerate(groups)]
    return ([(a, c, [b]) for (a, b), c in zip(dms, dm_convs, strict=True)],
            [(o, c, m) for (o, m), c in zip(groups, room_convs, strict=True)])


def load_of(target: Target, meter: CpuMeter, devices: dict[str, NumberedDevice],
            convs: list[tuple[User, str, list[User]]], index: int) -> Load:
    return Load(target, meter, devices, [(devices[o.id], c) for o, c, _ in convs],
                {c: {m.id for m in members} for _, c, members in convs}, index * LOAD_NUMBERS)


async def idle(target: Target, http: aiohttp.ClientSession, meter: CpuMeter, n: int,
               concurrency: int) -> dict[str, Any]:
    users = await target.users(n)
    pids = target.pids()
    await asyncio.sleep(1.0)
    before = {k: procfs.rss_bytes(p) or 0 for k, p in pids.items()}
    c0 = meter.snapshot()
    t0 = time.perf_counter()
    conns = await bounded([partial(LeanDevice.connect, http, target.url, u.id, u.token) for u in users], concurrency)
    took = time.perf_counter() - t0
    storm = cpu_seconds_between(c0, meter.snapshot())  # the connects' CPU: steadier than their rate on a busy box
    await asyncio.sleep(2.0)
    after = {k: procfs.rss_bytes(p) or 0 for k, p in pids.items()}
    rss0, rss1 = sum(before.values()), sum(after.values())
    a = meter.snapshot()
    await asyncio.sleep(IDLE_HOLD_S)
    b = meter.snapshot()
    w = acc.window(acc.Mark(a.t, a.cpu_s, 0), acc.Mark(b.t, b.cpu_s, 0), set(pids))
    await close_all(conns)
    servers_pct = sum(v for k, v in w["cpu_pct"].items() if k in pids and v is not None)
    return {"connections": n, "connects_per_s": round(n / took, 1), "rss_before_mb": round(rss0 / 2**20, 1),
            "rss_after_mb": round(rss1 / 2**20, 1), "kb_per_conn": round((rss1 - rss0) / n / 1024, 2),
            "kb_per_conn_by_process": {k: round((after[k] - before[k]) / n / 1024, 2) for k in pids},
            "connect_cpu_ms": round(1000 * sum(v for k, v in storm.items() if k in pids) / n, 3),
            "connect_cpu_ms_by_process": {k: round(1000 * v / n, 3) for k, v in storm.items() if k in pids},
            "idle_cpu_pct": round(servers_pct, 2), "idle_cpu_pct_by_process": w["cpu_pct"]}


async def run_system(target: Target, http: aiohttp.ClientSession, args: argparse.Namespace) -> dict[str, Any]:
    pinned = pinning.pin_servers(target.pids())
    pinning.pin_generator()
    meter = CpuMeter(target.pids())
    # idle first, on fresh processes: after the load steps a server's RSS holds memory it reuses for new
    # connections, and the growth per connection reads as nothing (or less than nothing)
    say(f"  {target.name}: idle, {args.idle} connections")
    idle_result = await idle(target, http, meter, args.idle, args.concurrency)
    say(f"    {target.name}: {idle_result['kb_per_conn']} KB/conn {idle_result['kb_per_conn_by_process']}, "
        f"{idle_result['connects_per_s']} connects/s, {idle_result['connect_cpu_ms']} ms server CPU per connect "
        f"{idle_result['connect_cpu_ms_by_process']}")
    say(f"  {target.name}: pinned {pinned or 'nothing (fewer than 2 cores)'}; setting up users and conversations")
    users = await target.users(max(2 * args.pairs, args.room_size + args.rooms))
    dm_convs, room_convs = await conversations(target, users, args.pairs, args.rooms, args.room_size, args.seed)
    devices = {u.id: d for u, d in zip(users, await bounded(
        [partial(NumberedDevice.connect, http, target.url, u.id, u.token) for u in users], args.concurrency),
        strict=True)}
    for d in devices.values():
        d.acking = args.ack
    out: dict[str, Any] = {"pinned_threads": pinned, "devices_ack": args.ack}
    try:
        say(f"  {target.name}: dm, {args.pairs} pairs")
        out["dm"] = await ladder(load_of(target, meter, devices, dm_convs, 0), args.dm_rate, args.max_steps,
                                 args.step_seconds, args.refine)
        say(f"  {target.name}: fanout, {args.rooms} rooms of {args.room_size}")
        out["fanout"] = await ladder(load_of(target, meter, devices, room_convs, 1), args.fanout_rate, args.max_steps,
                                     args.step_seconds, args.refine)
    finally:
        await close_all(list(devices.values()))
    out["idle"] = idle_result
    return out


def run_bare(args: argparse.Namespace, system: str = "baseline") -> dict[str, Any]:
    target, module = BARE[system]

    async def go() -> dict[str, Any]:
        with baseline_server(module) as (port, pid):
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
                return await run_system(target(http, port, pid), http, args)
    return run_async(go())


def run_durable(args: argparse.Namespace) -> dict[str, Any]:
    from parley.loadtest.baseline_durable import floor_servers

    async def go(port: int, pids: dict[str, int]) -> dict[str, Any]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            return await run_system(Durable(http, port, pids), http, args)
    with tempfile.TemporaryDirectory(prefix="parley-floor-") as root, floor_servers(Path(root)) as (port, pids):
        return run_async(go(port, pids))


# the product's own heartbeat and presence timings (a scratch cluster's are test-speed, ten times as
# frequent, which would make idle connections look ten times as costly as they are in a deployment)
PRODUCT_TIMINGS = {name: f.default for f in dataclasses.fields(Settings)
                   if (name := f.name) in ("presence_beat_s", "presence_timeout_s", "node_beat_s", "node_ttl_s")}


def run_parley(args: argparse.Namespace, rec: dict[str, Any]) -> dict[str, Any]:
    async def go(cluster: Cluster) -> dict[str, Any]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            return await run_system(Parley(http, cluster), http, args)
    with scratch_cluster(rec, "parley-efficiency-", keep=False, nodes=1, **CLUSTER, **PRODUCT_TIMINGS) as cluster:
        return run_async(go(cluster))


# ---- records -----------------------------------------------------------------------------------------


def lines(base: dict[str, Any], system: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per (system, workload), each naming the commit and whether the tree was clean."""
    git = base["git"]
    common = {"run": base["date"], "system": system, "commit": git["commit"],
              "clean_tree": git["dirty"] is False, **base, "pinned_threads": result["pinned_threads"],
              "devices_ack": result.get("devices_ack", False)}
    out = [{**common, **workload_figures(name, result[name])} for name in ("dm", "fanout")]
    i = result["idle"]
    out.append({**common, "workload": "idle", "cpu_ms_per_delivery": None, "max_deliveries_per_s": None,
                "p50_ms": None, "p99_ms": None, "lost": 0, "kb_per_conn": i["kb_per_conn"],
                "connects_per_s": i["connects_per_s"], "idle": i})
    return out


def workload_figures(name: str, r: dict[str, Any]) -> dict[str, Any]:
    q, top, at80, books = r["quoted"], r["max"], r["at_80pct"], r["ledger"]
    return {"workload": name,
            "cpu_ms_per_delivery": q["window"]["cpu_ms_per_delivery"] if q else None,
            "cpu_ms_per_delivery_by_process": q["window"]["cpu_ms_per_delivery_by_process"] if q else None,
            "quoted_at": {"rule": r["quote_rule"], "deliveries_per_s": q["window"]["deliveries_per_s"],
                          "p99_ms": q["e2e"]["p99_ms"]} if q else {"rule": r["quote_rule"]},
            "max_deliveries_per_s": top["window"]["deliveries_per_s"] if top else None,
            "limit_reached": r["limit_reached"],  # False: the ladder ran out of steps first (the max is a floor)
            "cpu_ms_per_delivery_at_max": top["window"]["cpu_ms_per_delivery"] if top else None,
            "cpu_pct_at_max": top["window"]["cpu_pct"] if top else None,
            "core_busy_pct_at_max": top["window"].get("core_busy_pct") if top else None,
            "p50_ms": at80["e2e"]["p50_ms"] if at80 else None, "p99_ms": at80["e2e"]["p99_ms"] if at80 else None,
            "at_80pct_deliveries_per_s": at80["window"]["deliveries_per_s"] if at80 else None,
            "lost": books["lost"],  # SENT to its sender, still missing after the backlog stopped and a resync
            "duplicates": books["duplicates"], "strays": books["strays"],
            "ledger": books, "kb_per_conn": None, "connects_per_s": None,
            "steps": r["steps"] + ([at80] if at80 else [])}


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, record.Recorder]:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.efficiency", description=__doc__.split("\n")[0])
    p.add_argument("--pairs", type=within(1, 200, int), default=100, help="DM pairs")
    p.add_argument("--rooms", type=within(1, 20, int), default=10)
    p.add_argument("--room-size", type=within(2, 100, int), default=50, help="members per room, the owner included")
    p.add_argument("--dm-rate", type=within(10, 20_000), default=200.0, help="first DM step, msg/s")
    p.add_argument("--fanout-rate", type=within(1, 2_000), default=10.0, help="first room step, msg/s")
    p.add_argument("--max-steps", type=within(1, 12, int), default=10, help="steps per ladder, retries included")
    p.add_argument("--step-seconds", type=within(1, 10), default=3.0)
    p.add_argument("--refine", type=within(0, 4, int), default=3,
                   help="steps halfway between the busiest with p99 <= 50 ms and the next tried (acc.refine)")
    p.add_argument("--no-ack", dest="ack", action="store_false",
                   help="devices never ack the cursors offered (clients do: delivered receipts, cursor saves); "
                        "a device max_unacked messages behind is then closed (4009); the ledger's resync brings it")
    p.add_argument("--idle", type=within(10, 10_000, int), default=1000, help="idle connections per system")
    p.add_argument("--concurrency", type=within(1, 256, int), default=32, help="connects in flight")
    p.add_argument("--seed", type=int, default=15)
    p.add_argument("--systems", type=systems, default="baseline,parley",
                   help=f"which systems run, in this order, comma-separated, of {', '.join(SYSTEM_NAMES)} "
                        "(picows: the bare relay over picows, a test dependency; durable: the bare relay over "
                        "JetStream with an archiving worker, ADR 0068)")
    record.add_options(p, "efficiency.jsonl")
    a = p.parse_args(argv)
    return a, record.recorder(p, a)


def systems(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or len(set(names)) < len(names) or not set(names) <= set(SYSTEM_NAMES):
        raise argparse.ArgumentTypeError(f"a comma-separated list of distinct names of {', '.join(SYSTEM_NAMES)}")
    return names


TITLES = {"baseline": "bare aiohttp + uvloop + orjson relay", "picows": "the same bare relay over picows",
          "durable": "the bare relay over JetStream with an archiving worker (the floor)",
          "parley": "one node and every worker"}


def main(argv: list[str] | None = None) -> int:
    args, recorder = parse_args(argv)
    stop_on_signals()
    t0 = time.monotonic()
    base = recorder.new_record(args)
    base["generator"] = "harness.device.LeanDevice (numbered), one asyncio process"
    base["pinning"] = "servers on core 0, generator on core 1" if pinning.can_pin() else "none (fewer than 2 cores)"
    results: dict[str, dict[str, Any] | None] = {}
    for system in args.systems:
        say(f"{system}: {TITLES[system]} ...")
        results[system] = guarded("efficiency", partial(run_parley, args, base) if system == "parley"
                                  else partial(run_durable, args) if system == "durable"
                                  else partial(run_bare, args, system))
    if None in results.values():
        return 1
    base["duration_s"] = round(time.monotonic() - t0, 1)
    recs = [line for system, result in results.items() if result is not None for line in lines(base, system, result)]
    for pair in report.PAIRS:
        if set(pair) <= set(results):
            say("\n".join(report.table(recs, pair)))
    for r in recs:
        msg = recorder.append(r)
    say(msg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
