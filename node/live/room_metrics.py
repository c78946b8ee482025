"""Per-room live metrics with a bounded ``room`` label (docs/adr/0021).

Only the top rooms by viewers (``PARLEY_LIVE_METRICS_TOP_ROOMS``, chosen by ``parley.live.toprooms``) have
their own ``room`` label; every other room counts under ``room="_other"``. The choice is made again at
each scrape (``refresh``): a room that leaves the top has its series removed (Prometheus' ``rate`` sees
the series end), later figures go to ``_other``; a room that enters starts its own series from 0.

Cheap on the hot path: a fan-out adds its viewer count once (``delivered(room, n)``), the delivery latency
is observed once per message per node, and the label children of a room are looked up once per ranking
(a dict hit afterwards). Block reasons are the screens' reject codes, counted as they come, so a rule
added later is counted with no change here; an ill-formed code, or one past ``MAX_REASONS``, is "other".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from parley.live.toprooms import OTHER, choose_top, label_of
from parley.metrics import LATENCY

MAX_REASONS = 32
MAX_CACHED = 4096  # rooms whose children are kept between rankings (a node nobody scrapes stays bounded)
REASON = re.compile(r"[a-z][a-z0-9_]{0,39}")


@dataclass(frozen=True, slots=True)
class _Room:
    """One label's children, so the hot path does no label lookups."""
    messages_in: Counter
    messages_out: Counter
    masked: Counter
    delivery: Histogram


class RoomMetrics:
    def __init__(self, registry: CollectorRegistry, top_k: int) -> None:
        r = registry
        self.top_k, self.top = top_k, frozenset[str]()
        self.viewers = Gauge("parley_live_room_viewers", "Viewers of a live room on this node (top rooms by "
                             "cluster-wide viewers; the rest summed under room=\"_other\")", ["room"], registry=r)
        self.messages_in = Counter("parley_live_room_messages_in", "Live messages accepted from this node's "
                                   "devices, by room (top rooms, else _other)", ["room"], registry=r)
        self.messages_out = Counter("parley_live_room_messages_out", "Live messages handed to viewers on this "
                                    "node (one per viewer), by room (top rooms, else _other)", ["room"], registry=r)
        self.blocked = Counter("parley_live_room_blocked", "Live sends refused by the room's screens, by room "
                               "(top rooms, else _other) and reason (the reject code: banned_word, flooding, "
                               "slow_mode, timed_out, banned…)", ["room", "reason"], registry=r)
        self.masked = Counter("parley_live_room_masked", "Live messages accepted with banned words masked, by "
                              "room (top rooms, else _other)", ["room"], registry=r)
        self.delivery = Histogram("parley_live_room_delivery_seconds", "A live message's send accepted (its ts, "
                                  "the sending node's clock) until handed to this node's viewers, once per message "
                                  "per node, by room (top rooms, else _other)", ["room"], buckets=LATENCY,
                                  registry=r)
        self._rooms: dict[str, _Room] = {}  # room → its label's children, until the next ranking
        self._reasons: set[str] = set()
        self.viewers.labels(OTHER).set(0)
        self._of(OTHER)  # listed at 0 from the start

    def _of(self, room: str) -> _Room:
        found = self._rooms.get(room)
        if found is None:
            if len(self._rooms) >= MAX_CACHED:
                self._rooms.clear()
            label = label_of(room, self.top)
            found = self._rooms[room] = _Room(self.messages_in.labels(label), self.messages_out.labels(label),
                                              self.masked.labels(label), self.delivery.labels(label))
        return found

    # ---- the hot path ---------------------------------------------------------------------------

    def accepted(self, room: str, *, masked: bool) -> None:
        children = self._of(room)
        children.messages_in.inc()
        if masked:
            children.masked.inc()

    def delivered(self, room: str, viewers: int, latency_s: float | None) -> None:
        """One message handed to ``viewers`` viewers here, ``latency_s`` after its sender's node accepted it."""
        children = self._of(room)
        children.messages_out.inc(viewers)
        if latency_s is not None:
            children.delivery.observe(max(0.0, latency_s))

    def blocked_by(self, room: str, code: str) -> None:
        reason = code if code in self._reasons else "other"
        if reason == "other" and REASON.fullmatch(code) and len(self._reasons) < MAX_REASONS:
            self._reasons.add(code)
            reason = code
        self.blocked.labels(label_of(room, self.top), reason).inc()

    # ---- at each scrape -------------------------------------------------------------------------

    def refresh(self, here: Mapping[str, int], totals: Mapping[str, int]) -> None:
        """Rank again by ``totals`` (cluster-wide viewers) and set the viewer gauges from ``here`` (this
        node's viewers by room); rooms out of the top lose their series."""
        top = choose_top(totals, self.top_k, self.top)
        for gone in self.top - top:
            for family in (self.viewers, self.messages_in, self.messages_out, self.masked, self.delivery):
                family.remove(gone)
            for reason in (*self._reasons, "other"):
                self.blocked.remove(gone, reason)
        if top != self.top:
            self.top = top
            self._rooms.clear()
        for room in top:
            self.viewers.labels(room).set(here.get(room, 0))
        self.viewers.labels(OTHER).set(sum(n for room, n in here.items() if room not in top))
