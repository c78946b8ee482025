"""The cluster page's top live rooms (docs/adr/0021), from the nodes' ``parley_live_room_*`` series in the
sampler's history. Pure: the history comes in, JSON-ready rows come out.

Each node labels only its top rooms by viewers (the rest are ``room="_other"``), and nodes rank by the
cluster-wide count, so they label nearly the same rooms; a room's row adds every node's figures. Rates are
per second over the last step, as the node table's; the p99 is over the trailing ``History.span`` steps,
from bucket increases summed across nodes (what Prometheus' ``histogram_quantile`` over ``sum by (room,
le)`` gives). A series that is new since the last reading (the room just entered a node's top) counts from
0, so its value is its increase; one that went down (a restart) counts from its new value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from parley.discovery.traffic import LIVE_ROOM, History, Reading, RoomSample, quantile, restarted

OTHER = "_other"  # parley.live.toprooms.OTHER: discovery does not import the node's code
IN, OUT = LIVE_ROOM + "messages_in_total", LIVE_ROOM + "messages_out_total"
BLOCKED, MASKED = LIVE_ROOM + "blocked_total", LIVE_ROOM + "masked_total"
SHOWN = 10  # rooms on the page (the rest are left out; Grafana has every labelled room)


@dataclass
class RoomRow:
    viewers: float = 0.0
    rates: dict[str, float] = field(default_factory=dict)  # counter → per second, summed over nodes
    buckets: dict[float, float] = field(default_factory=dict)  # bucket increases over the span, all nodes

    def as_dict(self, room: str) -> dict[str, object]:
        p99 = quantile(0.99, tuple(sorted(self.buckets.items())))
        return {"room": room, "viewers": int(self.viewers), "in_per_s": round(self.rates.get(IN, 0.0), 3),
                "out_per_s": round(self.rates.get(OUT, 0.0), 3),
                "blocked_per_s": round(self.rates.get(BLOCKED, 0.0), 3),
                "masked_per_s": round(self.rates.get(MASKED, 0.0), 3),
                "p99_ms": None if p99 is None else round(p99 * 1000, 2)}


def grew(prev: RoomSample | None, cur: RoomSample, name: str, fresh: bool) -> float:
    now = cur.counts.get(name, 0.0)
    before = prev.counts.get(name) if prev is not None and not fresh else None
    return now if before is None or now < before else now - before


def bucket_growth(prev: RoomSample | None, cur: RoomSample, fresh: bool) -> dict[float, float]:
    if prev is None or fresh or any(v < prev.buckets.get(le, 0.0) for le, v in cur.buckets.items()):
        return dict(cur.buckets)
    return {le: v - prev.buckets.get(le, 0.0) for le, v in cur.buckets.items()}


def good_pairs(history: History, target: str) -> list[tuple[Reading, Reading]]:
    """The consecutive good readings of the last ``span`` steps, newest last (a failed scrape ends them)."""
    ring = list(history.rings.get(target, ()))[-(history.span + 1):]
    pairs: list[tuple[Reading, Reading]] = []
    for prev, cur in zip(ring, ring[1:], strict=False):
        if prev is None or cur is None or cur.at <= prev.at:
            pairs.clear()
            continue
        pairs.append((prev, cur))
    return pairs


def add_node(rows: dict[str, RoomRow], pairs: list[tuple[Reading, Reading]]) -> None:
    for i, (prev, cur) in enumerate(pairs):
        fresh, last = restarted(prev, cur), i == len(pairs) - 1
        for room, sample in cur.rooms.items():
            row, before = rows.setdefault(room, RoomRow()), prev.rooms.get(room)
            for le, n in bucket_growth(before, sample, fresh).items():
                row.buckets[le] = row.buckets.get(le, 0.0) + n
            if last:
                row.viewers += sample.viewers
                for name in (IN, OUT, BLOCKED, MASKED):
                    row.rates[name] = row.rates.get(name, 0.0) + grew(before, sample, name, fresh) / (cur.at - prev.at)


def live_rooms(history: History, nodes: Iterable[str], shown: int = SHOWN) -> dict[str, object]:
    """``rooms``: the top ``shown`` labelled rooms by viewers (then messages in); ``others``: every room
    outside the nodes' top, summed (``None`` before two good scrapes)."""
    rows: dict[str, RoomRow] = {}
    for node in nodes:
        add_node(rows, good_pairs(history, node))
    others = rows.pop(OTHER, None)
    ranked = sorted(rows.items(), key=lambda kv: (-kv[1].viewers, -kv[1].rates.get(IN, 0.0), kv[0]))
    return {"rooms": [row.as_dict(room) for room, row in ranked[:shown]],
            "others": others.as_dict(OTHER) if others is not None else None}
