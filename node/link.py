"""One device's WebSocket: the socket and a writer task around a pure ``DeviceSession``.

The session (``node/session.py``) decides what to send and when to sync; the link feeds it events,
wakes the writer when frames were queued, and turns the session's ``SyncFrom`` actions into sync
rounds (through ``on_sync``). Frames go out through one writer task per link, so a slow device never
holds up the NATS dispatch; a device that falls ``max_queue`` frames behind is closed (4009) by the
session and resumes from its cursor when it reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import WSMsgType, web
from parley.node.position import Position
from parley.node.session import Covered, Delivery, DeviceSession, SyncFrom

from parley.auth import Claims
from parley.shards import Vector

log = logging.getLogger("parley.node")


class DeviceLink:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        claims: Claims,
        conn_id: int,
        *,
        max_queue: int,
        on_sync: Callable[[DeviceLink, Vector], None],
        on_sent: Callable[[bytes], None] | None = None,
        cursor_frame: Callable[[Vector], bytes] | None = None,
    ) -> None:
        self.ws = ws
        self.user = claims.user
        self.device = claims.device
        self.session = claims.session
        self.conn_id = conn_id
        self.core = DeviceSession(claims.user, max_queue=max_queue)
        self.strikes = 0  # consecutive rejected frames; many in a row closes the link
        self._on_sync = on_sync
        self._on_sent = on_sent
        self._cursor_frame = cursor_frame
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    # ---- what others read --------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return not self.core.open

    @property
    def close_code(self) -> int:
        return self.core.close_code

    @property
    def close_reason(self) -> str:
        return self.core.close_reason

    @property
    def position(self) -> Position:
        return self.core.position

    @property
    def acked(self) -> dict[int, int]:
        return self.core.acked

    # ---- events into the session ---------------------------------------------------------------

    def send(self, frame: bytes) -> None:
        self.core.send(frame)
        self._queued()

    def close(self, code: int, reason: str, *, flush: bool = True) -> None:
        self.core.close(code, reason, flush=flush)
        self._wake.set()

    def offer(self, message: Delivery) -> None:
        """A live message for this device, in stream order."""
        action = self.core.live(message)
        self._queued()
        if action is not None:
            log.warning("conn %s: gap in %s before %s; resyncing from %s", self.conn_id, message.conv, message.id,
                        action.point, extra={"conn": self.conn_id})
            self.act(action)

    def offer_cursor(self) -> None:
        """Offer the device a cursor for everything queued so far, if its position moved."""
        point = self.core.take_cursor()
        if point is not None and self._cursor_frame is not None:
            self.send(self._cursor_frame(point))

    def ack(self, point: Vector) -> Covered | None:
        return self.core.ack(point)

    def act(self, action: SyncFrom | None) -> None:
        """Carry out what the session asked for: a sync round from a point."""
        if action is not None and not self.closed:
            self._on_sync(self, action.point)

    def wake(self) -> None:
        """Frames were queued on the session directly (a sync round): let the writer send them."""
        self._queued()

    def _queued(self) -> None:
        if self.core.out or self.closed:
            self._wake.set()
        if self.core.crowded:
            self._room.clear()

    # ---- the writer ----------------------------------------------------------------------------

    async def wait_room(self) -> None:
        await self._room.wait()

    async def run_writer(self) -> None:
        """Send queued frames in order; once closing, send what is left, then the close frame."""
        out = self.core.out
        try:
            while not self.closed or out:
                if not out:
                    self._wake.clear()
                    self._room.set()
                    await self._wake.wait()
                    continue
                frame = out.popleft()
                await self.ws.send_frame(frame, WSMsgType.TEXT)
                if self._on_sent is not None:
                    self._on_sent(frame)
                if self.core.roomy():
                    self._room.set()
            await self.ws.close(code=self.close_code, message=self.close_reason.encode())
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self.core.closed()
            self._room.set()
