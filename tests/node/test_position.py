"""The device position decides, for each message, deliver / duplicate / gap — per shard."""

import random

import pytest
from parley.node.position import Position

from parley.shards import pack


def P(n: int, shard: int = 0) -> int:  # noqa: N802 — the id of sequence ``n`` in ``shard``
    return pack(shard, n)


def start(at: int = 10) -> Position:
    pos = Position()
    pos.restart({0: at, 1: at})
    return pos


@pytest.mark.parametrize(
    ("steps", "verdicts"),
    [
        # (id, conv, prev) in arrival order
        ([(P(11), "a", P(3)), (P(12), "b", 0), (P(13), "a", P(11))], ["deliver", "deliver", "deliver"]),
        ([(P(11), "a", P(3)), (P(11), "a", P(3))], ["deliver", "duplicate"]),
        ([(P(11), "a", P(3)), (P(9), "b", 0)], ["deliver", "duplicate"]),
        # 12 in conversation a was never seen, so 13 naming it is a gap
        ([(P(11), "a", P(3)), (P(13), "a", P(12))], ["deliver", "gap"]),
        # an unseen conversation must continue from at or below the base (10)
        ([(P(14), "c", P(12))], ["gap"]),
        ([(P(14), "c", P(10))], ["deliver"]),
        # another shard has its own position: 9 there is new
        ([(P(11), "a", P(3)), (P(11, 1), "x", 0), (P(9, 1), "y", 0)], ["deliver", "deliver", "duplicate"]),
    ],
)
def test_verdicts(steps, verdicts):
    pos = start()
    assert [pos.accept(*step) for step in steps] == verdicts


def test_a_gap_does_not_move_the_position():
    pos = start()
    pos.accept(P(11), "a", P(3))
    assert pos.accept(P(13), "a", P(12)) == "gap"
    assert pos.delivered == {0: 11, 1: 10}
    assert pos.resume_point("a", 0) == {0: 11, 1: 10}
    assert pos.resume_point("z", 1) == {0: 11, 1: 10}
    pos.accept(P(12, 1), "z", 0)
    assert pos.resume_point("y", 1) == {0: 11, 1: 10}  # an unseen conversation resumes from the base


def test_restart_forgets_conversations_and_resends_from_the_point():
    pos = start()
    pos.accept(P(11), "a", P(3))
    pos.restart({0: 5})
    assert pos.delivered == {0: 5} and pos.base == {0: 5} and pos.conv_last == {}
    assert pos.accept(P(11), "a", P(3)) == "deliver"


def test_accept_is_judge_then_advance():
    """``accept`` is written out flat for the live path (docs/adr/0027): over random messages it decides and
    moves exactly as ``judge`` followed, on deliver, by ``advance``."""
    rng = random.Random(27)
    flat, plain = start(), start()
    for _ in range(2000):
        shard = rng.randrange(2)
        id, conv = P(rng.randrange(5, 40), shard), rng.choice("abc") + str(shard)
        prev = rng.choice([0, P(rng.randrange(0, 40), shard), plain.conv_last.get(conv, 0)])
        verdict = plain.judge(id, conv, prev)
        if verdict == "deliver":
            plain.advance(id, conv)
        assert flat.accept(id, conv, prev) == verdict
        assert (flat.delivered, flat.conv_last) == (plain.delivered, plain.conv_last)


def test_offerable_is_a_copy_of_delivered_held_at_the_marks_in_doubt():
    pos = start(10)
    pos.accept(P(11), "a", 0)
    offered = pos.offerable()
    assert offered == {0: 11, 1: 10}
    offered[0] = 99  # the caller's own: the position does not move with it
    assert pos.delivered == {0: 11, 1: 10}
    pos.doubt([1])
    pos.accept(P(12, shard=1), "b", 0)
    pos.accept(P(12), "a", P(11))
    assert pos.offerable() == {0: 12, 1: 10}
