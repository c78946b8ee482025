"""The silent-connection sweep's book (``node/silence.py``): due exactly as the old comparison per link was, and a
sweep that looks at no link past the first not due."""

from __future__ import annotations

import random

import pytest
from parley.node.silence import Silence

TIMEOUT = 75.0


@pytest.mark.parametrize("events, now, due", [
    ([("a", 0.0)], 74.9, []),
    ([("a", 0.0)], 75.0, []),  # silent exactly the timeout: closed at the next sweep, as before
    ([("a", 0.0)], 75.1, ["a"]),
    ([("a", 0.0), ("b", 10.0)], 80.0, ["a"]),
    ([("a", 0.0), ("b", 10.0), ("a", 20.0)], 90.0, ["b"]),  # heard again: moved behind b
    ([("a", 0.0), ("b", 10.0), ("a", 20.0)], 96.0, ["b", "a"]),  # longest silent first
    ([("a", 0.0), ("a", 1.0), ("a", 2.0)], 76.0, []),
    ([], 1000.0, []),
])
def test_due_are_the_links_silent_for_the_timeout(events, now, due):
    s: Silence[str] = Silence(TIMEOUT)
    for link, at in events:
        s.heard(link, at)
    assert s.due(now) == due
    assert s.due(now) == []  # handed back once: the caller closes them
    assert len(s) == len({link for link, _ in events}) - len(due)


def test_a_forgotten_link_is_never_due():
    s: Silence[str] = Silence(TIMEOUT)
    s.heard("a", 0.0)
    s.heard("b", 0.0)
    s.forget("a")
    s.forget("never")
    assert s.due(100.0) == ["b"]


def test_random_traffic_gives_what_a_comparison_per_link_gives():
    rng = random.Random(46)
    s: Silence[int] = Silence(TIMEOUT)
    heard: dict[int, float] = {}  # the old sweep's state
    now = 0.0
    for _ in range(20_000):
        now += rng.random() * 0.05
        link = rng.randrange(300)
        if rng.random() < 0.02:
            heard.pop(link, None)
            s.forget(link)
        else:
            heard[link] = now
            s.heard(link, now)
        if rng.random() < 0.05:
            sweep = now + rng.random() * 100
            old = sorted(link for link, at in heard.items() if at < sweep - TIMEOUT)
            for link in old:
                del heard[link]
            assert sorted(s.due(sweep)) == old


class Counted(dict[int, float]):
    """A dict that counts the entries a sweep reads."""

    read = 0

    def items(self):  # type: ignore[override]
        for item in super().items():
            Counted.read += 1
            yield item


def test_a_sweep_reads_the_links_it_closes_and_one_more():
    s: Silence[int] = Silence(TIMEOUT)
    s._heard = Counted()
    for link in range(10_000):
        s.heard(link, float(link))
    Counted.read = 0
    assert s.due(TIMEOUT + 4.5) == [0, 1, 2, 3, 4]
    assert Counted.read == 6
