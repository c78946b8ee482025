"""A room's viewers across the cluster as one node hears them: its own plus the others' fresh counts; a node
not heard from for a while stops counting; viewers are told only a total that changed."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import orjson
from parley.node.live.hall import LiveHall
from parley.node.live.headcount import STALE_S, Headcount

from parley.metrics import NodeMetrics
from parley.settings import Settings
from tests.node.test_live_hall import FakeViewer


def test_the_total_is_ours_plus_every_other_nodes_fresh_count() -> None:
    h = Headcount("n1")
    assert h.heard("r", "n2", 3, now=0) is True  # a newcomer: news
    assert h.heard("r", "n2", 3, now=1) is False  # the same count again: not news
    assert h.heard("r", "n3", 2, now=1) is True
    assert h.heard("r", "n1", 99, now=1) is False  # our own echo
    assert h.total("r", here=1, now=2) == 6
    assert h.total("other", here=4, now=2) == 4


def test_a_node_not_heard_from_stops_counting() -> None:
    h = Headcount("n1")
    h.heard("r", "n2", 3, now=0)
    h.heard("r", "n3", 2, now=STALE_S)
    assert h.total("r", here=0, now=STALE_S + 1) == 2
    assert h.heard("r", "n2", 3, now=STALE_S + 2) is True  # back: news again


def test_viewers_are_told_only_a_changed_total_and_forget_starts_over() -> None:
    h = Headcount("n1")
    assert [h.news("r", n) for n in (1, 1, 2, 2, 1)] == [True, False, True, False, True]
    h.heard("r", "n2", 5, now=0)
    h.forget("r")
    assert h.total("r", here=1, now=0) == 1
    assert h.news("r", 1) is True


class CountBus:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    def jetstream(self) -> None:
        return None

    async def publish(self, subject: str, payload: bytes) -> None:
        self.published.append((subject, payload))


async def test_the_hall_tells_other_nodes_its_count_and_its_viewers_the_total() -> None:
    bus = CountBus()
    h = LiveHall(Settings(node_id="n1"), bus, None, None, NodeMetrics(), [])  # type: ignore[arg-type]
    a, b = FakeViewer("a"), FakeViewer("b")
    for v in (a, b):
        h.viewers.expect("r", v)
        h.viewers.admit("r", v, after=0)
    await h._on_count(SimpleNamespace(subject="live.cnt.r", data=b'{"node":"n2","viewers":3}'))  # type: ignore[arg-type]
    h._beat("r")
    await asyncio.gather(*h._closing)
    assert bus.published == [("live.cnt.r", b'{"node":"n1","viewers":2}')]
    assert [orjson.loads(f) for f in a.got] == [{"type": "live_viewers", "room": "r", "viewers": 5}]
    h._beat("r")  # the same total: viewers are not told again
    assert len(a.got) == 1 and len(b.got) == 1
    for handle, _ in h._beats.values():
        handle.cancel()
