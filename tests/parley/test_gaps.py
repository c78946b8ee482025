"""Holes in a conversation's stored messages, and the stream read that fills them."""

from __future__ import annotations

import pytest

from parley.gaps import Hole, fill_span, holes_in, trailing_hole
from parley.shards import pack


def ids(*pairs: tuple[int, int], shard: int = 2) -> list[tuple[int, int]]:
    """(sequence, prev sequence) pairs as packed (id, prev) ids of ``shard``; prev 0 stays 0."""
    return [(pack(shard, a), pack(shard, b) if b else 0) for a, b in pairs]


@pytest.mark.parametrize(("rows", "floor", "holes"), [
    ([(3, 0), (5, 3), (9, 5)], 0, []),  # a chain from the start: no hole
    ([(3, 0), (9, 5)], 0, [(3, 9)]),  # 5 is missing between 3 and 9
    ([(9, 5)], 0, [(0, 9)]),  # the first message read names one that is not there
    ([(9, 5)], None, []),  # nothing known below the first message read (a page cut short)
    ([(9, 5), (12, 11)], None, [(9, 12)]),  # ... a hole inside the page still shows
    ([(9, 5)], 5, []),  # read after 5: 9 continues from it
    ([(9, 7)], 5, [(5, 9)]),  # read after 5: 7 is missing
])
def test_holes_are_where_a_prev_is_above_what_was_read_before(rows, floor, holes):
    floor_id = None if floor is None else pack(2, floor)
    found = holes_in(ids(*rows), floor_id)
    assert found == [Hole(pack(2, a), pack(2, b)) for a, b in holes]


@pytest.mark.parametrize(("hole", "first", "span"), [
    ((3, 9), 1, (4, 8)),  # the stream holds it all
    ((3, 9), 6, (6, 8)),  # it dropped 4 and 5: the rest is filled
    ((3, 9), 9, None),  # it holds nothing of the hole
    ((3, 4), 1, None),  # adjacent ids: nothing between them (a hole in another conversation's numbering)
    ((0, 9), 1, (1, 8)),  # from the conversation's start
])
def test_the_stream_fills_what_it_still_holds(hole, first, span):
    assert fill_span(Hole(pack(5, hole[0]), pack(5, hole[1])), first) == span


@pytest.mark.parametrize(("newest", "stream_last", "archived", "hole"), [
    (9, 12, 20, (9, 13)),  # 10..12 archived, not in the store: lost, and no later message names them
    (9, 12, 11, (9, 12)),  # above the floor it is the unarchived tail's (read from the stream anyway)
    (12, 12, 20, None),  # the store has the stream's last
    (9, 0, 20, None),  # the stream holds nothing of the conversation (older than its max age)
    (9, 15, 9, None),  # nothing archived above the newest read
])
def test_a_lost_newest_message_is_a_hole_only_the_stream_shows(newest, stream_last, archived, hole):
    found = trailing_hole(pack(3, newest), pack(3, stream_last) if stream_last else 0, archived)
    assert found == (Hole(pack(3, hole[0]), pack(3, hole[1])) if hole else None)
