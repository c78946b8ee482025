"""Traffic over the last minutes, from periodic scrapes of each process's ``/metrics``. Pure: readings and
``now`` come in, rates, quantiles and chart series come out; the scraping itself is discovery/sampler.py.

A ``Reading`` is one scrape of one target: counters summed over labels, and the cumulative buckets of the
delivery histogram. ``History`` keeps a ring of readings per target (``None`` for a scrape that failed).
Rates and quantiles come from the difference between consecutive good readings, the way Prometheus'
``rate`` and ``histogram_quantile`` do: a counter that went down (or a new ``epoch``, the process's start
time) means the process restarted and counts from zero, so the step's increase is the new value itself.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

DELIVERED = "parley_node_messages_delivered_total"
PUBLISHED = "parley_node_messages_published_total"
DELIVERY_BUCKET = "parley_node_delivery_seconds_bucket"
ERRORS = "parley_node_errors_total"
API_REQUESTS = "parley_api_requests_total"
API_5XX = "parley_api_requests_5xx_total"  # derived: the API's requests answered 5xx, summed over routes
PUSHES = "parley_pushes_total"
PUSHES_GAVE_UP = "parley_pushes_gave_up_total"  # derived: pushes the pusher gave up on after its retries
LIVE_ROOM = "parley_live_room_"  # per-room live metrics (room label): kept per room, never summed into values

Buckets = tuple[tuple[float, float], ...]  # (upper bound, cumulative count), ascending, +Inf last


@dataclass(slots=True)
class RoomSample:
    """One live room's figures in one scrape (discovery/live_rooms.py): the viewer gauge, each counter
    (summed over its other labels: ``blocked`` over reasons) and the delivery histogram's buckets."""
    viewers: float = 0.0
    counts: dict[str, float] = field(default_factory=dict)
    buckets: dict[float, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reading:
    at: float  # unix seconds
    values: Mapping[str, float] = field(default_factory=dict)  # metric sample name → summed over labels
    buckets: Buckets = ()  # of the delivery histogram
    epoch: float | None = None  # the process's start time, when known: a new one is a restart
    rooms: Mapping[str, RoomSample] = field(default_factory=dict)  # live rooms by ``room`` label


@dataclass(frozen=True, slots=True)
class Point:
    at: float
    delivered_per_s: float
    published_per_s: float
    errors_per_s: float
    p99_s: float | None  # end-to-end delivery p99 over the trailing span; None without deliveries


def parse(text: str, at: float, epoch: float | None = None) -> Reading:
    """A /metrics page → a Reading; raises ValueError on a page that is not Prometheus text."""
    values: dict[str, float] = {}
    buckets: dict[float, float] = {}
    rooms: dict[str, RoomSample] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith(LIVE_ROOM):  # a room leaving the top loses its series: not a restart
                if "room" in s.labels:
                    room_sample(rooms.setdefault(s.labels["room"], RoomSample()), s.name, s.labels, s.value)
                continue
            if s.name == DELIVERY_BUCKET:
                le = float(s.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + s.value
                continue
            values[s.name] = values.get(s.name, 0.0) + s.value
            if s.name == API_REQUESTS and s.labels.get("status", "").startswith("5"):
                values[API_5XX] = values.get(API_5XX, 0.0) + s.value
            elif s.name == PUSHES and s.labels.get("outcome") == "gave_up":
                values[PUSHES_GAVE_UP] = values.get(PUSHES_GAVE_UP, 0.0) + s.value
    return Reading(at, values, tuple(sorted(buckets.items())), epoch, rooms)


def room_sample(room: RoomSample, name: str, labels: Mapping[str, str], value: float) -> None:
    if name == LIVE_ROOM + "viewers":
        room.viewers += value
    elif name == LIVE_ROOM + "delivery_seconds_bucket":
        le = float(labels["le"])
        room.buckets[le] = room.buckets.get(le, 0.0) + value
    else:
        room.counts[name] = room.counts.get(name, 0.0) + value


def restarted(prev: Reading, cur: Reading) -> bool:
    if prev.epoch is not None and cur.epoch is not None and prev.epoch != cur.epoch:
        return True
    if any(cur.values.get(name, 0.0) < v for name, v in prev.values.items() if name.endswith("_total")):
        return True
    return any(c < p for (_, p), (_, c) in zip(prev.buckets, cur.buckets, strict=False))


def increase(prev: Reading, cur: Reading, name: str) -> float:
    """How much a counter grew from one reading to the next (its value after a restart)."""
    now = cur.values.get(name, 0.0)
    return now if restarted(prev, cur) else max(0.0, now - prev.values.get(name, 0.0))


def bucket_increase(prev: Reading, cur: Reading) -> Buckets:
    if restarted(prev, cur) or [le for le, _ in prev.buckets] != [le for le, _ in cur.buckets]:
        return cur.buckets
    return tuple((le, max(0.0, c - p)) for (le, c), (_, p) in zip(cur.buckets, prev.buckets, strict=True))


def add_buckets(a: Buckets, b: Buckets) -> Buckets:
    if not a:
        return b
    if not b or [le for le, _ in a] != [le for le, _ in b]:
        return a or b
    return tuple((le, x + y) for (le, x), (_, y) in zip(a, b, strict=True))


def quantile(q: float, buckets: Buckets) -> float | None:
    """Prometheus' histogram_quantile: linear within the bucket holding the rank; the highest finite
    bound when the rank falls in +Inf; None when nothing was observed."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return lower
            return lower + (le - lower) * ((rank - below) / (count - below) if count > below else 1.0)
        lower, below = le, count
    return lower


class History:
    """The last ``keep`` scrapes of each target, oldest first."""

    def __init__(self, keep: int = 300, span: int = 5) -> None:
        self.keep, self.span = keep, span  # span: steps the p99 of one point looks back over
        self.rings: dict[str, deque[Reading | None]] = {}

    def record(self, target: str, reading: Reading | None) -> None:
        """A scrape's result (``None``: it failed)."""
        ring = self.rings.setdefault(target, deque(maxlen=self.keep))
        ring.append(reading)

    def forget_all_but(self, targets: Iterable[str]) -> None:
        keep = set(targets)
        for gone in [t for t in self.rings if t not in keep]:
            del self.rings[gone]

    def latest(self, target: str) -> Reading | None:
        ring = self.rings.get(target)
        return ring[-1] if ring else None

    def points(self, target: str) -> list[Point]:
        """One point per step between consecutive good readings; a failed scrape leaves a gap (no point
        for the step after it either), so a chart shows where a node was not answering."""
        out: list[Point] = []
        steps: deque[Buckets] = deque(maxlen=self.span)
        prev: Reading | None = None
        for cur in self.rings.get(target, ()):
            if cur is None:
                prev = None
                steps.clear()
                continue
            if prev is not None and cur.at > prev.at:
                dt = cur.at - prev.at
                steps.append(bucket_increase(prev, cur))
                window: Buckets = ()
                for b in steps:
                    window = add_buckets(window, b)
                out.append(Point(cur.at, increase(prev, cur, DELIVERED) / dt, increase(prev, cur, PUBLISHED) / dt,
                                 increase(prev, cur, ERRORS) / dt, quantile(0.99, window)))
            prev = cur
        return out

    def window_p99(self, target: str) -> float | None:
        """p99 of every delivery in the ring (restarts included)."""
        total: Buckets = ()
        good = [r for r in self.rings.get(target, ()) if r is not None]
        for prev, cur in zip(good, good[1:], strict=False):
            total = add_buckets(total, bucket_increase(prev, cur))
        return quantile(0.99, total)

    def rate(self, target: str, name: str) -> float | None:
        """A counter's rate per second over the last step (None without two good readings in a row)."""
        ring = self.rings.get(target)
        if not ring or len(ring) < 2 or ring[-1] is None or ring[-2] is None:
            return None
        prev, cur = ring[-2], ring[-1]
        assert prev is not None and cur is not None
        return increase(prev, cur, name) / (cur.at - prev.at) if cur.at > prev.at else None

    def gauge(self, target: str, name: str) -> list[tuple[float, float]]:
        return [(r.at, r.values.get(name, 0.0)) for r in self.rings.get(target, ()) if r is not None]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def node_traffic(history: History, target: str) -> dict[str, object]:
    """A node's share of ``GET /v1/cluster``: its rates now, p99 now and over the window, and the series."""
    points = history.points(target)
    last = points[-1] if points else None
    ring = history.rings.get(target)
    return {
        "scraped": bool(ring) and ring is not None and ring[-1] is not None,
        "delivered_per_s": round(last.delivered_per_s, 3) if last else None,
        "published_per_s": round(last.published_per_s, 3) if last else None,
        "errors_per_s": round(last.errors_per_s, 3) if last else None,
        "p99_ms": _ms(last.p99_s) if last else None,
        "p99_window_ms": _ms(history.window_p99(target)),
        "series": [{"t": round(p.at, 3), "delivered": round(p.delivered_per_s, 3),
                    "published": round(p.published_per_s, 3), "errors": round(p.errors_per_s, 3),
                    "p99_ms": _ms(p.p99_s)} for p in points],
    }


def worker_lag(history: History, target: str, metric: str, *, off_when_absent: bool) -> dict[str, object]:
    """A consumer's lag gauge: ``ok`` with its value, ``down`` when its last scrape failed (``off`` instead
    for a worker that is not expected to run), ``waiting`` before the first scrape."""
    ring = history.rings.get(target)
    if not ring:
        state = "waiting"
    elif ring[-1] is None:
        state = "off" if off_when_absent else "down"
    else:
        state = "ok"
    latest = ring[-1] if ring else None
    return {"state": state, "lag": latest.values.get(metric) if latest else None,
            "series": [[round(t, 3), v] for t, v in history.gauge(target, metric)]}
