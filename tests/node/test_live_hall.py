"""The hall's fan-out without servers: one frame's bytes to every viewer, a slow viewer dropped, events kept
for a viewer still joining."""

from __future__ import annotations

from typing import Any

import orjson
from parley.node.live.hall import LiveHall

from parley.metrics import NodeMetrics
from parley.settings import Settings


class FakeViewer:
    def __init__(self, user: str, waiting: int = 0) -> None:
        self.user, self._waiting, self.got = user, waiting, []  # type: ignore[var-annotated]

    def send(self, frame: bytes) -> None:
        self.got.append(frame)

    def waiting(self) -> int:
        return self._waiting


class NoBus:
    def jetstream(self) -> Any:
        return None


def hall(queue: int = 4) -> LiveHall:
    return LiveHall(Settings(live_viewer_queue=queue), NoBus(), None, None, NodeMetrics(), [])  # type: ignore[arg-type]


async def test_every_viewer_gets_the_same_bytes_and_a_slow_one_is_dropped() -> None:
    h = hall(queue=4)
    fast, other, slow = FakeViewer("a"), FakeViewer("b"), FakeViewer("c", waiting=4)
    for v in (fast, other, slow):
        h.viewers.expect("r", v)
        h.viewers.admit("r", v, after=0)
    frame = b'{"type":"live_msg","room":"r","id":9}'
    h.hand_out("r", frame, 9)
    assert fast.got[0] is frame and other.got[0] is frame  # encoded once, shared
    assert [orjson.loads(f) for f in slow.got] == [{"type": "live_dropped", "room": "r", "reason": "slow"}]
    assert list(h.viewers.of("r")) == [fast, other] and h.viewers.total == 2
    h.hand_out("r", b"next", 10)
    assert slow.got[-1] != b"next" and fast.got[-1] == b"next"


async def test_frames_for_a_joining_viewer_wait_for_its_backlog() -> None:
    h = hall()
    v = FakeViewer("a")
    h.viewers.expect("r", v)
    h.hand_out("r", b"m5", 5)
    h.hand_out("r", b"deleted", 0)
    assert v.got == []
    assert h.viewers.admit("r", v, after=5) == [b"deleted"]
