"""Rate limits, without I/O: token buckets, a connection's frame budgets and strikes, and sliding windows.

Pure: the caller passes ``now`` (seconds; monotonic for buckets, wall-clock for windows shared between
processes). Three shapes, one per kind of limit:
- ``TokenBucket``: up to ``burst`` at once, ``rate`` a second after that (a user's sends on a node, an
  address's HTTP requests on an API process).
- ``FrameBudget``: a WebSocket connection's buckets, one per kind of frame (``FRAME_KINDS``), made on first
  use, and its strikes: a bucket of ``max_strikes`` that every refused frame takes from and only time
  refills, so valid frames in between do not wipe the slate (a client cannot evade by interleaving pings).
- ``window_verdict``: a count per fixed window of ``window_s`` seconds, read as a sliding window (the
  previous window's count weighted by how much of it still overlaps): how HTTP auth failures are judged
  from counters kept in NATS KV and shared by every API process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# frame kinds with their own budget; ``send`` is a bucket per user on the node (node/dispatch.py)
FRAME_KINDS = ("sync", "presence", "read", "typing", "cheap")
CHEAP_FRAMES = frozenset({"ack", "ping"})


@dataclass(slots=True)
class TokenBucket:
    rate: float  # tokens added per second
    burst: float  # bucket size
    tokens: float = -1.0
    stamp: float = 0.0

    def take(self, now: float, cost: float = 1.0) -> bool:
        self.refill(now)
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def refill(self, now: float) -> None:
        if self.tokens < 0:
            self.tokens, self.stamp = float(self.burst), now
        self.tokens = min(float(self.burst), self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = max(self.stamp, now)

    def retry_after(self, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens are available (0 when they already are)."""
        missing = min(cost, float(self.burst)) - max(self.tokens, 0.0)
        return max(0.0, missing / self.rate) if self.rate > 0 else float("inf")

    def full(self, now: float) -> bool:
        """Nothing taken that time has not given back: the bucket can be dropped and made again."""
        self.refill(now)
        return self.tokens >= self.burst


@dataclass(frozen=True, slots=True)
class Rate:
    per_s: float
    burst: float

    def scaled(self, factor: float) -> Rate:
        return Rate(self.per_s * factor, self.burst * factor)


@dataclass(frozen=True)
class FrameRates:
    """The budget of each frame kind on one connection, and how strikes add up and fade."""

    rates: dict[str, Rate]
    max_strikes: int = 50
    strike_decay_per_s: float = 0.5  # one strike forgiven every 2 s


@dataclass(slots=True)
class FrameBudget:
    config: FrameRates
    _buckets: dict[str, TokenBucket] | None = None  # made on first use: an idle connection has none
    _strikes: TokenBucket | None = None
    out: bool = False  # struck out: stays so (the connection is closing)

    def charge(self, kind: str, now: float, cost: float = 1.0) -> float | None:
        """Take ``cost`` from ``kind``'s budget: None when within it, else the seconds until it would be
        (the frame is refused; a cost larger than the burst waits for a full bucket)."""
        rate = self.config.rates.get(kind)
        if rate is None:
            return None
        if self._buckets is None:
            self._buckets = {}
        bucket = self._buckets.get(kind)
        if bucket is None:
            bucket = self._buckets[kind] = TokenBucket(rate.per_s, rate.burst)
        if bucket.take(now, min(cost, rate.burst)):
            return None
        return bucket.retry_after(min(cost, rate.burst))

    def strike(self, now: float) -> bool:
        """A refused frame: True when this one is over the limit (the connection is closed, 4029)."""
        if self._strikes is None:
            self._strikes = TokenBucket(self.config.strike_decay_per_s, self.config.max_strikes - 1)
        if not self._strikes.take(now):
            self.out = True
        return self.out

    def strikes(self, now: float) -> float:
        """Strikes outstanding now (faded ones not counted)."""
        if self._strikes is None:
            return 0.0
        self._strikes.refill(now)
        return self._strikes.burst - self._strikes.tokens


def kind_of(frame_type: str) -> str:
    """The budget a frame type is charged to (``send`` and ``hello`` have none here)."""
    return "cheap" if frame_type in CHEAP_FRAMES else frame_type


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``limit`` events in any ``window_s`` seconds (approximately: see ``window_verdict``)."""

    limit: float
    window_s: float

    def index(self, now: float) -> int:
        return int(now // self.window_s)


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after_s: float = 0.0
    estimate: float = 0.0


def window_verdict(window: Window, now: float, previous: int, current: int) -> Verdict:
    """Is one more event allowed, given the counts of the previous and the current fixed window?

    The estimate is ``previous × (share of the sliding window still in the previous fixed window) +
    current``; refused when it has reached ``limit``. ``retry_after_s``: until the estimate falls below
    the limit if nothing more is counted (a refused attempt is not counted, so waiting that long works).
    """
    w = window.window_s
    elapsed = now - window.index(now) * w
    estimate = previous * (w - elapsed) / w + current
    if estimate < window.limit:
        return Verdict(True, 0.0, estimate)
    if current < window.limit and previous > 0:  # the previous window's weight fades within this one
        fades_at = w * (1 - (window.limit - current) / previous)
        wait = fades_at - elapsed
    else:  # wait for the next window, then for this one's weight to fade below the limit
        wait = (w - elapsed) + w * (1 - window.limit / current)
    return Verdict(False, max(wait, 0.0) + _EPSILON, estimate)


_EPSILON = 1e-3


def retry_after_header(seconds: float) -> str:
    """An HTTP ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


@dataclass
class Buckets:
    """Token buckets by key (an address, a user) with a bound on how many are kept: past ``max_keys``,
    full buckets (nothing to remember) are dropped first, then the oldest."""

    rate: Rate
    max_keys: int = 100_000
    _by_key: dict[str, TokenBucket] = field(default_factory=dict)

    def take(self, key: str, now: float, cost: float = 1.0) -> float | None:
        """None when ``key`` is within its budget, else the seconds until it would be (a cost larger than the
        burst waits for a full bucket)."""
        bucket = self._by_key.get(key)
        if bucket is None:
            if len(self._by_key) >= self.max_keys:
                self._shed(now)
            bucket = self._by_key[key] = TokenBucket(self.rate.per_s, self.rate.burst)
        cost = min(cost, float(self.rate.burst))
        if bucket.take(now, cost):
            return None
        return bucket.retry_after(cost)

    def _shed(self, now: float) -> None:
        for key in [k for k, b in self._by_key.items() if b.full(now)]:
            del self._by_key[key]
        while len(self._by_key) >= self.max_keys:  # all busy: the oldest goes (its client gets a fresh one)
            del self._by_key[next(iter(self._by_key))]

    def __len__(self) -> int:
        return len(self._by_key)
