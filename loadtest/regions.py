"""Benchmark: send→delivery and send→ack latency within a region and across two, per gateway delay.

    .venv/bin/python -m parley.loadtest.regions                   # make bench-regions: 0 and 40 ms, 200 each
    .venv/bin/python -m parley.loadtest.regions --delays-ms 40 --messages 50 --no-save

For each one-way gateway delay (``--delays-ms``): a fresh two-region scratch cluster (``eu`` and ``us``,
one nats-server each joined by a gateway through delaying proxies, node1 in eu, node2 in us), three
users (eu1 and eu2 on the eu node, us1 on the us node), an eu-homed DM of eu1 and eu2 and an eu-homed
DM of eu1 and us1 (both opened through the eu API). Three cases, measured one message at a time:

    same-region      eu1 → eu2, eu-homed: nothing crosses the gateway
    cross-home-send  eu1 → us1, homed in the sender's region: the delivery crosses once
    cross-home-recv  us1 → eu1, homed in the receiver's region: the send crosses to the stream (and its
                     ack back), the delivery stays in eu

Each message: the time from the sender's send to the receiver's ``msg`` frame, and to the sender's ack
frame (frame arrival times, ``perf_counter_ns`` in this one process). The cases take turns message by
message, so a noisy moment of the machine falls on all three alike. ``--warmup`` messages per case go
first, unmeasured. A delay's run is bounded by ``--timeout``. Prints p50/p99 per (delay, case) and
appends one record per (delay, case) to ``loadtest/results/regions.jsonl``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiohttp
from parley.loadtest.harness import accounts, record
from parley.loadtest.harness.device import LoadDevice
from parley.loadtest.harness.latency import latency_summary
from parley.loadtest.harness.session import (
    BenchError,
    fmt,
    guarded,
    numbers,
    run_async,
    say,
    scratch_cluster,
    stop_on_signals,
    within,
)
from parley.tools.client import Api
from parley.tools.cluster import Cluster

REGIONS = ("eu", "us")
NODE = {"eu": 0, "us": 1}  # the cluster runs node i in REGIONS[i % 2]
MESSAGE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Case:
    name: str
    sender: str  # user, named after the region of their node
    receiver: str
    home: str  # the region the DM is homed in (opened through its API)

    @property
    def dm(self) -> tuple[str, str]:
        return (self.sender, self.receiver) if self.sender < self.receiver else (self.receiver, self.sender)

    @property
    def crossings(self) -> str:
        """What crosses the gateway: the send (to a stream in another region), the delivery, or nothing."""
        send = region_of(self.sender) != self.home
        delivery = region_of(self.receiver) != self.home
        return {(False, False): "nothing", (False, True): "delivery", (True, False): "send"}.get(
            (send, delivery), "send and delivery")


def region_of(user: str) -> str:
    return user.rstrip("0123456789")


CASES = (
    Case("same-region", "eu1", "eu2", "eu"),
    Case("cross-home-send", "eu1", "us1", "eu"),
    Case("cross-home-recv", "us1", "eu1", "eu"),
)


@dataclass
class Stopwatch:
    """The devices' ``FrameSink``: when each awaited frame arrived. ``expect`` one message (its cid is its
    body), then ``ack_ns``/``delivered_ns`` fill in as the sender's ack and the receiver's msg arrive (a
    copy reaching another device is not the delivery) and ``done`` is set when both have."""

    acking: bool = True
    cid: str = ""
    receiver: str = ""
    sent_ns: int = 0
    ack_ns: int | None = None
    delivered_ns: int | None = None
    refused: dict[str, Any] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def expect(self, cid: str, receiver: str, now: int) -> None:
        self.cid, self.receiver, self.sent_ns = cid, receiver, now
        self.ack_ns = self.delivered_ns = self.refused = None
        self.done.clear()

    def on_frame(self, dev: LoadDevice, kind: str, f: dict[str, Any], now: int) -> None:
        if kind == "ack" and f.get("cid") == self.cid and self.ack_ns is None:
            self.ack_ns = now - self.sent_ns
        elif kind == "msg" and f.get("body") == self.cid and dev.tag == self.receiver and self.delivered_ns is None:
            self.delivered_ns = now - self.sent_ns
        elif kind == "error" and f.get("ref") == self.cid:
            self.refused = f
        if self.refused is not None or (self.ack_ns is not None and self.delivered_ns is not None):
            self.done.set()


@dataclass
class Samples:
    delivery_ns: list[int] = field(default_factory=list)
    ack_ns: list[int] = field(default_factory=list)


def dms() -> dict[tuple[str, str], str]:
    """The DMs the cases need, each with the region it is homed in (cases sharing a DM agree on it)."""
    out: dict[tuple[str, str], str] = {}
    for c in CASES:
        if out.setdefault(c.dm, c.home) != c.home:
            raise ValueError(f"{c.name}: the DM {c.dm} is homed in {out[c.dm]}")
    return out


async def setup(cluster: Cluster, http: aiohttp.ClientSession, watch: Stopwatch
                ) -> tuple[dict[str, LoadDevice], dict[tuple[str, str], str]]:
    """The users' devices (by user) and the DMs (by ``Case.dm``), each opened through its home's API."""
    eu_api = Api(cluster.api_url_of("eu"), http)
    names = sorted({u for c in CASES for u in (c.sender, c.receiver)})
    users = dict(zip(names, await accounts.sign_up(eu_api, accounts.names("rg", len(names)), concurrency=3),
                     strict=True))
    homes = dms()
    await accounts.befriend(eu_api, [(users[a], users[b]) for a, b in homes], concurrency=2)
    convs = {(a, b): await accounts.open_dm(Api(cluster.api_url_of(home), http), users[a], users[b])
             for (a, b), home in homes.items()}
    devices = {}
    for name, user in users.items():
        dev = LoadDevice(http, cluster.node_url(NODE[region_of(name)]), user.token, watch, tag=name)
        await dev.connect()
        await asyncio.wait_for(dev.synced.wait(), MESSAGE_TIMEOUT_S)
        devices[name] = dev
    return devices, convs


async def one_message(case: Case, devices: dict[str, LoadDevice], conv: str, watch: Stopwatch, n: int) -> None:
    cid = f"{case.name}-{n}"
    watch.expect(cid, case.receiver, time.perf_counter_ns())
    await devices[case.sender].send_message(cid, conv, cid)
    try:
        await asyncio.wait_for(watch.done.wait(), MESSAGE_TIMEOUT_S)
    except TimeoutError:
        raise BenchError(f"{case.name}: message {n} not acked and delivered within {MESSAGE_TIMEOUT_S:.0f}s "
                         f"(ack {watch.ack_ns}, delivery {watch.delivered_ns})") from None
    if watch.refused is not None:
        raise BenchError(f"{case.name}: message {n} refused: {watch.refused}")


async def measure(cluster: Cluster, args: argparse.Namespace) -> dict[str, Samples]:
    watch = Stopwatch()
    async with aiohttp.ClientSession() as http:
        devices, convs = await setup(cluster, http, watch)
        out = {c.name: Samples() for c in CASES}
        try:
            for n in range(args.warmup + args.messages):
                for case in CASES:  # in turns: the machine's noise falls on every case alike
                    await one_message(case, devices, convs[case.dm], watch, n)
                    if n >= args.warmup:
                        assert watch.ack_ns is not None and watch.delivered_ns is not None
                        out[case.name].delivery_ns.append(watch.delivered_ns)
                        out[case.name].ack_ns.append(watch.ack_ns)
        finally:
            for dev in devices.values():
                await dev.close()
        return out


def case_results(delay_ms: float, case: Case, samples: Samples) -> dict[str, Any]:
    """The figures of one (delay, case): what goes into its record besides the common fields."""
    return {"gateway_delay_ms": delay_ms, "case": case.name, "sender_region": region_of(case.sender),
            "receiver_region": region_of(case.receiver), "home_region": case.home,
            "crosses": case.crossings, "delivery": latency_summary(samples.delivery_ns),
            "ack": latency_summary(samples.ack_ns)}


def table(rows: list[dict[str, Any]]) -> list[str]:
    """One line per (delay, case): p50 and p99 of send→delivery and send→ack, in ms."""
    lines = [f"{'delay':>7} {'case':<16} {'crosses':<9} | {'delivery p50':>12} {'p99':>8} | "
             f"{'ack p50':>8} {'p99':>8} | n"]
    for r in rows:
        d, a = r["delivery"], r["ack"]
        delay = f"{r['gateway_delay_ms']:g} ms"
        lines.append(f"{delay:>7} {r['case']:<16} {r['crosses']:<9} | "
                     f"{fmt(d['p50_ms']):>12} {fmt(d['p99_ms']):>8} | {fmt(a['p50_ms']):>8} {fmt(a['p99_ms']):>8} "
                     f"| {d['n']}")
    return lines


def one_delay(args: argparse.Namespace, delay_ms: float) -> tuple[dict[str, Samples], dict[str, Any]]:
    """A fresh cluster with that one-way gateway delay, measured; and its ``log_issues``."""
    info: dict[str, Any] = {}
    with scratch_cluster(info, "parley-regions-", args.keep_run_dir, nodes=2, regions=REGIONS,
                         shards=args.shards, gateway_delay_s=delay_ms / 1000) as cluster:
        samples = run_async(asyncio.wait_for(measure(cluster, args), args.timeout))
    return samples, info


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, record.Recorder]:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.regions", description=__doc__.split("\n")[0])
    p.add_argument("--delays-ms", type=numbers(0, 500), default=[0.0, 40.0],
                   help="one-way gateway delays, ms, a fresh cluster each (default 0,40)")
    p.add_argument("--messages", type=within(10, 5000, int), default=200, help="measured per case (default 200)")
    p.add_argument("--warmup", type=within(0, 100, int), default=10, help="unmeasured first, per case (default 10)")
    p.add_argument("--shards", type=within(1, 8, int), default=2, help="shards per region (default 2)")
    p.add_argument("--timeout", type=within(30, 3600), default=600.0,
                   help="one delay's measuring at most, s (default 600)")
    p.add_argument("--keep-run-dir", action="store_true", help="keep the clusters' data and logs")
    record.add_options(p, "regions.jsonl")
    args = p.parse_args(argv)
    return args, record.recorder(p, args)


def main(argv: list[str] | None = None) -> int:
    args, recorder = parse_args(argv)
    stop_on_signals()
    rows, failed = [], False
    for delay_ms in args.delays_ms:
        started = time.monotonic()
        say(f"one-way gateway delay {delay_ms:g} ms: {args.messages} messages per case, in turns")
        got = guarded("regions", partial(one_delay, args, delay_ms))
        if got is None:
            failed = True
            continue
        samples, info = got
        took = round(time.monotonic() - started, 1)
        for case in CASES:
            row = case_results(delay_ms, case, samples[case.name])
            rows.append(row)
            rec = recorder.new_record(args) | {"kind": "regions", "results": row, "duration_s": took} | info
            say(f"  {table([row])[1].strip()}; {recorder.append(rec)}")
    say("\n".join(table(rows)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
