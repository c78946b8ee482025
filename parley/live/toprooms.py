"""Which live rooms get their own ``room`` label in the metrics (docs/adr/0021). Pure: counts in, a set out.

Rooms are unbounded, so per-room series are too: only the ``k`` rooms with the most viewers are labelled
by their id; every other room's figures are summed under ``room="_other"``. Ranking by the cluster-wide
viewer count (what a node hears from the others) makes every node choose nearly the same rooms, so a
``sum by (room)`` across nodes adds like with like. Ties keep the rooms already chosen (a room at the
boundary does not flap between its label and ``_other`` on every scrape), then go by room id, so the
choice is deterministic. A room with no viewers is never chosen. O(rooms × log k): it runs at each scrape.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Set

OTHER = "_other"  # not a room id (those are 16 characters of a-z2-7), so it never collides


def choose_top(viewers: Mapping[str, int], k: int, current: Set[str] = frozenset()) -> frozenset[str]:
    """The ``k`` rooms (at most) with the most ``viewers``; on equal counts the ``current`` ones first,
    then the smaller id."""
    if k <= 0:
        return frozenset()
    return frozenset(heapq.nsmallest(k, (room for room, n in viewers.items() if n > 0),
                                     key=lambda room: (-viewers[room], room not in current, room)))


def label_of(room: str, top: Set[str]) -> str:
    return room if room in top else OTHER
