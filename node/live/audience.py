"""How many watch a live room across the cluster, as this node hears it (docs/adr/0021). Pure: no I/O,
``now`` passed in.

Every node with viewers in a room tells the others its own count on ``live.cnt.<room>`` (core NATS; only
the nodes following the room hear it): when the count changed since it last told it, and at least every
``REFRESH_S`` anyway, so a node that died stops counting ``STALE_S`` after its last word. A node whose last
viewer left tells 0 once and forgets the room. A room's total is this node's own count plus every other
node's last fresh one. Viewers here are shown the total (``live_viewers``) only when it changed — exact up
to ``EXACT_UP_TO``, then to three significant digits (``shown``), so a huge room's churn does not send every
viewer a frame every round — and the bus carries rooms × nodes counts per ``REFRESH_S``, never one message
per viewer. One node per room keeps the total in the ``live_viewers`` bucket for the API (``to_store``):
the one with the smallest id among those it hears, so normally exactly one writes, and a short overlap or
gap while nodes come and go costs nothing (the key's TTL outlives a refresh).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

REFRESH_S = 5.0  # a node with viewers in a room tells its count at least this often
STALE_S = 3 * REFRESH_S  # a node not heard from for this long no longer counts
EXACT_UP_TO = 1000  # viewers are shown exact counts up to this, then three significant digits


def shown(total: int) -> int:
    """The count viewers are shown: 987 → 987, 12,345 → 12,300, 1,234,567 → 1,230,000."""
    if total < EXACT_UP_TO:
        return total
    step: int = 10 ** (len(str(total)) - 3)
    return total // step * step


class Audience:
    def __init__(self, node: str) -> None:
        self.node = node
        self._heard: dict[str, dict[str, tuple[int, float]]] = {}  # room → other node → (its count, heard at)
        self._told: dict[str, tuple[int, float]] = {}  # room → (the count this node told, when)
        self._stored: dict[str, tuple[int, float]] = {}  # room → (the total this node stored, when)
        self._shown: dict[str, int] = {}  # room → the total viewers here were last shown

    def heard(self, room: str, node: str, count: int, now: float) -> None:
        """Another node's count (our own echo is ignored). A node not heard from before is owed ours at
        the next round, so a node that just started following the room learns every count at once."""
        if node == self.node:
            return
        others = self._heard.setdefault(room, {})
        if count <= 0:  # it has no viewers left: no longer counted, nor a candidate to store the total
            others.pop(node, None)
            return
        if node not in others:
            self._told.pop(room, None)
        others[node] = (count, now)

    def to_tell(self, room: str, here: int, now: float) -> bool:
        """Whether to tell ``here`` now (changed, owed, or the last word is ``REFRESH_S`` old); noted if so."""
        last = self._told.get(room)
        if last is not None and last[0] == here and now - last[1] < REFRESH_S:
            return False
        self._told[room] = (here, now)
        return True

    def total(self, room: str, here: int, now: float) -> int:
        """``here`` (this node's viewers) plus every other node's fresh count (exact: for ranking)."""
        others = self._heard.get(room, {})
        for node in [n for n, (_, at) in others.items() if now - at > STALE_S]:
            del others[node]
        return here + sum(count for count, _ in others.values())

    def totals(self, here: Mapping[str, int], now: float) -> dict[str, int]:
        """Every room with viewers here, with its total."""
        return {room: self.total(room, n, now) for room, n in here.items()}

    def to_store(self, room: str, total: int, now: float) -> bool:
        """Whether this node should write ``total`` to the bucket now: it is the room's writer (the smallest
        id it hears of) and the total changed or was stored ``REFRESH_S`` ago; noted if so."""
        if any(node < self.node for node in self._heard.get(room, {})):
            return False
        last = self._stored.get(room)
        if last is not None and last[0] == total and now - last[1] < REFRESH_S:
            return False
        self._stored[room] = (total, now)
        return True

    def to_show(self, room: str, count: int) -> bool:
        """Whether viewers here should be shown ``count`` (a ``shown`` total: it differs from the last)."""
        if self._shown.get(room) == count:
            return False
        self._shown[room] = count
        return True

    def told(self) -> Iterable[str]:
        """The rooms this node has told a count for (and not yet forgotten)."""
        return list(self._told)

    def forget(self, room: str) -> None:
        """No viewers here any more (and 0 was told): stop keeping anything about the room."""
        for table in (self._heard, self._told, self._shown, self._stored):
            table.pop(room, None)
