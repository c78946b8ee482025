"""A connection's sends in flight: the asyncio shell around ``PendingSends`` (``node/pending.py``).

The read loop calls ``wait_room`` (it returns at once unless the connection already has ``cap`` sends
unanswered, and then once one is answered: backpressure) and ``admit``. A lane whose first send is admitted
gets a task that answers the lane's sends in order (``answer`` publishes one and sends its ack or error frame;
it must not raise) and ends when the lane is empty. ``answer`` is told when its send was admitted
(``loop.time()``), so a send that waited in its lane behind a slow one keeps the deadline it had on arrival (a
lane of sends behind a hung store is answered all at once, not one deadline after another). So pings, acks,
reads and the sends of other conversations never wait for a publish's round trip, and one conversation's acks
go out in send order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from parley.node.pending import PendingSends

from parley import protocol

log = logging.getLogger("parley.node")
CLOSE_WAIT_S = 10.0  # a closing connection waits this long for the publishes it started (each times out in 5 s)


class LinkSends:
    __slots__ = ("_pending", "_answer", "_room", "_tasks")

    def __init__(self, cap: int, answer: Callable[[protocol.Send, float], Awaitable[None]]) -> None:
        self._pending: PendingSends[tuple[protocol.Send, float]] = PendingSends(cap)
        self._answer = answer
        self._room = asyncio.Event()
        self._tasks: dict[str, asyncio.Task[None]] = {}  # conversation -> its lane's task, while the lane has sends

    @property
    def full(self) -> bool:
        return self._pending.full

    async def wait_room(self) -> None:
        while self._pending.full:
            self._room.clear()
            await self._room.wait()

    def admit(self, frame: protocol.Send) -> None:
        """Queue the send on its conversation's lane (call ``wait_room`` first)."""
        loop = asyncio.get_running_loop()
        admitted = (frame, loop.time())
        if self._pending.admit(frame.conv, admitted):
            self._tasks[frame.conv] = loop.create_task(self._run(admitted))

    async def _run(self, first: tuple[protocol.Send, float]) -> None:
        conv = first[0].conv
        item: tuple[protocol.Send, float] | None = first
        try:
            while item is not None:
                frame, admitted = item
                try:
                    await self._answer(frame, admitted)
                except Exception:  # answer reports its own failures; this is a bug, and the lane must go on
                    log.exception("send %s failed unanswered", frame.cid)
                item = self._pending.done(conv)
                self._room.set()
        finally:
            # the task leaves with its lane, in its last step: no done callback, a loop turn per send (ADR 0065);
            # nothing runs between the lane's end and this, so the entry is this task's
            del self._tasks[conv]

    async def settle(self) -> None:
        """Every send admitted so far is answered (or ``CLOSE_WAIT_S`` passed)."""
        async def answered() -> None:
            while self._pending.count:
                self._room.clear()
                await self._room.wait()

        try:
            await asyncio.wait_for(answered(), CLOSE_WAIT_S)
        except TimeoutError:
            log.warning("sends still unanswered after %.0f s", CLOSE_WAIT_S)

    async def close(self) -> None:
        """The connection ends: sends not started are dropped (unanswered: the client resends them), the
        publishes under way finish (their acks go nowhere; a resend is then answered as a duplicate)."""
        self._pending.drop_waiting()
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks.values()), timeout=CLOSE_WAIT_S)
        for task in late:
            task.cancel()
