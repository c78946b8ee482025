"""The store benchmark: SQLite and Cassandra side by side in one run, through the code production runs.

    .venv/bin/python -m parley.loadtest.store_bench [--messages N] [--only sqlite|cassandra] [--cassandra-dir DIR]

Both backends get the same generated workload (seeded, ``loadtest.store_workload``): DM conversations
(2,000 by default) between random users, five "hot" ones taking 40% of the messages (conversation 0
alone 20%), bodies of about 60-200 bytes, message timestamps spaced so the run covers weeks
(``--msgs-per-day``; Cassandra buckets by the default 10-day window). For each backend, all on
127.0.0.1 and bounded in time:

1. Archiver inserts/s: a fresh nats-server (``parley.tools.cluster``: temp dir, free port) with the
   shard streams ``MSG_<i>`` (``bus.ensure_stream``, ``PARLEY_SHARDS`` of them); N payloads
   (``encode_payload``) are published to ``msg.<shard>.<conversation>`` (the conversation's home
   shard) *before* the archiver starts, and each shard's stream is checked to hold exactly sequences
   1..(its share of N), so every message has the id the workload planned. Then one
   ``python -m parley archiver`` process (production settings: batches of up to 5,000, 4 in flight)
   drains them into the store; the clock runs from its /readyz to every shard's ack floor
   (``bus.archived_through``) reaching its last sequence. CPU seconds per 1k messages of the archiver, nats-server and
   Cassandra over that window (``harness.meter``).
2. put_messages inserts/s: this process writes batches of 500 straight to the store (no NATS), 1 and then
   4 batches in flight, ``--put-messages`` each; per-batch latency too.
3. Read latency on the store afterwards, one read at a time, ``--reads`` each after 5 uncounted: history's
   newest page (50, newest first) and the page 10,000 messages back in conversation 0 (which holds at least
   20,000 messages: topped up, untimed, if steps 1-2 left it smaller), and a sync page (``messages_for_user``
   of one shard, as a node's sync reads them: 200 after a position 1,000 of the user's messages back in the
   shard holding most of them) for a user in 50 conversations. Every result is checked
   against the ids the workload knows (``wrong_results``).

Cassandra: its own instance in a temp dir (``cassandra_runner``, ``--heap``), stopped at the end, unless
``--cassandra-dir`` names a running one; a fresh keyspace ``bench_<hex>`` per run, dropped at the end
unless ``--keep-keyspace``. SQLite: a file in the temp dir. Note the durability asymmetry: SQLite fsyncs
every batch (synchronous=FULL); the runner's Cassandra fsyncs its commit log before it answers a write
(``--commitlog-sync group``, the default, docs/adr/0011; ``periodic`` answers at once and syncs every 10 s).

Prints a table (sqlite, cassandra, cassandra/sqlite) and appends one JSON line to
``loadtest/results/store.jsonl`` (``--out``). The exit status is non-zero only on errors.
A quick check of both: ``--messages 2000 --reads 20 --conversations 200`` (about a minute plus
Cassandra's start).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
from array import array
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

from parley.loadtest.figures import dig
from parley.loadtest.harness import procfs, record
from parley.loadtest.harness.latency import latency_summary, ratio
from parley.loadtest.harness.logs import scan_logs
from parley.loadtest.harness.meter import CpuMeter, Snapshot, cpu_seconds_between, cpu_share
from parley.loadtest.harness.session import BenchError, bounded, fmt, run_async, say, stop_on_signals, within
from parley.loadtest.store_workload import (
    BATCH,
    IN_FLIGHT,
    PAGE,
    PAGE_BACK,
    SYNC_BACK,
    SYNC_LIMIT,
    Plan,
    build_plan,
    describe,
)
from parley.tools import cassandra_runner
from parley.tools.cluster import Child, Cluster

from parley import bus
from parley.errors import ParleyError
from parley.settings import Settings
from parley.shards import pack
from parley.store import Store, StoredMessage, open_store

BACKENDS = ("sqlite", "cassandra")
RUN_DIRS = ("sqlite", "cassandra-run")  # per backend in the work dir: its nats-server, archiver and logs
WARM_READS = 5
PUBLISH_WINDOW = 2_000  # core publishes between checks that the stream stored them all
POLL_S = 0.02
STALL_S = 60.0  # no progress this long: the phase failed
ARCHIVER_START_S = 60.0  # its migrations on a fresh Cassandra keyspace take a while


# ---- Cassandra ------------------------------------------------------------------------------------


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
    say(f"  starting Cassandra (heap {args.heap}, commitlog_sync {args.commitlog_sync}) in {where}")
    try:
        yield cassandra_runner.start(where, cql_port=0, storage_port=0, heap=args.heap, jmx_port=None,
                                     tie_to_parent=True, commitlog_sync=args.commitlog_sync)
    finally:
        cassandra_runner.stop(where)


def drop_keyspace(port: int, keyspace: str) -> None:
    from cassandra.cluster import Cluster as CqlCluster

    cluster = CqlCluster(["127.0.0.1"], port=port, connect_timeout=5)
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    finally:
        cluster.shutdown()


# ---- measurement ----------------------------------------------------------------------------------


def cost(n: int, a: Snapshot, b: Snapshot) -> dict[str, Any]:
    """Rate and CPU between two snapshots over which ``n`` messages were written."""
    wall = b.t - a.t
    cpu = cpu_seconds_between(a, b)
    return {"messages": n, "seconds": round(wall, 3), "inserts_per_s": round(n / wall, 1) if wall > 0 else None,
            "cpu_s": cpu, "cpu_s_per_1k": {k: round(v * 1000 / n, 4) for k, v in cpu.items()},
            "cpu": with_verdict(cpu_share(a, b))}


def with_verdict(cpu: dict[str, Any]) -> dict[str, Any]:
    """CpuMeter's verdict calls any busy process single-core Python; Cassandra's JVM is neither."""
    python = {k: v for k, v in cpu["per_process"].items() if k in ("archiver", "client") and v is not None}
    found = [f"{k} is CPU-bound (one Python process, one core)" for k, v in python.items() if v >= 90]
    if cpu["machine_busy"] is not None and cpu["machine_busy"] >= 0.9 * cpu["capacity"]:
        found.append("all cores were busy (>= 90% of the machine): the machine's CPU is the limit")
    return {**cpu, "verdict": "; ".join(found) or "no Python process and not the machine is CPU-bound"}


async def publish_all(nc: bus.BusClient, settings: Settings, plan: Plan) -> float:
    """Core-publish messages 1..archived in order, a window at a time, each window checked stored in full."""
    started = time.perf_counter()
    for start in range(1, plan.archived + 1, PUBLISH_WINDOW):
        end = min(start + PUBLISH_WINDOW, plan.archived + 1)
        for n in range(start, end):
            await nc.publish(*plan.payload(n))
        await nc.flush(timeout=30)
        await wait_stored(nc, settings, plan.stream_lasts(end - 1))
    for shard, last in plan.stream_lasts(plan.archived).items():
        bounds = await bus.stream_bounds(nc, settings, shard)
        if last and bounds != (1, last):
            raise BenchError(f"shard {shard}'s stream holds sequences {bounds}, not 1..{last}")
    return round(time.perf_counter() - started, 2)


async def wait_stored(nc: bus.BusClient, settings: Settings, lasts: dict[int, int]) -> None:
    """Until every shard's stream holds its ``lasts`` (no progress for 5 s: publishes were dropped)."""
    for shard, last in lasts.items():
        seen, since = -1, time.monotonic()
        while (now := (await bus.stream_bounds(nc, settings, shard))[1]) < last:
            if now != seen:
                seen, since = now, time.monotonic()
            elif time.monotonic() - since > 5:
                raise BenchError(f"shard {shard}'s stream stored {now} of {last} publishes: nats-server dropped some")
            await asyncio.sleep(POLL_S)


async def wait_archived(nc: bus.BusClient, settings: Settings, lasts: dict[int, int], archiver: Child) -> None:
    """Until every shard's archiver ack floor reaches its ``lasts``."""
    for shard, last in lasts.items():
        seen, since = -1, time.monotonic()
        while (floor := await bus.archived_through(nc, settings, shard)) < last:
            if not archiver.running():
                raise BenchError(f"the archiver exited with {archiver.proc.returncode} at shard {shard}'s ack "
                                 f"floor {floor} of {last}")
            if floor != seen:
                seen, since = floor, time.monotonic()
            elif time.monotonic() - since > STALL_S:
                raise BenchError(f"the archiver made no progress for {STALL_S:.0f}s at shard {shard}'s ack floor "
                                 f"{floor} of {last}")
            await asyncio.sleep(POLL_S)


async def archiver_phase(cluster: Cluster, plan: Plan, procs: dict[str, int]) -> dict[str, Any]:
    """Step 1: publish, then time one archiver process draining the stream into the store."""
    settings = cluster.settings
    cluster.start_nats()
    async with contextlib.AsyncExitStack() as stack:
        nc = await bus.connect(settings, "store-bench")
        stack.push_async_callback(bus.close_quietly, nc)
        await bus.ensure_stream(nc.jetstream(), settings)
        publish_s = await publish_all(nc, settings, plan)
        spawned = time.perf_counter()
        cluster.start_archiver()  # blocks until its /readyz answers: nothing else runs meanwhile
        startup_s = round(time.perf_counter() - spawned, 2)
        meter = CpuMeter({**procs, **cluster.pids()})
        before = meter.snapshot()
        await wait_archived(nc, settings, plan.stream_lasts(plan.archived), cluster.roles["archiver"])
        after = meter.snapshot()
    return {**cost(plan.archived, before, after), "publish_s": publish_s, "archiver_startup_s": startup_s}


async def put_phase(store: Store, plan: Plan, level: int, procs: dict[str, int]) -> dict[str, Any]:
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
    await bounded([partial(put, b) for b in batches], IN_FLIGHT[level])
    after = meter.snapshot()
    return {**cost(len(ids), before, after), "in_flight": IN_FLIGHT[level], "batch_latency": latency_summary(samples)}


async def top_up(store: Store, plan: Plan) -> float:
    ids = plan.topup_ids()
    started = time.perf_counter()
    await bounded([partial(store.put_messages, [plan.message(m) for m in ids[i:i + BATCH]])
                   for i in range(0, len(ids), BATCH)], 4)
    return round(time.perf_counter() - started, 2)


async def time_reads(call: Callable[[], Awaitable[list[StoredMessage]]], want: list[int], reads: int,
                     procs: dict[str, int]) -> dict[str, Any]:
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


async def read_phase(store: Store, plan: Plan, reads: int, procs: dict[str, int]) -> dict[str, Any]:
    """Step 3: newest and deep history pages of conversation 0, and a sync page of the sync user."""
    conv, hot, mine, shard = plan.convs[0].id, plan.hot_ids, plan.sync_ids, plan.sync_shard
    before = hot[-PAGE_BACK - 1]
    behind = min(SYNC_BACK, len(mine))
    after = mine[-behind - 1] if behind < len(mine) else pack(shard, 0)  # ids of one shard compare
    top = plan.shard_top(shard)
    cases: dict[str, tuple[Callable[[], Awaitable[list[StoredMessage]]], list[int]]] = {
        "history_newest": (lambda: store.history(conv, before=None, after=None, limit=PAGE, newest_first=True),
                           hot[-PAGE:][::-1]),
        "history_10k_back": (lambda: store.history(conv, before=before, after=None, limit=PAGE, newest_first=True),
                             hot[-PAGE_BACK - PAGE - 1:-PAGE_BACK - 1][::-1]),
        "sync_page": (lambda: store.messages_for_user(plan.sync_user, shard=shard, after=after,
                                                      upto=top, limit=SYNC_LIMIT),
                      [m for m in mine if m > after][:SYNC_LIMIT]),
    }
    out = {name: await time_reads(call, want, reads, procs) for name, (call, want) in cases.items()}
    out["sync_page"].update(messages_behind=behind, shard=shard)
    return out


async def run_backend(settings: dict[str, Any], plan: Plan, args: argparse.Namespace, work: Path,
                      procs: dict[str, int]) -> dict[str, Any]:
    """One backend through all three steps; ``settings``: the store's fields for the cluster's settings."""
    cluster = Cluster(work, nodes=0, tie_to_parent=True, log_level="INFO", shards=plan.shards, **settings)
    cluster.ready_timeout_s = ARCHIVER_START_S
    store = open_store(cluster.settings)
    try:
        await store.migrate()
        started = time.perf_counter()
        await bounded([partial(store.open_conversation, c) for c in plan.convs], 32)
        out: dict[str, Any] = {"setup": {"open_conversations_s": round(time.perf_counter() - started, 2)}}
        say(f"  conversations opened in {out['setup']['open_conversations_s']}s; publishing {plan.archived:,}")
        out["archiver"] = await archiver_phase(cluster, plan, procs)
        cluster.shutdown()
        say(f"  archiver: {fmt(out['archiver']['inserts_per_s'])} inserts/s; put_messages ...")
        out["put"] = {f"in_flight_{n}": await put_phase(store, plan, level, procs)
                      for level, n in enumerate(IN_FLIGHT) if plan.put}
        out["setup"]["topped_up_s"] = await top_up(store, plan)
        say(f"  reads x{args.reads} ...")
        out["reads"] = await read_phase(store, plan, args.reads, procs)
    finally:
        cluster.shutdown()
        await store.close()
    return out


# ---- one backend, the whole run -------------------------------------------------------------------


def run_sqlite(args: argparse.Namespace, plan: Plan, work: Path) -> dict[str, Any]:
    (work / RUN_DIRS[0]).mkdir()
    settings = {"store": "sqlite", "sqlite_path": str(work / "sqlite" / "bench.db")}
    return run_async(asyncio.wait_for(run_backend(settings, plan, args, work / RUN_DIRS[0], {}), args.timeout))


def run_cassandra(args: argparse.Namespace, plan: Plan, work: Path, record: dict[str, Any]) -> dict[str, Any]:
    (work / RUN_DIRS[1]).mkdir(exist_ok=True)
    keyspace = f"bench_{secrets.token_hex(4)}"
    with cassandra_instance(args, work) as instance:
        pid = cassandra_runner.running_pid(Path(instance.dir))
        record["cassandra"] = {"version": instance.version, "heap": instance.heap,
                               "own_instance": not args.cassandra_dir, "keyspace": keyspace,
                               "bucket_s": Settings().cassandra_bucket_s,
                               "commitlog_sync": "(the running one's)" if args.cassandra_dir else args.commitlog_sync}
        settings = {"store": "cassandra", "cassandra_hosts": "127.0.0.1", "cassandra_port": instance.cql_port,
                    "cassandra_keyspace": keyspace}
        procs = {"cassandra": pid} if pid else {}
        try:
            return run_async(asyncio.wait_for(
                run_backend(settings, plan, args, work / RUN_DIRS[1], procs), args.timeout))
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


def ratios(results: dict[str, Any]) -> dict[str, float | None]:
    return {key: ratio(dig(results.get("cassandra"), *path), dig(results.get("sqlite"), *path))
            for key, _, path in METRICS}


def wrong_reads(r: Any) -> int | None:
    reads = dig(r, "reads")
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
        f"bucket(s); sync user: {w['sync_user_conversations']} conversations, "
        f"{w['sync_user_messages_in_sync_shard']:,} messages in shard {w['sync_shard']} of {w['shards']}",
        "",
        f"{'':34} {'sqlite':>12} {'cassandra':>12} {'cass/sqlite':>12}",
    ]
    for key, label, path in METRICS:
        lines.append(f"{label:34} {cell(dig(res.get('sqlite'), *path)):>12} "
                     f"{cell(dig(res.get('cassandra'), *path)):>12} {cell(res.get('ratios', {}).get(key)):>12}")
    lines.append(f"{'wrong read results':34} {fmt(wrong_reads(res.get('sqlite'))):>12} "
                 f"{fmt(wrong_reads(res.get('cassandra'))):>12}")
    for name in BACKENDS:
        cpu = dig(res.get(name), "archiver", "cpu")
        if cpu:
            per = ", ".join(f"{k} {v}%" for k, v in cpu["per_process"].items())
            lines.append(f"{name} archiver run, % of one core: {per}; machine {cpu['machine_busy']}% of "
                         f"{cpu['capacity']}% (other processes {cpu['other_processes']}%): {cpu['verdict']}")
    for name, error in record.get("errors", {}).items():
        lines.append(f"{name}: FAILED: {error}")
    lines.append("logs: " + (json.dumps(record["log_issues"]) if record.get("log_issues") else "no warnings or errors"))
    return "\n".join(lines)


# ---- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, record.Recorder]:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.store_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=within(1_000, 2_000_000, int), default=100_000,
                   help="messages through the archiver (default 100000)")
    p.add_argument("--put-messages", type=within(0, 2_000_000, int), default=None,
                   help="messages per put_messages level, 1 and 4 in flight (default: --messages / 2; 0 skips)")
    p.add_argument("--reads", type=within(1, 10_000, int), default=300, help="timed reads of each kind (default 300)")
    p.add_argument("--conversations", type=within(100, 100_000, int), default=2_000,
                   help="DM conversations (default 2000)")
    p.add_argument("--msgs-per-day", type=within(1, 10_000_000, int), default=5_000,
                   help="message timestamps are spaced for this many per day (default 5000)")
    p.add_argument("--only", choices=BACKENDS, help="run one backend only")
    p.add_argument("--cassandra-dir", help="use the running instance in DIR (parley cassandra up --dir DIR)")
    p.add_argument("--heap", default="1G", help="heap of the Cassandra this run starts (default 1G)")
    p.add_argument("--commitlog-sync", choices=cassandra_runner.COMMITLOG_SYNC, default="group",
                   help="the commit log mode of the Cassandra this run starts (default group: acked writes "
                        "survive kill -9; commitlog_bench compares the modes)")
    p.add_argument("--keep-keyspace", action="store_true", help="with --cassandra-dir: do not drop the keyspace")
    p.add_argument("--timeout", type=within(10, 7200), default=1800, help="seconds per backend at most (default 1800)")
    p.add_argument("--seed", type=int, default=1, help="workload seed (default 1)")
    p.add_argument("--keep-work-dir", action="store_true", help="keep the temp dir (databases, logs)")
    record.add_options(p, "store.jsonl")
    args = p.parse_args(argv)
    if args.put_messages is None:
        args.put_messages = args.messages // 2
    return args, record.recorder(p, args)


def new_record(recorder: record.Recorder, args: argparse.Namespace, plan: Plan, work: Path) -> dict[str, Any]:
    return {
        **recorder.new_record(args, **{"cassandra-driver": version("cassandra-driver"),
                                       "sqlite": sqlite3.sqlite_version}),
        "storage": {"dir": str(work), "filesystem": procfs.filesystem(work)},
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
        except (BenchError, ParleyError, OSError, TimeoutError) as err:
            errors[name] = f"{type(err).__name__}: {getattr(err, 'message', err)}"
            say(f"  {name} failed: {errors[name]}", err=True)
    results["ratios"] = ratios(results)


def log_issues(work: Path) -> dict[str, Any]:
    """Warnings and errors in both backends' nats-server and archiver logs, named ``<backend>-<log>``."""
    return {f"{run}-{name}": v for run in RUN_DIRS if (work / run / "logs").is_dir()
            for name, v in scan_logs(work / run / "logs").items()}


def main(argv: list[str] | None = None) -> int:
    args, recorder = parse_args(argv)
    stop_on_signals()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="parley-store-bench-"))
    plan = build_plan(args, Settings().shards)
    rec = new_record(recorder, args, plan, work)
    say(f"workload: {plan.total:,} messages over {plan.shards} shards, read conversation {len(plan.hot_ids):,} "
        f"messages; work dir {work}")
    finished = False
    try:
        run_all(args, plan, work, rec)
        finished = True
    except KeyboardInterrupt:
        rec["errors"]["run"] = "interrupted"
    finally:
        rec["log_issues"] = log_issues(work)
        if args.keep_work_dir or rec["errors"] or not finished:
            say(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    rec["duration_s"] = round(time.monotonic() - started, 1)
    say(report(rec))
    if rec["errors"]:
        return 1
    rec.pop("errors")
    say(f"\n{recorder.append(rec)}; took {rec['duration_s']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
