"""The presence worker's CPU per heartbeat entry (part of ``make bench-scale``; appends to scale.jsonl).

    .venv/bin/python -m parley.loadtest.presence_cost            # 50,000 users, 20k and 50k entries/s, 3 reps
    .venv/bin/python -m parley.loadtest.presence_cost --rates 10000 --reps 1 --no-save

At the 50M-DAU peak the nodes report ≈2.1M device heartbeat entries a second (every connected device
every ``PARLEY_PRESENCE_BEAT_S``), so the presence workers' count follows from one figure: CPU per entry.
This starts a nats-server and the real presence worker (``python -m parley presence``), makes ``users``
users online with one round of beats (their online transitions write the KV buckets; not measured),
then publishes heartbeat batches of 2,000 entries (``wire.Heartbeats`` on ``hb.<node>``, as nodes did
before ADR 0049: a worker still takes them) at each fixed rate for a measured window: the users stay
online, so every entry is the steady-state refresh that dominates at the peak. CPU per process over the
window comes from /proc. Where presence is partitioned by user (``hb.<partition>.<node>``), batches go per
partition as nodes sent them, and the warm-up lasts until the worker (after taking its partitions) has counted a
whole round.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
from parley.loadtest.harness import record
from parley.loadtest.harness.meter import CpuMeter, cpu_share
from parley.loadtest.harness.natscluster import NatsServers
from parley.loadtest.harness.session import BenchError, numbers, run_async, say, stop_on_signals, within
from parley.tools.cluster import scratch_settings, spawn, stop_all, wait_ready

from parley import wire
from parley.presence_bus import heartbeat_subject

BATCH = 2000  # node/presence.py's batch size before ADR 0049
NODES = 8  # heartbeat subjects the batches rotate over (hb.<node>)
WARM_UP_S = 60.0


def partition_of(user: str, partitions: int) -> int:
    """The presence partition of ``user``: the nodes' own function where partitioned presence has landed."""
    try:
        mine: Callable[[str, int], int] = importlib.import_module("parley.presence_partitions").partition_of
    except ImportError:
        return zlib.crc32(user.encode()) % partitions
    return mine(user, partitions)


def partitioned() -> bool:
    """Whether heartbeat subjects name a presence partition (``hb.<p>.<node>``, workers partitioned by user)
    or only the node (``hb.<node>``, one worker)."""
    subject: Callable[..., str] = heartbeat_subject
    return len(inspect.signature(subject).parameters) == 2


def batches(users: int, at_ms: int, partitions: int | None = None) -> list[tuple[int | None, bytes]]:
    """Beats of ``users`` users as nodes send them: per partition (when ``partitions``), ``BATCH`` at most."""
    groups: dict[int | None, list[tuple[str, str, int]]] = {}
    for i in range(users):
        user = f"u{i}"
        groups.setdefault(partition_of(user, partitions) if partitions else None, []).append((user, "d1", at_ms))
    return [(p, wire.encode(wire.Heartbeats(tuple(beats[s:s + BATCH]))))
            for p, beats in groups.items() for s in range(0, len(beats), BATCH)]


def wire_beats(data: bytes) -> tuple[tuple[str, str, int], ...]:
    msg = wire.decode(data)
    return msg.beats if isinstance(msg, wire.Heartbeats) else ()


def subject_of(partition: int | None, node: str) -> str:
    subject: Callable[..., str] = heartbeat_subject
    return subject(node) if partition is None else subject(partition, node)


async def publish_at(url: str, users: int, rate: float, seconds: float, partitions: int | None) -> int:
    """Heartbeat entries at ``rate``/s for ``seconds``; the number published."""
    nc = await nats.connect(url)
    sent, t0 = 0, time.monotonic()
    chunk = batches(users, int(time.time() * 1000), partitions)
    sizes = [len(wire_beats(b)) for _, b in chunk]
    i = 0
    try:
        while (now := time.monotonic()) - t0 < seconds:
            while sent < (now - t0) * rate:
                partition, data = chunk[i % len(chunk)]
                await nc.publish(subject_of(partition, f"n{i % NODES}"), data)
                sent += sizes[i % len(chunk)]
                i += 1
            await nc.flush()
            await asyncio.sleep(0.005)
    finally:
        await nc.close()
    return sent


def heartbeats_counted(metrics_url: str) -> float:
    """The worker's ``parley_presence_heartbeats_total`` (0 before its first beat)."""
    with urllib.request.urlopen(metrics_url, timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("parley_presence_heartbeats_total"):
                return float(line.split()[-1])
    return 0.0


def warm_up(beat_round: Callable[[], object], metrics_url: str, users: int) -> None:
    """Beat rounds until the worker has counted a whole round: a partitioned worker takes its partitions
    (leases) after it is ready, and beats before that reach no one."""
    deadline = time.monotonic() + WARM_UP_S
    while True:
        before = heartbeats_counted(metrics_url)
        beat_round()
        time.sleep(0.5)
        if heartbeats_counted(metrics_url) - before >= users:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"the presence worker did not take a whole round of beats in {WARM_UP_S:.0f} s")


def measure(rates: list[float], args: argparse.Namespace) -> list[dict[str, Any]]:
    root = Path(tempfile.mkdtemp(prefix="parley-presence-cost-"))
    servers = NatsServers(root)
    child = None
    try:
        servers.start()
        settings = scratch_settings(root, servers.ports[0], presence_timeout_s=600.0)
        child = spawn("presence", "presence", settings, root, tie_to_parent=True)
        wait_ready(f"http://{settings.presence_host}:{settings.presence_port}/readyz", child)
        url = servers.urls[0]
        parts = getattr(settings, "presence_partitions", None) if partitioned() else None
        metrics = f"http://{settings.presence_host}:{settings.presence_port}/metrics"
        warm_up(lambda: run_async(publish_at(url, args.users, args.users / 2, 2.0, parts)), metrics, args.users)
        time.sleep(2.0)  # the online transitions' KV writes settle
        meter = CpuMeter(servers.pids() | {"presence": child.pid})
        out = []
        for rate in rates:
            a = meter.snapshot()
            sent = run_async(publish_at(url, args.users, rate, args.seconds, parts))
            time.sleep(0.5)  # the worker drains what is queued
            cpu = cpu_share(a, meter.snapshot())
            wall, per = cpu["wall_s"], cpu["per_process"]
            out.append({"rate": rate, "entries": sent, "entries_per_s": round(sent / wall, 1), "cpu": cpu,
                        "presence_cpu_ms_per_entry": round(per["presence"] / 100 * wall * 1000 / sent, 5),
                        "nats_cpu_ms_per_entry": round(per["nats-server0"] / 100 * wall * 1000 / sent, 5),
                        "presence_cpu_pct": per["presence"]})
            say(f"  {rate:,.0f} entries/s: presence {out[-1]['presence_cpu_ms_per_entry']} ms/entry "
                f"({per['presence']}% of a core), nats {out[-1]['nats_cpu_ms_per_entry']} ms/entry")
        return out
    finally:
        if child is not None:
            stop_all([child])
        servers.stop()
        shutil.rmtree(root, ignore_errors=True)


def summarize(reps: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows = []
    for i, first in enumerate(reps[0]):
        same = [r[i] for r in reps]
        rows.append({"rate": first["rate"], "reps": len(same), **{f: round(statistics.median(x[f] for x in same), 5)
                     for f in ("presence_cpu_ms_per_entry", "nats_cpu_ms_per_entry", "presence_cpu_pct")}})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.presence_cost", description=__doc__.split("\n")[0])
    p.add_argument("--users", type=within(BATCH, 1_000_000, int), default=50_000)
    p.add_argument("--rates", type=numbers(1000, 1_000_000), default=[20_000, 50_000], help="entries/s")
    p.add_argument("--seconds", type=within(1, 60), default=4.0)
    p.add_argument("--reps", type=within(1, 9, int), default=3)
    record.add_options(p, "scale.jsonl")
    args = p.parse_args(argv)
    rec = record.recorder(p, args)
    stop_on_signals()
    out = rec.new_record(args)
    out["kind"] = "presence"
    out["note"] = "the machine is a 2-vCPU VM shared with other developers' builds and tests: figures are noisy"
    reps = []
    for rep in range(args.reps):
        say(f"rep {rep + 1}/{args.reps}")
        reps.append(measure(args.rates, args))
    out["runs"] = reps
    out["summary"] = summarize(reps)
    say(rec.append(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
