"""One device's WebSocket connection: its position in the message sequence and its outbound queue.

A link is either syncing (live messages are buffered while missed ones are read from the store and
the stream) or live (a message is judged against the position and queued at once). Frames go out
through one writer task per link, so a slow device never holds up the NATS dispatch; a device that
falls ``max_queue`` frames behind is closed (4009) and resumes from its cursor when it reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from aiohttp import WSMsgType, web
from parley.node.position import Position

from parley.auth import Claims
from parley.errors import CLOSE_NORMAL, CLOSE_SLOW

log = logging.getLogger("parley.node")

BUFFER_LIMIT = 10000  # live messages held during one sync round; past it the round is redone


class DeviceLink:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        claims: Claims,
        conn_id: int,
        *,
        max_queue: int,
        on_gap: Callable[[DeviceLink, int], None],
        on_sent: Callable[[bytes], None] | None = None,
    ) -> None:
        self.ws = ws
        self.user = claims.user
        self.device = claims.device
        self.session = claims.session
        self.conn_id = conn_id
        self.position = Position(delivered=0)
        self.acked = 0
        self.syncing = True
        self.strikes = 0  # consecutive rejected frames; many in a row closes the link
        self._buffer: list[tuple[int, str, int, bytes, str]] = []
        self._unacked: deque[tuple[int, str, str]] = deque()  # (id, conv, sender) sent to the device, from others
        self._overflow = False
        self._out: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._max_queue = max_queue
        self._on_gap = on_gap
        self._on_sent = on_sent
        self.closed = False
        self.close_code, self.close_reason = CLOSE_NORMAL, ""

    # ---- outbound ----------------------------------------------------------------------------

    def send(self, frame: bytes) -> None:
        if self.closed:
            return
        self._out.append(frame)
        self._wake.set()
        if len(self._out) > self._max_queue // 2:
            self._room.clear()
        if len(self._out) > self._max_queue:
            log.warning("conn %s: %d frames queued; closing a slow device", self.conn_id, len(self._out),
                extra={"conn": self.conn_id})
            self.close(CLOSE_SLOW, "too slow to read", flush=False)

    async def wait_room(self) -> None:
        await self._room.wait()

    async def run_writer(self) -> None:
        """Send queued frames in order; after ``close``, send what is left, then the close frame."""
        try:
            while not self.closed or self._out:
                if not self._out:
                    self._wake.clear()
                    self._room.set()
                    await self._wake.wait()
                    continue
                frame = self._out.popleft()
                await self.ws.send_frame(frame, WSMsgType.TEXT)
                if self._on_sent is not None:
                    self._on_sent(frame)
                if len(self._out) <= self._max_queue // 4:
                    self._room.set()
            await self.ws.close(code=self.close_code, message=self.close_reason.encode())
        except (ConnectionError, RuntimeError):
            self.closed = True
        finally:
            self._room.set()

    def close(self, code: int, reason: str, *, flush: bool = True) -> None:
        """Close after the queued frames (or at once, dropping them, when ``flush`` is false)."""
        if self.closed:
            return
        self.closed = True
        self.close_code, self.close_reason = code, reason
        if not flush:
            self._out.clear()
        self._wake.set()

    # ---- inbound messages ----------------------------------------------------------------------

    def offer(self, id: int, conv: str, prev: int, frame: bytes, sender: str) -> None:
        """A live message for this device, in stream order."""
        if self.syncing:
            if len(self._buffer) < BUFFER_LIMIT:
                self._buffer.append((id, conv, prev, frame, sender))
            else:
                self._overflow = True
            return
        verdict = self.position.accept(id, conv, prev)
        if verdict == "deliver":
            self._deliver(id, conv, frame, sender)
        elif verdict == "gap":
            self._start_repair(conv, (id, conv, prev, frame, sender))

    def _deliver(self, id: int, conv: str, frame: bytes, sender: str) -> None:
        if sender != self.user:
            self._unacked.append((id, conv, sender))
        self.send(frame)

    def _start_repair(self, conv: str, pending: tuple[int, str, int, bytes, str]) -> None:
        point = self.position.resume_point(conv)
        log.warning("conn %s: gap in %s before %s; resyncing from %s", self.conn_id, conv, pending[0], point,
            extra={"conn": self.conn_id})
        self.syncing = True
        self._buffer = [pending]
        self._on_gap(self, point)

    def begin_round(self, after: int) -> None:
        self.syncing = True
        self._buffer = []
        self._overflow = False
        self.position.restart(after)

    def deliver_synced(self, id: int, conv: str, prev: int, frame: bytes, sender: str) -> None:
        if self.position.judge(id, conv, prev) == "gap":
            log.error("conn %s: store/stream gap in %s before %s", self.conn_id, conv, id, extra={"conn": self.conn_id})
        if id > self.position.delivered:
            self.position.advance(id, conv)
            self._deliver(id, conv, frame, sender)

    def finish_round(self, through: int) -> int | None:
        """Go live after a sync round that read everything up to ``through``.

        Returns the point to sync again from when buffered messages show a gap or overflowed.
        """
        self.position.delivered = max(self.position.delivered, through)
        if self._overflow:
            return self.position.delivered
        buffered, self._buffer = self._buffer, []
        for id, conv, prev, frame, sender in buffered:
            verdict = self.position.accept(id, conv, prev)
            if verdict == "deliver":
                self._deliver(id, conv, frame, sender)
            elif verdict == "gap":
                return self.position.resume_point(conv)
        self.syncing = False
        return None

    def ack(self, id: int) -> dict[str, tuple[int, set[str]]] | None:
        """The device has everything up to ``id``: None if nothing changed, else, per conversation,
        the highest id from someone else that this ack covers (what a delivered receipt announces)
        and who sent the messages it covers (whom a group's receipt goes to)."""
        id = min(id, self.position.delivered)
        if id <= self.acked:
            return None
        self.acked = id
        covered: dict[str, tuple[int, set[str]]] = {}
        while self._unacked and self._unacked[0][0] <= id:
            msg, conv, sender = self._unacked.popleft()
            covered.setdefault(conv, (msg, set()))[1].add(sender)
            covered[conv] = (msg, covered[conv][1])
        return covered
