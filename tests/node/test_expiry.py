"""Sessions' ends on one heap under one timer (node/expiry.py): each link closes at its own end with
``session_expired``, a cancelled ending closes nothing, and cancelled endings do not pile up."""

from __future__ import annotations

import time

import orjson
from parley.node.expiry import SessionEnds, end_at

from tests.poll import eventually


class Link:
    def __init__(self) -> None:
        self.frames: list[dict[str, object]] = []
        self.close_code: int | None = None

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    def send(self, frame: bytes) -> None:
        self.frames.append(orjson.loads(frame))

    def close(self, code: int, reason: str) -> None:
        self.close_code = code


async def test_links_close_at_their_own_ends_in_any_order_of_arrival():
    now = time.time()
    late, soon, cancelled, never = Link(), Link(), Link(), Link()
    end_at(late, now + 0.6)
    end_at(soon, now + 0.2)  # earlier than the one the timer was armed for
    end_at(cancelled, now + 0.1).cancel()
    end_at(never, now + 3600)
    await eventually(lambda: soon.closed, what="the sooner session's link closed")
    assert not late.closed
    await eventually(lambda: late.closed, what="the later one's too")
    assert (late.close_code, [f["code"] for f in late.frames]) == (4003, ["session_expired"])
    assert not cancelled.closed and not never.closed


async def test_cancelled_endings_are_dropped_once_they_are_half_the_heap():
    ends, now = SessionEnds(), time.time()
    endings = [ends.add(Link(), now + 3600 + i) for i in range(200)]
    for ending in endings[:150]:
        ending.cancel()
    assert len(ends) == 50 and len(ends._heap) < 200
    for ending in endings[150:]:
        ending.cancel()
    assert len(ends) == 0
