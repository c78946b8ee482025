"""PendingSends: lanes per conversation, order kept, bounded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from parley.node.pending import PendingSends


def test_first_send_of_a_lane_starts_it_later_ones_wait() -> None:
    p: PendingSends[str] = PendingSends(cap=8)
    assert p.admit("a", "a1") is True
    assert p.admit("b", "b1") is True  # another conversation: its own lane, started at once
    assert p.admit("a", "a2") is False
    assert p.admit("a", "a3") is False
    assert (p.count, p.lanes) == (4, 2)
    assert p.done("a") == "a2"
    assert p.done("a") == "a3"
    assert p.done("a") is None
    assert p.done("b") is None
    assert (p.count, p.lanes) == (0, 0)


def test_full_at_cap_and_room_after_an_answer() -> None:
    p: PendingSends[int] = PendingSends(cap=2)
    p.admit("a", 1)
    p.admit("a", 2)
    assert p.full
    with pytest.raises(OverflowError):
        p.admit("b", 3)
    assert p.done("a") == 2
    assert not p.full
    assert p.admit("b", 3) is True


def test_closing_drops_the_waiting_and_keeps_the_heads() -> None:
    p: PendingSends[str] = PendingSends(cap=8)
    for item in ("a1", "a2", "a3"):
        p.admit("a", item)
    p.admit("b", "b1")
    assert sorted(p.drop_waiting()) == ["a2", "a3"]
    assert p.count == 2
    assert p.done("a") is None  # the head's answer ends the lane
    assert p.done("b") is None
    assert p.count == 0


def test_cap_must_be_positive() -> None:
    with pytest.raises(ValueError):
        PendingSends(cap=0)


@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=60), st.integers(1, 6))
def test_each_lane_answers_in_admission_order_never_two_at_once(steps: list[tuple[str, bool]], cap: int) -> None:
    """Random admits (when there is room) and answers of a running lane: every conversation's sends start in
    the order admitted, one at a time, and the count never passes the cap."""
    p: PendingSends[tuple[str, int]] = PendingSends(cap)
    admitted: dict[str, list[int]] = {}
    started: dict[str, list[int]] = {}
    running: dict[str, tuple[str, int]] = {}  # conversation -> its head
    n = 0
    for conv, answer in steps:
        if answer and running:
            lane = sorted(running)[n % len(running)]
            nxt = p.done(lane)
            del running[lane]
            if nxt is not None:
                running[lane] = nxt
                started[lane].append(nxt[1])
        elif not p.full:
            n += 1
            admitted.setdefault(conv, []).append(n)
            if p.admit(conv, (conv, n)):
                assert conv not in running  # one in flight per conversation
                running[conv] = (conv, n)
                started.setdefault(conv, []).append(n)
        assert p.count <= cap
        assert p.lanes == len(running)
    for conv, order in started.items():
        assert order == admitted[conv][: len(order)]
