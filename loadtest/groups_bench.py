"""Group fan-out and presence churn: what 100-member groups and connect/disconnect churn cost, per process.

    .venv/bin/python -m parley.loadtest.groups_bench [--groups G] [--users N] [--rates 20,50,100] [--churn-rates 20,50]

One run, all on 127.0.0.1 and bounded in time (steps of about 15 s; about 4 minutes at the defaults):

1. Starts its own cluster with ``tests.integration.cluster.Cluster`` (nats-server from the wheel,
   discovery, archiver, presence, API and two nodes, each a process on free ports in a temp dir) with
   cheap Argon2, no per-user rate limit, and presence beats every 0.5 s with a 3 s offline timeout
   (``--presence-timeout``) so that transitions happen within a step.
2. Signs up N users (``--users``), one device each, alternating node1/node2. G groups (``--groups``):
   group g is owned by user g and holds ``--group-size`` - 1 more users drawn at random (seeded), so
   groups overlap; the owner befriends them first (only friends can be added). For the DM baseline
   each owner also opens a DM with one of its members on the other node.
3. Message steps, one per offered rate (``--rates``: group messages/s in total over the G owners,
   round-robin, open loop, ``loadtest.bench``'s driver) for ``--step-seconds`` after 1 s uncounted.
   Three series, in this order: ``dm`` (the same owners sending DMs: fan-out 1), ``group-noack``
   (devices do not ack, so nodes announce no delivered receipts) and ``group`` (every device acks what
   it gets, as real clients do, and each ack makes a delivered receipt for the whole group). Each body
   carries its send time (``time.time_ns()``) and every receiving device measures the end-to-end
   latency. Per step: delivered device-messages/s (the sender's own echo is not counted), e2e
   p50/p99, lost (acked, but some member's device did not get it within ``--grace`` s), duplicates,
   receipt frames/s, devices the nodes closed, and CPU % per process (psutil; ``CpuMeter``) with CPU
   ms per delivered device-message. A series stops at its first step that is not sustained (delivered
   < 90% of offered x fan-out, p99 > 1 s, or a loss); closed devices reconnect between steps.
4. Presence churn (``--churn-rates``, cycles/s; a cycle = one disconnect + one connect): N/10
   observers, each the friend of 10 of the N users, stay connected; half of the users are online and
   each cycle disconnects a random online user and connects a random offline one on a random node.
   Per step: achieved cycles/s, connect latency (hello to synced), presence frames/s at the observers
   (and at other devices: group owners are friends of their members), online/offline transitions
   announced per second, reconnects within the timeout and how many of them still flapped, offline
   periods longer than the timeout and how many were announced, announcement delays, CPU per process.
5. Prints the tables and appends one JSON line to ``loadtest/results/groups.jsonl`` (``--out``).

The load generator shares the machine with the cluster; its CPU is reported as ``client``. Nothing
here asserts on timing: the exit status is non-zero only on errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import orjson
import psutil
from parley.loadtest.bench import (
    PASSWORD,
    ROOT,
    SEP,
    Bench,
    BenchDevice,
    BenchError,
    ClusterProc,
    CpuMeter,
    Phase,
    fmt,
    git_info,
    latency_summary,
    login,
    machine_info,
    say,
    scan_logs,
    sustained,
    versions,
)
from parley.tools.client import Api, ApiError

from tests.integration.cluster import Cluster

RESULTS = Path(__file__).resolve().parent / "results" / "groups.jsonl"
PROCESS_ORDER = ["node1", "node2", "nats-server", "archiver", "api", "presence", "discovery", "client"]
SERIES = ("dm", "group-noack", "group")
WARMUP_S = 1.0
SETTLE_S = 10.0  # after the grace period, wait this long at most for the frames to stop
FRIENDS_PER_OBSERVER = 10
API_CONCURRENCY = 8
CONNECT_CONCURRENCY = 20


# ---- the cluster -------------------------------------------------------------------------------


class Running:
    """``Bench.drive`` calls ``check()`` twice a second: fail the run when a process of the cluster died."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    def check(self) -> None:
        dead = [name for name, ok in self.cluster.alive().items() if not ok]
        if self.cluster.nats is not None and self.cluster.nats.proc.poll() is not None:
            dead.append("nats-server")
        if dead:
            raise BenchError(f"{', '.join(dead)} exited during the run; logs in {self.cluster.logs}")


def start_cluster(root: Path, args: argparse.Namespace) -> tuple[Cluster, list[ClusterProc]]:
    cluster = Cluster(root, nodes=2, rate_per_s=100_000.0, rate_burst=100_000, argon2_time_cost=1,
                      argon2_memory_kib=8192, presence_beat_s=args.presence_beat, log_level="INFO",
                      presence_timeout_s=args.presence_timeout)
    try:
        cluster.start()
        assert cluster.nats is not None
        procs = [ClusterProc("nats-server", psutil.Process(cluster.nats.proc.pid))]
        procs += [ClusterProc(name, psutil.Process(child.proc.pid)) for name, child in cluster.roles.items()]
    except BaseException:
        cluster.shutdown()
        raise
    order = {name: i for i, name in enumerate(PROCESS_ORDER)}
    return cluster, sorted(procs, key=lambda p: order.get(p.name, 99))


# ---- users, friends, groups --------------------------------------------------------------------


@dataclass
class User:
    idx: int
    id: str
    token: str
    node: int  # 0: node1, 1: node2
    observer: bool = False
    dev: Member | None = None


@dataclass
class Sender:
    user: User
    conv: str
    fanout: int  # member devices other than the sender's own


async def make_users(api: Api, count: int, prefix: str, first: int = 0, observer: bool = False) -> list[User]:
    gate = asyncio.Semaphore(API_CONCURRENCY)  # Argon2 twice per user, in the API's threads

    async def one(i: int) -> User:
        async with gate:
            await api.signup(f"{prefix}{i}", PASSWORD)
            out = await login(api, f"{prefix}{i}")
        return User(first + i, out["user"]["id"], out["token"], (first + i) % 2, observer)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def befriend(api: Api, pairs: list[tuple[User, User]]) -> None:
    gate = asyncio.Semaphore(API_CONCURRENCY)

    async def one(a: User, b: User) -> None:
        async with gate:
            await api.call("POST", "/v1/friends", a.token, {"user_id": b.id})
            state = await api.call("POST", "/v1/friends", b.token, {"user_id": a.id})
        if state.get("state") != "friends":
            raise BenchError(f"friendship not established: {state}")

    await asyncio.gather(*(one(a, b) for a, b in pairs))


def plan_groups(users: list[User], groups: int, size: int, rng: random.Random) -> list[list[User]]:
    """Group g: owner ``users[g]`` first, then ``size - 1`` others at random."""
    out = []
    for g in range(groups):
        others = [u for u in users if u is not users[g]]
        out.append([users[g], *rng.sample(others, size - 1)])
    return out


async def setup_messaging(api: Api, members: list[list[User]]) -> tuple[list[Sender], list[Sender]]:
    pairs = {frozenset((m[0].idx, u.idx)): (m[0], u) for m in members for u in m[1:]}
    say(f"  {len(pairs)} friendships ({2 * len(pairs)} requests)")
    await befriend(api, list(pairs.values()))
    groups, dms = [], []
    taken: set[int] = set()
    for m in members:
        owner = m[0]
        out = await api.call("POST", "/v1/groups", owner.token, {"name": f"bench {owner.idx}",
                                                                 "members": [u.id for u in m[1:]]})
        groups.append(Sender(owner, out["conversation"]["id"], len(m) - 1))
        peer = next((u for u in m[1:] if u.node != owner.node and u.idx not in taken), m[1])
        taken.add(peer.idx)
        out = await api.call("POST", "/v1/conversations", owner.token, {"user_id": peer.id})
        dms.append(Sender(owner, out["conversation"]["id"], 1))
    return dms, groups


# ---- devices and the accounting ----------------------------------------------------------------


@dataclass
class Sent:
    phase: Phase
    sender: int  # user idx
    t: int  # perf_counter_ns at send
    counted: bool  # sent in the measured window
    left: int  # member devices still to get it
    acked: bool = False
    failed: bool = False


@dataclass
class Step:
    """Counters of frames that arrive in the measured window of the running phase."""

    receipts: int = 0
    frames: int = 0
    duplicates: int = 0
    presence_observers: int = 0
    presence_others: int = 0


class Member(BenchDevice):
    """One user's device: reports to ``Run`` and acks cumulatively (``BenchDevice``) when ``run.acking``."""

    def __init__(self, http: aiohttp.ClientSession, url: str, user: User, run: Run) -> None:
        super().__init__(http, url, user.token, run, user.idx, receiver=True)  # type: ignore[arg-type]
        self.auto_ack = False
        self.user, self.run = user, run

    async def connect(self, cursor: int | None = None, **hello: Any) -> dict[str, Any]:
        """``Device.connect``, except that frames before ``welcome`` are kept and counted, not refused: the
        protocol puts ``welcome`` first, but a friend's presence change can overtake it."""
        self.ws = await self.http.ws_connect(self.url, max_msg_size=0)
        cursor_field = {} if cursor is None else {"cursor": cursor}
        await self.ws.send_str(orjson.dumps({"type": "hello", "v": 1, "token": self.token, **cursor_field,
                                             **hello}).decode())
        early = []
        while True:
            msg = await self.ws.receive(timeout=10)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"closed during hello: {self.ws.close_code} {msg.extra}")
            data: dict[str, Any] = orjson.loads(msg.data)
            if data.get("type") == "welcome":
                break
            if data.get("type") == "error":
                raise ConnectionError(f"hello refused: {data}")
            early.append(data)
        self.welcome = data
        for f in early:
            self.run.before_welcome[str(f.get("type"))] += 1
            self._on_frame(f)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return data

    def _on_frame(self, f: dict[str, Any]) -> None:
        run = self.run
        kind = f.get("type")
        step = run.step_now()
        run.frames += 1
        if step is not None:
            step.frames += 1
        if kind == "msg":
            mid = f["id"]
            if mid in self.seen:
                self.duplicates += 1
                run.duplicates += 1
                if step is not None:
                    step.duplicates += 1
            else:
                self.seen.add(mid)
                run.on_msg(self, mid, f["body"])
            if run.acking and self.synced.is_set():
                self._schedule_ack(mid)
        elif kind == "receipt":
            if step is not None:
                step.receipts += 1
        elif kind == "presence":
            run.on_presence(self, f, step)
        elif kind == "ack":
            run.on_sent(f)
        elif kind == "error":
            run.on_error(f)
        elif kind not in ("group", "typing"):
            super()._on_frame(f)  # welcome, synced, pong


class Run:
    """What was sent and what arrived; ``bench`` is ``loadtest.bench``'s open-loop driver."""

    def __init__(self, max_inflight: int) -> None:
        self.bench = Bench(SimpleNamespace(max_inflight=max_inflight))  # type: ignore[arg-type]
        self.sent: dict[str, Sent] = {}
        self.acking = True
        self.frames = 0
        self.max_id = 0
        self.echoes = 0
        self.duplicates = 0
        self.stale = 0  # deliveries of messages of an earlier step
        self.errors: Counter[str] = Counter()
        self.before_welcome: Counter[str] = Counter()  # frames a node sent before welcome, by type
        self.step: Step | None = None
        self.announced: list[tuple[float, str, bool, int | None]] = []  # at observers: ms, user, online, last

    def step_now(self) -> Step | None:
        cur = self.bench.cur
        return self.step if cur is not None and cur.in_window(time.perf_counter_ns()) else None

    def on_msg(self, dev: Member, mid: int, body: str) -> None:
        self.max_id = max(self.max_id, mid)
        cid, _, rest = body.partition(SEP)
        s = self.sent.get(cid)
        if s is None or s.failed:
            self.stale += 1
            return
        if s.sender == dev.user.idx:
            self.echoes += 1
            return
        cur = self.bench.cur
        if cur is not None and cur.in_window(time.perf_counter_ns()):
            cur.delivered += 1
        if s.counted:
            s.phase.e2e.append(time.time_ns() - int(rest.partition(SEP)[0]))
        s.left -= 1
        if s.left == 0:
            self.bench.inflight -= 1

    def on_sent(self, f: dict[str, Any]) -> None:
        s = self.sent.get(f.get("cid", ""))
        if s is None or s.acked:
            return
        s.acked = True
        now = time.perf_counter_ns()
        cur = self.bench.cur
        if cur is not None and cur.in_window(now):
            cur.acked += 1
        if s.counted:
            s.phase.ack_lat.append(now - s.t)

    def on_error(self, f: dict[str, Any]) -> None:
        s = self.sent.get(str(f.get("ref", "")))
        if s is None:
            self.errors[str(f.get("code"))] += 1
            return
        s.phase.errors[str(f.get("code"))] += 1
        if not s.failed and s.left > 0:
            self.bench.inflight -= 1
        s.failed = True

    def on_presence(self, dev: Member, f: dict[str, Any], step: Step | None) -> None:
        if not dev.user.observer:
            if step is not None:
                step.presence_others += 1
            return
        if step is not None:
            step.presence_observers += 1
        now = time.time() * 1000
        for u in f.get("users", []):
            self.announced.append((now, u["user"], bool(u["online"]), u.get("last_active_at")))


async def connect(http: aiohttp.ClientSession, cluster: Cluster, run: Run, user: User, node: int | None = None,
                  cursor: int | None = None) -> Member:
    dev = Member(http, cluster.node_url(user.node if node is None else node), user, run)
    try:
        await dev.connect(cursor=cursor)
        await asyncio.wait_for(dev.synced.wait(), 15)
    except BaseException:
        await dev.close()
        raise
    user.dev = dev
    return dev


async def connect_all(http: aiohttp.ClientSession, cluster: Cluster, run: Run, users: list[User]) -> None:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(u: User) -> None:
        async with gate:
            await connect(http, cluster, run, u, cursor=run.max_id)

    await asyncio.gather(*(one(u) for u in users))


async def heal(http: aiohttp.ClientSession, cluster: Cluster, run: Run, users: list[User]) -> Counter[str]:
    """Reconnect the devices a node closed (e.g. 4009, too slow to read); returns their close codes."""
    closed = [u for u in users if u.dev is not None and u.dev.closed.done()]
    codes: Counter[str] = Counter(str(u.dev.closed.result()[0]) for u in closed if u.dev is not None)
    await connect_all(http, cluster, run, closed)
    return codes


# ---- message steps -----------------------------------------------------------------------------


async def drain(run: Run, phase: Phase, grace: float) -> dict[str, Any]:
    """Wait for acks and deliveries (``grace`` s), then for the frames to stop (backlog)."""
    mine = [s for s in run.sent.values() if s.phase is phase]
    t = time.monotonic()
    while time.monotonic() < t + grace and any(not s.failed and (not s.acked or s.left > 0) for s in mine):
        await asyncio.sleep(0.05)
    phase.drain_s = time.monotonic() - t
    run.bench.cur = None
    phase.unacked = sum(1 for s in mine if not s.acked and not s.failed)
    phase.lost = sum(1 for s in mine if s.acked and not s.failed and s.left > 0)
    lost_deliveries = sum(s.left for s in mine if s.acked and not s.failed)
    t = time.monotonic()
    frames = -1
    while frames != run.frames and time.monotonic() < t + SETTLE_S:
        frames = run.frames
        await asyncio.sleep(0.5)
    phase.settle_s = time.monotonic() - t
    phase.backlog_left = int(frames != run.frames)
    run.sent = {cid: s for cid, s in run.sent.items() if s.phase is not phase}
    run.bench.inflight = 0
    return {"lost_deliveries": lost_deliveries}


def body_of(cid: str, size: int) -> str:
    head = f"{cid}{SEP}{time.time_ns()}{SEP}"
    return head + "x" * max(0, size - len(head))


async def message_step(ctx: Context, series: str, senders: list[Sender], rate: float) -> dict[str, Any]:
    run, args = ctx.run, ctx.args
    closed = await heal(ctx.http, ctx.cluster, run, ctx.users)
    phase = run.bench.new_phase(f"{series}-{rate:g}", "parley", rate, WARMUP_S, args.step_seconds)
    prefix = secrets.token_hex(3)
    run.acking = series != "group-noack"
    run.step = step = Step()

    async def send(ph: Phase, i: int, n: int, t: int) -> None:
        s = senders[i]
        assert s.user.dev is not None and s.user.dev.ws is not None
        cid = f"{prefix}-{ph.idx}-{n}"
        run.sent[cid] = Sent(ph, s.user.idx, t, ph.in_window(t), s.fanout)
        try:
            await s.user.dev.ws.send_str(f'{{"type":"send","cid":"{cid}","conv":"{s.conv}",'
                                         f'"body":"{body_of(cid, args.body_bytes)}"}}')
        except BaseException:
            run.sent.pop(cid, None)
            raise

    await run.bench.drive(phase, len(senders), send, ctx.cpu, ctx.running)  # type: ignore[arg-type]
    extra = await drain(run, phase, args.grace)
    ctx.running.check()
    return step_result(phase, step, series, senders, closed, extra)


def step_result(phase: Phase, step: Step, series: str, senders: list[Sender], closed: Counter[str],
                extra: dict[str, Any]) -> dict[str, Any]:
    r = phase.result()
    window = r["window_s"]
    fanout = sum(s.fanout for s in senders) / len(senders)
    offered = phase.rate * window * fanout
    r.update(extra, series=series, fanout=round(fanout, 1),
             delivered_ratio=round(phase.delivered / offered, 4) if offered else None,
             duplicates=step.duplicates, receipts_per_s=round(step.receipts / window, 1),
             frames_per_s=round(step.frames / window, 1), closed_before_step=dict(closed))
    r.pop("late", None)  # not tracked here: a late delivery counts in the next step's "stale"
    return r


async def message_series(ctx: Context, series: str, senders: list[Sender]) -> list[dict[str, Any]]:
    out = []
    for rate in ctx.args.rates:
        r = await message_step(ctx, series, senders, rate)
        out.append(r)
        ok = sustained(r)
        busiest = r["cpu"].get("busiest_overall")
        say(f"  {series:>11} {rate:>6g}/s → {r['delivered_rate']:>9.1f} delivered/s, p50 {r['e2e']['p50_ms']} ms, "
            f"p99 {r['e2e']['p99_ms']} ms, lost {r['lost']}, receipts {r['receipts_per_s']:.0f}/s, busiest "
            f"{busiest} {r['cpu']['per_process'].get(busiest)}%{'' if ok else '  (not sustained: series stops)'}")
        if not ok:
            break
    return out


# ---- presence churn ----------------------------------------------------------------------------


@dataclass
class Churn:
    rng: random.Random
    online: list[User]
    offline: list[User]
    events: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)  # user → (ms, connected)
    errors: Counter[str] = field(default_factory=Counter)

    def take(self, users: list[User]) -> User:
        i = self.rng.randrange(len(users))
        users[i], users[-1] = users[-1], users[i]
        return users.pop()

    def mark(self, user: User, connected: bool, at_ms: float | None = None) -> None:
        self.events.setdefault(user.id, []).append((at_ms or time.time() * 1000, connected))


async def churn_down(ctx: Context, churn: Churn, user: User) -> None:
    dev, user.dev = user.dev, None
    churn.mark(user, False)
    if dev is not None:
        await dev.close()
    churn.offline.append(user)


async def churn_up(ctx: Context, churn: Churn, user: User, phase: Phase) -> None:
    t = time.perf_counter_ns()
    started_ms = time.time() * 1000  # the node reports a device online as it connects, before its sync ends
    try:
        await connect(ctx.http, ctx.cluster, ctx.run, user, node=churn.rng.randrange(2), cursor=ctx.run.max_id)
    except (ApiError, aiohttp.ClientError, ConnectionError, TimeoutError, OSError) as err:
        churn.errors[type(err).__name__] += 1
        churn.offline.append(user)
        return
    churn.mark(user, True, started_ms)
    churn.online.append(user)
    now = time.perf_counter_ns()
    if phase.in_window(now):
        phase.delivered += 1
    if phase.in_window(t):
        phase.e2e.append(now - t)


async def churn_step(ctx: Context, churn: Churn, rate: float) -> dict[str, Any]:
    run, args = ctx.run, ctx.args
    phase = run.bench.new_phase(f"churn-{rate:g}", "parley", rate, WARMUP_S, args.step_seconds)
    run.step = step = Step()
    run.acking = True
    tasks: set[asyncio.Task[None]] = set()
    started_ms, errors_before = time.time() * 1000, sum(churn.errors.values())

    async def cycle(ph: Phase, _k: int, _n: int, _t: int) -> None:
        if not churn.online or not churn.offline:
            raise RuntimeError("no user free to cycle (connects are slower than the rate)")
        down, up = churn.take(churn.online), churn.take(churn.offline)
        task = asyncio.get_running_loop().create_task(one(down, up, ph))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def one(down: User, up: User, ph: Phase) -> None:
        try:
            await asyncio.gather(churn_down(ctx, churn, down), churn_up(ctx, churn, up, ph))
        finally:
            run.bench.inflight -= 1

    await run.bench.drive(phase, 1, cycle, ctx.cpu, ctx.running)  # type: ignore[arg-type]
    run.bench.cur = None
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(args.presence_timeout + 1.5)  # the last offline announcements
    run.bench.inflight = 0
    ctx.running.check()
    r = phase.result()
    window = r["window_s"]
    r = {"name": phase.name, "target_cycles_per_s": rate, "window_s": window,
         "started_cycles_per_s": r["sent_rate"], "cycles_per_s": r["delivered_rate"],
         "connect_latency": r["e2e"], "client_send_lag": r["client_send_lag"], "skipped": r["send_failed"],
         "connect_errors": sum(churn.errors.values()) - errors_before, "cpu": r["cpu"],
         "presence_frames_per_s_observers": round(step.presence_observers / window, 1),
         "presence_frames_per_s_others": round(step.presence_others / window, 1)}
    t0_ms = started_ms + WARMUP_S * 1000
    r.update(presence_stats(churn, run.announced, started_ms, time.time() * 1000, (t0_ms, t0_ms + window * 1000),
                            args.presence_timeout * 1000))
    return r


def match_down(events: list[tuple[float, bool]], last_active: int | None) -> int | None:
    """The index of the disconnect an offline announcement is about (its ``last_active_at`` is the
    node's last beat for the device, sent when it disconnected)."""
    downs = [(abs(t - last_active), i) for i, (t, up) in enumerate(events) if not up] if last_active else []
    best = min(downs, default=None)
    return best[1] if best is not None and best[0] <= 2000 else None


def presence_stats(churn: Churn, announced: list[tuple[float, str, bool, int | None]], t_from: float,
                   t_to: float, window: tuple[float, float], timeout_ms: float) -> dict[str, Any]:
    seen = [a for a in announced if t_from <= a[0] < t_to]
    in_window = [a for a in seen if window[0] <= a[0] < window[1]]
    span_s = (window[1] - window[0]) / 1000
    matched: set[tuple[str, int]] = set()
    flaps, flaps_near, unmatched = 0, 0, 0
    online_delay, offline_delay = [], []
    for at, user, online, last in seen:
        events = churn.events.get(user, [])
        if online:
            ups = [t for t, up in events if up and t <= at]
            if ups:
                online_delay.append(int((at - ups[-1]) * 1e6))
            continue
        i = match_down(events, last)
        if i is None:
            unmatched += 1
            continue
        matched.add((user, i))
        offline_delay.append(int((at - events[i][0]) * 1e6))
        nxt = next((t for t, up in events[i + 1:] if up), None)
        if nxt is not None and nxt - events[i][0] < timeout_ms:
            flaps += 1
            flaps_near += int(nxt - events[i][0] >= timeout_ms - 1000)
    gaps = [(user, i, (ev[i + 1][0] if i + 1 < len(ev) else t_to) - ev[i][0], i + 1 < len(ev))
            for user, ev in churn.events.items() for i in range(len(ev)) if not ev[i][1] and t_from <= ev[i][0] < t_to]
    long = [(user, i) for user, i, gap, _ in gaps if gap >= timeout_ms + 1000]  # back later, or not yet
    return {
        "announced_online_per_s": round(sum(1 for a in in_window if a[2]) / span_s, 1),
        "announced_offline_per_s": round(sum(1 for a in in_window if not a[2]) / span_s, 1),
        "announced_total": len(seen),
        "reconnects_within_timeout": sum(1 for *_, gap, back in gaps if back and gap < timeout_ms),
        "flapped": flaps,  # announced offline although the user was back within the timeout
        "flapped_within_1s_of_timeout": flaps_near,
        "offline_longer_than_timeout_plus_1s": len(long),
        "of_which_announced_offline": sum(1 for key in long if key in matched),
        "offline_announcements_unmatched": unmatched,
        "online_delay_after_connect": latency_summary(online_delay),  # type: ignore[arg-type]
        "offline_delay_after_disconnect": latency_summary(offline_delay),  # type: ignore[arg-type]
    }


async def churn_phase(ctx: Context) -> dict[str, Any]:
    run, args, users = ctx.run, ctx.args, ctx.users
    t = time.monotonic()
    await asyncio.gather(*(u.dev.close() for u in users if u.dev is not None))
    for u in users:
        u.dev = None
    n_obs = max(1, len(users) // FRIENDS_PER_OBSERVER)
    say(f"churn setup: {n_obs} observers, each the friend of {FRIENDS_PER_OBSERVER} of the {len(users)} users")
    observers = await make_users(ctx.api, n_obs, f"o{secrets.token_hex(3)}x", first=len(users), observer=True)
    await befriend(ctx.api, [(observers[i // FRIENDS_PER_OBSERVER % n_obs], u) for i, u in enumerate(users)])
    rng = random.Random(args.seed + 1)
    online = rng.sample(users, len(users) // 2)
    up = {u.idx for u in online}
    churn = Churn(rng, list(online), [u for u in users if u.idx not in up])
    await connect_all(ctx.http, ctx.cluster, run, observers + online)
    for u in online:
        churn.mark(u, True)
    await asyncio.sleep(args.presence_timeout + 1.5)  # the group devices' offline announcements pass
    setup_s = time.monotonic() - t
    steps = []
    for rate in args.churn_rates:
        r = await churn_step(ctx, churn, rate)
        steps.append(r)
        say(f"  churn {rate:>6g}/s → {r['cycles_per_s']:.1f} cycles/s, connect p99 {r['connect_latency']['p99_ms']} "
            f"ms, presence frames at observers {r['presence_frames_per_s_observers']:.1f}/s, flapped "
            f"{r['flapped']}/{r['reconnects_within_timeout']}, busiest {r['cpu'].get('busiest_overall')}")
    await asyncio.gather(*(u.dev.close() for u in observers + users if u.dev is not None))
    return {"setup_s": round(setup_s, 1), "observers": n_obs, "friends_per_observer": FRIENDS_PER_OBSERVER,
            "steps": steps, "connect_errors": dict(churn.errors)}


# ---- the run -----------------------------------------------------------------------------------


@dataclass
class Context:
    args: argparse.Namespace
    cluster: Cluster
    running: Running
    cpu: CpuMeter
    http: aiohttp.ClientSession
    api: Api
    run: Run
    users: list[User] = field(default_factory=list)


async def run_all(args: argparse.Namespace, cluster: Cluster, procs: list[ClusterProc]) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)  # aiohttp's default of 100 would stall the 101st WebSocket
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        ctx = Context(args, cluster, Running(cluster), CpuMeter(procs), http, Api(cluster.api_url, http),
                      Run(args.max_inflight))
        t = time.monotonic()
        say(f"setup: {args.users} users, {args.groups} groups of {args.group_size}")
        ctx.users = await make_users(ctx.api, args.users, f"g{secrets.token_hex(3)}x")
        members = plan_groups(ctx.users, args.groups, args.group_size, random.Random(args.seed))
        dms, groups = await setup_messaging(ctx.api, members)
        await connect_all(http, cluster, ctx.run, ctx.users)
        setup_s = time.monotonic() - t
        per_user = Counter(u.idx for m in members for u in m)
        say(f"  done in {setup_s:.1f}s; {len(ctx.users)} devices connected, half on each node")
        series: dict[str, list[dict[str, Any]]] = {}
        for name in args.series:
            say(f"{name}: {', '.join(f'{r:g}' for r in args.rates)} msg/s, {WARMUP_S:g}+{args.step_seconds:g}s each")
            series[name] = await message_series(ctx, name, dms if name == "dm" else groups)
        churn = await churn_phase(ctx) if args.churn_rates else None
        health = {"duplicates": ctx.run.duplicates,
                  "echoes": ctx.run.echoes, "stale_deliveries": ctx.run.stale, "other_errors": dict(ctx.run.errors),
                  "frames_before_welcome": dict(ctx.run.before_welcome)}
    return {"setup_s": round(setup_s, 1),
            "workload": {"users": len(ctx.users), "groups": len(groups), "group_size": args.group_size,
                         "groups_per_user_mean": round(sum(per_user.values()) / len(ctx.users), 2),
                         "users_in_no_group": len(ctx.users) - len(per_user)},
            "messages": series, "churn": churn, "client_health": health}


# ---- report ------------------------------------------------------------------------------------


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
    lines += ["", f"client: {h['duplicates']} duplicates, {h['echoes']:,} echoes to senders, {h['stale_deliveries']:,}"
              f" deliveries of an earlier step's messages, other errors {h['other_errors']}; setup {r['setup_s']}s",
              f"frames a node sent before welcome (the protocol puts welcome first): {h['frames_before_welcome']}"]
    logs = record.get("log_issues") or {}
    lines.append("warnings/errors in the cluster logs: " + (", ".join(f"{k} {v['counts']}" for k, v in logs.items())
                                                             or "none"))
    for k, v in logs.items():
        lines += [f"  {k}: {s}" for s in v["samples"][:3]]
    return "\n".join(lines)


# ---- main --------------------------------------------------------------------------------------


def rates(p: argparse.ArgumentParser, text: str, name: str) -> list[float]:
    try:
        out = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        p.error(f"{name}: comma-separated numbers")
    if any(not 0 < r <= 10_000 for r in out):
        p.error(f"{name}: each more than 0, at most 10000")
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.groups_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--groups", type=int, default=10, help="groups, one sender (the owner) each (default 10)")
    p.add_argument("--users", type=int, default=200, help="users, one device each (default 200)")
    p.add_argument("--group-size", type=int, default=100, help="members per group, owner included (default 100)")
    p.add_argument("--rates", default="20,50,100", help="offered messages/s in total per step (default 20,50,100)")
    p.add_argument("--series", default=",".join(SERIES), help=f"message series to run, in order (default "
                   f"{','.join(SERIES)})")
    p.add_argument("--step-seconds", type=float, default=10.0, help="measured seconds per step (default 10)")
    p.add_argument("--grace", type=float, default=4.0,
                   help="seconds after a step for acks and deliveries before a message counts as lost (default 4)")
    p.add_argument("--churn-rates", default="20,50", help="presence churn cycles/s per step; '' skips (default 20,50)")
    p.add_argument("--presence-timeout", type=float, default=3.0, help="offline after this (default 3 s)")
    p.add_argument("--presence-beat", type=float, default=0.5, help="node heartbeat interval (default 0.5 s)")
    p.add_argument("--body-bytes", type=int, default=100, help="message body size (default 100)")
    p.add_argument("--max-inflight", type=int, default=2000,
                   help="messages not yet at every member above which sends are skipped (default 2000)")
    p.add_argument("--seed", type=int, default=1, help="group membership seed (default 1)")
    p.add_argument("--timeout", type=float, default=900, help="the whole run at most, seconds (default 900)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results file (default loadtest/results/groups.jsonl)")
    p.add_argument("--keep-run-dir", action="store_true", help="keep the cluster's data and logs")
    p.add_argument("--no-save", action="store_true", help="print only; append nothing")
    args = p.parse_args(argv)
    args.rates, args.churn_rates = rates(p, args.rates, "--rates"), rates(p, args.churn_rates, "--churn-rates")
    args.series = [s.strip() for s in args.series.split(",") if s.strip()]
    if any(s not in SERIES for s in args.series):
        p.error(f"--series: some of {', '.join(SERIES)}")
    if not 2 <= args.group_size <= 100 or not args.group_size <= args.users <= 2000:
        p.error("--group-size: 2 to 100 (the cluster's cap); --users: at least --group-size, at most 2000")
    if not 1 <= args.groups <= min(50, args.users // 2):
        p.error("--groups: 1 to 50, at most half of --users (every owner needs a DM peer on the other node)")
    if not 1 <= args.step_seconds <= 30 or not 0.5 <= args.grace <= 30:
        p.error("--step-seconds: 1 to 30; --grace: 0.5 to 30")
    if not 0.5 <= args.presence_timeout <= 30 or not 0.1 <= args.presence_beat <= args.presence_timeout:
        p.error("--presence-timeout: 0.5 to 30; --presence-beat: 0.1 to the timeout")
    if not 60 <= args.body_bytes <= 4000 or args.max_inflight < 1 or not 30 <= args.timeout <= 3600:
        p.error("--body-bytes: 60 to 4000; --max-inflight: at least 1; --timeout: 30 to 3600")
    return args


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_async(args: argparse.Namespace, cluster: Cluster, procs: list[ClusterProc]) -> dict[str, Any]:
    coro = asyncio.wait_for(run_all(args, cluster, procs), args.timeout)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):  # run the finally below (stop the cluster) on these too
        signal.signal(sig, _terminate)
    started = time.monotonic()
    record: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine_info(), "git": git_info(),
        "versions": versions(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                 if k not in ("keep_run_dir", "no_save")},
    }
    root = Path(tempfile.mkdtemp(prefix="parley-groups-bench-"))
    cluster: Cluster | None = None
    ok = False
    try:
        say(f"starting a cluster in {root}")
        cluster, procs = start_cluster(root, args)
        say(f"  up: {', '.join(f'{p.name}={p.proc.pid}' for p in procs)}")
        record["results"] = run_async(args, cluster, procs)
        ok = True
    except BenchError as err:
        say(f"groups_bench: {err}", err=True)
    except (ApiError, aiohttp.ClientError, ConnectionError, TimeoutError, OSError) as err:
        say(f"groups_bench: {type(err).__name__}: {err}", err=True)
    except KeyboardInterrupt:
        say("groups_bench: interrupted", err=True)
    finally:
        if cluster is not None:
            cluster.shutdown()  # first: nothing below may leave the cluster running
            say("cluster stopped")
        record["log_issues"] = scan_logs(root)
        if args.keep_run_dir or not ok:
            say(f"run dir kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if not ok:
        return 1
    record["duration_s"] = round(time.monotonic() - started, 1)
    if not args.no_save:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(record, separators=(",", ":")) + "\n")
    say(report(record))
    if not args.no_save:
        out = args.out.resolve()
        say(f"\nappended to {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}; took "
            f"{record['duration_s']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
