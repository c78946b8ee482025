"""One device's WebSocket: the socket around a pure ``DeviceSession``, with no task of its own while all is well.

The session (``node/session.py``) decides what to send and when to sync; the link feeds it events and
turns the session's ``SyncFrom`` actions into sync rounds (through ``on_sync``). Frames the session
queued are written once per event-loop turn: a burst of deliveries to a device is one ``writelines``
(one syscall), not a wakeup and a send per frame; and the links with something to write in a turn are
written from one callback for the node (``Flushes``), not one callback each (docs/adr/0027). A frame that
need not cost a write of its own (a delivered receipt: ``send_later``) waits for the next write, or the node's
next cursor round (``write_held``), whichever comes first (docs/adr/0042). A task
(the *pump*) exists only while it is needed: the socket's buffer is full (a slow device: frames wait in
the session's queue, and one that falls ``max_queue`` frames behind is closed (4009) and resumes from
its cursor), the connection negotiated compression (aiohttp writes those frames), or the link is
closing (the close handshake).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from aiohttp import WSMsgType, web
from parley.node.expiry import Ending
from parley.node.position import Position
from parley.node.session import CLOSED, Covered, Delivery, DeviceSession, State, SyncFrom
from parley.node.wsframes import HEADERS as _HEADERS
from parley.node.wsframes import text_frames, text_header

from parley.auth import Claims
from parley.ratelimit import FrameBudget
from parley.shards import Vector

log = logging.getLogger("parley.node")
HIGH_WATER = 64 * 1024  # bytes buffered in the socket's transport before frames wait in the session's queue
DRAIN_POLL_S = 0.02  # how often a pump waiting for a full socket looks again


class Transport(Protocol):
    """What the link needs of the connection's asyncio transport."""

    def writelines(self, data: list[bytes]) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def is_closing(self) -> bool: ...


class Flushes:
    """The links with frames queued this event-loop turn: written together from one callback (a message to a
    group is queued on every member's link in one go; a callback per link cost a loop handle each).

    ``gap_s`` (``PARLEY_WRITE_GAP_S``, ADR 0053): the callback runs at least this long after the last one, so
    under load each device gets one write per gap with everything queued meanwhile, not one per loop turn; the
    first write after a quiet gap goes at once. 0 (the default): every loop turn, as before."""

    __slots__ = ("_due", "_scheduled", "_gap", "_last")

    def __init__(self, gap_s: float = 0.0) -> None:
        self._due: list[DeviceLink] = []
        self._scheduled = False
        self._gap = gap_s
        self._last = float("-inf")  # when the last callback ran (the loop's clock)

    def add(self, link: DeviceLink) -> None:
        self._due.append(link)
        if not self._scheduled:
            self._scheduled = True
            loop = asyncio.get_running_loop()
            if self._gap and (at := self._last + self._gap) > loop.time():
                loop.call_at(at, self._run)
            else:
                loop.call_soon(self._after_wakeups)

    def _after_wakeups(self) -> None:
        """One loop turn later: the tasks woken in the same read (a send's lane by its PubAck, read off the bus
        with the sender's own copy of the message) queue their frames first, so the SENT ack and the ``msg``
        leave in one write (docs/adr/0033)."""
        asyncio.get_running_loop().call_soon(self._run)

    def _run(self) -> None:
        due, self._due = self._due, []
        self._scheduled = False
        if self._gap:
            self._last = asyncio.get_running_loop().time()
        for link in due:
            try:
                link._flush()
            except Exception:  # as the loop would for a callback of its own: the other links are still written
                log.exception("conn %s: writing to the socket failed", link.conn_id)


class DeviceLink:
    __slots__ = ("ws", "user", "device", "session", "conn_id", "core", "budget", "_on_sync", "_on_sent",
                 "_cursor_frame", "_on_moved", "_transport", "_room", "_scheduled", "_pump", "moved", "ends",
                 "_flushes", "cursor_due", "_on_later")

    def __init__(
        self,
        ws: web.WebSocketResponse,
        claims: Claims,
        conn_id: int,
        *,
        max_queue: int,
        on_sync: Callable[[DeviceLink, Vector], None],
        on_sent: Callable[[Iterable[bytes]], None] | None = None,
        cursor_frame: Callable[[Vector], bytes] | None = None,
        transport: Transport | None = None,
        on_moved: Callable[[DeviceLink], None] | None = None,
        flushes: Flushes | None = None,
        on_later: Callable[[DeviceLink], None] | None = None,
    ) -> None:
        """``transport``: the connection's socket, written directly when the connection is not compressed
        (else frames go through ``ws``). ``on_moved``: called when frames are queued while ``moved`` is
        false (the node offers cursors to those links only). ``flushes``: the node's, shared by its links
        (without one, the link schedules its own writes). ``on_later``: called when a frame is queued to go with
        the next write (``send_later``); the node writes such links at its next cursor round at the latest."""
        self.ws = ws
        self.user = claims.user
        self.device = claims.device
        self.session = claims.session
        self.conn_id = conn_id
        self.core = DeviceSession(claims.user, max_queue=max_queue)
        self.budget: FrameBudget | None = None  # frame budgets and strikes, made by the frame handler
        self._on_sync = on_sync
        self._on_sent = on_sent
        self._cursor_frame = cursor_frame
        self._on_moved = on_moved
        self._transport = transport if transport is not None and not ws.compress else None
        self._room: asyncio.Event | None = None  # made when a sync round waits for room
        self._scheduled = False  # a flush is due this loop turn
        self._flushes = flushes
        self._on_later = on_later
        self._pump: asyncio.Task[None] | None = None
        self.moved = False
        self.cursor_due = False  # a cursor is offered with the next frames written (``_flush``)
        self.ends: Ending | None = None  # closes the link when its session's lifetime is over (node.expiry)

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

    def waiting(self) -> int:
        """Frames queued and not yet written to the socket (a live room drops a viewer far behind)."""
        return self.core.queued

    def send(self, frame: bytes) -> None:
        self.core.send(frame)
        self._queued()

    def send_later(self, frame: bytes) -> None:
        """Queue a frame that need not cost a write of its own (a delivered receipt, ADR 0042): it goes with the next
        frames written to the device, or when the node calls ``wake`` (its next cursor round), whichever is first.
        Without ``on_later``, as ``send``."""
        if self._on_later is None:
            self.send(frame)
            return
        self.core.send(frame)
        if not self._scheduled:
            self._on_later(self)

    def close(self, code: int, reason: str, *, flush: bool = True) -> None:
        self.core.close(code, reason, flush=flush)
        self._queued()

    def offer(self, message: Delivery) -> None:
        """A live message for this device, in stream order."""
        action = self.core.live(message)
        if not self._scheduled or not self.moved:  # else nothing to do: a flush is due, cursors will be offered
            self._queued()
        if action is not None:
            log.warning("conn %s: gap in %s before %s; resyncing from %s", self.conn_id, message.conv, message.id,
                        action.point, extra={"conn": self.conn_id})
            self.act(action)

    def offer_cursor(self) -> None:
        """Offer the device a cursor for everything queued so far, if its position moved."""
        frame = self._cursor()
        if frame is not None:
            self.core.send(frame)
            self._queued(moved=False)  # a cursor frame alone does not move the position

    @property
    def flush_due(self) -> bool:
        """Frames are to be written this loop turn (a cursor offered now goes in the same write)."""
        return self._scheduled

    def _cursor(self) -> bytes | None:
        point = self.core.take_cursor()
        return self._cursor_frame(point) if point is not None and self._cursor_frame is not None else None

    def ack(self, point: Vector) -> Covered | None:
        covered = self.core.ack(point)
        self._roomy()  # a sync round waiting for the device to ack goes on
        return covered

    def act(self, action: SyncFrom | None) -> None:
        """Carry out what the session asked for: a sync round from a point."""
        if action is not None and not self.closed:
            self._on_sync(self, action.point)

    def wake(self) -> None:
        """Frames were queued on the session directly (a sync round): let the writer send them."""
        self._queued()

    def write_held(self) -> None:
        """Write what ``send_later`` queued, if nothing took it along meanwhile (the node's cursor round)."""
        if not self.closed:
            self._queued(moved=False)  # held frames do not move the device's position

    def _queued(self, moved: bool = True) -> None:
        if moved and not self.moved and self._on_moved is not None:
            self.moved = True
            self._on_moved(self)
        if not self._scheduled and self._pump is None and (self.core.out or self.closed):
            self._scheduled = True
            if self._flushes is not None:
                self._flushes.add(self)
            else:
                asyncio.get_running_loop().call_soon(self._flush)

    # ---- the writer ----------------------------------------------------------------------------

    async def wait_room(self) -> None:
        """Until the queue is drained far enough for a sync round to go on."""
        while self.core.crowded and not self.closed:
            if self._room is None:
                self._room = asyncio.Event()
            await self._room.wait()

    def _roomy(self) -> None:
        if self._room is not None and (self.core.roomy() or self.closed):
            self._room.set()
            self._room = None

    def _flush(self) -> None:
        """Write everything queued in one go; what cannot be written now is left to the pump."""
        self._scheduled = False
        core, transport = self.core, self._transport
        if self._pump is not None or core.state is CLOSED:
            return
        if self.cursor_due:  # after the frames queued: it covers them, in the same write
            self.cursor_due = False
            if (cursor := self._cursor()) is not None:
                core.send(cursor)
        if (core.out and transport is not None and transport.get_write_buffer_size() <= HIGH_WATER
                and not transport.is_closing()):  # ``_writable``, inline: once per link and loop turn
            self._write_out(transport)
        if core.out or not core.open:  # a full socket, a compressed connection, or closing
            self._pump = asyncio.get_running_loop().create_task(self._run_pump())

    def _writable(self, transport: Transport) -> bool:
        return transport.get_write_buffer_size() <= HIGH_WATER and not transport.is_closing()

    def _write_out(self, transport: Transport) -> None:
        out, on_sent = self.core.take_out(), self._on_sent  # the session's queue is dropped: an idle link has none
        if out is None:
            return
        if len(out) == 1:  # most often, one live message: no list of frames to build
            frame = out[0]
            n = len(frame)
            transport.writelines([_HEADERS.get(n) or text_header(n), frame])
        else:
            transport.writelines(text_frames(out))
        if on_sent is not None:
            on_sent(out)  # counted in one call, not one per frame
        if self._room is not None:
            self._roomy()

    async def _run_pump(self) -> None:
        """Send what is queued, waiting on the socket as needed; once closing, the rest, then the close frame."""
        core = self.core
        try:
            while core.out:
                if self._transport is None:
                    frame = core.out.popleft()
                    if not core.out:
                        core.out = None
                    await self.ws.send_frame(frame, WSMsgType.TEXT)
                    if self._on_sent is not None:
                        self._on_sent((frame,))
                    self._roomy()
                elif self._transport.is_closing():
                    raise ConnectionResetError("socket closed")
                elif self._writable(self._transport):
                    self._write_out(self._transport)
                else:
                    await asyncio.sleep(DRAIN_POLL_S)
            if self.closed:
                await self.ws.close(code=self.close_code, message=self.close_reason.encode())
        except (ConnectionError, RuntimeError):
            self.core.close(self.close_code, self.close_reason, flush=False)
        finally:
            self._pump = None
            if self.closed:
                self.core.closed()
                self._roomy()
            elif core.out:
                self._queued()

    async def finished(self, timeout: float) -> None:
        """The link is closing: wait (up to ``timeout``) until its last frames and the close frame are sent."""
        if self.core.state is State.CLOSED:
            return
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(self._run_pump())
        try:
            await asyncio.wait_for(asyncio.shield(self._pump), timeout=timeout)
        except (TimeoutError, asyncio.CancelledError):
            if self._pump is not None:
                self._pump.cancel()
