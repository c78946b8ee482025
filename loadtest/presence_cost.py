"""The presence worker's CPU per heartbeat entry (part of ``make bench-scale``; appends to scale.jsonl).

    .venv/bin/python -m parley.loadtest.presence_cost            # 50,000 users, 20k and 50k entries/s, 3 reps
    .venv/bin/python -m parley.loadtest.presence_cost --rates 10000 --reps 1 --no-save

At the 50M-DAU peak the nodes report ≈2.1M device heartbeat entries a second (every connected device
every ``PARLEY_PRESENCE_BEAT_S``), so the presence workers' count follows from one figure: CPU per entry.
This starts a nats-server and the real presence worker (``python -m parley presence``), makes ``users``
users online with one round of beats (their online transitions write the KV buckets; not measured),
then publishes heartbeat batches of 2,000 entries (``wire.Heartbeats`` on ``hb.<node>``, as nodes do)
at each fixed rate for a measured window: the users stay online, so every entry is the steady-state
refresh that dominates at the peak. CPU per process over the window comes from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
from parley.loadtest.harness import record
from parley.loadtest.harness.meter import CpuMeter, cpu_share
from parley.loadtest.harness.natscluster import NatsServers
from parley.loadtest.harness.session import numbers, run_async, say, stop_on_signals, within
from parley.tools.cluster import scratch_settings, spawn, stop_all, wait_ready

from parley import wire
from parley.presence_bus import heartbeat_subject

BATCH = 2000  # node/presence.py's batch size
NODES = 8  # heartbeat subjects the batches rotate over (hb.<node>)


def batches(users: int, at_ms: int) -> list[bytes]:
    beats = [(f"u{i}", "d1", at_ms) for i in range(users)]
    return [wire.encode(wire.Heartbeats(tuple(beats[s:s + BATCH]))) for s in range(0, users, BATCH)]


async def publish_at(url: str, users: int, rate: float, seconds: float) -> int:
    """Heartbeat entries at ``rate``/s for ``seconds``; the number published."""
    nc = await nats.connect(url)
    sent, t0 = 0, time.monotonic()
    chunk = batches(users, int(time.time() * 1000))
    i = 0
    try:
        while (now := time.monotonic()) - t0 < seconds:
            while sent < (now - t0) * rate:
                await nc.publish(heartbeat_subject(f"n{i % NODES}"), chunk[i % len(chunk)])
                sent += BATCH
                i += 1
            await nc.flush()
            await asyncio.sleep(0.005)
    finally:
        await nc.close()
    return sent


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
        run_async(publish_at(url, args.users, args.users / 2, 2.0))  # everyone online; transitions settle
        time.sleep(2.0)
        meter = CpuMeter(servers.pids() | {"presence": child.pid})
        out = []
        for rate in rates:
            a = meter.snapshot()
            sent = run_async(publish_at(url, args.users, rate, args.seconds))
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
