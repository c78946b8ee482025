"""Holes in the store that the stream can still fill: finding them and planning the stream read. Pure.

Every message names its conversation's previous message (``prev``), so a reader of a conversation's
messages in id order sees a hole wherever a message's ``prev`` is above the message read before it. The
store should have none below the archiver's floor (the archiver acks only writes that survive a kill -9 of
the store, docs/adr/0011), but a store that lost acked writes anyway (a node lost for good with RF 1, a
restore from backup) has them, and the stream still holds whatever is younger than its ``max_age``. So
readers (a node's sync, the API's history) fill a hole from the stream when the stream still has its
messages (``fill_span``), and ask the archiver to write them back (``bus.repair``), so the hole heals.

Ids of one shard compare like their sequences (``parley.shards``); a conversation lives in one shard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from parley.shards import pack, pos_of_id, shard_of_id


@dataclass(frozen=True, slots=True)
class Hole:
    """The messages of one conversation strictly between ids ``after`` and ``before`` are missing (``after``
    may be a floor: a position packed in the conversation's shard)."""

    after: int
    before: int


def fill_span(hole: Hole, first: int) -> tuple[int, int] | None:
    """The stream sequences [start, end] to read (on the conversation's subject) to fill ``hole``, given the
    stream's oldest sequence ``first``; None when the stream no longer holds any of it. A span that starts
    above ``pos(after) + 1`` fills the hole only in part (the stream dropped the older messages)."""
    start = max(pos_of_id(hole.after) + 1, first)
    end = pos_of_id(hole.before) - 1
    return (start, end) if start <= end else None


def holes_in(ids_prevs: Sequence[tuple[int, int]], floor: int | None) -> list[Hole]:
    """The holes in one conversation's messages ``(id, prev)`` read in ascending id order over a range that
    is complete above ``floor`` (None: nothing is known below the first message read). A message whose
    ``prev`` is above the message before it (or above ``floor``, for the first) has a hole before it."""
    out: list[Hole] = []
    known = floor
    for id, prev in ids_prevs:
        if known is not None and prev > known:
            out.append(Hole(known, id))
        known = id
    return out


def trailing_hole(newest: int, stream_last: int, archived: int) -> Hole | None:
    """The hole above the newest message read of a conversation (``newest``, an id, or a floor), when the
    stream's last message of it (``stream_last``, an id, 0 for none) is above it and at or below the
    archiver's floor (``archived``, a sequence): the store should have it and does not. No later message
    names it, so ``holes_in`` cannot see it; a reader that knows the stream's last can."""
    if not stream_last:
        return None
    through = min(pos_of_id(stream_last), archived)
    if through <= pos_of_id(newest):
        return None
    return Hole(newest, pack(shard_of_id(stream_last), through + 1))
