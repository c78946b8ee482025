"""When sessions end by themselves: every connection's session end on one heap under one timer.

A session passes its absolute lifetime (``expires_at``) and its connections close then, with an ``error`` frame
``session_expired`` and close 4003, as a hello would be refused (protocol.md §1). A timer per connection cost
~0.5 KB each (ADR 0028); here a connection's end is a small ``Ending`` on the loop's one heap, and one timer is
armed for the earliest. An ending cancelled (its connection ended first) stays on the heap until it comes up,
or until the cancelled ones are half the heap, which is then rebuilt without them (a reconnecting client does
not grow it for its session's lifetime).
"""

from __future__ import annotations

import asyncio
import heapq
import time
import weakref
from typing import Protocol

from parley import protocol
from parley.errors import Unauthorized


class Closable(Protocol):
    @property
    def closed(self) -> bool: ...
    def send(self, frame: bytes) -> None: ...
    def close(self, code: int, reason: str) -> None: ...


class Ending:
    """A connection's place on the heap; ``cancel`` when the connection ends first."""

    __slots__ = ("at", "link", "_ends")

    def __init__(self, at: float, link: Closable, ends: SessionEnds) -> None:
        self.at: float = at
        self.link: Closable | None = link
        self._ends = ends

    def __lt__(self, other: Ending) -> bool:
        return self.at < other.at

    def cancel(self) -> None:
        if self.link is not None:
            self.link = None
            self._ends.cancelled()


class SessionEnds:
    """The heap of one event loop's session ends (wall-clock seconds) and its one timer."""

    def __init__(self) -> None:
        self._heap: list[Ending] = []
        self._cancelled = 0
        self._timer: asyncio.TimerHandle | None = None

    def add(self, link: Closable, at: float) -> Ending:
        ending = Ending(at, link, self)
        heapq.heappush(self._heap, ending)
        if self._heap[0] is ending:
            self._arm()
        return ending

    def __len__(self) -> int:
        return len(self._heap) - self._cancelled

    def cancelled(self) -> None:
        self._cancelled += 1
        if self._cancelled * 2 > len(self._heap) >= 64:
            self._heap = [e for e in self._heap if e.link is not None]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        if self._heap:
            delay = max(0.0, self._heap[0].at - time.time())
            self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _fire(self) -> None:
        self._timer, now = None, time.time()
        while self._heap and self._heap[0].at <= now:
            ending = heapq.heappop(self._heap)
            link, ending.link = ending.link, None
            if link is None:
                self._cancelled -= 1
            else:
                expire(link)
        self._arm()


_ENDS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SessionEnds] = weakref.WeakKeyDictionary()


def end_at(link: Closable, expires_at: float) -> Ending:
    """Close ``link`` when its session passes ``expires_at`` (wall-clock seconds); cancel the ending when the link
    ends first."""
    loop = asyncio.get_running_loop()
    ends = _ENDS.get(loop)
    if ends is None:
        ends = _ENDS[loop] = SessionEnds()
    return ends.add(link, expires_at)


def expire(link: Closable) -> None:
    if not link.closed:
        ended = Unauthorized("this session has passed its lifetime; log in again", code="session_expired")
        link.send(protocol.error_bytes(ended))
        link.close(ended.ws_close_code, ended.code)
