"""Parley's benchmark: cross-node DM throughput, end-to-end latency and CPU per process.

    .venv/bin/python -m parley.loadtest.bench [--pairs N] [--seconds S] [--rate R] [--allow-dirty]

What one run does, all on 127.0.0.1 and bounded in count and time:

1. Starts its own cluster (``parley.tools.cluster``: free ports, a temp dir, production timings, the
   per-user rate limit raised so it measures capacity, not limits).
2. Signs up N sender/receiver pairs, makes each pair friends and opens their DM. Senders connect to
   node1 and receivers to node2, so every message crosses nodes through NATS.
3. Baseline: raw NATS core publish→subscribe (nats-py, the cluster's nats-server), same rate, count
   and body size. It is the floor Parley's latency adds to.
4. The Parley run: senders send at a fixed offered rate (open loop, round-robin over pairs) for
   ``--seconds`` after a ``--warmup`` that is not counted. Each body carries its send time
   (``time.perf_counter_ns``, shared by sender and receiver in this process), so the receiver
   measures end-to-end latency. Acks (``sent``), deliveries and losses (acked but not delivered
   within ``--drain`` seconds after the run) are counted; CPU is sampled per cluster process and for
   this client over the measured window.
5. A max-throughput pass, the main run being its first point: the offered rate steps up (``--steps``)
   until a step is not sustained (delivered < 90% of offered, p99 > 1 s, or a loss), or down
   (75%, 50%, ... of ``--rate``) when the main run already was not; then ``--refine`` steps halfway
   between the best sustained and the lowest unsustained rate. The highest sustained delivered rate
   is reported. The cluster is drained between steps.
6. Prints a table and appends one JSON line to ``loadtest/results/bench.jsonl`` (``--out``).

The load generator shares the machine with the cluster; its own CPU is reported so a saturated
client is visible. Nothing here asserts on timing: the exit status is non-zero only on errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
from parley.loadtest.bench_report import report, sustained
from parley.loadtest.harness import accounts, record
from parley.loadtest.harness.accounts import Account
from parley.loadtest.harness.device import LoadDevice
from parley.loadtest.harness.latency import ratio
from parley.loadtest.harness.load import OpenLoop, Phase
from parley.loadtest.harness.meter import CpuMeter
from parley.loadtest.harness.session import (
    BenchError,
    bounded,
    guarded,
    numbers,
    require_running,
    run_async,
    say,
    scratch_cluster,
    stop_on_signals,
    unexpected_listeners,
    within,
)
from parley.tools.client import Api
from parley.tools.cluster import Cluster

from parley.settings import Settings

MAX_PAIRS, MAX_SECONDS, MAX_RATE = 1000, 600, 200_000
SETTLE_S = 15.0  # after the loss deadline, wait this long at most for a backlog to clear
SEP = "|"
# production timings (what `parley up` runs with), no per-user rate limit: capacity, not limits
CLUSTER = {**{name: getattr(Settings(), name) for name in (
    "presence_beat_s", "presence_timeout_s", "node_ttl_s", "node_beat_s", "hello_timeout_s")},
    "rate_per_s": 100_000.0, "rate_burst": 100_000}
SENDER, RECEIVER = "sender", "receiver"


class Bench(OpenLoop):
    """The open loop plus this benchmark's books: every send until acked, every acked message until it
    arrives; a message acked but not delivered when a phase's drain ends is lost (late if it comes)."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args.max_inflight)
        self.args = args
        self.pending: dict[str, tuple[int, int]] = {}  # cid -> (phase idx, send ns), waiting for ack/error
        self.undelivered: dict[int, int] = {}  # acked message id -> phase idx, not yet at the receiver
        self.delivered_early: set[int] = set()  # delivered before its ack arrived
        self.lost_ids: set[int] = set()
        self.nats_seen = 0
        self.acking = True

    def on_frame(self, dev: LoadDevice, kind: str, f: dict[str, Any], now: int) -> None:
        if kind == "msg" and dev.tag == RECEIVER:
            self.on_delivery(f["id"], f["body"], now)
        elif kind == "ack":
            self.on_ack(f, now)
        elif kind == "error":
            self.on_error(f)

    def _count_delivery(self, parts: list[Any], now: int) -> Phase | None:
        """Count one delivery whose payload starts with '<phase>|<sent_at>'; None if not ours."""
        try:
            phase = self.phases[int(parts[0])]
            sent_at = int(parts[1])
        except (ValueError, IndexError):
            return None
        phase.delivered_total += 1
        if (cur := self.in_window(now)) is not None:
            cur.delivered += 1
        if phase.in_window(sent_at):
            phase.e2e.append(now - sent_at)
        return phase

    def on_delivery(self, mid: int, body: str, now: int) -> None:
        self.inflight -= 1
        phase = self._count_delivery(body.split(SEP, 3), now)
        if phase is None:
            return
        if self.undelivered.pop(mid, None) is None:
            if mid in self.lost_ids:
                self.lost_ids.discard(mid)
                phase.late += 1
            else:
                self.delivered_early.add(mid)

    def on_ack(self, f: dict[str, Any], now: int) -> None:
        entry = self.pending.pop(f.get("cid", ""), None)
        if entry is None:
            return
        idx, sent_at = entry
        if (cur := self.in_window(now)) is not None:
            cur.acked += 1
        if self.phases[idx].in_window(sent_at):
            self.phases[idx].ack_lat.append(now - sent_at)
        mid = int(f["id"])
        if mid in self.delivered_early:
            self.delivered_early.discard(mid)
        else:
            self.undelivered[mid] = idx

    def on_error(self, f: dict[str, Any]) -> None:
        entry = self.pending.pop(f.get("ref", ""), None) if f.get("ref") else None
        phase = self.phases[entry[0]] if entry else self.cur
        if phase is not None:
            phase.errors[str(f.get("code"))] += 1
        if entry is not None:
            self.inflight -= 1

    def on_nats(self, data: bytes, now: int) -> None:
        self.inflight -= 1
        self.nats_seen += 1
        self._count_delivery(data.split(b"|", 3), now)  # type: ignore[arg-type]

    def body(self, phase: Phase, sent_at: int, pair: int, n: int) -> str:
        head = f"{phase.idx}{SEP}{sent_at}{SEP}{pair}{SEP}{n}{SEP}"
        return head + "x" * max(0, self.args.body_bytes - len(head))

    async def drain_parley(self, phase: Phase) -> None:
        """Wait up to --drain seconds for every ack and every acked message's delivery."""
        t = time.monotonic()
        while time.monotonic() < t + self.args.drain and (self.pending or self.undelivered):
            await asyncio.sleep(0.02)
        phase.drain_s = time.monotonic() - t
        for idx, _ in self.pending.values():
            self.phases[idx].unacked += 1
        self.pending.clear()  # a late ack for these is ignored
        for mid, idx in self.undelivered.items():
            self.phases[idx].lost += 1
            self.lost_ids.add(mid)
        self.undelivered.clear()
        self.cur = None
        # Let an overload backlog clear before the next phase (what arrives now counts as late).
        t = time.monotonic()
        while self.inflight > 0 and time.monotonic() < t + SETTLE_S:
            await asyncio.sleep(0.05)
        phase.settle_s = time.monotonic() - t
        phase.backlog_left = max(0, self.inflight)
        self.inflight = 0

    async def drain_nats(self, phase: Phase, expected: int) -> None:
        t = time.monotonic()
        while time.monotonic() < t + self.args.drain and self.nats_seen < expected:
            await asyncio.sleep(0.02)
        phase.drain_s = time.monotonic() - t
        phase.undelivered = max(0, expected - self.nats_seen)
        self.inflight = 0
        self.cur = None


# ---- the run -----------------------------------------------------------------------------------


@dataclass
class Pair:
    sender: Account
    receiver: Account
    conv: str = ""
    sdev: LoadDevice | None = None
    rdev: LoadDevice | None = None


async def setup_pairs(api: Api, n: int) -> list[Pair]:
    users = accounts.names("b", 2 * n)

    def progress(done: int) -> None:
        if done % 20 == 0 or done == 2 * n:
            say(f"  accounts {done}/{2 * n}")

    # the API hashes passwords in its threads: a few at a time
    made = await accounts.sign_up(api, users, concurrency=4, progress=progress)
    pairs = [Pair(made[2 * i], made[2 * i + 1]) for i in range(n)]
    await accounts.befriend(api, [(p.sender, p.receiver) for p in pairs], concurrency=4)
    convs = await bounded([partial(accounts.open_dm, api, p.sender, p.receiver) for p in pairs], 4)
    for p, conv in zip(pairs, convs, strict=True):
        p.conv = conv
    return pairs


async def connect_pairs(http: aiohttp.ClientSession, bench: Bench, cluster: Cluster, pairs: list[Pair]) -> None:
    async def one(p: Pair) -> None:
        p.sdev = LoadDevice(http, cluster.node_url(0), p.sender.token, bench, SENDER)
        p.rdev = LoadDevice(http, cluster.node_url(1), p.receiver.token, bench, RECEIVER)
        for dev, node in ((p.sdev, "node1"), (p.rdev, "node2")):
            welcome = await dev.connect()
            if welcome.get("node") != node:
                raise BenchError(f"expected {node} at {dev.url}, got {welcome.get('node')}")
            await asyncio.wait_for(dev.synced.wait(), 10)

    await bounded([partial(one, p) for p in pairs], 20)


async def parley_phase(bench: Bench, pairs: list[Pair], meter: CpuMeter, cluster: Cluster, name: str,
                       rate: float, warmup: float, seconds: float) -> Phase:
    phase = bench.new_phase(name, "parley", rate, warmup, seconds)
    prefix = secrets.token_hex(3)

    async def send(ph: Phase, pair: int, n: int, sent_at: int) -> None:
        p = pairs[pair]
        assert p.sdev is not None
        cid = f"{prefix}-{ph.idx}-{n}"
        bench.pending[cid] = (ph.idx, sent_at)
        try:
            await p.sdev.send_message(cid, p.conv, bench.body(ph, sent_at, pair, n))
        except BaseException:
            bench.pending.pop(cid, None)
            raise

    await bench.drive(phase, len(pairs), send, meter, lambda: require_running(cluster))
    await bench.drain_parley(phase)
    require_running(cluster)
    return phase


async def nats_phase(bench: Bench, cluster: Cluster, meter: CpuMeter, pairs: int, rate: float, warmup: float,
                     seconds: float) -> Phase:
    import nats

    phase = bench.new_phase("nats-baseline", "nats", rate, warmup, seconds)
    prefix = f"bench.{secrets.token_hex(4)}"  # not under msg.>: core NATS only, no JetStream
    sub_nc = await nats.connect(**cluster.admin_connect_options(), name="bench-baseline-sub")
    pub_nc = await nats.connect(**cluster.admin_connect_options(), name="bench-baseline-pub")
    try:
        async def on_msg(msg: Any) -> None:
            bench.on_nats(msg.data, time.perf_counter_ns())

        await sub_nc.subscribe(f"{prefix}.>", cb=on_msg, pending_msgs_limit=10_000_000,
                               pending_bytes_limit=1 << 30)
        await sub_nc.flush()
        subjects = [f"{prefix}.{i}" for i in range(pairs)]
        bench.nats_seen = 0

        async def send(ph: Phase, pair: int, n: int, sent_at: int) -> None:
            await pub_nc.publish(subjects[pair], bench.body(ph, sent_at, pair, n).encode())

        await bench.drive(phase, pairs, send, meter, lambda: require_running(cluster))
        await pub_nc.flush()
        await bench.drain_nats(phase, phase.sent_total)
    finally:
        for nc in (pub_nc, sub_nc):
            with contextlib.suppress(Exception):
                await nc.close()
    return phase


def step_rates(args: argparse.Namespace, main: Phase) -> tuple[list[float], str]:
    """The max-throughput pass's rates after the main run: up from it, or down when it was overloaded."""
    if not args.steps:
        return [], ""
    if sustained(main.result()):
        return [r for r in args.steps if r > args.rate], "up"
    return [round(args.rate * f) for f in (0.75, 0.5, 0.35, 0.25)], "down (the main run was not sustained)"


def refined_rate(steps: list[Phase]) -> float | None:
    """Halfway between the highest sustained and the lowest unsustained rate above it, if they are apart."""
    done = [(p.rate, sustained(p.result())) for p in steps]
    good = [r for r, ok in done if ok]
    if not good:
        return None
    lo = max(good)
    above = [r for r, ok in done if not ok and r > lo]
    if not above or min(above) - lo <= 0.1 * lo:
        return None
    return float(round((lo + min(above)) / 2 / 50) * 50)


async def max_throughput(args: argparse.Namespace, run_step: Any, main: Phase) -> list[Phase]:
    steps = [main]  # the main run is the first point of the max-throughput pass
    rates, how = step_rates(args, main)
    if rates:
        say(f"max throughput: stepping {how}: {', '.join(f'{r:g}' for r in rates)} msg/s, "
            f"{args.step_warmup:g}+{args.step_seconds:g}s each")
    for rate in rates:
        steps.append(await run_step(rate, ""))
        if sustained(steps[-1].result()) != (how == "up"):
            break
    for _ in range(args.refine if rates else 0):
        rate = refined_rate(steps)
        if rate is None:
            break
        steps.append(await run_step(rate, " (refining)"))
    return steps


def client_health(pairs: list[Pair]) -> dict[str, int]:
    devices = [d for p in pairs for d in (p.sdev, p.rdev) if d is not None]
    return {
        "disconnected": sum(1 for d in devices if d.closed.done()),
        "gaps": sum(d.gaps for d in devices),  # per conversation, by prev chain (ids compare only within one)
        "duplicates": sum(d.duplicates for d in devices),
        "resent": sum(d.resent for d in devices),  # re-sent after a reconnect, dropped (allowed)
        "echoes_to_senders": sum(d.received for p in pairs if (d := p.sdev) is not None),
        "deliveries_to_receivers": sum(d.received for p in pairs if (d := p.rdev) is not None),
    }


async def run(args: argparse.Namespace, cluster: Cluster) -> dict[str, Any]:
    bench = Bench(args)
    meter = CpuMeter(cluster.pids())
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=60)) as http:
        t = time.monotonic()
        say(f"setup: {args.pairs} pairs ({2 * args.pairs} accounts; the API hashes each password)")
        pairs = await setup_pairs(Api(cluster.api_url, http), args.pairs)
        setup_s = time.monotonic() - t
        say(f"  done in {setup_s:.1f}s")
        require_running(cluster)

        say(f"baseline: raw NATS core pub/sub at {args.rate:g} msg/s for {args.warmup:g}+{args.seconds:g}s")
        base = await nats_phase(bench, cluster, meter, args.pairs, args.rate, args.warmup, args.seconds)

        await connect_pairs(http, bench, cluster, pairs)
        say(f"parley: {args.rate:g} msg/s over {args.pairs} pairs (node1 → node2) for "
            f"{args.warmup:g}+{args.seconds:g}s")
        main = await parley_phase(bench, pairs, meter, cluster, "parley", args.rate, args.warmup, args.seconds)

        async def run_step(rate: float, note: str) -> Phase:
            step = await parley_phase(bench, pairs, meter, cluster, f"step-{rate:g}", rate, args.step_warmup,
                                      args.step_seconds)
            r = step.result()
            say(f"  {rate:>8g} offered → {r['delivered_rate']:>8.1f} delivered/s, p99 {r['e2e']['p99_ms']} ms, "
                f"{'sustained' if sustained(r) else 'not sustained'}{note}")
            return step

        steps = await max_throughput(args, run_step, main)
        health = client_health(pairs)
        await asyncio.gather(*(d.close() for p in pairs for d in (p.sdev, p.rdev) if d), return_exceptions=True)
    return results(args, setup_s, main.result(), base.result(), [s.result() for s in steps], health)


def results(args: argparse.Namespace, setup_s: float, m: dict[str, Any], b: dict[str, Any],
            steps: list[dict[str, Any]], health: dict[str, int]) -> dict[str, Any]:
    good = [s for s in steps if sustained(s)]
    best = max(good, key=lambda s: s["delivered_rate"]) if good else None
    return {
        "setup_s": round(setup_s, 1),
        "parley": m,
        "baseline": b,
        "ratios": {"p50": ratio(m["e2e"]["p50_ms"], b["e2e"]["p50_ms"]),
                   "p99": ratio(m["e2e"]["p99_ms"], b["e2e"]["p99_ms"])},
        "ratios_at_best_sustained": None if best is None else {
            "offered_rate": best["offered_rate"],
            "p50": ratio(best["e2e"]["p50_ms"], b["e2e"]["p50_ms"]),
            "p99": ratio(best["e2e"]["p99_ms"], b["e2e"]["p99_ms"])},
        "max_throughput": {
            "steps": steps,
            "best_sustained_delivered_rate": best["delivered_rate"] if best else None,
            "at_offered_rate": best["offered_rate"] if best else None,
            "peak_delivered_rate": max(s["delivered_rate"] for s in steps),
            "limit_reached": any(not sustained(s) for s in steps),
            "skipped": not args.steps,
        },
        "client_health": health,
    }


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, record.Recorder]:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.bench", description=__doc__.split("\n\n")[0])
    seconds, rate = within(0.001, MAX_SECONDS), within(0.001, MAX_RATE)
    p.add_argument("--pairs", type=within(1, MAX_PAIRS, int), default=50, help="sender/receiver pairs (default 50)")
    p.add_argument("--seconds", type=seconds, default=10.0, help="measured seconds (default 10)")
    p.add_argument("--rate", type=rate, default=2000.0, help="offered msg/s over all pairs (default 2000)")
    p.add_argument("--warmup", type=within(0, 60), default=2.0, help="uncounted seconds before measuring (default 2)")
    p.add_argument("--body-bytes", type=within(40, 4000, int), default=100, help="message body size (default 100)")
    p.add_argument("--drain", type=within(0.001, 60), default=5.0,
                   help="seconds after a run for acks/deliveries before a message counts as lost (default 5)")
    p.add_argument("--steps", type=numbers(0.001, MAX_RATE), default=[3000.0, 5000.0, 7500.0, 10000.0],
                   help="max-throughput pass: offered rates above --rate, comma-separated, tried in order after "
                        "the main run (its first point) until one is not sustained; '' skips the max-throughput "
                        "pass (default 3000,5000,7500,10000)")
    p.add_argument("--refine", type=within(0, 5, int), default=2,
                   help="extra steps halfway between the highest sustained and lowest unsustained rate (default 2)")
    p.add_argument("--step-seconds", type=seconds, default=4.0, help="measured seconds per step (default 4)")
    p.add_argument("--step-warmup", type=within(0, 60), default=1.0, help="warm-up seconds per step (default 1)")
    p.add_argument("--max-inflight", type=within(1, 10**9, int), default=5000,
                   help="sent but undelivered messages above which sends are skipped (default 5000)")
    p.add_argument("--keep-run-dir", action="store_true", help="keep the cluster's data and logs")
    record.add_options(p, "bench.jsonl")
    args = p.parse_args(argv)
    return args, record.recorder(p, args)


def cluster_ports(cluster: Cluster) -> dict[str, int]:
    s = cluster.settings
    return {"nats": cluster.nats_port, "api": s.api_port, "discovery": s.discovery_port,
            "archiver": s.archiver_port, "presence": s.presence_port, "pusher": s.pusher_port,
            "node": cluster.node_ports[0]}


def measure(args: argparse.Namespace, recorder: record.Recorder) -> tuple[dict[str, Any], str] | None:
    """One whole run: its record (appended) and where it went, or None when it failed (``standard`` too)."""
    started = time.monotonic()
    rec = recorder.new_record(args)

    def work() -> dict[str, Any]:
        with scratch_cluster(rec, "parley-bench-", args.keep_run_dir, **CLUSTER) as cluster:
            rec.update(cluster_ports=cluster_ports(cluster), unexpected_listeners=unexpected_listeners(cluster))
            return run_async(run(args, cluster))

    results = guarded("bench", work)
    if results is None:
        if rec.get("log_issues"):
            say(json.dumps(rec["log_issues"], indent=1), err=True)
        return None
    rec["results"] = results
    rec["duration_s"] = round(time.monotonic() - started, 1)
    return rec, recorder.append(rec)


def main(argv: list[str] | None = None) -> int:
    args, recorder = parse_args(argv)
    stop_on_signals()
    done = measure(args, recorder)
    if done is None:
        return 1
    rec, note = done
    say(report(rec))
    say(f"\n{note}; took {rec['duration_s']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
