"""One device's WebSocket: the socket around a pure ``DeviceSession``, with no task of its own while all is well.

The session (``node/session.py``) decides what to send and when to sync; the link feeds it events and
turns the session's ``SyncFrom`` actions into sync rounds (through ``on_sync``). Frames the session
queued are written once per event-loop turn: a burst of deliveries to a device is one ``writelines``
(one syscall), not a wakeup and a send per frame; and the links with something to write in a turn are
written from one callback for the node (``Flushes``), not one callback each (docs/adr/0027). A frame that
need not cost a write of its own (a delivered receipt: ``send_later``) waits for the next write, or the node's
next cursor round (``write_held``), whichever comes first (docs/adr/0042). A group's live messages (and its
typing notices) may wait for the node's write gap (``Flushes``, docs/adr/0056): a link with nothing else queued
is written within the gap; anything else queued to it is written this turn and takes them along, in order. A task
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
from parley.node.wsframes import HEADERS, text_frames, text_header

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

    ``gap_s`` (``PARLEY_WRITE_GAP_S``; ADRs 0053, 0056) applies to group deliveries only: a link whose queue holds
    nothing but a group's frames (``hold``) is written by a callback that runs at least the gap after the last
    such one, so under load each member's device gets one write per gap with every group message queued
    meanwhile; the first after a quiet gap goes at once. Either way within one gap of its arrival
    (``held_until``). A link with anything else queued (``add``: a DM, an ack, a pong …) is written this turn,
    its held group frames with it, in the order queued. 0: every loop turn, as before ADR 0053."""

    __slots__ = ("_due", "_scheduled", "_gap", "_last", "_held", "_held_until")

    def __init__(self, gap_s: float = 0.0) -> None:
        self._due: list[DeviceLink] = []
        self._scheduled = False
        self._gap = gap_s
        self._last = float("-inf")  # when the last held write ran (the loop's clock)
        self._held: list[DeviceLink] = []  # links holding group frames only (one may be listed twice: ``_run_held``)
        self._held_until: float | None = None  # when their write is scheduled (the loop's clock)

    @property
    def held_until(self) -> float | None:
        """When the links holding group frames are written (the loop's clock), or None if none is."""
        return self._held_until

    def add(self, link: DeviceLink) -> None:
        self._due.append(link)
        if not self._scheduled:
            self._scheduled = True
            loop = asyncio.get_running_loop()
            loop.call_soon(self._after_wakeups, self._run)

    def hold(self, link: DeviceLink) -> bool:
        """``link`` has group frames only: written within the gap. False (written as by ``add``) with no gap."""
        if not self._gap:
            self.add(link)
            return False
        self._held.append(link)
        if self._held_until is None:
            loop = asyncio.get_running_loop()
            now = loop.time()
            if (at := self._last + self._gap) > now:
                self._held_until = at
                loop.call_at(at, self._run_held)
            else:
                self._held_until = now
                loop.call_soon(self._after_wakeups, self._run_held)
        return True

    def _after_wakeups(self, run: Callable[[], None]) -> None:
        """One loop turn later: the tasks woken in the same read (a send's lane by its PubAck, read off the bus
        with the sender's own copy of the message) queue their frames first, so the SENT ack and the ``msg``
        leave in one write (docs/adr/0033)."""
        asyncio.get_running_loop().call_soon(run)

    def _run(self) -> None:
        due, self._due = self._due, []
        self._scheduled = False
        _write(due)

    def _run_held(self) -> None:
        held, self._held = self._held, []
        self._held_until = None
        self._last = asyncio.get_running_loop().time()
        _write(held, holding=True)


def _write(links: list[DeviceLink], holding: bool = False) -> None:
    for link in links:
        if holding and not link._holding:
            continue  # written meanwhile with a frame that could not wait, or listed twice and written already
        try:
            link._flush()
        except Exception:  # as the loop would for a callback of its own: the other links are still written
            log.exception("conn %s: writing to the socket failed", link.conn_id)


class DeviceLink:
    __slots__ = ("ws", "user", "device", "session", "conn_id", "core", "budget", "_on_sync", "_on_sent",
                 "_cursor_frame", "_on_moved", "_transport", "_room", "_scheduled", "_pump", "moved", "ends",
                 "_flushes", "cursor_due", "_on_later", "_holding")

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
        self._scheduled = False  # a flush is due (this loop turn, or within the gap while ``_holding``)
        self._holding = False  # the flush due waits for the node's write gap: only group frames are queued
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

    def send_group(self, frame: bytes) -> None:
        """Queue a group's frame that may wait for the write gap with its messages (a typing notice)."""
        self.core.send(frame)
        self._queued(now=False)

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

    def offer(self, message: Delivery, group: bool = False) -> None:
        """A live message for this device, in stream order. ``group``: a group's, which may wait for the write gap
        (``Flushes.hold``) unless something else is queued to the device."""
        action = self.core.live(message)
        # else nothing to do: a flush is due (this turn, or it is a group's and may wait), cursors will be offered
        if not self._scheduled or not self.moved or (self._holding and not group):
            self._queued(now=not group)
        if action is not None:
            log.warning("conn %s: gap in %s before %s; resyncing from %s", self.conn_id, message.conv, message.id,
                        action.point, extra={"conn": self.conn_id})
            self.act(action)

    def offer_cursor(self) -> None:
        """Offer the device a cursor for everything queued so far, if its position moved."""
        frame = self._cursor()
        if frame is not None:
            self.core.send(frame)
            # a cursor frame alone does not move the position; it covers what is queued, so it waits as they do
            self._queued(moved=False, now=not self._scheduled)

    @property
    def flush_due(self) -> bool:
        """Frames are to be written this loop turn or within the gap (a cursor offered now goes in that write)."""
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

    def wake_later(self) -> None:
        """Frames were queued on the session directly that need no write of their own (the welcome, ADR 0063): they
        go with the next frames written to the device (its first sync's) or at the node's next cursor round,
        whichever is first, as ``send_later``'s do. Without ``on_later``, as ``wake``."""
        if self._on_later is None:
            self.wake()
        elif not self._scheduled:
            self._on_later(self)

    def write_held(self) -> None:
        """Write what ``send_later`` queued, if nothing took it along meanwhile (the node's cursor round). A write
        already due within the write gap (only group frames were queued after them) takes them along: not forced
        now (a link held for its welcome that was written with ``synced`` long ago, ADR 0063)."""
        if not self.closed and not self._holding:
            self._queued(moved=False)  # held frames do not move the device's position

    def _queued(self, moved: bool = True, now: bool = True) -> None:
        """Frames were queued: a write is due. ``now`` false: they may wait for the write gap (a group's)."""
        if moved and not self.moved and self._on_moved is not None:
            self.moved = True
            self._on_moved(self)
        if self._pump is not None or not (self.core.out or self.closed):
            return
        if not self._scheduled:
            self._scheduled = True
            if self._flushes is None:
                asyncio.get_running_loop().call_soon(self._flush)
            elif now:
                self._flushes.add(self)
            else:
                self._holding = self._flushes.hold(self)
        elif now and self._holding and self._flushes is not None:
            self._holding = False  # a frame that cannot wait: the group frames held go with it, in the order queued
            self._flushes.add(self)

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
        self._scheduled = self._holding = False
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
            transport.writelines([HEADERS.get(n) or text_header(n), frame])
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
