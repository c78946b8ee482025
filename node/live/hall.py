"""The node's live rooms: joins and leaves, one subscription per room with viewers here, the fan-out, and
the send path (ADR 0018).

Fan-out: a room's stored messages arrive once per node on ``live.dlv.<room>`` (the ``LIVE`` stream
republishes them with their sequence: the id), and its events on ``live.evt.<room>`` (already encoded
frames, from the API). Each is encoded once and the same bytes are queued on every viewer here; a viewer
with more than ``PARLEY_LIVE_VIEWER_QUEUE`` frames waiting is dropped from the room (``live_dropped``), so
one slow reader never holds the others. No lock anywhere: a send is screened here, then published to the
stream (deduplicated by ``<user>.<cid>``) and answered (``live_sent``) when the stream acks it. Viewer counts:
nodes tell each other theirs on ``live.cnt.<room>`` and viewers get the cluster's total (``headcount.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable, Sequence
from typing import Protocol

import orjson
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from parley.node.live.headcount import REFRESH_S, SETTLE_S, Headcount
from parley.node.live.viewers import Viewers
from parley.node.ports import LiveReads

from parley import protocol
from parley.bus import BusClient
from parley.bus.live import Rooms
from parley.errors import Forbidden, ParleyError, RateLimited, Unavailable
from parley.live.chain import run_screens, tell_accepted
from parley.live.rooms import (
    count_subject,
    dedup_of,
    delivery_subject,
    encode_message,
    event_subject,
    message_frame,
    room_of,
    send_subject,
)
from parley.live.screening import Attempt, Screen
from parley.metrics import NodeMetrics
from parley.settings import Settings
from parley.store.records import LiveMessage

log = logging.getLogger("parley.node")


class Viewer(Hashable, Protocol):
    """What the hall needs of a connection (``DeviceLink``)."""

    @property
    def user(self) -> str: ...
    def send(self, frame: bytes) -> None: ...
    def waiting(self) -> int: ...


def stored_frame(m: LiveMessage) -> dict[str, object]:
    frame: dict[str, object] = {"id": m.id, "from": m.sender, "cid": m.cid, "body": m.body, "ts": m.ts}
    if m.deleted:
        frame["deleted"] = True
    return frame


class LiveHall:
    def __init__(self, settings: Settings, nc: BusClient, rooms: Rooms, store: LiveReads, metrics: NodeMetrics,
                 screens: Sequence[Screen]) -> None:
        self._settings, self._nc, self._rooms, self._store = settings, nc, rooms, store
        self._metrics, self._screens = metrics, screens
        self._js = nc.jetstream()
        self.viewers: Viewers[Viewer] = Viewers()
        self._subs: dict[str, list[Subscription]] = {}
        self._subscribing: dict[str, asyncio.Future[None]] = {}
        self._closing: set[asyncio.Task[None]] = set()  # unsubscriptions after a drop
        self._joined_at: dict[str, int] = {}  # sign-up time (ms) by user, for account age; dropped on leave
        self.headcount = Headcount(settings.node_id or f"hall-{id(self):x}")
        self._beats: dict[str, tuple[asyncio.TimerHandle, float]] = {}  # room → (its next count, when)

    # ---- joining and leaving -------------------------------------------------------------------

    async def join(self, viewer: Viewer, room: str) -> None:
        meta, _ = await self._rooms.get(room)
        try:
            if self.viewers.expect(room, viewer):
                self._subscribing[room] = asyncio.get_running_loop().create_future()
                try:
                    await self._subscribe(room)
                finally:
                    self._subscribing.pop(room).set_result(None)
            elif (pending := self._subscribing.get(room)) is not None:
                await asyncio.shield(pending)
            if room not in self._subs:  # the first joiner's subscription failed
                raise Unavailable("could not follow the room; join again", code="bus_unavailable", room=room)
            backlog = await self._store.live_history(room, before=None, limit=self._settings.live_join_backlog)
        except BaseException:
            await self.leave(viewer, room, quiet=True)
            raise
        newest = backlog[0].id if backlog else 0
        viewers = self.headcount.total(room, self.viewers.count(room), time.monotonic())
        joined = protocol.live_joined_frame(meta=meta.as_dict(), viewers=viewers,
                                            messages=[stored_frame(m) for m in reversed(backlog)])
        viewer.send(protocol.frame_bytes(joined))
        for frame in self.viewers.admit(room, viewer, after=newest):
            viewer.send(frame)
        self._count(room)

    async def _subscribe(self, room: str) -> None:
        subs: list[Subscription] = []
        try:
            subs.append(await self._nc.subscribe(delivery_subject(room), cb=self._on_message))
            subs.append(await self._nc.subscribe(event_subject(room), cb=self._on_event))
            subs.append(await self._nc.subscribe(count_subject(room), cb=self._on_count))
        except BaseException:
            await self._close(room, subs)
            raise
        self._subs[room] = subs

    async def leave(self, viewer: Viewer, room: str, *, quiet: bool = False) -> None:
        if self.viewers.leave(room, viewer):
            await self._unsubscribe(room)
        if not quiet:
            viewer.send(protocol.frame_bytes(protocol.live_left_frame(room, "left")))
        self._count(room)

    async def forget(self, viewer: Viewer) -> None:
        """The connection ended: out of every room it was in."""
        rooms = self.viewers.rooms_of(viewer)
        for room in self.viewers.forget(viewer):
            await self._unsubscribe(room)
        self._count(*rooms)

    def forget_user(self, user: str) -> None:
        self._joined_at.pop(user, None)

    async def _unsubscribe(self, room: str) -> None:
        await self._close(room, self._subs.pop(room, []))  # popped at once: a joiner meanwhile subscribes anew

    async def _close(self, room: str, subs: list[Subscription]) -> None:
        for sub in subs:
            try:
                await sub.unsubscribe()
            except Exception as err:  # the connection is closing or reconnecting: its subscriptions go with it
                log.info("live room %s: unsubscribe: %s", room, err)

    def _count(self, *rooms: str) -> None:
        self._metrics.live_viewers.set(self.viewers.total)
        self._metrics.live_rooms.set(len(self._subs))
        for room in rooms:
            self._beat_in(room, SETTLE_S)

    # ---- viewer counts across the cluster (headcount.py) ---------------------------------------

    def _beat_in(self, room: str, delay: float) -> None:
        """Tell the room's count ``delay`` from now, unless a telling is due sooner already."""
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        planned = self._beats.get(room)
        if planned is not None:
            if planned[1] <= due:
                return
            planned[0].cancel()
        self._beats[room] = (loop.call_later(delay, self._beat, room), due)

    def _beat(self, room: str) -> None:
        """This node's count to the other nodes; the cluster's total to viewers here if it changed."""
        self._beats.pop(room, None)
        here = self.viewers.count(room)
        payload = orjson.dumps({"node": self.headcount.node, "viewers": here})
        task = asyncio.get_running_loop().create_task(self._publish_count(room, payload))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        if not self.viewers.has(room):
            self.headcount.forget(room)
            return
        total = self.headcount.total(room, here, time.monotonic())
        if self.headcount.news(room, total):
            self.hand_out(room, protocol.frame_bytes({"type": "live_viewers", "room": room, "viewers": total}), 0)
        self._beat_in(room, REFRESH_S)

    async def _publish_count(self, room: str, payload: bytes) -> None:
        try:
            await self._nc.publish(count_subject(room), payload)
        except Exception as err:  # closing or reconnecting: the next beat tells it again
            log.info("live room %s: viewer count: %s", room, err)

    async def _on_count(self, msg: Msg) -> None:
        try:
            told = orjson.loads(msg.data)
            node, count = str(told["node"]), int(told["viewers"])
        except (ValueError, KeyError, TypeError):
            return
        room = room_of(msg.subject)
        if self.headcount.heard(room, node, count, time.monotonic()) and self.viewers.has(room):
            self._beat_in(room, SETTLE_S)

    # ---- fan-out -------------------------------------------------------------------------------

    async def _on_message(self, msg: Msg) -> None:
        headers = msg.headers or {}
        if "Nats-Sequence" not in headers:
            return
        room, id = room_of(msg.subject), int(headers["Nats-Sequence"])
        self.hand_out(room, protocol.frame_bytes(message_frame(room, id, msg.data)), id)

    async def _on_event(self, msg: Msg) -> None:
        self.hand_out(room_of(msg.subject), msg.data, 0)

    def hand_out(self, room: str, frame: bytes, id: int) -> None:
        """The same bytes to every viewer of the room here; a viewer too far behind is dropped instead."""
        self.viewers.keep(room, id, frame)
        bound, slow = self._settings.live_viewer_queue, []
        viewers = self.viewers.of(room)
        for viewer in viewers:
            if viewer.waiting() >= bound:
                slow.append(viewer)
            else:
                viewer.send(frame)
        if id:
            self._metrics.live_out.inc(len(viewers) - len(slow))
        for viewer in slow:
            self._drop(viewer, room)

    def _drop(self, viewer: Viewer, room: str) -> None:
        self._metrics.live_dropped.inc()
        viewer.send(protocol.frame_bytes(protocol.live_left_frame(room, "slow")))
        if self.viewers.leave(room, viewer):
            subs = self._subs.pop(room, [])  # now, not when the task runs: a joiner may subscribe anew meanwhile
            task = asyncio.get_running_loop().create_task(self._close(room, subs))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        self._count(room)

    # ---- sending ---------------------------------------------------------------------------------

    async def send(self, viewer: Viewer, frame: protocol.LiveSend) -> None:
        try:
            await self._send(viewer, frame)
        except ParleyError as err:
            err.details.setdefault("ref", frame.cid)
            err.details.setdefault("room", frame.room)
            self._metrics.live_rejected.labels(err.code).inc()
            raise

    async def _send(self, viewer: Viewer, frame: protocol.LiveSend) -> None:
        meta, _ = await self._rooms.get(frame.room)
        if meta.state != "open":
            raise Forbidden(f"the room is {meta.state}: it takes no new messages", code="room_closed",
                            state=meta.state)
        attempt = Attempt(room=frame.room, user=viewer.user, text=frame.body, now=time.time(),
                          account_age_s=await self._account_age(viewer.user), moderator=meta.moderates(viewer.user))
        verdict = await run_screens(self._screens, attempt)
        if verdict.action == "reject":
            raise refusal(verdict.code, verdict.reason, verdict.retry_after_s)
        text = verdict.text if verdict.action == "mask" else frame.body
        ack = await self._js.publish(send_subject(frame.room),
                                     encode_message(sender=viewer.user, cid=frame.cid, body=text,
                                                    ts=int(attempt.now * 1000)),
                                     headers={"Nats-Msg-Id": dedup_of(viewer.user, frame.cid)})
        if not ack.duplicate:
            self._metrics.live_in.inc()
            tell_accepted(self._screens, attempt, text)
        viewer.send(protocol.frame_bytes(protocol.live_sent_frame(
            room=frame.room, cid=frame.cid, id=ack.seq, duplicate=bool(ack.duplicate),
            masked=verdict.action == "mask")))

    async def _account_age(self, user: str) -> float:
        if not self._screens:  # nobody asks
            return 0.0
        if user not in self._joined_at:
            found = await self._store.get_user(user)  # type: ignore[arg-type]
            self._joined_at[user] = found.created_at if found else 0
        return max(0.0, time.time() - self._joined_at[user] / 1000)


def refusal(code: str, reason: str, retry_after_s: float) -> ParleyError:
    """A screen's reject as the error the sender gets (``rate_limited`` family when waiting helps)."""
    message = reason or "the room's rules refused this message"
    if retry_after_s > 0:
        return RateLimited(message, code=code, retry_after_ms=int(retry_after_s * 1000) + 1)
    return Forbidden(message, code=code)
