"""Where a device connection stands in its user's messages, per stream shard. Pure.

Invariant: for every shard ``s``, every message of the user's conversations homed in ``s`` with a
stream sequence at or below ``delivered[s]`` has been queued to the device, in order. ``conv_last``
holds, per conversation, the id last queued, so a message whose ``prev`` names something the device
never got is seen as a gap before it is sent. ``base`` is where each shard's position (re)started: a
conversation not yet seen may only continue from at or below it. Ids are ``parley.shards`` ids
(sequence and shard packed), so ids of one shard compare like their sequences. A shard in ``skipped``
was not read by the last sync round (it did not answer): its position holds, and any message from it is
a gap until a round reads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from parley.shards import Vector, pack, pos_of_id, shard_of_id

Verdict = Literal["deliver", "duplicate", "gap"]


@dataclass(slots=True)
class Position:
    delivered: dict[int, int] = field(default_factory=dict)
    base: dict[int, int] = field(default_factory=dict)
    conv_last: dict[str, int] = field(default_factory=dict)
    skipped: frozenset[int] = frozenset()

    def judge(self, id: int, conv: str, prev: int) -> Verdict:
        shard = shard_of_id(id)
        if pos_of_id(id) <= self.delivered.get(shard, 0):
            return "duplicate"
        if shard in self.skipped:
            return "gap"
        known = self.conv_last.get(conv, pack(shard, self.base.get(shard, 0)))
        return "gap" if prev > known else "deliver"

    def advance(self, id: int, conv: str) -> None:
        self.delivered[shard_of_id(id)] = pos_of_id(id)
        self.conv_last[conv] = id

    def accept(self, id: int, conv: str, prev: int) -> Verdict:
        verdict = self.judge(id, conv, prev)
        if verdict == "deliver":
            self.advance(id, conv)
        return verdict

    def restart(self, after: Vector) -> None:
        """Start again from ``after``: what follows is re-sent (the device drops ids it has)."""
        self.delivered = dict(after)
        self.base = dict(after)
        self.conv_last.clear()
        self.skipped = frozenset()

    def skip(self, shards: Iterable[int]) -> None:
        """The round could not read ``shards``: hold their positions until one does."""
        self.skipped = frozenset(shards)

    def reach(self, through: Vector) -> None:
        """A sync round read everything up to ``through``."""
        for shard, pos in through.items():
            if pos > self.delivered.get(shard, 0):
                self.delivered[shard] = pos

    def resume_point(self, conv: str, shard: int) -> dict[int, int]:
        """Where to restart to repair a gap in ``conv`` (homed in ``shard``) without skipping anything."""
        point = dict(self.delivered)
        last = self.conv_last.get(conv)
        at = pos_of_id(last) if last is not None else self.base.get(shard, 0)
        point[shard] = min(point.get(shard, 0), at)
        return point
