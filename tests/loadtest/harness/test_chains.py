"""A load device's view of its conversations' prev chains (loadtest/harness/chains.py): table-driven,
no server. Ids are of protocol v2: increasing within a conversation, never compared across them."""

from __future__ import annotations

import pytest
from parley.loadtest.harness.chains import Chains


def feed(chains: Chains, frames: list[tuple[str, int, int]]) -> list[str]:
    return [chains.judge(conv, id, prev) for conv, id, prev in frames]


@pytest.mark.parametrize(("frames", "verdicts"), [
    # a chain per conversation; ids of two conversations interleave in any order (different shards)
    ([("a", 257, 0), ("b", 2, 0), ("a", 321, 257), ("b", 66, 2)], None),
    ([("a", 129, 0), ("a", 257, 193)], ["new", "gap"]),  # 193 never came
    ([("a", 129, 0), ("a", 257, 193), ("a", 321, 257)], ["new", "gap", "new"]),  # the chain goes on from 257
    ([("a", 129, 0), ("a", 193, 129), ("a", 257, 129)], ["new", "new", "gap"]),  # a fork: two after 129
    ([("a", 129, 0), ("a", 129, 0)], ["new", "duplicate"]),  # twice on one connection
    ([("a", 129, 0), ("a", 193, 129), ("a", 129, 0)], ["new", "new", "duplicate"]),
    ([("a", 193, 129)], ["new"]),  # the first one seen starts the chain: earlier history is not ours
])
def test_verdicts_on_one_connection(frames: list[tuple[str, int, int]], verdicts: list[str] | None) -> None:
    assert feed(Chains(), frames) == (verdicts or ["new"] * len(frames))


def test_after_a_reconnect_what_followed_the_cursor_is_resent_and_what_it_covered_is_a_duplicate() -> None:
    c = Chains()
    feed(c, [("a", 129, 0), ("b", 2, 0)])
    c.offered()  # the cursor covers a:129, b:2
    feed(c, [("a", 193, 129), ("b", 66, 2)])  # after the cursor frame: not covered by it
    c.reconnected(with_cursor=True)
    assert feed(c, [("a", 193, 129), ("b", 66, 2), ("a", 257, 193)]) == ["resent", "resent", "new"]
    assert feed(c, [("b", 66, 2)]) == ["duplicate"]  # twice on this connection
    c.reconnected(with_cursor=True)  # still from the same cursor: nothing new was offered
    assert feed(c, [("b", 2, 0)]) == ["duplicate"]  # covered by the cursor: must not come again


def test_without_a_cursor_it_can_vouch_for_everything_old_is_resent() -> None:
    c = Chains()
    feed(c, [("a", 129, 0)])
    c.offered()
    c.reconnected(with_cursor=False)  # the server's stored cursor: it may be older than ours
    assert feed(c, [("a", 129, 0), ("a", 193, 129)]) == ["resent", "new"]
    c.offered()
    c.reconnected(with_cursor=True)
    c.cursor_refused()  # bad_cursor: the node syncs from the beginning
    assert feed(c, [("a", 129, 0), ("a", 193, 129)]) == ["resent", "resent"]
