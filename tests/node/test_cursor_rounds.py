"""A round of cursor offers is spread over its slices: each tick one slot's links, each link once a round
(docs/adr/0040)."""

import pytest
from parley.node.cursor_rounds import CursorRounds, next_tick


def ident(link: int) -> int:
    return link


def test_each_tick_takes_one_slot_and_a_round_takes_every_moved_link_once():
    rounds: CursorRounds[int] = CursorRounds(4, ident)
    for link in range(1, 13):  # connection numbers 1..12, as a node gives them
        rounds.moved(link)
        rounds.moved(link)  # moved again before its tick: still offered once
    ticks = [rounds.tick() for _ in range(4)]
    assert [sorted(moved) for _, moved in ticks] == [[4, 8, 12], [1, 5, 9], [2, 6, 10], [3, 7, 11]]
    assert all(waiting == [] for waiting, _ in ticks)
    assert [rounds.tick() for _ in range(4)] == [([], [])] * 4  # nothing moved since: an idle round is empty


def test_the_links_of_a_group_moved_together_are_spread_over_the_round():
    """A room's members all move at one message; their offers (and the acks they bring) fall on every tick."""
    rounds: CursorRounds[int] = CursorRounds(10, ident)
    for link in range(100, 150):
        rounds.moved(link)
    sizes = [len(rounds.tick()[1]) for _ in range(10)]
    assert sizes == [5] * 10


def test_a_link_set_aside_comes_back_at_its_own_slot_one_round_later():
    rounds: CursorRounds[int] = CursorRounds(3, ident)
    rounds.moved(5)  # slot 2
    assert rounds.tick() == ([], []) and rounds.tick() == ([], [])
    assert rounds.tick() == ([], [5])
    rounds.wait(5)  # nothing was about to be written to it
    rounds.moved(3)  # slot 0
    assert rounds.tick() == ([], [3])
    assert rounds.tick() == ([], [])
    assert rounds.tick() == ([5], [])  # a whole round later, alone
    assert rounds.tick() == ([], [])


def test_one_slice_is_one_round_for_all():
    rounds: CursorRounds[int] = CursorRounds(1, ident)
    for link in (1, 2, 3):
        rounds.moved(link)
    waiting, moved = rounds.tick()
    assert waiting == [] and sorted(moved) == [1, 2, 3]
    with pytest.raises(ValueError):
        CursorRounds(0, ident)


@pytest.mark.parametrize(("due", "now", "expected"), [
    (1.000, 1.000, 1.025),  # on time: one tick later
    (1.000, 1.020, 1.025),  # the loop ran 20 ms late: the next tick keeps the schedule
    (1.000, 1.060, 1.025),  # later than the next tick: it is due at once (sleep 0), the round is not stretched
    (1.000, 1.300, 1.325),  # a whole round behind: start again from now, no burst of ten ticks at once
])
def test_ticks_keep_to_their_schedule_under_a_late_loop(due, now, expected):
    assert next_tick(due, now, 0.025, 10) == pytest.approx(expected)


def test_rounds_are_idle_only_with_no_link_moved_or_set_aside():
    rounds: CursorRounds[int] = CursorRounds(3, ident)
    assert rounds.idle()
    rounds.moved(4)
    assert not rounds.idle()
    assert rounds.tick() == ([], []) and rounds.tick() == ([], [4])
    assert rounds.idle()
    rounds.wait(4)  # set aside: still something to do at its slot's next tick
    assert not rounds.idle()
    assert rounds.tick() == ([], []) and rounds.tick() == ([], []) and not rounds.idle()
    assert rounds.tick() == ([4], [])
    assert rounds.idle()
