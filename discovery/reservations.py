"""The placements this discovery process made that the nodes have not reported yet. Pure: ``now`` comes in.

A node's connection count reaches discovery only with its heartbeat (``node_beat_s``), so between beats
every login would see the same counts and land on the same node. Each placement therefore reserves a
slot on the node it picked; ``held`` is the reservations made against the node's current registry entry
— a newer beat replaces them all (its count includes those clients that connected; the ones that never
did are simply gone), so no clocks are compared across hosts. Reservations also lapse after ``hold_s``,
for when beats stop (the registry's silence, ``placement.SILENCE_GRACE_S``). ``recent`` counts the
placements of the last ``window_s`` per node, for placement's cap on a node's share of a burst.

Reservations are per process: several discovery processes each count only their own placements, so
each spreads its own share of a burst and they can disagree by what the others placed since the last
beat — fine, the beat corrects them all. A client that connects after the beat that follows its
placement is missing from both the count and the reservations until the next beat: an estimate low by
the logins of one connect time, never a slot held forever.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from parley.registry import NodeRecord


class Reservations:
    def __init__(self, *, hold_s: float, window_s: float) -> None:
        self.hold_s, self.window_s = hold_s, window_s
        # per node id, in placement order: when each placement was made, and the updated_at of the entry it
        # was made against (it never decreases along the list either, so both are searched by bisection)
        self._at: dict[str, list[float]] = {}
        self._beat: dict[str, list[float]] = {}

    def reserve(self, node: NodeRecord, now: float) -> None:
        self._at.setdefault(node.id, []).append(now)
        self._beat.setdefault(node.id, []).append(node.updated_at)

    def held(self, nodes: Iterable[NodeRecord], now: float) -> dict[str, int]:
        """Per node: placements made since its entry was written (not in its count yet), unexpired."""
        self._prune(now)
        out = {}
        for n in nodes:
            at, beat = self._at.get(n.id, []), self._beat.get(n.id, [])
            out[n.id] = len(at) - max(bisect_left(beat, n.updated_at), bisect_right(at, now - self.hold_s))
        return out

    def recent(self, now: float) -> dict[str, int]:
        """Per node: placements in the last ``window_s``."""
        self._prune(now)
        return {node: len(at) - bisect_right(at, now - self.window_s) for node, at in self._at.items()}

    def _prune(self, now: float) -> None:
        for node, at in list(self._at.items()):
            gone = bisect_right(at, now - max(self.hold_s, self.window_s))
            if gone == len(at):
                del self._at[node], self._beat[node]
            elif gone:
                del at[:gone], self._beat[node][:gone]
