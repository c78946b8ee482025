"""The edge node: its parts wired together, and a connection's life from hello to goodbye.

Connection life: hello (``handshake``; a user's first device: checked in the subscriptions' set-up, ADR 0051) →
welcome → the user's subscriptions (``subscriptions``) → sync
rounds (``sync``, judged by the connection's pure ``DeviceSession``) → live, frames handled by
``dispatch`` → goodbye (presence told, subscriptions dropped with the user's last device here).
Messages stored in the stream arrive on the delivery subjects in stream order (``deliveries``) and
are offered to every device of the conversation on this node; each session judges them against its
own position, so nothing is skipped and nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from functools import partial

from aiohttp import WSMsgType, web
from parley.node.bounds import ShardWatch
from parley.node.counted import CountedReads
from parley.node.cursor_offers import CursorOffers
from parley.node.cursors import Cursors
from parley.node.deliveries import Deliveries
from parley.node.dispatch import FrameHandler
from parley.node.events import ConversationEvents
from parley.node.groups import GroupRoutes
from parley.node.handshake import checked, read_hello, refuse
from parley.node.homes import Homes
from parley.node.hub import Hub
from parley.node.link import DeviceLink, Flushes
from parley.node.membership import MembershipCheck
from parley.node.ports import NodeStore
from parley.node.presence import PresenceRelay
from parley.node.publisher import Publisher
from parley.node.revocation import check_again, close_ended_sessions, end_at_expiry
from parley.node.session import SyncFrom
from parley.node.silence import Silence
from parley.node.subscriptions import UserSubscriptions
from parley.node.sync import SyncRunner
from parley.node.targets import Targets
from parley.node.unsaved import Unsaved
from parley.node.upgraded import let_go
from parley.node.welcome import welcome, welcome_limits

from parley import protocol
from parley.auth import Claims, live_session
from parley.bus import BusClient, JetStreamReads, StreamReads, publish_chained
from parley.bus.repair import ask_repair
from parley.cursor import cursor_key
from parley.errors import (
    CLOSE_DRAINING,
    CLOSE_GOING_AWAY,
    CLOSE_IDLE,
    CLOSE_TOO_BIG,
    ParleyError,
    Unavailable,
)
from parley.ids import ConversationId, DeviceId
from parley.metrics import NodeMetrics
from parley.settings import Settings
from parley.shards import Vector
from parley.store import ConnectReads
from parley.tasks import cancel_and_wait

log = logging.getLogger("parley.node")
RESYNC_WAVE = 200  # after a NATS reconnect, connections resync this many at a time
RESYNC_PAUSE_S = 0.1
UNSAVED_CURSORS_MAX = 100_000  # acked cursors kept for the store while it is down; past it the oldest go
SEALED_MAX = 4096  # cursor frames kept between two rounds of offers (devices at one position share one)


class EdgeNode:
    def __init__(self, settings: Settings, store: NodeStore, nc: BusClient, node_id: str,
                 reads: StreamReads | None = None) -> None:
        self.settings, self.store, self.nc, self.node_id = settings, store, nc, node_id
        self.hub: Hub[DeviceLink] = Hub()
        self.metrics = NodeMetrics()
        self.reads = CountedReads(reads or JetStreamReads(nc, settings), self.metrics.stream_requests)
        self.draining = False
        self.moved_to: tuple[dict[str, object] | None, list[dict[str, object]]] = (None, [])  # while draining
        self._conn_ids = itertools.count(1)
        self._dirty_cursors: Unsaved[DeviceId, str] = Unsaved(UNSAVED_CURSORS_MAX)
        self.offers = CursorOffers(settings.cursor_every_s, settings.cursor_slices)  # ADRs 0040, 0043
        self.silence: Silence[DeviceLink] = Silence(settings.idle_timeout_s)  # the idle sweep's (ADR 0046)
        self._cursor_key = cursor_key(settings.secret.reveal())
        self.cursors = Cursors(self._cursor_key)  # sealed for the devices, and opened again at their acks
        self._cursor_frames: dict[tuple[tuple[int, int], ...], bytes] = {}
        self._flushes = Flushes(settings.write_gap_s)  # ADRs 0053, 0056
        self._welcome_limits = welcome_limits(settings)
        self.homes = Homes(store, settings.shards)
        self.watch = ShardWatch(self.reads, every_s=settings.bounds_refresh_s, on_change=self._shards_changed)
        self._background: list[asyncio.Task[None]] = []
        self._repairs: set[asyncio.Task[None]] = set()
        self.syncs = SyncRunner(store, self.reads, self.watch, self.hub.groups_of, self.homes.known,
                                lambda v: protocol.frame_bytes(protocol.synced_frame(cursor=self.seal(v))),
                                batch=settings.sync_batch, floor_wait_s=settings.floor_wait_s,
                                repair=self._ask_repair)
        self.events = ConversationEvents(settings, store, nc, self.reads, self.hub, self.homes)
        self.presence = PresenceRelay(nc, self.hub, node_id, settings.presence_partitions)
        self.publisher = Publisher(partial(publish_chained, nc), self.homes.of, self.reads.last_of, self._store_last)
        self.deliveries = Deliveries(settings.stream_name, self.hub, self.homes, self.publisher, self.metrics)
        self.groups = GroupRoutes(nc, self.hub, self.deliveries.on_delivery, self.events.on_event, self.resync)
        self.subscriptions = UserSubscriptions(nc, store, self.hub, groups=self.groups, presence=self.presence,
                                               events=self.events, deliver=self.deliveries.on_delivery)
        membership = MembershipCheck(store, self.hub.group_set, self.presence.friends_of)
        self.frames = FrameHandler(settings, self.metrics, membership=membership,
                                   publisher=self.publisher, events=self.events, on_cursor=self._cursor_moved,
                                   sync=self.syncs.schedule, cursors=self.cursors,
                                   targets=Targets(store, self.reads, self.homes.of))
        # every link's callbacks, made once: bound methods made per connection were ~0.26 KB each (ADR 0039)
        self._new_link = partial(DeviceLink, on_sync=self.syncs.schedule, on_sent=self.metrics.frames_sent,
                                 cursor_frame=self._cursor_frame, on_moved=self.offers.moved, flushes=self._flushes,
                                 on_later=self.offers.later)

    # ---- NATS side ---------------------------------------------------------------------------

    def _ask_repair(self, shard: int, seqs: list[int]) -> None:
        """A sync filled a hole in the store from the stream: an archiver writes it back (``bus.repair``)."""
        task = asyncio.get_running_loop().create_task(ask_repair(self.nc, shard, seqs))
        self._repairs.add(task)
        task.add_done_callback(self._repairs.discard)

    def _cursor_frame(self, v: Vector) -> bytes:
        """The ``cursor`` frame offering ``v``; devices standing at the same position share one. Keyed by ``v``'s
        items as they come, not sorted (per offer: ADR 0037): the same position in another order is another key
        for the same frame, which only costs a sealing."""
        key = tuple(v.items())
        frame = self._cursor_frames.get(key)
        if frame is None:
            if len(self._cursor_frames) >= SEALED_MAX:
                self._cursor_frames.clear()
            frame = self._cursor_frames[key] = protocol.frame_bytes(protocol.cursor_frame(cursor=self.seal(v)))
        return frame

    def seal(self, v: Vector) -> str:
        """``v`` sealed (``node/cursors.py``); devices standing at the same position share one sealing."""
        return self.cursors.seal(v)

    def start(self) -> None:
        """The node's own background work: the shards' bounds, and offering cursors to devices."""
        self.watch.start()
        self._background.append(asyncio.get_running_loop().create_task(self.offers.run()))
        self._background.append(asyncio.get_running_loop().create_task(self._close_silent()))

    async def stop(self) -> None:
        await cancel_and_wait(*self._background)
        await self.watch.stop()
        await self.events.close()  # gathered receipts go out while NATS is still there

    async def _close_silent(self) -> None:
        """Links silent for ``idle_timeout_s`` are closed (4008, protocol.md §10): one sweep a second for all of
        them, not a timer armed per read on every connection (~0.7 KB each, ADR 0028); the sweep looks only at
        the links it closes (``Silence``, ADR 0046)."""
        while True:
            await asyncio.sleep(min(1.0, self.silence.timeout_s / 10))
            for link in self.silence.due(time.monotonic()):
                link.close(CLOSE_IDLE, "no heartbeat")

    def resync(self, link: DeviceLink, point: Vector | None = None) -> None:
        """Sync the link again from ``point`` (default: where it stands); what it has, it is not sent."""
        link.act(link.core.resync(point))

    async def on_reconnected(self) -> None:
        """NATS came back: anything republished while we were away must be read, so resync all; a
        revocation or a friendship's change announced meanwhile was missed, so check every live session and
        every connected user's friends."""
        await self._resync_all("NATS reconnected")
        closed = await close_ended_sessions(list(self.hub), self.store, now=int(time.time()))
        if closed:
            log.warning("closed %d connections of sessions that ended while NATS was away", closed)
        if changed := await self.subscriptions.refresh_friends():
            log.warning("%d friendships changed while NATS was away", changed)

    def _shards_changed(self, lost: frozenset[int], back: frozenset[int]) -> None:
        """Shards stopped answering (another region, the link down): hold live delivery from them; once they
        answer again, resync everyone (their republished messages did not cross the link meanwhile)."""
        for link in list(self.hub) if lost else ():
            link.core.suspend(lost)
        if back:
            task = asyncio.get_running_loop().create_task(self._resync_all(f"shards {sorted(back)} answer again"))
            self._background.append(task)
            task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        if task in self._background:
            self._background.remove(task)

    async def _resync_all(self, why: str) -> None:
        links = list(self.hub)
        log.warning("%s; resyncing %d connections", why, len(links))
        for i, link in enumerate(links):  # spread: a few hundred rounds at a time, not every one at once
            if i and i % RESYNC_WAVE == 0:
                await asyncio.sleep(RESYNC_PAUSE_S)
            self.resync(link)

    async def _store_last(self, conv: ConversationId) -> int:
        try:
            rows = await self.store.history(conv, before=None, after=None, limit=1, newest_first=True)
        except Unavailable:
            return 0
        return rows[0].id if rows else 0

    # ---- a connection's life -----------------------------------------------------------------

    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        # aiohttp refuses max_msg_size bytes itself; protocol.md §11 admits max_frame_bytes (inflating past: too_big)
        ws = web.WebSocketResponse(max_msg_size=self.settings.max_frame_bytes + 1, autoping=True)
        # counted from here until its first round asks for a shard reading (``syncs.arriving``; ``syncs.forget``
        # if it goes without one), so a wave of connects shares one reading without a fixed wait (ADR 0067)
        arrival, verified = self.watch.arriving(), None
        try:
            await ws.prepare(request)
            let_go(request, ws)  # aiohttp's HTTP parser, request queue and mask bits, unused from here (ADR 0050)
            if self.draining:  # no node named: another node named at the drain's start may be draining by now
                await ws.send_str(protocol.encode(protocol.moved_frame(None, [])))
                await ws.close(code=CLOSE_DRAINING, message=b"node is draining")
                return ws
            verified = await read_hello(ws, self.settings)
            if verified is None:
                return ws
        finally:
            if verified is None:
                arrival.done()
        claims, hello = verified
        link = self._new_link(ws, claims, next(self._conn_ids), max_queue=4 * self.settings.sync_max,
                              transport=request.transport)
        self.syncs.arriving(link, arrival)
        self.silence.heard(link, time.monotonic())
        del verified, arrival
        refused = False
        try:
            try:
                if not await self._start(link, claims, hello.cursor):
                    refused = True
                    return ws  # refused at the hello (closed): nothing of it was attached
            except ParleyError as err:
                link.send(protocol.error_bytes(err))
                link.close(err.ws_close_code, err.code)
            del claims, hello  # this frame lives as long as the connection: it keeps only what it needs
            # the read loop, inline: a coroutine of its own was a frame kept for the connection's life (ADR 0041)
            heard, frames, limit = self.silence.heard, self.frames, self.settings.max_frame_bytes
            while not link.closed:
                msg = await ws.receive()  # silence is the sweep's (``_close_silent``): it closes, and this returns
                heard(link, time.monotonic())
                if msg.type == WSMsgType.TEXT and protocol.too_big(msg.data, limit):
                    link.close(CLOSE_TOO_BIG, "message too big")
                    break
                if msg.type == WSMsgType.TEXT:
                    await frames.on_text(link, msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await frames.on_binary(link)
                elif msg.type == WSMsgType.ERROR:
                    log.info("conn %s: %s", link.conn_id, ws.exception(), extra={"conn": link.conn_id})
                    break
                else:  # CLOSE, CLOSING, CLOSED
                    break
        finally:
            if refused:
                self.silence.forget(link)
                self.syncs.forget(link)
            else:
                await self._finish(link)
        return ws

    async def _start(self, link: DeviceLink, claims: Claims, token: str | None) -> bool:
        """Check the hello's session, welcome the link and start its first sync; False: the hello was refused (the
        connection is closed). ``token``: the hello's cursor (None: the device's stored one)."""
        first = await self._first_arrival(link, token)
        if first is not None:
            return first
        stored = await checked(link.ws, self.settings, self.store, claims, device=token is None)
        if stored is False:
            return False
        if token is None and stored is None:  # admitted unchecked, the store down: its cursor was not read
            device = await self.store.get_device(link.device)
            stored = device.cursor if device else ""
        first_sync = self._welcome(link, token if token is not None else stored or "")
        if first_sync is None:
            return True
        reads = await self.subscriptions.arrive(link.user, link.session)  # a user's set-up under way: it waits
        session = await check_again(link, self.store, now=int(time.time()), read=reads)  # a logout since the hello
        if session is not None:
            link.ends = end_at_expiry(link, session, now=time.time())
        await self.presence.arrived(link)  # online now, not at the next periodic beat
        link.act(first_sync)
        return True

    async def _first_arrival(self, link: DeviceLink, token: str | None) -> bool | None:
        """The user's first device here: its session checked in the set-up's one store call (ADR 0051). False: the
        hello was refused (closed, the user's subscriptions dropped again); None: the user has a device here, or
        the store is down and the hello is admitted unchecked (``revocation_fail_closed`` off): the caller checks."""
        try:
            admit = partial(self._admit, link, token)
            done = await self.subscriptions.first_arrival(link.user, link.session, admit=admit,
                                                          device=link.device if token is None else None)
        except ParleyError as err:
            if link in self.hub.of_user(link.user):  # after the welcome: the caller tells the device
                raise
            if isinstance(err, Unavailable) and not self.settings.revocation_fail_closed:
                return None
            await refuse(link.ws, err)  # as a hello refused by ``check_session``: the same frames
            return False
        if done is None:
            return None
        if (first_sync := done[1]) is not None:
            await self.presence.arrived(link)
            link.act(first_sync)
        return True

    def _admit(self, link: DeviceLink, token: str | None, reads: ConnectReads) -> SyncFrom | None:
        """The first device's session and cursor were read: refuse an ended session (``Unauthorized``), else welcome."""
        session = live_session(reads.session, now=int(time.time()))
        first_sync = self._welcome(link, token if token is not None else reads.cursor or "")
        link.ends = end_at_expiry(link, session, now=time.time())
        return first_sync

    def _welcome(self, link: DeviceLink, token: str) -> SyncFrom | None:
        """Welcome ``link`` (from the cursor ``token``) and attach it: its first sync, or None if the node drains."""
        first_sync = welcome(link, token, key=self._cursor_key, seal=self.seal, node=self.node_id,
                             limits=self._welcome_limits)
        self.hub.attach(link)
        if self.draining:  # the drain began during this hello: it may have listed its connections already
            link.core.drain(protocol.frame_bytes(protocol.moved_frame(None, [])), CLOSE_DRAINING, "node is draining")
            link.wake()
            return None
        return first_sync

    async def _finish(self, link: DeviceLink) -> None:
        self.silence.forget(link)
        if link.ends is not None:
            link.ends.cancel()
        await self.frames.finish(link)  # the publishes under way end (answered if the socket still takes it)
        link.close(link.close_code, link.close_reason)
        if link in self.hub.of_user(link.user):
            await self.presence.gone(link)
        self.syncs.forget(link)
        if self.frames.live is not None:
            await self.frames.live.forget(link)
        if self.hub.detach(link):
            await self.subscriptions.leave(link.user)
            self.frames.forget(link.user)
            if self.frames.live is not None:
                self.frames.live.forget_user(link.user)
        await link.finished(timeout=5)
        if not link.ws.closed:
            await link.ws.close(code=link.close_code, message=link.close_reason.encode())

    # ---- background duties -----------------------------------------------------------------

    def _cursor_moved(self, link: DeviceLink) -> None:
        self._dirty_cursors.put(link.device, self.seal(link.acked))

    async def flush_cursors(self) -> None:
        """Acked cursors and delivered receipts to the store (kept for the next try if it is down)."""
        await self.events.flush()
        if not self._dirty_cursors:
            return
        dirty = self._dirty_cursors.take()
        try:
            await self.store.save_cursors(dirty)
        except (Unavailable, asyncio.CancelledError) as err:  # kept for the next try (the final one at exit)
            self._dirty_cursors.put_back(dirty)  # a newer one, acked meanwhile, wins
            if isinstance(err, asyncio.CancelledError):
                raise

    async def close_all(self, code: int = CLOSE_GOING_AWAY, reason: str = "node stopping") -> None:
        for link in list(self.hub):
            link.offer_cursor()
            link.close(code, reason)
        await asyncio.sleep(0.1)
        await self.stop()
        await self.flush_cursors()
