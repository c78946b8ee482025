"""The store benchmark: SQLite and Cassandra side by side in one run, through the code production runs.

    .venv/bin/python -m parley.loadtest.store_bench [--messages N] [--only sqlite|cassandra] [--cassandra-dir DIR]

Both backends get the same generated workload (seeded): DM conversations (2,000 by default) between
random users, five "hot" ones taking 40% of the messages (conversation 0 alone 20%), bodies of about
60-200 bytes, message timestamps spaced so the run covers weeks (``--msgs-per-day``; Cassandra buckets
by the default 10-day window). For each backend, all on 127.0.0.1 and bounded in time:

1. Archiver inserts/s: a fresh nats-server (temp dir, free port) with the MSG stream (``bus.ensure_stream``);
   N payloads (``encode_payload``) are published to ``msg.<conversation>`` *before* the archiver starts,
   and the stream is checked to hold exactly ids 1..N. Then one ``python -m parley archiver`` process
   (production settings: batches of 500, 4 in flight) drains them into the store; the clock runs from its
   /readyz to the consumer's ack floor (``bus.archived_through``) reaching N. CPU seconds per 1k messages
   of the archiver, nats-server and Cassandra over that window (psutil).
2. put_messages inserts/s: this process writes batches of 500 straight to the store (no NATS), 1 and then
   4 batches in flight, ``--put-messages`` each; per-batch latency too.
3. Read latency on the store afterwards, one read at a time, ``--reads`` each after 5 uncounted: history's
   newest page (50, newest first) and the page 10,000 messages back in conversation 0 (which holds at least
   20,000 messages: topped up, untimed, if steps 1-2 left it smaller), and a sync page (``messages_for_user``,
   200 after a cursor 1,000 messages back) for a user in 50 conversations. Every result is checked
   against the ids the workload knows (``wrong_results``).

Cassandra: its own instance in a temp dir (``cassandra_runner``, ``--heap``), stopped at the end, unless
``--cassandra-dir`` names a running one; a fresh keyspace ``bench_<hex>`` per run, dropped at the end
unless ``--keep-keyspace``. SQLite: a file in the temp dir. Note the durability asymmetry: SQLite fsyncs
every batch (synchronous=FULL), the runner's Cassandra syncs its commit log every 10 s (periodic).

Prints a table (sqlite, cassandra, cassandra/sqlite) and appends one JSON line to
``loadtest/results/store.jsonl`` (``--out``). The exit status is non-zero only on errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from parley.loadtest.bench import (
    ROOT,
    BenchError,
    ClusterProc,
    CpuMeter,
    _die_with_parent,
    _free_port,
    fmt,
    git_info,
    latency_summary,
    machine_info,
    ratio,
    say,
    scan_logs,
    versions,
)

from parley import bus, cassandra_runner, natsserver
from parley.errors import ParleyError
from parley.ids import DeviceId, MessageId, UserId, dm_conversation, message_subject, new_device_id, new_user_id
from parley.messages import encode_payload
from parley.settings import Secret, Settings
from parley.store import Conversation, Store, StoredMessage, open_store

RESULTS = Path(__file__).resolve().parent / "results" / "store.jsonl"
BACKENDS = ("sqlite", "cassandra")
BATCH = 500  # like the archiver (Settings.archiver_batch)
IN_FLIGHT = (1, 4)  # put_messages levels
HOT_MIN = 20_000  # conversation 0 holds at least this many messages for the reads
PAGE, PAGE_BACK = 50, 10_000  # history pages: the newest, and the one starting 10,000 messages back
SYNC_CONVS, SYNC_BACK, SYNC_LIMIT = 50, 1_000, 200
HOT_SHARES = {0: 0.20, 1: 0.05, SYNC_CONVS + 1: 0.05, SYNC_CONVS + 2: 0.05, SYNC_CONVS + 3: 0.05}
WARM_READS = 5
PUBLISH_WINDOW = 2_000  # core publishes between checks that the stream stored them all
POLL_S = 0.02
STALL_S = 60.0  # no progress this long: the phase failed
BODY_MIN, BODY_MAX, BODY_POOL = 60, 200, 4096
WORDS = ("ok sure see you at the station tomorrow did you get my message running late can't make it "
         "tonight what about lunch sounds good thanks a lot call me when you're free the meeting moved "
         "to three I'll bring the keys where are you now just landed happy birthday 🎉 café déjà vu").split()


# ---- the workload ---------------------------------------------------------------------------------


@dataclass
class Plan:
    """Every message id's conversation, sender, body and time; one plan serves both backends."""

    archived: int  # ids 1..archived go through the stream and the archiver
    put: int  # then this many per put_messages level
    topped_up: int  # then this many more in conversation 0, so it holds at least HOT_MIN
    convs: list[Conversation]
    sync_user: UserId
    devices: dict[UserId, DeviceId]
    conv_of: array[int]  # by id - 1
    prev: array[int]
    side: bytearray  # which member sent it
    bodies: list[str]
    t0_ms: int
    step_ms: int
    hot_ids: list[int]  # conversation 0's ids, ascending
    sync_ids: list[int]  # the sync user's ids, ascending

    @property
    def total(self) -> int:
        return len(self.conv_of)

    def put_ids(self, level: int) -> range:
        start = self.archived + level * self.put + 1
        return range(start, start + self.put)

    def topup_ids(self) -> range:
        return range(self.archived + len(IN_FLIGHT) * self.put + 1, self.total + 1)

    def message(self, mid: int) -> StoredMessage:
        conv = self.convs[self.conv_of[mid - 1]]
        sender = conv.members[self.side[mid - 1]]
        return StoredMessage(MessageId(mid), conv.id, self.prev[mid - 1], sender, self.devices[sender],
                             f"{mid * 0x9E3779B97F4A7C15 % 2**64:016x}", self.bodies[mid % BODY_POOL],
                             self.t0_ms + mid * self.step_ms)

    def payload(self, mid: int) -> tuple[str, bytes]:
        m = self.message(mid)
        return message_subject(m.conv), encode_payload(sender=m.sender, device=m.device, cid=m.cid, body=m.body,
                                                       ts=m.ts, prev=m.prev)


def _body(rng: random.Random) -> str:
    target, words, size = rng.randint(BODY_MIN, BODY_MAX), [], -1
    while size < target:
        word = rng.choice(WORDS)
        words.append(word)
        size += len(word.encode()) + 1
    return " ".join(words)


def _pairs(rng: random.Random, pool: list[UserId], sync_user: UserId, n: int) -> list[tuple[UserId, UserId]]:
    """Conversation 0 (two pool users), then the sync user's DMs, then random distinct pairs."""
    pairs = [(pool[0], pool[1])] + [(sync_user, pool[2 + i]) for i in range(SYNC_CONVS)]
    seen = {frozenset(p) for p in pairs}
    while len(pairs) < n:
        a, b = rng.sample(pool, 2)
        if frozenset((a, b)) not in seen:
            seen.add(frozenset((a, b)))
            pairs.append((a, b))
    return pairs


def _assign(rng: random.Random, convs: int, n: int) -> list[int]:
    """A conversation index per message: the hot ones by HOT_SHARES, the rest uniformly."""
    rest = (1 - sum(HOT_SHARES.values())) / (convs - len(HOT_SHARES))
    weights = [HOT_SHARES.get(i, rest) for i in range(convs)]
    assigned = rng.choices(range(convs), weights=weights, k=n)
    return assigned + [0] * max(0, HOT_MIN - assigned.count(0))


def build_plan(args: argparse.Namespace) -> Plan:
    rng = random.Random(args.seed)
    sync_user = new_user_id()
    pool = [new_user_id() for _ in range(max(SYNC_CONVS + 2, args.conversations // 2))]
    devices = {u: new_device_id() for u in [sync_user, *pool]}
    assigned = _assign(rng, args.conversations, args.messages + len(IN_FLIGHT) * args.put_messages)
    step_ms = 86_400_000 // args.msgs_per_day
    t0_ms = int(time.time() * 1000) - len(assigned) * step_ms
    convs = [Conversation(dm_conversation(a, b), "dm", tuple(sorted((a, b))), t0_ms)
             for a, b in _pairs(rng, pool, sync_user, args.conversations)]
    last = [0] * len(convs)
    prev = array("q", bytes(8 * len(assigned)))
    for i, c in enumerate(assigned):
        prev[i], last[c] = last[c], i + 1
    mine = {i for i, c in enumerate(convs) if sync_user in c.members}
    return Plan(archived=args.messages, put=args.put_messages,
                topped_up=len(assigned) - args.messages - len(IN_FLIGHT) * args.put_messages, convs=convs,
                sync_user=sync_user, devices=devices, conv_of=array("I", assigned), prev=prev,
                side=bytearray(b & 1 for b in rng.randbytes(len(assigned))),
                bodies=[_body(rng) for _ in range(BODY_POOL)], t0_ms=t0_ms, step_ms=step_ms,
                hot_ids=[i + 1 for i, c in enumerate(assigned) if c == 0],
                sync_ids=[i + 1 for i, c in enumerate(assigned) if c in mine])


def describe(plan: Plan) -> dict[str, Any]:
    bucket_ms = Settings().cassandra_bucket_s * 1000
    sizes = [len(b.encode()) for b in plan.bodies]
    return {
        "ids": plan.total, "archived": plan.archived, "put_per_level": plan.put, "topped_up": plan.topped_up,
        "conversations": len(plan.convs), "users": len(plan.devices), "hot_shares": HOT_SHARES,
        "read_conversation_messages": len(plan.hot_ids),
        "read_conversation_buckets": len({(plan.t0_ms + i * plan.step_ms) // bucket_ms for i in plan.hot_ids}),
        "sync_user_conversations": sum(plan.sync_user in c.members for c in plan.convs),
        "sync_user_messages": len(plan.sync_ids),
        "span_days": round(plan.total * plan.step_ms / 86_400_000, 1),
        "body_bytes": {"min": min(sizes), "mean": round(sum(sizes) / len(sizes), 1), "max": max(sizes),
                       "distinct": BODY_POOL},
    }


# ---- processes ------------------------------------------------------------------------------------


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


def stop_proc(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_nats(work: Path, log: Path, taken: set[int]) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port(taken)
    taken.add(port)
    proc = natsserver.start(port, work / "nats", log)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"nats-server exited at start-up:\n{_tail(log)}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.05)
    stop_proc(proc)
    raise BenchError(f"nats-server did not open port {port}:\n{_tail(log)}")


def spawn_archiver(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update(settings.as_env())
    with open(log, "ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", "parley", "archiver"], cwd=ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=_die_with_parent)


async def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"the archiver exited with {proc.returncode} at start-up:\n{_tail(log)}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise BenchError(f"the archiver was not ready in {timeout:.0f}s:\n{_tail(log)}")


@contextlib.contextmanager
def cassandra_instance(args: argparse.Namespace, work: Path) -> Iterator[cassandra_runner.Instance]:
    """The instance in --cassandra-dir (left running), else our own in the temp dir (stopped)."""
    if args.cassandra_dir:
        where = Path(args.cassandra_dir)
        instance = cassandra_runner.read_instance(where)
        if cassandra_runner.running_pid(where) is None:
            raise BenchError(f"no Cassandra is running in {where}")
        cassandra_runner.wait_cql(where, instance.cql_port, timeout=60)
        yield instance
        return
    where = work / "cassandra"
    where.mkdir()
    say(f"  starting Cassandra (heap {args.heap}) in {where}")
    try:
        yield cassandra_runner.start(where, cql_port=0, storage_port=0, heap=args.heap, jmx_port=None,
                                     tie_to_parent=True)
    finally:
        cassandra_runner.stop(where)


def drop_keyspace(port: int, keyspace: str) -> None:
    from cassandra.cluster import Cluster

    cluster = Cluster(["127.0.0.1"], port=port, connect_timeout=5)
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        cluster.shutdown()


# ---- measurement ----------------------------------------------------------------------------------


async def limited(calls: Iterable[Awaitable[Any]], n: int) -> None:
    """Await ``calls`` with at most ``n`` in flight (they are created lazily)."""
    it = iter(calls)

    async def worker() -> None:
        for call in it:
            await call

    await asyncio.gather(*(worker() for _ in range(n)))


def cost(n: int, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Rate and CPU between two CpuMeter snapshots over which ``n`` messages were written."""
    wall = b["t"] - a["t"]
    cpu = {k: round(b[k] - a[k], 3) for k in a if k not in ("t", "_machine_busy") and None not in (a[k], b.get(k))}
    return {"messages": n, "seconds": round(wall, 3), "inserts_per_s": round(n / wall, 1) if wall > 0 else None,
            "cpu_s": cpu, "cpu_s_per_1k": {k: round(v * 1000 / n, 4) for k, v in cpu.items()},
            "cpu": with_verdict(CpuMeter.diff(a, b))}


def with_verdict(cpu: dict[str, Any]) -> dict[str, Any]:
    """CpuMeter's verdict calls any busy process single-core Python; Cassandra's JVM is neither."""
    python = {k: v for k, v in cpu["per_process"].items() if k in ("archiver", "client") and v is not None}
    found = [f"{k} is CPU-bound (one Python process, one core)" for k, v in python.items() if v >= 90]
    if cpu["machine_busy"] is not None and cpu["machine_busy"] >= 0.9 * cpu["capacity"]:
        found.append("all cores were busy (>= 90% of the machine): the machine's CPU is the limit")
    return {**cpu, "verdict": "; ".join(found) or "no Python process and not the machine is CPU-bound"}


async def publish_all(nc: bus.BusClient, settings: Settings, plan: Plan) -> float:
    """Core-publish ids 1..archived in order, a window at a time, each window checked stored in full."""
    started = time.perf_counter()
    for start in range(1, plan.archived + 1, PUBLISH_WINDOW):
        end = min(start + PUBLISH_WINDOW, plan.archived + 1)
        for mid in range(start, end):
            await nc.publish(*plan.payload(mid))
        await nc.flush(timeout=30)
        await wait_stored(nc, settings, end - 1)
    bounds = await bus.stream_bounds(nc, settings)
    if bounds != (1, plan.archived):
        raise BenchError(f"the stream holds ids {bounds}, not 1..{plan.archived}")
    return round(time.perf_counter() - started, 2)


async def wait_stored(nc: bus.BusClient, settings: Settings, last: int) -> None:
    seen, since = -1, time.monotonic()
    while (now := (await bus.stream_bounds(nc, settings))[1]) < last:
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since > 5:
            raise BenchError(f"the stream stored {now} of {last} publishes: nats-server dropped some")
        await asyncio.sleep(POLL_S)


async def wait_archived(nc: bus.BusClient, settings: Settings, last: int, proc: subprocess.Popen[bytes]) -> None:
    seen, since = -1, time.monotonic()
    while (floor := await bus.archived_through(nc, settings)) < last:
        if proc.poll() is not None:
            raise BenchError(f"the archiver exited with {proc.returncode} at ack floor {floor} of {last}")
        if floor != seen:
            seen, since = floor, time.monotonic()
        elif time.monotonic() - since > STALL_S:
            raise BenchError(f"the archiver made no progress for {STALL_S:.0f}s at ack floor {floor} of {last}")
        await asyncio.sleep(POLL_S)


async def archiver_phase(settings: Settings, plan: Plan, work: Path, procs: list[ClusterProc]) -> dict[str, Any]:
    """Step 1: publish, then time one archiver process draining the stream into the store."""
    taken: set[int] = set()
    logs = work.parent / "logs"  # one dir for the whole run: scan_logs reads it
    async with contextlib.AsyncExitStack() as stack:
        nats, port = start_nats(work, logs / f"{work.name}-nats.log", taken)
        stack.callback(stop_proc, nats)
        settings = settings.replace(nats_url=f"nats://127.0.0.1:{port}", archiver_port=_free_port(taken))
        nc = await bus.connect(settings, "store-bench")
        stack.push_async_callback(bus.close_quietly, nc)
        await bus.ensure_stream(nc.jetstream(), settings)
        publish_s = await publish_all(nc, settings, plan)
        log, spawned = logs / f"{work.name}-archiver.log", time.perf_counter()
        archiver = spawn_archiver(settings, log)
        stack.callback(stop_proc, archiver)
        await wait_ready(archiver, settings.archiver_port, log)
        startup_s = round(time.perf_counter() - spawned, 2)
        meter = CpuMeter([*procs, ClusterProc("nats-server", psutil.Process(nats.pid)),
                          ClusterProc("archiver", psutil.Process(archiver.pid))])
        before = meter.snapshot()
        await wait_archived(nc, settings, plan.archived, archiver)
        after = meter.snapshot()
    return {**cost(plan.archived, before, after), "publish_s": publish_s, "archiver_startup_s": startup_s}


async def put_phase(store: Store, plan: Plan, level: int, procs: list[ClusterProc]) -> dict[str, Any]:
    """Step 2: batches of BATCH straight to put_messages, IN_FLIGHT[level] at a time."""
    ids = plan.put_ids(level)
    batches = [[plan.message(m) for m in ids[i:i + BATCH]] for i in range(0, len(ids), BATCH)]
    samples: array[int] = array("q")

    async def put(batch: list[StoredMessage]) -> None:
        started = time.perf_counter_ns()
        await store.put_messages(batch)
        samples.append(time.perf_counter_ns() - started)

    meter = CpuMeter(procs)
    before = meter.snapshot()
    await limited((put(b) for b in batches), IN_FLIGHT[level])
    after = meter.snapshot()
    return {**cost(len(ids), before, after), "in_flight": IN_FLIGHT[level], "batch_latency": latency_summary(samples)}


async def top_up(store: Store, plan: Plan) -> float:
    ids = plan.topup_ids()
    started = time.perf_counter()
    await limited((store.put_messages([plan.message(m) for m in ids[i:i + BATCH]])
                   for i in range(0, len(ids), BATCH)), 4)
    return round(time.perf_counter() - started, 2)


async def time_reads(call: Callable[[], Awaitable[list[StoredMessage]]], want: list[int], reads: int,
                     procs: list[ClusterProc]) -> dict[str, Any]:
    for _ in range(WARM_READS):
        await call()
    samples: array[int] = array("q")
    wrong = 0
    meter = CpuMeter(procs)
    before = meter.snapshot()
    for _ in range(reads):
        started = time.perf_counter_ns()
        rows = await call()
        samples.append(time.perf_counter_ns() - started)
        wrong += [m.id for m in rows] != want
    after = meter.snapshot()
    cpu = cost(reads, before, after)["cpu_s_per_1k"]  # CPU seconds per 1k reads = ms per read
    return {**latency_summary(samples), "rows": len(want), "wrong_results": wrong, "cpu_ms_per_read": cpu}


async def read_phase(store: Store, plan: Plan, reads: int, procs: list[ClusterProc]) -> dict[str, Any]:
    """Step 3: newest and deep history pages of conversation 0, and a sync page of the sync user."""
    conv, hot, mine = plan.convs[0].id, plan.hot_ids, plan.sync_ids
    before = hot[-PAGE_BACK - 1]
    behind = min(SYNC_BACK, len(mine))
    cursor = mine[-behind - 1] if behind < len(mine) else 0
    cases: dict[str, tuple[Callable[[], Awaitable[list[StoredMessage]]], list[int]]] = {
        "history_newest": (lambda: store.history(conv, before=None, after=None, limit=PAGE, newest_first=True),
                           hot[-PAGE:][::-1]),
        "history_10k_back": (lambda: store.history(conv, before=before, after=None, limit=PAGE, newest_first=True),
                             hot[-PAGE_BACK - PAGE - 1:-PAGE_BACK - 1][::-1]),
        "sync_page": (lambda: store.messages_for_user(plan.sync_user, after=cursor, upto=plan.total,
                                                      limit=SYNC_LIMIT), [m for m in mine if m > cursor][:SYNC_LIMIT]),
    }
    out = {name: await time_reads(call, want, reads, procs) for name, (call, want) in cases.items()}
    out["sync_page"]["messages_behind"] = behind
    return out


async def run_backend(settings: Settings, plan: Plan, args: argparse.Namespace, work: Path,
                      procs: list[ClusterProc]) -> dict[str, Any]:
    store = open_store(settings)
    await store.migrate()
    try:
        started = time.perf_counter()
        await limited((store.open_conversation(c) for c in plan.convs), 32)
        out: dict[str, Any] = {"setup": {"open_conversations_s": round(time.perf_counter() - started, 2)}}
        say(f"  conversations opened in {out['setup']['open_conversations_s']}s; publishing {plan.archived:,}")
        out["archiver"] = await archiver_phase(settings, plan, work, procs)
        say(f"  archiver: {fmt(out['archiver']['inserts_per_s'])} inserts/s; put_messages ...")
        out["put"] = {f"in_flight_{n}": await put_phase(store, plan, level, procs)
                      for level, n in enumerate(IN_FLIGHT) if plan.put}
        out["setup"]["topped_up_s"] = await top_up(store, plan)
        say(f"  reads x{args.reads} ...")
        out["reads"] = await read_phase(store, plan, args.reads, procs)
    finally:
        await store.close()
    return out


# ---- one backend, the whole run -------------------------------------------------------------------


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def base_settings(work: Path) -> Settings:
    return Settings(secret=Secret("store-bench"), run_dir=str(work), log_level="INFO")


def run_sqlite(args: argparse.Namespace, plan: Plan, work: Path) -> dict[str, Any]:
    (work / "sqlite").mkdir()
    settings = base_settings(work).replace(store="sqlite", sqlite_path=str(work / "sqlite" / "bench.db"))
    return run_async(asyncio.wait_for(run_backend(settings, plan, args, work / "sqlite", []), args.timeout))


def run_cassandra(args: argparse.Namespace, plan: Plan, work: Path, record: dict[str, Any]) -> dict[str, Any]:
    (work / "cassandra-run").mkdir()
    keyspace = f"bench_{secrets.token_hex(4)}"
    with cassandra_instance(args, work) as instance:
        pid = cassandra_runner.running_pid(Path(instance.dir))
        record["cassandra"] = {"version": instance.version, "heap": instance.heap,
                               "own_instance": not args.cassandra_dir, "keyspace": keyspace,
                               "bucket_s": Settings().cassandra_bucket_s, "commitlog_sync": "periodic, 10 s"}
        settings = base_settings(work).replace(store="cassandra", cassandra_hosts="127.0.0.1",
                                               cassandra_port=instance.cql_port, cassandra_keyspace=keyspace)
        procs = [ClusterProc("cassandra", psutil.Process(pid))] if pid else []
        try:
            return run_async(asyncio.wait_for(
                run_backend(settings, plan, args, work / "cassandra-run", procs), args.timeout))
        finally:
            if args.cassandra_dir and not args.keep_keyspace:
                with contextlib.suppress(Exception):
                    drop_keyspace(instance.cql_port, keyspace)


# ---- report ---------------------------------------------------------------------------------------

# (key in results.ratios, label, path into a backend's results)
METRICS: list[tuple[str, str, tuple[str, ...]]] = [
    ("archiver_inserts_per_s", "archiver inserts/s", ("archiver", "inserts_per_s")),
    ("archiver_cpu_s_per_1k", "  archiver CPU s/1k msgs", ("archiver", "cpu_s_per_1k", "archiver")),
    ("nats_cpu_s_per_1k", "  nats-server CPU s/1k msgs", ("archiver", "cpu_s_per_1k", "nats-server")),
    ("cassandra_cpu_s_per_1k", "  Cassandra CPU s/1k msgs", ("archiver", "cpu_s_per_1k", "cassandra")),
    ("put_1_inserts_per_s", "put_messages, 1 in flight /s", ("put", "in_flight_1", "inserts_per_s")),
    ("put_1_batch_p50_ms", "  batch of 500 p50 ms", ("put", "in_flight_1", "batch_latency", "p50_ms")),
    ("put_4_inserts_per_s", "put_messages, 4 in flight /s", ("put", "in_flight_4", "inserts_per_s")),
    ("put_4_batch_p50_ms", "  batch of 500 p50 ms", ("put", "in_flight_4", "batch_latency", "p50_ms")),
    ("put_4_client_cpu_s_per_1k", "  this process CPU s/1k msgs", ("put", "in_flight_4", "cpu_s_per_1k", "client")),
    ("newest_p50_ms", "history newest page p50 ms", ("reads", "history_newest", "p50_ms")),
    ("newest_p99_ms", "history newest page p99 ms", ("reads", "history_newest", "p99_ms")),
    ("back_p50_ms", "history 10k back p50 ms", ("reads", "history_10k_back", "p50_ms")),
    ("back_p99_ms", "history 10k back p99 ms", ("reads", "history_10k_back", "p99_ms")),
    ("sync_p50_ms", "sync page (200) p50 ms", ("reads", "sync_page", "p50_ms")),
    ("sync_p99_ms", "sync page (200) p99 ms", ("reads", "sync_page", "p99_ms")),
]


def cell(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) and abs(v) < 1 else fmt(v)


def dig(d: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        d = d.get(key) if isinstance(d, dict) else None
    return d


def ratios(results: dict[str, Any]) -> dict[str, float | None]:
    return {key: ratio(dig(results.get("cassandra"), path), dig(results.get("sqlite"), path))
            for key, _, path in METRICS}


def wrong_reads(r: Any) -> int | None:
    reads = dig(r, ("reads",))
    return sum(v["wrong_results"] for v in reads.values()) if reads else None


def report(record: dict[str, Any]) -> str:
    res, w, a, m = record["results"], record["workload"], record["args"], record["machine"]
    cass = record.get("cassandra", {})
    lines = [
        "",
        f"Store benchmark — {w['archived']:,} archived + {len(IN_FLIGHT)} x {w['put_per_level']:,} put "
        f"(+{w['topped_up']:,} top-up), {w['conversations']:,} conversations over {w['span_days']} days, "
        f"bodies {w['body_bytes']['min']}-{w['body_bytes']['max']} B, {a['reads']} reads per kind",
        f"machine: {m['cpu_count']} x {m['cpu_model']}, {m['memory_gb']} GB, Python {m['python']}, load avg at start "
        f"{m['loadavg_at_start']}; Cassandra {cass.get('version', '-')} heap {cass.get('heap', '-')}"
        + (" (own instance)" if cass.get("own_instance") else " (--cassandra-dir)" if cass else ""),
        f"read conversation: {w['read_conversation_messages']:,} messages in {w['read_conversation_buckets']} "
        f"bucket(s); sync user: {w['sync_user_conversations']} conversations, {w['sync_user_messages']:,} messages",
        "",
        f"{'':34} {'sqlite':>12} {'cassandra':>12} {'cass/sqlite':>12}",
    ]
    for key, label, path in METRICS:
        lines.append(f"{label:34} {cell(dig(res.get('sqlite'), path)):>12} "
                     f"{cell(dig(res.get('cassandra'), path)):>12} {cell(res.get('ratios', {}).get(key)):>12}")
    lines.append(f"{'wrong read results':34} {fmt(wrong_reads(res.get('sqlite'))):>12} "
                 f"{fmt(wrong_reads(res.get('cassandra'))):>12}")
    for name in BACKENDS:
        cpu = dig(res.get(name), ("archiver", "cpu"))
        if cpu:
            per = ", ".join(f"{k} {v}%" for k, v in cpu["per_process"].items())
            lines.append(f"{name} archiver run, % of one core: {per}; machine {cpu['machine_busy']}% of "
                         f"{cpu['capacity']}% (other processes {cpu['other_processes']}%): {cpu['verdict']}")
    for name, error in record.get("errors", {}).items():
        lines.append(f"{name}: FAILED: {error}")
    lines.append("logs: " + (json.dumps(record["log_issues"]) if record.get("log_issues") else "no warnings or errors"))
    return "\n".join(lines)


def filesystem(path: Path) -> str:
    mounts = [p for p in psutil.disk_partitions(all=True) if path.resolve().is_relative_to(p.mountpoint)]
    return max(mounts, key=lambda p: len(p.mountpoint)).fstype if mounts else "?"


# ---- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.store_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=100_000, help="messages through the archiver (default 100000)")
    p.add_argument("--put-messages", type=int, default=None,
                   help="messages per put_messages level, 1 and 4 in flight (default: --messages / 2; 0 skips)")
    p.add_argument("--reads", type=int, default=300, help="timed reads of each kind (default 300)")
    p.add_argument("--conversations", type=int, default=2_000, help="DM conversations (default 2000)")
    p.add_argument("--msgs-per-day", type=int, default=5_000,
                   help="message timestamps are spaced for this many per day (default 5000)")
    p.add_argument("--only", choices=BACKENDS, help="run one backend only")
    p.add_argument("--cassandra-dir", help="use the running instance in DIR (parley cassandra up --dir DIR)")
    p.add_argument("--heap", default="1G", help="heap of the Cassandra this run starts (default 1G)")
    p.add_argument("--keep-keyspace", action="store_true", help="with --cassandra-dir: do not drop the keyspace")
    p.add_argument("--timeout", type=float, default=1800, help="seconds per backend at most (default 1800)")
    p.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    p.add_argument("--out", type=Path, default=RESULTS, help="results file (default loadtest/results/store.jsonl)")
    p.add_argument("--keep-work-dir", action="store_true", help="keep the temp dir (databases, logs)")
    args = p.parse_args(argv)
    if args.put_messages is None:
        args.put_messages = args.messages // 2
    if not 1_000 <= args.messages <= 2_000_000 or not 0 <= args.put_messages <= 2_000_000:
        p.error("--messages: 1000 to 2000000; --put-messages: 0 to 2000000")
    if not 1 <= args.reads <= 10_000:
        p.error("--reads: 1 to 10000")
    if not 100 <= args.conversations <= 100_000 or not 1 <= args.msgs_per_day <= 10_000_000:
        p.error("--conversations: 100 to 100000; --msgs-per-day: 1 to 10000000")
    if not 10 <= args.timeout <= 7200:
        p.error("--timeout: 10 to 7200")
    return args


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def new_record(args: argparse.Namespace, plan: Plan, work: Path) -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "git": git_info(),
        "versions": {**versions(), "cassandra-driver": version("cassandra-driver"), "sqlite": sqlite3.sqlite_version},
        "storage": {"dir": str(work), "filesystem": filesystem(work)},
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "keep_work_dir"},
        "settings": {k: getattr(Settings(), k) for k in ("archiver_batch", "archiver_concurrency",
                                                         "cassandra_concurrency", "cassandra_consistency")},
        "workload": describe(plan),
        "results": {},
        "errors": {},
    }


def run_all(args: argparse.Namespace, plan: Plan, work: Path, record: dict[str, Any]) -> None:
    results, errors = record["results"], record["errors"]
    for name in [args.only] if args.only else BACKENDS:
        say(f"{name}:")
        try:
            results[name] = run_sqlite(args, plan, work) if name == "sqlite" else run_cassandra(args, plan, work,
                                                                                                 record)
        except (BenchError, ParleyError, OSError, TimeoutError, psutil.Error) as err:
            errors[name] = f"{type(err).__name__}: {getattr(err, 'message', err)}"
            say(f"  {name} failed: {errors[name]}", err=True)
    results["ratios"] = ratios(results)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):  # run the finally blocks (stop servers) on these too
        signal.signal(sig, _terminate)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="parley-store-bench-"))
    (work / "logs").mkdir()
    plan = build_plan(args)
    record = new_record(args, plan, work)
    say(f"workload: {plan.total:,} ids, read conversation {len(plan.hot_ids):,} messages; work dir {work}")
    finished = False
    try:
        run_all(args, plan, work, record)
        finished = True
    except KeyboardInterrupt:
        record["errors"]["run"] = "interrupted"
    finally:
        record["log_issues"] = scan_logs(work)
        if args.keep_work_dir or record["errors"] or not finished:
            say(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    record["duration_s"] = round(time.monotonic() - started, 1)
    say(report(record))
    if record["errors"]:
        return 1
    record.pop("errors")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a") as f:
        f.write(json.dumps(record, separators=(",", ":")) + "\n")
    say(f"\nappended to {args.out}; took {record['duration_s']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
