"""Group fan-out and presence churn: what 100-member groups and connect/disconnect churn cost, per process.

    .venv/bin/python -m parley.loadtest.groups_bench [--groups G] [--users N] [--rates 20,50,100] [--churn-rates 20,50]

One run, all on 127.0.0.1 and bounded in time (steps of about 15 s; about 4 minutes at the defaults):

1. Starts its own cluster (``parley.tools.cluster``: nats-server from the wheel, discovery, archiver,
   presence, API and two nodes, each a process on free ports in a temp dir) with cheap Argon2, no
   per-user rate limit, and presence beats every 0.5 s with a 3 s offline timeout
   (``--presence-timeout``) so that transitions happen within a step.
2. Signs up N users (``--users``), one device each, alternating node1/node2. G groups (``--groups``):
   group g is owned by user g and holds ``--group-size`` - 1 more users drawn at random (seeded), so
   groups overlap; the owner befriends them first (only friends can be added). For the DM baseline
   each owner also opens a DM with one of its members on the other node.
3. Message steps, one per offered rate (``--rates``: group messages/s in total over the G owners,
   round-robin, open loop, ``harness.load``) for ``--step-seconds`` after 1 s uncounted.
   Three series, in this order: ``dm`` (the same owners sending DMs: fan-out 1), ``group-noack``
   (devices do not ack, so nodes announce no delivered receipts) and ``group`` (every device acks what
   it gets, as real clients do, and each ack makes a delivered receipt for the whole group). Each body
   carries its send time (``time.time_ns()``) and every receiving device measures the end-to-end
   latency. Per step: delivered device-messages/s (the sender's own echo is not counted), e2e
   p50/p99, lost (acked, but some member's device did not get it within ``--grace`` s), duplicates,
   receipt frames/s, devices the nodes closed, and CPU % per process (``harness.meter``) with CPU
   ms per delivered device-message. A series stops at its first step that is not sustained (delivered
   < 90% of offered x fan-out, p99 > 1 s, or a loss); closed devices reconnect between steps, from
   the cursor they were last offered (protocol v2), so what they missed comes then (counted as stale
   deliveries; before v2 they skipped it by resuming from the newest id seen).
4. Presence churn (``--churn-rates``, cycles/s; a cycle = one disconnect + one connect): N/10
   observers, each the friend of 10 of the N users, stay connected; half of the users are online and
   each cycle disconnects a random online user and connects a random offline one on a random node.
   Per step: achieved cycles/s, connect latency (hello to synced), presence frames/s at the observers
   (and at other devices: group owners are friends of their members), online/offline transitions
   announced per second, reconnects within the timeout and how many of them still flapped, offline
   periods longer than the timeout and how many were announced, announcement delays, CPU per process
   (``loadtest.presence_churn``).
5. Prints the tables (``loadtest.groups_report``) and appends one JSON line to
   ``loadtest/results/groups.jsonl`` (``--out``).

The load generator shares the machine with the cluster; its CPU is reported as ``client``. Nothing
here asserts on timing: the exit status is non-zero only on errors.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiohttp
from parley.loadtest.bench_report import sustained
from parley.loadtest.groups_report import report
from parley.loadtest.harness import accounts, record
from parley.loadtest.harness.accounts import Account
from parley.loadtest.harness.chains import Chains
from parley.loadtest.harness.device import LoadDevice
from parley.loadtest.harness.load import OpenLoop, Phase
from parley.loadtest.harness.meter import CpuMeter
from parley.loadtest.harness.session import (
    RUN_ERRORS,
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
from parley.loadtest.presence_churn import Announcement, Churn, presence_stats
from parley.tools.client import Api
from parley.tools.cluster import Cluster

SERIES = ("dm", "group-noack", "group")
WARMUP_S = 1.0
SETTLE_S = 10.0  # after the grace period, wait this long at most for the frames to stop
SEP = "|"
FRIENDS_PER_OBSERVER = 10
API_CONCURRENCY = 8
CONNECT_CONCURRENCY = 20


@dataclass
class User:
    idx: int
    account: Account
    node: int  # 0: node1, 1: node2
    observer: bool = False
    dev: LoadDevice | None = None
    cursor: str | None = None  # the newest cursor its device was offered, kept while it is offline
    chains: Chains = field(default_factory=Chains)  # its device's prev chains, across reconnects

    @property
    def id(self) -> str:
        return self.account.id


@dataclass
class Sender:
    user: User
    conv: str
    fanout: int  # member devices other than the sender's own


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


class Run(OpenLoop):
    """The open loop plus what was sent and what arrived, for every device (the devices' ``FrameSink``)."""

    def __init__(self, max_inflight: int) -> None:
        super().__init__(max_inflight)
        self.sent: dict[str, Sent] = {}
        self.acking = True
        self.frames = self.echoes = self.duplicates = 0
        self.resent = 0  # re-sent after a reconnect (what followed the device's cursor), dropped: allowed
        self.stale = 0  # deliveries of messages of an earlier step
        self.errors: Counter[str] = Counter()
        self.before_welcome: Counter[str] = Counter()  # frames a node sent before welcome, by type
        self.step: Step | None = None
        self.announced: list[Announcement] = []  # at the observers

    def on_frame(self, dev: LoadDevice, kind: str, f: dict[str, Any], now: int) -> None:
        if kind == "before-welcome":  # reported again as its own type right after
            self.before_welcome[str(f.get("type"))] += 1
            return
        self.frames += 1
        step = self.step if self.in_window(now) else None
        if step is not None:
            step.frames += 1
        if kind == "msg":
            self.on_msg(dev.tag, f["body"], now)
        elif kind == "resent":
            self.resent += 1
        elif kind == "duplicate":
            self.duplicates += 1
            if step is not None:
                step.duplicates += 1
        elif kind == "receipt" and step is not None:
            step.receipts += 1
        elif kind == "presence":
            self.on_presence(dev.tag, f, step)
        elif kind == "ack":
            self.on_sent(f, now)
        elif kind == "error":
            self.on_error(f)

    def on_msg(self, user: User, body: str, now: int) -> None:
        cid, _, rest = body.partition(SEP)
        s = self.sent.get(cid)
        if s is None or s.failed:
            self.stale += 1
            return
        if s.sender == user.idx:
            self.echoes += 1
            return
        if (cur := self.in_window(now)) is not None:
            cur.delivered += 1
        if s.counted:
            s.phase.e2e.append(time.time_ns() - int(rest.partition(SEP)[0]))
        s.left -= 1
        if s.left == 0:
            self.inflight -= 1

    def on_sent(self, f: dict[str, Any], now: int) -> None:
        s = self.sent.get(f.get("cid", ""))
        if s is None or s.acked:
            return
        s.acked = True
        if (cur := self.in_window(now)) is not None:
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
            self.inflight -= 1
        s.failed = True

    def on_presence(self, user: User, f: dict[str, Any], step: Step | None) -> None:
        if not user.observer:
            if step is not None:
                step.presence_others += 1
            return
        if step is not None:
            step.presence_observers += 1
        now = time.time() * 1000
        for u in f.get("users", []):
            self.announced.append((now, u["user"], bool(u["online"]), u.get("last_active_at")))


@dataclass
class Context:
    args: argparse.Namespace
    cluster: Cluster
    meter: CpuMeter
    http: aiohttp.ClientSession
    api: Api
    run: Run
    users: list[User] = field(default_factory=list)
    observers: list[User] = field(default_factory=list)  # presence churn's

    def check(self) -> None:
        require_running(self.cluster)


# ---- users, groups, devices --------------------------------------------------------------------


async def make_users(api: Api, count: int, prefix: str, first: int = 0, observer: bool = False) -> list[User]:
    made = await accounts.sign_up(api, accounts.names(prefix, count), API_CONCURRENCY)
    return [User(first + i, a, (first + i) % 2, observer) for i, a in enumerate(made)]


async def befriend(api: Api, pairs: list[tuple[User, User]]) -> None:
    await accounts.befriend(api, [(a.account, b.account) for a, b in pairs], API_CONCURRENCY)


def plan_groups(users: list[User], groups: int, size: int, rng: random.Random) -> list[list[User]]:
    """Group g: owner ``users[g]`` first, then ``size - 1`` others at random."""
    return [[users[g], *rng.sample([u for u in users if u is not users[g]], size - 1)] for g in range(groups)]


async def setup_messaging(api: Api, members: list[list[User]]) -> tuple[list[Sender], list[Sender]]:
    pairs = {frozenset((m[0].idx, u.idx)): (m[0], u) for m in members for u in m[1:]}
    say(f"  {len(pairs)} friendships ({2 * len(pairs)} requests)")
    await befriend(api, list(pairs.values()))
    groups, dms = [], []
    taken: set[int] = set()
    for m in members:
        owner = m[0]
        out = await api.call("POST", "/v1/groups", owner.account.token, {"name": f"bench {owner.idx}",
                                                                         "members": [u.id for u in m[1:]]})
        groups.append(Sender(owner, out["conversation"]["id"], len(m) - 1))
        peer = next((u for u in m[1:] if u.node != owner.node and u.idx not in taken), m[1])
        taken.add(peer.idx)
        dms.append(Sender(owner, await accounts.open_dm(api, owner.account, peer.account), 1))
    return dms, groups


async def connect(ctx: Context, user: User, node: int | None = None) -> LoadDevice:
    """Connect (again) the user's one device, resuming from the cursor it was last offered: what came
    after it is synced (an earlier step's messages count as stale; re-sent ones are dropped)."""
    if user.dev is not None:
        user.cursor = user.dev.cursor
    dev = LoadDevice(ctx.http, ctx.cluster.node_url(user.node if node is None else node), user.account.token,
                     ctx.run, user, user.chains)
    try:
        await dev.connect(cursor=user.cursor)
        await asyncio.wait_for(dev.synced.wait(), 15)
    except BaseException:
        await dev.close()
        raise
    user.dev = dev
    return dev


async def connect_all(ctx: Context, users: list[User]) -> None:
    await bounded([partial(connect, ctx, u) for u in users], CONNECT_CONCURRENCY)


async def heal(ctx: Context) -> Counter[str]:
    """Reconnect the devices a node closed (e.g. 4009, too slow to read); returns their close codes."""
    closed = [u for u in ctx.users if u.dev is not None and u.dev.closed.done()]
    codes: Counter[str] = Counter(str(u.dev.closed.result()[0]) for u in closed if u.dev is not None)
    await connect_all(ctx, closed)
    return codes


# ---- message steps -----------------------------------------------------------------------------


async def drain(run: Run, phase: Phase, grace: float) -> dict[str, Any]:
    """Wait for acks and deliveries (``grace`` s), then for the frames to stop (backlog)."""
    mine = [s for s in run.sent.values() if s.phase is phase]
    t = time.monotonic()
    while time.monotonic() < t + grace and any(not s.failed and (not s.acked or s.left > 0) for s in mine):
        await asyncio.sleep(0.05)
    phase.drain_s = time.monotonic() - t
    run.cur = None
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
    run.inflight = 0
    return {"lost_deliveries": lost_deliveries}


def body_of(cid: str, size: int) -> str:
    head = f"{cid}{SEP}{time.time_ns()}{SEP}"
    return head + "x" * max(0, size - len(head))


async def message_step(ctx: Context, series: str, senders: list[Sender], rate: float) -> dict[str, Any]:
    run, args = ctx.run, ctx.args
    closed = await heal(ctx)
    phase = run.new_phase(f"{series}-{rate:g}", "parley", rate, WARMUP_S, args.step_seconds)
    prefix = secrets.token_hex(3)
    run.acking = series != "group-noack"
    run.step = step = Step()

    async def send(ph: Phase, i: int, n: int, t: int) -> None:
        s = senders[i]
        assert s.user.dev is not None
        cid = f"{prefix}-{ph.idx}-{n}"
        run.sent[cid] = Sent(ph, s.user.idx, t, ph.in_window(t), s.fanout)
        try:
            await s.user.dev.send_message(cid, s.conv, body_of(cid, args.body_bytes))
        except BaseException:
            run.sent.pop(cid, None)
            raise

    await run.drive(phase, len(senders), send, ctx.meter, ctx.check)
    extra = await drain(run, phase, args.grace)
    ctx.check()
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


def now_ms() -> float:
    return time.time() * 1000


async def churn_down(churn: Churn[User], user: User) -> None:
    dev, user.dev = user.dev, None
    churn.mark(user.id, False, now_ms())
    if dev is not None:
        user.cursor = dev.cursor
        await dev.close()
    churn.offline.append(user)


async def churn_up(ctx: Context, churn: Churn[User], user: User, phase: Phase) -> None:
    t = time.perf_counter_ns()
    started_ms = now_ms()  # the node reports a device online as it connects, before its sync ends
    try:
        await connect(ctx, user, node=churn.rng.randrange(2))
    except RUN_ERRORS as err:
        churn.errors[type(err).__name__] += 1
        churn.offline.append(user)
        return
    churn.mark(user.id, True, started_ms)
    churn.online.append(user)
    now = time.perf_counter_ns()
    if phase.in_window(now):
        phase.delivered += 1
    if phase.in_window(t):
        phase.e2e.append(now - t)


async def churn_step(ctx: Context, churn: Churn[User], rate: float) -> dict[str, Any]:
    run, args = ctx.run, ctx.args
    phase = run.new_phase(f"churn-{rate:g}", "parley", rate, WARMUP_S, args.step_seconds)
    run.step = step = Step()
    run.acking = True
    tasks: set[asyncio.Task[None]] = set()
    started_ms, errors_before = now_ms(), sum(churn.errors.values())

    async def cycle(ph: Phase, _k: int, _n: int, _t: int) -> None:
        if not churn.online or not churn.offline:
            raise RuntimeError("no user free to cycle (connects are slower than the rate)")
        task = asyncio.get_running_loop().create_task(one(churn.take(churn.online), churn.take(churn.offline), ph))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def one(down: User, up: User, ph: Phase) -> None:
        try:
            await asyncio.gather(churn_down(churn, down), churn_up(ctx, churn, up, ph))
        finally:
            run.inflight -= 1

    await run.drive(phase, 1, cycle, ctx.meter, ctx.check)
    run.cur = None
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(args.presence_timeout + 1.5)  # the last offline announcements
    run.inflight = 0
    ctx.check()
    r = phase.result()
    window = r["window_s"]
    t0_ms = started_ms + WARMUP_S * 1000
    return {"name": phase.name, "target_cycles_per_s": rate, "window_s": window,
            "started_cycles_per_s": r["sent_rate"], "cycles_per_s": r["delivered_rate"],
            "connect_latency": r["e2e"], "client_send_lag": r["client_send_lag"], "skipped": r["send_failed"],
            "connect_errors": sum(churn.errors.values()) - errors_before, "cpu": r["cpu"],
            "presence_frames_per_s_observers": round(step.presence_observers / window, 1),
            "presence_frames_per_s_others": round(step.presence_others / window, 1),
            **presence_stats(churn, run.announced, started_ms, now_ms(), (t0_ms, t0_ms + window * 1000),
                             args.presence_timeout * 1000)}


async def churn_setup(ctx: Context) -> Churn[User]:
    """Everyone offline; observers (each the friend of FRIENDS_PER_OBSERVER users) and half the users online."""
    users = ctx.users
    await asyncio.gather(*(u.dev.close() for u in users if u.dev is not None))
    for u in users:
        u.dev = None
    n_obs = max(1, len(users) // FRIENDS_PER_OBSERVER)
    say(f"churn setup: {n_obs} observers, each the friend of {FRIENDS_PER_OBSERVER} of the {len(users)} users")
    ctx.observers = await make_users(ctx.api, n_obs, "o", first=len(users), observer=True)
    await befriend(ctx.api, [(ctx.observers[i // FRIENDS_PER_OBSERVER % n_obs], u) for i, u in enumerate(users)])
    rng = random.Random(ctx.args.seed + 1)
    online = rng.sample(users, len(users) // 2)
    up = {u.idx for u in online}
    churn = Churn(rng, list(online), [u for u in users if u.idx not in up])
    await connect_all(ctx, ctx.observers + online)
    for u in online:
        churn.mark(u.id, True, now_ms())
    await asyncio.sleep(ctx.args.presence_timeout + 1.5)  # the group devices' offline announcements pass
    return churn


async def churn_phase(ctx: Context) -> dict[str, Any]:
    t = time.monotonic()
    churn = await churn_setup(ctx)
    setup_s = time.monotonic() - t
    steps = []
    for rate in ctx.args.churn_rates:
        r = await churn_step(ctx, churn, rate)
        steps.append(r)
        say(f"  churn {rate:>6g}/s → {r['cycles_per_s']:.1f} cycles/s, connect p99 {r['connect_latency']['p99_ms']} "
            f"ms, presence frames at observers {r['presence_frames_per_s_observers']:.1f}/s, flapped "
            f"{r['flapped']}/{r['reconnects_within_timeout']}, busiest {r['cpu'].get('busiest_overall')}")
    await asyncio.gather(*(u.dev.close() for u in ctx.observers + ctx.users if u.dev is not None))
    return {"setup_s": round(setup_s, 1), "observers": len(ctx.observers),
            "friends_per_observer": FRIENDS_PER_OBSERVER, "steps": steps, "connect_errors": dict(churn.errors)}


# ---- the run -----------------------------------------------------------------------------------


async def run_all(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)  # aiohttp's default of 100 would stall the 101st WebSocket
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        ctx = Context(args, cluster, CpuMeter(cluster.pids()), http, Api(cluster.api_url, http),
                      Run(args.max_inflight))
        t = time.monotonic()
        say(f"setup: {args.users} users, {args.groups} groups of {args.group_size}")
        ctx.users = await make_users(ctx.api, args.users, "g")
        members = plan_groups(ctx.users, args.groups, args.group_size, random.Random(args.seed))
        dms, groups = await setup_messaging(ctx.api, members)
        await connect_all(ctx, ctx.users)
        setup_s = time.monotonic() - t
        per_user = Counter(u.idx for m in members for u in m)
        say(f"  done in {setup_s:.1f}s; {len(ctx.users)} devices connected, half on each node")
        series: dict[str, list[dict[str, Any]]] = {}
        for name in args.series:
            say(f"{name}: {', '.join(f'{r:g}' for r in args.rates)} msg/s, {WARMUP_S:g}+{args.step_seconds:g}s each")
            series[name] = await message_series(ctx, name, dms if name == "dm" else groups)
        churn = await churn_phase(ctx) if args.churn_rates else None
        health = {"duplicates": ctx.run.duplicates, "resent": ctx.run.resent, "echoes": ctx.run.echoes,
                  "stale_deliveries": ctx.run.stale,
                  "other_errors": dict(ctx.run.errors), "frames_before_welcome": dict(ctx.run.before_welcome)}
    return {"setup_s": round(setup_s, 1),
            "workload": {"users": len(ctx.users), "groups": len(groups), "group_size": args.group_size,
                         "groups_per_user_mean": round(sum(per_user.values()) / len(ctx.users), 2),
                         "users_in_no_group": len(ctx.users) - len(per_user)},
            "messages": series, "churn": churn, "client_health": health}


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, record.Recorder]:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.groups_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--groups", type=within(1, 50, int), default=10,
                   help="groups, one sender (the owner) each, at most half of --users (default 10)")
    p.add_argument("--users", type=within(2, 2000, int), default=200, help="users, one device each (default 200)")
    p.add_argument("--group-size", type=within(2, 100, int), default=100,
                   help="members per group, owner included, at most --users (default 100, the cluster's cap)")
    p.add_argument("--rates", type=numbers(0.001, 10_000), default=[20.0, 50.0, 100.0],
                   help="offered messages/s in total per step (default 20,50,100)")
    p.add_argument("--series", default=",".join(SERIES), help=f"message series to run, in order (default "
                   f"{','.join(SERIES)})")
    p.add_argument("--step-seconds", type=within(1, 30), default=10.0, help="measured seconds per step (default 10)")
    p.add_argument("--grace", type=within(0.5, 30), default=4.0,
                   help="seconds after a step for acks and deliveries before a message counts as lost (default 4)")
    p.add_argument("--churn-rates", type=numbers(0.001, 10_000), default=[20.0, 50.0],
                   help="presence churn cycles/s per step; '' skips (default 20,50)")
    p.add_argument("--presence-timeout", type=within(0.5, 30), default=3.0, help="offline after this (default 3 s)")
    p.add_argument("--presence-beat", type=within(0.1, 30), default=0.5,
                   help="node heartbeat interval, at most the timeout (default 0.5 s)")
    p.add_argument("--body-bytes", type=within(60, 4000, int), default=100, help="message body size (default 100)")
    p.add_argument("--max-inflight", type=within(1, 10**9, int), default=2000,
                   help="messages not yet at every member above which sends are skipped (default 2000)")
    p.add_argument("--seed", type=int, default=1, help="group membership seed (default 1)")
    p.add_argument("--timeout", type=within(30, 3600), default=900,
                   help="the whole run at most, seconds (default 900)")
    p.add_argument("--keep-run-dir", action="store_true", help="keep the cluster's data and logs")
    record.add_options(p, "groups.jsonl")
    args = p.parse_args(argv)
    args.series = [s.strip() for s in args.series.split(",") if s.strip()]
    if any(s not in SERIES for s in args.series):
        p.error(f"--series: some of {', '.join(SERIES)}")
    if args.group_size > args.users or args.groups > args.users // 2 or args.presence_beat > args.presence_timeout:
        p.error("--group-size at most --users; --groups at most half of --users (every owner needs a DM peer on the "
                "other node); --presence-beat at most --presence-timeout")
    return args, record.recorder(p, args)


def main(argv: list[str] | None = None) -> int:
    args, recorder = parse_args(argv)
    stop_on_signals()
    started = time.monotonic()
    rec = recorder.new_record(args)
    overrides = dict(rate_per_s=100_000.0, rate_burst=100_000, presence_beat_s=args.presence_beat,
                     presence_timeout_s=args.presence_timeout, log_level="INFO")

    def work() -> dict[str, Any]:
        with scratch_cluster(rec, "parley-groups-bench-", args.keep_run_dir, **overrides) as cluster:
            return run_async(asyncio.wait_for(run_all(args, cluster), args.timeout))

    results = guarded("groups_bench", work)
    if results is None:
        return 1
    rec["results"] = results
    rec["duration_s"] = round(time.monotonic() - started, 1)
    note = recorder.append(rec)
    say(report(rec))
    say(f"\n{note}; took {rec['duration_s']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
