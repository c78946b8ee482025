"""Open-loop offered load: a fixed rate of sends, round-robin over senders, counted in phases.

A ``Phase`` is one rate for ``warmup_s`` uncounted seconds, then a measured window [t0, t1): what
was sent, acked and delivered in it, the latencies of messages sent in it, and CPU per process over
it. ``OpenLoop.drive`` sends on a 1 ms tick whatever the schedule says is due, whether or not earlier
sends were answered (open loop: a slow server sees the offered rate, not a politer one), skipping a
send while more than ``max_inflight`` are sent and not yet delivered. Clocks: perf_counter_ns.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from parley.loadtest.harness.latency import latency_summary
from parley.loadtest.harness.meter import CpuMeter, cpu_share

CHECK_EVERY_NS = 500_000_000  # how often the run checks that the cluster is still whole
YIELD_EVERY = 200  # sends in one tick before the loop lets the readers run

Send = Callable[["Phase", int, int, int], Awaitable[None]]  # (phase, sender index, send number, now ns)


@dataclass
class Phase:
    idx: int
    name: str
    kind: str  # parley | nats
    rate: float
    warmup_s: float
    seconds: float
    start: int = 0
    t0: int = 0  # measured window [t0, t1)
    t1: int = 0
    sent_total: int = 0
    sent: int = 0  # in the window
    skipped: int = 0  # in the window, not sent because too much was in flight
    send_failed: int = 0
    acked: int = 0  # acks received in the window
    delivered: int = 0  # deliveries received in the window
    delivered_total: int = 0
    e2e: array[int] = field(default_factory=lambda: array("q"))  # of messages sent in the window
    ack_lat: array[int] = field(default_factory=lambda: array("q"))
    lag: array[int] = field(default_factory=lambda: array("q"))  # actual send time - scheduled time
    errors: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    unacked: int = 0
    undelivered: int = 0
    late: int = 0  # delivered after the loss deadline
    cpu: dict[str, Any] = field(default_factory=dict)
    drain_s: float = 0.0
    settle_s: float = 0.0
    backlog_left: int = 0

    def in_window(self, t: int) -> bool:
        return self.t0 <= t < self.t1

    def result(self) -> dict[str, Any]:
        window = (self.t1 - self.t0) / 1e9 if self.t1 > self.t0 else self.seconds
        offered = self.rate * window
        rate = self.delivered / window
        out: dict[str, Any] = {
            "name": self.name, "offered_rate": self.rate, "window_s": round(window, 3), "offered": round(offered),
            "sent": self.sent, "sent_total": self.sent_total, "skipped_inflight_cap": self.skipped,
            "send_failed": self.send_failed, "sent_rate": round(self.sent / window, 1),
            "delivered_rate": round(rate, 1),
            "delivered_ratio": round(self.delivered / offered, 4) if offered else None,
            # the generator could not offer the rate (not because of the in-flight cap): client-bound
            "client_limited": self.sent < 0.95 * offered and self.skipped == 0,
            "e2e": latency_summary(self.e2e), "client_send_lag": latency_summary(self.lag),
            "cpu": self.cpu, "drain_s": round(self.drain_s, 2),
            "cpu_ms_per_delivered_msg": {
                k: round(v * 10 / rate, 3) for k, v in self.cpu.get("per_process", {}).items() if v is not None and rate
            } | ({"cluster_total": round(self.cpu["cluster_total"] * 10 / rate, 3)} if rate and self.cpu else {}),
        }
        if self.kind == "parley":
            out.update(settle_s=round(self.settle_s, 2), backlog_left_after_settle=self.backlog_left,
                       acked_rate=round(self.acked / window, 1), ack_latency=latency_summary(self.ack_lat),
                       lost=self.lost, unacked=self.unacked, late=self.late, errors=dict(self.errors))
        else:
            out.update(undelivered=self.undelivered)
        return out


class OpenLoop:
    def __init__(self, max_inflight: int) -> None:
        self.max_inflight = max_inflight
        self.phases: list[Phase] = []
        self.cur: Phase | None = None  # the phase being driven, until its accounting is closed
        self.inflight = 0  # sent, not yet delivered or failed (the sinks decrement it)

    def new_phase(self, name: str, kind: str, rate: float, warmup_s: float, seconds: float) -> Phase:
        phase = Phase(len(self.phases), name, kind, rate, warmup_s, seconds)
        self.phases.append(phase)
        return phase

    def in_window(self, now: int) -> Phase | None:
        """The running phase if ``now`` is in its measured window."""
        cur = self.cur
        return cur if cur is not None and cur.in_window(now) else None

    async def drive(self, phase: Phase, senders: int, send: Send, meter: CpuMeter, check: Callable[[], None]) -> None:
        """Offer ``phase.rate`` sends/s round-robin over ``senders``; ``check`` raises if the run broke."""
        per_ns = phase.rate / 1e9
        phase.start = start = time.perf_counter_ns()
        phase.t0 = start + int(phase.warmup_s * 1e9)
        phase.t1 = phase.t0 + int(phase.seconds * 1e9)
        self.cur = phase
        before = None
        k, last_check = 0, start
        while (now := time.perf_counter_ns()) < phase.t1:
            if before is None and now >= phase.t0:
                before = meter.snapshot()
            if now - last_check > CHECK_EVERY_NS:
                check()
                last_check = now
            k = await self._due(phase, senders, send, start, per_ns, k, int((now - start) * per_ns) + 1)
            await asyncio.sleep(0.001)
        after = meter.snapshot()
        phase.cpu = cpu_share(before or after, after)

    async def _due(self, phase: Phase, senders: int, send: Send, start: int, per_ns: float, k: int, due: int) -> int:
        """Sends number ``k`` up to ``due``; returns the next number."""
        burst = 0
        while k < due:
            scheduled = start + int(k / per_ns)
            sender = k % senders
            k += 1
            t = time.perf_counter_ns()
            if t >= phase.t1:
                break
            counted = t >= phase.t0
            if self.inflight >= self.max_inflight:
                phase.skipped += counted
                continue
            try:
                await send(phase, sender, k, t)
            except (ConnectionError, RuntimeError, OSError) as err:
                phase.send_failed += 1
                phase.errors[f"send:{type(err).__name__}"] += 1
                continue
            self.inflight += 1
            phase.sent_total += 1
            if counted:
                phase.sent += 1
                phase.lag.append(t - scheduled)
            burst += 1
            if burst % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        return k
