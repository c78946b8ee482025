"""The cluster-wide viewer count as one node hears it: told on change or when stale, others' fresh counts
added, viewers shown a total only when it changed, a silent node dropped."""

from __future__ import annotations

import pytest
from parley.node.live.audience import REFRESH_S, STALE_S, Audience, shown


def test_a_count_is_told_when_it_changes_and_again_when_it_is_refresh_s_old() -> None:
    a = Audience("n1")
    assert a.to_tell("r", 3, now=0.0)
    assert not a.to_tell("r", 3, now=1.0)
    assert a.to_tell("r", 4, now=1.5)
    assert not a.to_tell("r", 4, now=1.5 + REFRESH_S - 0.1)
    assert a.to_tell("r", 4, now=1.5 + REFRESH_S)


def test_the_total_adds_the_other_nodes_fresh_counts_and_ignores_our_own_echo() -> None:
    a = Audience("n1")
    a.heard("r", "n2", 5, now=0.0)
    a.heard("r", "n3", 2, now=1.0)
    a.heard("r", "n1", 99, now=1.0)  # our own word, back from the bus
    assert a.total("r", 1, now=2.0) == 8
    assert a.total("other", 1, now=2.0) == 1
    assert a.total("r", 1, now=STALE_S + 0.5) == 3  # n2 fell silent
    assert a.totals({"r": 0, "x": 4}, now=STALE_S + 0.5) == {"r": 2, "x": 4}


def test_a_node_heard_for_the_first_time_is_owed_our_count() -> None:
    a = Audience("n1")
    assert a.to_tell("r", 3, now=0.0)
    a.heard("r", "n2", 1, now=0.5)
    assert a.to_tell("r", 3, now=0.6)  # n2 just started following the room
    a.heard("r", "n2", 2, now=0.7)
    assert not a.to_tell("r", 3, now=0.8)


def test_viewers_are_shown_a_total_once() -> None:
    a = Audience("n1")
    assert a.to_show("r", 4)
    assert not a.to_show("r", 4)
    assert a.to_show("r", 5)


def test_forgetting_a_room_clears_it() -> None:
    a = Audience("n1")
    a.heard("r", "n2", 1, now=0.0)
    a.to_tell("r", 0, now=0.0)
    a.to_show("r", 1)
    assert list(a.told()) == ["r"]
    a.forget("r")
    assert list(a.told()) == [] and a.total("r", 0, now=0.0) == 0 and a.to_show("r", 1)


@pytest.mark.parametrize(("total", "want"), [(0, 0), (999, 999), (1000, 1000), (1009, 1000), (12_345, 12_300),
                                             (99_999, 99_900), (1_234_567, 1_230_000)])
def test_big_counts_are_shown_to_three_significant_digits(total: int, want: int) -> None:
    assert shown(total) == want


def test_one_node_stores_the_total_the_smallest_id_it_hears_of() -> None:
    n1, n2 = Audience("n1"), Audience("n2")
    n1.heard("r", "n2", 3, now=0.0)
    n2.heard("r", "n1", 1, now=0.0)
    assert n1.to_store("r", 4, now=0.0) and not n2.to_store("r", 4, now=0.0)
    assert not n1.to_store("r", 4, now=1.0)  # unchanged
    assert n1.to_store("r", 5, now=1.5) and n1.to_store("r", 5, now=1.5 + REFRESH_S)
    n2.heard("r", "n1", 0, now=2.0)  # n1's last viewer left: n2 takes over at once
    assert n2.to_store("r", 3, now=2.0) and n2.total("r", 3, now=2.0) == 3
