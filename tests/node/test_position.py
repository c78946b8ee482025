"""The device position decides, for each message, deliver / duplicate / gap."""

import pytest
from parley.node.position import Position


@pytest.mark.parametrize(
    ("steps", "verdicts"),
    [
        # (id, conv, prev) in arrival order
        ([(11, "a", 3), (12, "b", 0), (13, "a", 11)], ["deliver", "deliver", "deliver"]),
        ([(11, "a", 3), (11, "a", 3)], ["deliver", "duplicate"]),
        ([(11, "a", 3), (9, "b", 0)], ["deliver", "duplicate"]),
        # 12 in conversation a was never seen, so 13 naming it is a gap
        ([(11, "a", 3), (13, "a", 12)], ["deliver", "gap"]),
        # an unseen conversation must continue from at or below the base (10)
        ([(14, "c", 12)], ["gap"]),
        ([(14, "c", 10)], ["deliver"]),
    ],
)
def test_verdicts(steps, verdicts):
    pos = Position(delivered=10)
    assert [pos.accept(*step) for step in steps] == verdicts


def test_a_gap_does_not_move_the_position():
    pos = Position(delivered=10)
    pos.accept(11, "a", 3)
    assert pos.accept(13, "a", 12) == "gap"
    assert pos.delivered == 11
    assert pos.resume_point("a") == 11
    assert pos.resume_point("z") == 10


def test_restart_forgets_conversations_and_resends_from_the_point():
    pos = Position(delivered=10)
    pos.accept(11, "a", 3)
    pos.restart(5)
    assert pos.delivered == 5 and pos.base == 5 and pos.conv_last == {}
    assert pos.accept(11, "a", 3) == "deliver"
