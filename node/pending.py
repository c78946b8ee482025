"""A connection's sends between reading them and answering them: one lane per conversation, bounded.

The read loop admits a send and reads on; each lane publishes its conversation's sends one at a time,
in the order they were read, while lanes of different conversations run side by side. One at a time
because a message names its predecessor (``prev`` in the payload, the expected last subject sequence
on the publish, ``node/publisher.py``): the next one's can only be known once the stream acked the one
before. At most ``cap`` sends are admitted and unanswered (queued or publishing); a full connection
admits no more until one is answered, so the reader stops reading (the client's further frames wait in
the socket) rather than queueing without bound.

Pure: no asyncio; ``node/sending.py`` runs the lanes.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class PendingSends(Generic[T]):
    """Lanes of sends, keyed by conversation; a lane's head is the send being published."""

    __slots__ = ("cap", "count", "_lanes")

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError("cap must be at least 1")
        self.cap = cap
        self.count = 0  # admitted, not yet answered
        self._lanes: dict[str, deque[T]] = {}

    @property
    def full(self) -> bool:
        return self.count >= self.cap

    @property
    def lanes(self) -> int:
        return len(self._lanes)

    def admit(self, conv: str, send: T) -> bool:
        """Queue ``send`` at the end of its conversation's lane. True: the lane was idle, so ``send`` is
        its head and the caller starts publishing it; False: it waits for the ones before it."""
        if self.full:
            raise OverflowError("admit when full: wait for room first")
        self.count += 1
        lane = self._lanes.get(conv)
        if lane is None:
            self._lanes[conv] = deque((send,))
            return True
        lane.append(send)
        return False

    def done(self, conv: str) -> T | None:
        """The lane's head was answered: the lane's next send (now its head) to publish, or None (the lane
        is gone)."""
        lane = self._lanes[conv]
        lane.popleft()
        self.count -= 1
        if lane:
            return lane[0]
        del self._lanes[conv]
        return None

    def drop_waiting(self) -> list[T]:
        """The connection is closing: the sends not yet started, dropped (their clients resend them after
        reconnecting, as for any send left unanswered); every lane keeps its head until it is answered."""
        dropped: list[T] = []
        for lane in self._lanes.values():
            while len(lane) > 1:
                dropped.append(lane.pop())
        self.count -= len(dropped)
        return dropped
