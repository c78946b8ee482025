"""Where a sync round reads from: the store below the archiver's floor, the stream above it."""

from __future__ import annotations

import pytest
from parley.node.syncplan import plan_round


@pytest.mark.parametrize(("after", "first", "last", "archived", "store_upto", "bad"), [
    (10, 1, 100, 60, 60, False),  # store (10, 60], stream (60, 100]
    (70, 1, 100, 60, 60, False),  # the cursor is past the floor: all from the stream
    (10, 1, 100, 100, 100, False),  # all archived: all from the store
    (10, 1, 100, 150, 100, False),  # a floor ahead of our bounds read: never past ``last``
    (120, 1, 100, 60, 60, True),  # a cursor from the future: read from ``last``
    (0, 0, 0, 0, 0, False),  # an empty stream
])
def test_the_store_covers_up_to_the_floor_and_the_stream_the_rest(after, first, last, archived, store_upto, bad):
    plan = plan_round(after, first=first, last=last, archived=archived)
    assert (plan.store_upto, plan.bad_cursor, plan.last) == (store_upto, bad, last)
    assert plan.after == (last if bad else after)


def test_the_stream_stands_in_for_the_store_only_where_it_still_holds_the_messages():
    plan = plan_round(10, first=5, last=100, archived=60)
    assert plan.stream_holds_after(10) and plan.stream_start(10) == 11
    old = plan_round(10, first=50, last=100, archived=60)
    assert not old.stream_holds_after(10)
    assert old.stream_start(60) == 61 and old.stream_start(10) == 50
