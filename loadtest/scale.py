"""The scale benchmark: JetStream publish rate and nats-server CPU per message for K shard streams × R1/R3.

    .venv/bin/python -m parley.loadtest.scale                  # make bench-scale: K=1,2,4 × R1,R3, 3 repetitions
    .venv/bin/python -m parley.loadtest.scale --shards 1 --replicas 1 --reps 1 --seconds 3 --no-save

For each (K, R, repetition): fresh nats-servers (one, or a 3-server cluster on loopback for R3), K
streams ``MSG_<i>`` built from Parley's own ``stream_config(settings)`` (file storage, the dedup window,
direct gets; subjects ``msg.<i>.>``, RePublish to ``dlv.>``, ``num_replicas`` R), 20,000 conversations
spread over the shards, ``generators`` publisher processes sending as Parley's publisher does
(``loadtest/scale_gen.py``) and one subscriber on ``dlv.>``. Phases, each a measured window after a
warm-up: ``max`` (closed loop: ``inflight`` sends waiting for their acks per process), then open loop at
``loads`` × that maximum (50% and 80%), where the ack p99 is sane. CPU per process over each window
comes from /proc (``harness.meter``); nats-server CPU per message sums every server. The summary is
the median over repetitions. The generator is Python on the same cores: each phase names the busiest
process, so a generator-bound maximum is visible as one.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import inspect
import multiprocessing as mp
import shutil
import statistics
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
from nats.js.api import RePublish, StreamConfig
from nats.js.errors import APIError
from parley.loadtest import scale_gen
from parley.loadtest.harness import record
from parley.loadtest.harness.latency import latency_summary
from parley.loadtest.harness.meter import CpuMeter, cpu_share
from parley.loadtest.harness.natscluster import NatsServers
from parley.loadtest.harness.session import numbers, run_async, say, stop_on_signals, within

from parley.bus.stream import stream_config
from parley.ids import DELIVERY_PREFIX
from parley.settings import Settings

CLUSTER_SIZE = {1: 1, 3: 3}  # servers per replica count
STREAM_READY_S = 30.0
START_DELAY_S = 0.5  # commands reach every process before the phase starts
NOISE = "the machine is a 2-vCPU VM shared with other developers' builds and tests: figures are noisy"


def parley_config(settings: Settings, shard: int) -> StreamConfig:
    """Parley's own config for shard ``shard``: ``stream_config(settings, shard)`` where the sharded stream
    module has landed, else the single stream's ``stream_config(settings)``."""
    build: Callable[..., StreamConfig] = stream_config
    return build(settings, shard) if len(inspect.signature(build).parameters) == 2 else build(settings)


def shard_configs(settings: Settings, shards: int, replicas: int) -> list[StreamConfig]:
    """Parley's stream settings, one stream per shard."""
    return [dataclasses.replace(parley_config(settings, i), name=f"MSG_{i}", subjects=[f"msg.{i}.>"],
                                num_replicas=replicas,
                                republish=RePublish(src=f"msg.{i}.>", dest=DELIVERY_PREFIX + ">"))
            for i in range(shards)]


async def create_streams(urls: list[str], configs: list[StreamConfig]) -> None:
    """Add every stream, retrying while a new cluster elects its meta leader."""
    nc = await nats.connect(servers=urls)
    js = nc.jetstream()
    deadline = time.monotonic() + STREAM_READY_S
    try:
        for config in configs:
            while True:
                try:
                    await js.add_stream(config)
                    break
                except (APIError, nats.errors.Error, TimeoutError):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.25)
    finally:
        await nc.close()


class Load:
    """The publisher and subscriber processes of one (K, R) run."""

    def __init__(self, urls: list[str], shards: int, args: argparse.Namespace) -> None:
        ctx = mp.get_context("spawn")
        self.pipes: list[Any] = []
        self.procs: list[Any] = []
        g = args.generators
        for i in range(g):
            here, there = ctx.Pipe()
            convs = list(range(i, args.conversations, g))
            self.procs.append(ctx.Process(target=scale_gen.publisher_main, daemon=True,
                                          args=(urls, shards, convs, args.body_bytes, f"g{i}", there)))
            self.pipes.append(here)
        here, there = ctx.Pipe()
        self.procs.append(ctx.Process(target=scale_gen.subscriber_main, args=(urls, there), daemon=True))
        self.pipes.append(here)
        for p in self.procs:
            p.start()
        for pipe in self.pipes:
            if not pipe.poll(30) or pipe.recv() != "ready":
                raise RuntimeError("a load process did not start")

    def pids(self) -> dict[str, int]:
        names = [f"gen{i}" for i in range(len(self.procs) - 1)] + ["subscriber"]
        return {name: p.pid for name, p in zip(names, self.procs, strict=True)}

    def run(self, phase: scale_gen.Phase) -> list[dict[str, Any]]:
        for pipe in self.pipes:
            pipe.send(phase)
        return [pipe.recv() for pipe in self.pipes]

    def stop(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(None)
            except OSError:
                pass
        for p in self.procs:
            p.join(10)
            if p.is_alive():
                p.kill()


def run_phase(load: Load, meter: CpuMeter, name: str, rate: float | None, args: argparse.Namespace
              ) -> dict[str, Any]:
    start = time.time() + START_DELAY_S
    t0 = start + args.warmup
    t1 = t0 + args.seconds
    per_process = None if rate is None else rate / args.generators
    phase = scale_gen.Phase(start, t0, t1, per_process, args.inflight)
    box: dict[str, Any] = {}

    def sample() -> None:
        time.sleep(max(0.0, t0 - time.time()))
        box["a"] = meter.snapshot()
        time.sleep(max(0.0, t1 - time.time()))
        box["b"] = meter.snapshot()

    th = threading.Thread(target=sample)
    th.start()
    answers = load.run(phase)
    th.join()
    return summarize_phase(name, rate, answers, cpu_share(box["a"], box["b"]))


def summarize_phase(name: str, rate: float | None, answers: list[dict[str, Any]], cpu: dict[str, Any]
                    ) -> dict[str, Any]:
    pubs, sub = answers[:-1], answers[-1]
    acked = sum(a["acked"] for a in pubs)
    wall = cpu["wall_s"]
    lat, lag = array("q"), array("q")
    for a in pubs:
        lat.frombytes(a["lat"])
        lag.frombytes(a["lag"])
    per = cpu["per_process"]
    nats_pct = sum(v for k, v in per.items() if k.startswith("nats-server") and v is not None)
    gen_pct = sum(v for k, v in per.items() if k.startswith("gen") and v is not None)
    busiest = max((k for k in per if per[k] is not None), key=lambda k: per[k])

    def ms_per_msg(pct: float) -> float | None:
        return round(pct / 100 * wall * 1000 / acked, 4) if acked else None

    return {"phase": name, "offered_rate": rate, "publish_rate": round(acked / wall, 1) if wall else None,
            "acked": acked, "delivered_rate": round(sub["delivered"] / wall, 1) if wall else None,
            "slow_consumer_errors": sub["slow_consumer_errors"], "retries": sum(a["retries"] for a in pubs),
            "errors": sum(a["errors"] for a in pubs), "ack": latency_summary(lat),
            "send_lag": latency_summary(lag) if rate else None,
            "nats_cpu_pct": round(nats_pct, 1), "generators_cpu_pct": round(gen_pct, 1),
            "nats_cpu_ms_per_msg": ms_per_msg(nats_pct), "generator_cpu_ms_per_msg": ms_per_msg(gen_pct),
            "subscriber_cpu_ms_per_msg": ms_per_msg(per.get("subscriber") or 0.0),
            "busiest_process": busiest, "machine_busy_pct": cpu["machine_busy"], "cpu": cpu}


def one_run(shards: int, replicas: int, rep: int, args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix=f"parley-scale-k{shards}r{replicas}-"))
    servers = NatsServers(root, CLUSTER_SIZE[replicas])
    load = None
    try:
        servers.start()
        run_async(create_streams(servers.urls, shard_configs(Settings(), shards, replicas)))
        load = Load(servers.urls, shards, args)
        meter = CpuMeter(servers.pids() | load.pids())
        run_phase(load, meter, "warm", None, args)
        phases = [run_phase(load, meter, "max", None, args)]
        top = phases[0]["publish_rate"] or 0.0
        for share in args.loads:
            phases.append(run_phase(load, meter, f"{share:.0%}", round(top * share), args))
        if servers.exited():
            raise RuntimeError(f"a nats-server exited during the run; logs in {root}")
        return {"shards": shards, "replicas": replicas, "servers": servers.size, "rep": rep, "phases": phases}
    finally:
        if load is not None:
            load.stop()
        servers.stop()
        shutil.rmtree(root, ignore_errors=True)


def median(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return round(statistics.median(got), 4) if got else None


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (K, R): medians over the repetitions of each phase's figures."""
    out = []
    for key in sorted({(r["shards"], r["replicas"]) for r in runs}):
        mine = [r for r in runs if (r["shards"], r["replicas"]) == key]
        row: dict[str, Any] = {"shards": key[0], "replicas": key[1], "reps": len(mine)}
        for name in [p["phase"] for p in mine[0]["phases"]]:
            ps = [p for r in mine for p in r["phases"] if p["phase"] == name]
            row[name] = {f: median([p[f] for p in ps]) for f in (
                "publish_rate", "delivered_rate", "nats_cpu_ms_per_msg", "generator_cpu_ms_per_msg",
                "subscriber_cpu_ms_per_msg", "nats_cpu_pct", "generators_cpu_pct", "machine_busy_pct")}
            row[name]["ack_p50_ms"] = median([p["ack"]["p50_ms"] for p in ps])
            row[name]["ack_p99_ms"] = median([p["ack"]["p99_ms"] for p in ps])
            row[name]["busiest"] = statistics.mode([p["busiest_process"] for p in ps])
        out.append(row)
    return out


def print_summary(rows: list[dict[str, Any]]) -> None:
    say(f"{'K':>2} {'R':>2} | {'max msg/s':>9} {'NATS ms/msg':>11} {'gen ms/msg':>10} busiest at max | "
        "at 50%: msg/s, NATS ms/msg, ack p99 | at 80%: same")
    for r in rows:
        m, h, e = r["max"], r.get("50%", {}), r.get("80%", {})
        say(f"{r['shards']:>2} {r['replicas']:>2} | {m['publish_rate']:>9,.0f} {m['nats_cpu_ms_per_msg']:>11} "
            f"{m['generator_cpu_ms_per_msg']:>10} {m['busiest']:>14} | {h.get('publish_rate')}, "
            f"{h.get('nats_cpu_ms_per_msg')}, {h.get('ack_p99_ms')} ms | {e.get('publish_rate')}, "
            f"{e.get('nats_cpu_ms_per_msg')}, {e.get('ack_p99_ms')} ms")


def parse_args(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.scale", description=__doc__.split("\n")[0])
    p.add_argument("--shards", type=numbers(1, 16), default=[1, 2, 4], help="stream shard counts K")
    p.add_argument("--replicas", type=numbers(1, 3), default=[1, 3], help="1 (one server) and/or 3 (3 servers)")
    p.add_argument("--reps", type=within(1, 9, int), default=3)
    p.add_argument("--generators", type=within(1, 8, int), default=3, help="publisher processes")
    p.add_argument("--inflight", type=within(1, 1000, int), default=64, help="sends awaiting an ack, per process")
    p.add_argument("--conversations", type=within(100, 1_000_000, int), default=20_000)
    p.add_argument("--body-bytes", type=within(50, 10_000, int), default=300)
    p.add_argument("--warmup", type=within(0, 30), default=1.5)
    p.add_argument("--seconds", type=within(1, 120), default=6.0, help="measured window per phase")
    p.add_argument("--loads", type=numbers(0.05, 1), default=[0.5, 0.8], help="open-loop shares of the maximum")
    record.add_options(p, "scale.jsonl")
    args = p.parse_args(argv)
    if any(r not in CLUSTER_SIZE for r in args.replicas):
        p.error("--replicas: 1 or 3")
    args.shards = [int(k) for k in args.shards]
    args.replicas = [int(r) for r in args.replicas]
    return p, args


def main(argv: list[str] | None = None) -> int:
    parser, args = parse_args(argv)
    rec = record.recorder(parser, args)
    stop_on_signals()
    out = rec.new_record(args)
    out["note"] = NOISE
    started = time.monotonic()
    runs = []
    for rep in range(args.reps):  # repetitions outermost: a noisy minute spreads over every setup
        for replicas in args.replicas:
            for shards in args.shards:
                say(f"rep {rep + 1}/{args.reps}: K={shards} R{replicas} ...")
                runs.append(one_run(shards, replicas, rep, args))
                m = runs[-1]["phases"][0]
                say(f"  max {m['publish_rate']:,.0f} msg/s, NATS {m['nats_cpu_ms_per_msg']} ms/msg, "
                    f"busiest {m['busiest_process']}, machine {m['machine_busy_pct']}%")
    out["runs"] = runs
    out["summary"] = summarize(runs)
    out["duration_s"] = round(time.monotonic() - started, 1)
    print_summary(out["summary"])
    say(rec.append(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
