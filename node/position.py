"""Where a device connection stands in its user's messages, per stream shard. Pure.

Invariant: for every shard ``s``, every message of the user's conversations homed in ``s`` with a
stream sequence at or below ``delivered[s]`` has been queued to the device, in order. ``conv_last``
holds, per conversation, the id last queued, so a message whose ``prev`` names something the device
never got is seen as a gap before it is sent. ``base`` is where each shard's position (re)started: a
conversation not yet seen may only continue from at or below it. Ids are ``parley.shards`` ids
(sequence and shard packed), so ids of one shard compare like their sequences.

``marks``: shards in doubt — one the last sync round could not read, or one that stopped answering
while the connection was live (another region's, the link down: what its stream republished meanwhile
may never have arrived). Live messages from it are still judged and delivered as usual, but the device
is only ever offered a position at or below the mark there (``offerable``), and the next round
(``resume``) reads that shard again from the mark; what this connection already sent is not resent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from parley.shards import SHARD_BITS, Vector, pack, pos_of_id, shard_of_id

_MASK = (1 << SHARD_BITS) - 1

Verdict = Literal["deliver", "duplicate", "gap"]


@dataclass(slots=True)
class Position:
    delivered: dict[int, int] = field(default_factory=dict)
    base: dict[int, int] = field(default_factory=dict)
    conv_last: dict[str, int] = field(default_factory=dict)
    marks: dict[int, int] = field(default_factory=dict)

    def judge(self, id: int, conv: str, prev: int) -> Verdict:
        shard = shard_of_id(id)
        if pos_of_id(id) <= self.delivered.get(shard, 0):
            return "duplicate"
        return "gap" if prev > self.known(conv, shard) else "deliver"

    def known(self, conv: str, shard: int) -> int:
        """The id a message of ``conv`` (homed in ``shard``) may continue from: the last one queued, else
        the shard's base as an id."""
        return self.conv_last.get(conv, pack(shard, self.base.get(shard, 0)))

    def fill(self, id: int, conv: str) -> bool:
        """A message read into a hole of ``conv`` (it may be below what was delivered of other conversations
        in its shard): True if it is new to the conversation here (to be queued)."""
        if id <= self.known(conv, shard_of_id(id)):
            return False
        self.conv_last[conv] = id
        shard = shard_of_id(id)
        self.delivered[shard] = max(self.delivered.get(shard, 0), pos_of_id(id))
        return True

    def advance(self, id: int, conv: str) -> None:
        self.delivered[shard_of_id(id)] = pos_of_id(id)
        self.conv_last[conv] = id

    def accept(self, id: int, conv: str, prev: int) -> Verdict:
        """``judge``, then ``advance`` when it is to be delivered. Every live message meets every device of
        its conversation here, so it is written out flat (docs/adr/0027) — the same rules as ``judge``."""
        shard, pos = id & _MASK, id >> SHARD_BITS
        delivered = self.delivered
        if pos <= delivered.get(shard, 0):
            return "duplicate"
        last = self.conv_last.get(conv)
        if prev > (last if last is not None else pack(shard, self.base.get(shard, 0))):
            return "gap"
        delivered[shard] = pos
        self.conv_last[conv] = id
        return "deliver"

    def restart(self, after: Vector) -> None:
        """Start again from ``after``: what follows is re-sent (the device drops ids it has)."""
        self.delivered = dict(after)
        self.base = dict(after)
        self.conv_last.clear()
        self.marks.clear()

    def doubt(self, shards: Iterable[int]) -> None:
        """``shards`` may have lost messages from here on: mark where the device surely stands in them."""
        for shard in shards:
            self.marks.setdefault(shard, self.delivered.get(shard, 0))

    def offerable(self) -> dict[int, int]:
        """The position a cursor may carry: ``delivered``, held at the mark in shards in doubt."""
        if not self.marks:  # the usual case, at every cursor offer: a copy
            return dict(self.delivered)
        return {s: min(p, self.marks[s]) if s in self.marks else p for s, p in self.delivered.items()}

    def resume(self) -> dict[int, int]:
        """Where the next round starts: what is surely delivered (shards in doubt from their marks)."""
        return {**self.delivered, **{s: min(self.delivered.get(s, 0), m) for s, m in self.marks.items()}}

    def reach(self, through: Vector) -> None:
        """A sync round read everything up to ``through``."""
        for shard, pos in through.items():
            if pos > self.delivered.get(shard, 0):
                self.delivered[shard] = pos

    def resume_point(self, conv: str, shard: int) -> dict[int, int]:
        """Where to restart to repair a gap in ``conv`` (homed in ``shard``) without skipping anything."""
        point = self.resume()
        last = self.conv_last.get(conv)
        at = pos_of_id(last) if last is not None else self.base.get(shard, 0)
        point[shard] = min(point.get(shard, 0), at)
        return point
