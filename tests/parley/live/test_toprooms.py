"""The top-K label chooser: the rooms with most viewers, incumbents kept on ties, never an empty room."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parley.live.toprooms import OTHER, choose_top, label_of


@pytest.mark.parametrize(("viewers", "k", "current", "want"), [
    ({}, 3, set(), set()),
    ({"a": 5, "b": 9, "c": 1}, 2, set(), {"a", "b"}),
    ({"a": 5, "b": 9, "c": 1}, 5, set(), {"a", "b", "c"}),  # fewer rooms than k: all of them
    ({"a": 5, "b": 9}, 0, {"a"}, set()),  # k = 0: no room is labelled
    ({"a": 0, "b": 2}, 2, {"a"}, {"b"}),  # an emptied room drops out even if it was chosen
    ({"a": 3, "b": 3, "c": 3}, 2, set(), {"a", "b"}),  # ties: by id
    ({"a": 3, "b": 3, "c": 3}, 2, {"c"}, {"a", "c"}),  # ties: the incumbent stays
    ({"a": 3, "b": 4, "c": 3}, 1, {"c"}, {"b"}),  # more viewers beats an incumbent
    ({"a": 3, "b": 4, "c": 3}, 2, {"a", "c"}, {"a", "b"}),  # the boundary: a and c tie, a wins by id
])
def test_choose_top(viewers: dict[str, int], k: int, current: set[str], want: set[str]) -> None:
    assert choose_top(viewers, k, current) == want


def test_a_room_falling_out_of_the_top_is_replaced_by_the_one_that_passed_it() -> None:
    top = choose_top({"a": 10, "b": 8, "c": 2}, 2)
    assert top == {"a", "b"}
    assert choose_top({"a": 10, "b": 1, "c": 2}, 2, top) == {"a", "c"}


def test_labels() -> None:
    top = frozenset({"a"})
    assert (label_of("a", top), label_of("b", top)) == ("a", OTHER)
    assert not OTHER.isalnum()  # never a room id


@given(st.dictionaries(st.sampled_from("abcdefgh"), st.integers(0, 5)), st.integers(0, 6),
       st.frozensets(st.sampled_from("abcdefgh")))
def test_the_chosen_rooms_have_at_least_the_viewers_of_any_other(viewers: dict[str, int], k: int,
                                                                 current: frozenset[str]) -> None:
    top = choose_top(viewers, k, current)
    busy = {room for room, n in viewers.items() if n > 0}
    assert top <= busy and len(top) == min(k, len(busy))
    for chosen in top:
        for other in busy - top:
            assert viewers[chosen] >= viewers[other]
            if viewers[chosen] == viewers[other] and chosen not in current:
                assert other not in current  # a tie never unseats an incumbent
    assert choose_top(viewers, k, top) == top  # stable: ranking again changes nothing
