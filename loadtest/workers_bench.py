"""The workers benchmark: archive rate with 1 and 2 archivers, presence heartbeat entries/s per worker.

    .venv/bin/python -m parley.loadtest.workers_bench [--messages N] [--users N] [--rounds N]

Everything on 127.0.0.1 through the launcher (``parley.tools.cluster``), each case in a fresh temp dir:

1. Archive rate, for 1 and then 2 archiver processes (SQLite store, production batch settings):
   the archivers start and wait; then ``--messages`` payloads are published to the MSG stream (core
   publishes, much quicker than archiving) and the clock runs from the first publish to the shared
   consumer's ack floor reaching the last id. Messages/s,
   each archiver's share (its ``parley_archiver_messages_total``), CPU ms per 1k messages of the
   archivers and nats-server. Two archivers on one SQLite file take turns at its write lock, so this
   shows the sharing works and what it costs, not Cassandra's parallel writes.
2. Presence, for 1 and then 2 workers (16 partitions): ``--users`` users, each heard once per round
   in batches of 2,000 on their partition's subject (as nodes send them); one untimed round brings
   everyone online, then ``--rounds`` rounds are published (a few at a time, waiting for the workers to
   catch up so no subscriber overflows) and timed until every worker's heartbeat counter has them all.
   Entries/s in total and per worker, and CPU µs per entry of each worker. Leases of 30 s (throughput,
   not takeovers, is measured here).

Each case runs ``--repeat`` times (1 and 2 alternating); ``medians`` holds the figures to quote.
This process is the generator; its CPU is in the record. Appends one JSON line (naming the commit) to
``loadtest/results/workers.jsonl``. The machine is shared: compare the cases of one run, not runs.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import aiohttp
from parley.loadtest.harness import record
from parley.loadtest.harness.meter import CpuMeter, cpu_seconds_between
from parley.loadtest.harness.session import BenchError, run_async, say, stop_on_signals, within
from parley.tools.cluster import Cluster
from parley.workers.presence_leases import LEASE_BUCKET, snapshot

from parley import bus, wire
from parley.ids import DeviceId, UserId
from parley.messages import encode_payload
from parley.presence_bus import heartbeat_subject
from parley.presence_partitions import partition_of
from parley.settings import Settings
from parley.shards import home_for, message_subject

PARTITIONS, BEATS_PER_BATCH, CONVERSATIONS = 16, 2000, 2000
STALL_S = 30.0
# long leases: this measures throughput, not takeovers, and on a shared 2-core box at load average 15+ a
# lease renewal's round trip can exceed the default's margin (a lost lease drops beats and stalls the run)
LEASE_S = 30.0


async def metric(http: aiohttp.ClientSession, port: int, name: str) -> float:
    async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return 0.0


def cost(names: list[str], cpu: dict[str, float], count: int, per: int) -> dict[str, float]:
    return {n: round(cpu.get(n, 0.0) / count * per * 1000, 3) for n in names}


async def archived(nc: Any, settings: Settings) -> int:
    """Messages archived so far over every shard (fresh streams: each shard's floor is its count)."""
    return sum([await bus.archived_through(nc, settings, shard) for shard in range(settings.shards)])


async def archive_case(root: Path, archivers: int, messages: int) -> dict[str, Any]:
    cluster = Cluster(root, nodes=0, tie_to_parent=True)
    try:
        cluster.start_nats()
        nc = await bus.connect(cluster.settings, "workers-bench")
        await bus.ensure_stream(nc.jetstream(), cluster.settings)
        names = [cluster.start_archiver(i) for i in range(archivers)]  # all waiting before the first message
        payloads = [encode_payload(sender=UserId("bench"), device=DeviceId("d"), cid=str(i), body="x" * 120, ts=i,
                                   prev=0) for i in range(messages)]
        meter = CpuMeter(cluster.pids())
        before, started = meter.snapshot(), time.perf_counter()
        for i, payload in enumerate(payloads):  # core publishes: far quicker than archiving, not the limit
            conv = f"g.bench{i % CONVERSATIONS}"
            await nc.publish(message_subject(home_for(conv, cluster.settings.shards), conv), payload)
        await nc.flush(timeout=60)
        published_s = time.perf_counter() - started
        seen, since = -1, time.monotonic()
        while (floor := await archived(nc, cluster.settings)) < messages:
            if cluster.exited():
                raise BenchError(f"a process exited; logs in {cluster.logs}")
            if floor != seen:
                seen, since = floor, time.monotonic()
            elif time.monotonic() - since > STALL_S:
                raise BenchError(f"the archivers made no progress for {STALL_S:.0f}s; logs in {cluster.logs}")
            await asyncio.sleep(0.05)
        elapsed, after = time.perf_counter() - started, meter.snapshot()
        async with aiohttp.ClientSession() as http:
            shares = {n: await metric(http, cluster.worker_port(n), "parley_archiver_messages_total") for n in names}
        await bus.close_quietly(nc)
        cpu = cpu_seconds_between(before, after)
        return {"archivers": archivers, "messages": messages, "seconds": round(elapsed, 2),
                "publish_s": round(published_s, 2),
                "msgs_per_s": round(messages / elapsed), "written_by": shares,
                "cpu_ms_per_1k": cost([*names, "nats-server"], cpu, messages, 1000)}
    finally:
        cluster.shutdown()


def heartbeat_batches(users: int) -> list[tuple[str, bytes]]:
    by_partition: dict[int, list[tuple[str, str, int]]] = {}
    at = int(time.time() * 1000) + 3_600_000  # an hour ahead: nobody times out during the run
    for i in range(users):
        user = f"u{i:07d}"
        by_partition.setdefault(partition_of(user, PARTITIONS), []).append((user, "d1", at))
    return [(heartbeat_subject(p, "bench"), wire.encode(wire.Heartbeats(tuple(beats[i:i + BEATS_PER_BATCH]))))
            for p, beats in by_partition.items() for i in range(0, len(beats), BEATS_PER_BATCH)]


async def presence_case(root: Path, workers: int, users: int, rounds: int) -> dict[str, Any]:
    cluster = Cluster(root, nodes=0, tie_to_parent=True, presence_partitions=PARTITIONS, presence_timeout_s=600.0,
                      presence_lease_s=LEASE_S)
    try:
        cluster.start_nats()
        names = [cluster.start_presence(i) for i in range(workers)]
        nc = await bus.connect(cluster.settings, "workers-bench")
        await until_split(nc, workers)
        batches = heartbeat_batches(users)
        async with aiohttp.ClientSession() as http:
            async def counts() -> dict[str, float]:
                return {n: await metric(http, cluster.worker_port(n), "parley_presence_heartbeats_total")
                        for n in names}

            async def until_heard(total: float) -> None:
                seen, since = -1.0, time.monotonic()
                while (now := sum((await counts()).values())) < total:
                    if now != seen:
                        seen, since = now, time.monotonic()
                    elif time.monotonic() - since > STALL_S:
                        raise BenchError(f"the workers handled no beats for {STALL_S:.0f}s at {now:,.0f} of "
                                         f"{total:,.0f}; logs in {cluster.logs}")
                    await asyncio.sleep(0.02)

            async def publish_rounds(n: int, start: float) -> None:
                for r in range(n):
                    for subject, data in batches:
                        await nc.publish(subject, data)
                    if r % 2 == 1:  # at most about two rounds in flight: no subscriber overflows
                        await nc.flush(timeout=30)
                        await until_heard(start + (r - 1) * users)
                await until_heard(start + n * users)

            await publish_rounds(1, 0)  # everyone online (announced, written to the bucket): untimed
            online = 'parley_presence_transitions_total{state="online"}'
            while sum([await metric(http, cluster.worker_port(n), online) for n in names]) < users:
                await asyncio.sleep(0.1)  # the announcements follow the count of beats
            meter = CpuMeter(cluster.pids())
            base = await counts()
            before, started = meter.snapshot(), time.perf_counter()
            await publish_rounds(rounds, sum(base.values()))
            elapsed, after = time.perf_counter() - started, meter.snapshot()
            end = await counts()
            taken = sum([await metric(http, cluster.worker_port(n), "parley_presence_partitions_taken_total")
                         for n in names])
        await bus.close_quietly(nc)
        cpu = cpu_seconds_between(before, after)
        per = {n: end[n] - base[n] for n in names}
        return {"workers": workers, "users": users, "rounds": rounds, "seconds": round(elapsed, 2),
                "entries_per_s": round(rounds * users / elapsed), "entries_by_worker": per,
                "entries_per_s_by_worker": {n: round(per[n] / elapsed) for n in names},
                "cpu_us_per_entry": {n: round(cpu.get(n, 0.0) / max(1.0, per[n]) * 1e6, 2) for n in names},
                "cpu_s": cpu, "partitions_taken_total": taken}
    finally:
        cluster.shutdown()


async def until_split(nc: bus.BusClient, workers: int) -> None:
    kv = await nc.jetstream().key_value(LEASE_BUCKET)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        owners, _ = await snapshot(kv)
        if len(owners) == PARTITIONS and len(set(owners.values())) == workers:
            counts = [list(owners.values()).count(w) for w in set(owners.values())]
            if max(counts) - min(counts) <= 1:
                return
        await asyncio.sleep(0.2)
    raise BenchError("the presence workers did not split the partitions in 30 s")


async def run_all(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Each case ``--repeat`` times, 1 and 2 workers alternating (so drift in the machine's load hits
    both alike); the medians are the figures to quote."""
    out: dict[str, Any] = {"archive": {1: [], 2: []}, "presence": {1: [], 2: []}}
    for r in range(args.repeat):
        for n in (1, 2):
            say(f"archive, {n} archiver(s), {args.messages:,} messages (run {r + 1}) …")
            out["archive"][n].append(await archive_case(work / f"archive{n}-{r}", n, args.messages))
            say(f"  {out['archive'][n][-1]}")
    for r in range(args.repeat):
        for n in (1, 2):
            say(f"presence, {n} worker(s), {args.users:,} users × {args.rounds} rounds (run {r + 1}) …")
            out["presence"][n].append(await presence_case(work / f"presence{n}-{r}", n, args.users, args.rounds))
            say(f"  {out['presence'][n][-1]}")
    archive = {n: median(c["msgs_per_s"] for c in runs) for n, runs in out["archive"].items()}
    presence = {n: median(c["entries_per_s"] for c in runs) for n, runs in out["presence"].items()}
    cpu = {n: median(v for c in runs for v in c["cpu_us_per_entry"].values()) for n, runs in out["presence"].items()}
    out["medians"] = {"archive_msgs_per_s": archive, "archive_ratio_2_to_1": round(archive[2] / archive[1], 2),
                      "presence_entries_per_s": presence,
                      "presence_ratio_2_to_1": round(presence[2] / presence[1], 2),
                      "presence_cpu_us_per_entry": cpu}
    say(f"medians: {out['medians']}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.workers_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=within(1_000, 1_000_000, int), default=50_000, help="default 50000")
    p.add_argument("--users", type=within(1_000, 1_000_000, int), default=20_000, help="default 20000")
    p.add_argument("--rounds", type=within(1, 1000, int), default=30, help="timed heartbeat rounds (default 30)")
    p.add_argument("--repeat", type=within(1, 20, int), default=3, help="runs of each case (default 3)")
    record.add_options(p, "workers.jsonl")
    args = p.parse_args(argv)
    recorder = record.recorder(p, args)
    stop_on_signals()
    work = Path(tempfile.mkdtemp(prefix="parley-workers-bench-"))
    rec = recorder.new_record(args)
    rec["settings"] = {**{k: getattr(Settings(), k) for k in ("archiver_batch", "archiver_concurrency")},
                       "presence_partitions": PARTITIONS, "presence_lease_s": LEASE_S}
    rec["note"] = "2-core machine shared with other developers: compare the cases of this run, not runs"
    try:
        rec["results"] = run_async(run_all(args, work))
    except (BenchError, OSError, TimeoutError) as err:
        say(f"failed: {err}; work dir kept: {work}", err=True)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    say(recorder.append(rec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
