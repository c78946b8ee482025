"""How many watch a live room across the cluster, as this node hears it. Pure: no I/O, ``now`` passed in.

Each node with viewers in a room tells the others its own count on ``live.cnt.<room>`` (a second after a
change, and every ``REFRESH_S`` while it has viewers there, so a node that died stops counting after
``STALE_S``); the room's total is this node's own count plus every other node's last fresh one. Viewers here
get a ``live_viewers`` frame only when that total changes, so a hot room's churn costs each viewer at most
one frame a second, and the bus carries rooms × nodes counts, never one per viewer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SETTLE_S = 1.0  # a change is told this long after it happened (joins in a burst are told once)
REFRESH_S = 5.0  # a node with viewers in a room tells its count at least this often
STALE_S = 3 * REFRESH_S  # a node not heard from for this long no longer counts


@dataclass
class Headcount:
    node: str
    _heard: dict[str, dict[str, tuple[int, float]]] = field(default_factory=dict)  # room → node → (count, at)
    _told: dict[str, int] = field(default_factory=dict)  # room → the total viewers here were last told

    def heard(self, room: str, node: str, count: int, now: float) -> bool:
        """Another node's count for ``room`` (our own echo is ignored); True if it is news (a node not heard
        from yet, or a new count), which this node answers by telling its own soon, so a newcomer learns it."""
        if node == self.node:
            return False
        others = self._heard.setdefault(room, {})
        before = others.get(node)
        others[node] = (max(0, count), now)
        return before is None or before[0] != count

    def total(self, room: str, here: int, now: float) -> int:
        """``here`` (this node's viewers) plus every other node's fresh count."""
        others = self._heard.get(room, {})
        for node in [n for n, (_, at) in others.items() if now - at > STALE_S]:
            del others[node]
        return here + sum(count for count, _ in others.values())

    def news(self, room: str, total: int) -> bool:
        """Whether viewers here should be told ``total`` (it differs from what they were told last)."""
        if self._told.get(room) == total:
            return False
        self._told[room] = total
        return True

    def forget(self, room: str) -> None:
        """No viewers here any more: stop following the room's counts."""
        self._heard.pop(room, None)
        self._told.pop(room, None)
