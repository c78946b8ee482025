"""A connected device's frames: parse, act, answer — and refuse what is wrong, counting strikes.

Every client frame is parsed by ``parley.protocol`` and handled here: ``send`` (rate limit; then, on its
conversation's lane in ``node/sending.py``, membership, a reply's or action's target and rights
(``node/targets.py``, ADR 0025), publish, SENT ack), ``ack`` (the device's
position; delivered receipts), ``typing``, ``read``, ``presence``, ``sync``, ``ping``, and the live-room
frames ``live_join``, ``live_leave``, ``live_send`` (``node/live/hall.py``; a live send is answered in the
read loop, when the stream acks it). The read loop
never waits for a publish (only for room, past ``sends_in_flight`` unanswered sends). What the client
got wrong is a strike; our failures are retryable error frames. Errors become frames in ``parley.protocol``
only.

Limits (protocol.md §11): ``send`` takes from a bucket per user on this node; every other frame kind from
its connection's budget (``parley.ratelimit.FrameBudget``: ``sync``, ``presence`` by users asked, ``read``,
``typing``, and ``ack``/``ping`` as cheap frames), charged before any work. A frame over its budget is
refused with ``rate_limited`` and is a strike. Strikes fade with time only (``max_strikes`` outstanding
close the connection with 4029): valid frames in between do not reset them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from collections.abc import Set as AbstractSet
from typing import Any

from parley.node.attachments import AttachmentClaims
from parley.node.cursors import Cursors
from parley.node.events import ConversationEvents
from parley.node.link import DeviceLink
from parley.node.live.hall import LiveHall
from parley.node.membership import MembershipCheck
from parley.node.publisher import Publisher
from parley.node.sending import LinkSends
from parley.node.targets import Duplicate, Targets

from parley import protocol
from parley.bus.outage import as_unavailable
from parley.cursor import BadCursor
from parley.errors import CLOSE_ABUSE, BadRequest, ParleyError, PeerError, RateLimited, Unavailable
from parley.ids import ConversationId, UserId, dedup_id
from parley.messages import encode_payload
from parley.metrics import NodeMetrics
from parley.ratelimit import FrameBudget, TokenBucket, kind_of
from parley.settings import Settings
from parley.shards import Vector
from parley.store import AttachmentRef

log = logging.getLogger("parley.node")

PresenceReader = Callable[[list[str], AbstractSet[str]], Awaitable[list[dict[str, Any]]]]  # (users, hidden)


def now_ms() -> int:
    return int(time.time() * 1000)


class FrameHandler:
    def __init__(self, settings: Settings, metrics: NodeMetrics, *, membership: MembershipCheck,
                 publisher: Publisher, events: ConversationEvents, on_cursor: Callable[[DeviceLink], None],
                 sync: Callable[[DeviceLink, Vector], None], cursors: Cursors, targets: Targets) -> None:
        self._settings, self._metrics = settings, metrics
        self._membership, self._publisher, self._events = membership, publisher, events
        self._on_cursor, self._sync, self._cursors = on_cursor, sync, cursors
        self._targets = targets  # replies' and actions' targets (ADR 0025)
        self._buckets: dict[str, TokenBucket] = {}  # send budgets, per user on this node
        self._rates = settings.frame_rates()
        self._sends: dict[DeviceLink, LinkSends] = {}  # connections with sends admitted (node/sending.py)
        self.presence: PresenceReader | None = None  # set once the presence buckets are open
        self.live: LiveHall | None = None  # set once the live stream and rooms bucket are open
        self.attachments: AttachmentClaims | None = None  # set once the attachments bucket is open (ADR 0024)
        self._releases: set[asyncio.Task[None]] = set()  # deleted messages' attachments being released
        self._frames_in: dict[type, Any] = {}  # frames_in's child per frame class (``labels`` looks it up each time)

    def forget(self, user: str) -> None:
        """The user's last device left this node: its send budget goes too."""
        self._buckets.pop(user, None)

    async def on_text(self, link: DeviceLink, raw: str) -> None:
        """One frame from the device. A ``send`` is only admitted here (its publish and answer happen on its
        conversation's lane, ``node/sending.py``): this returns without waiting for any publish, except
        that a connection with ``sends_in_flight`` sends unanswered waits for one before admitting more."""
        frame: protocol.ClientFrame | None = None
        try:
            frame = protocol.parse_client_frame(raw, max_body=self._settings.max_body_bytes)
            self._count(frame)
            self._charge(link, frame)
            await self._handle(link, frame)
        except Exception as err:
            self._failed(link, frame, err)
        if self.budget(link).out:
            await self._strike_out(link)

    async def on_binary(self, link: DeviceLink) -> None:
        self.reject(link, PeerError("frames are JSON text", code="bad_json"))
        if self.budget(link).out:
            await self._strike_out(link)

    def _count(self, frame: protocol.ClientFrame) -> None:
        counter = self._frames_in.get(type(frame))
        if counter is None:
            counter = self._frames_in[type(frame)] = self._metrics.frames_in.labels(type(frame).__name__.lower())
        counter.inc()

    def budget(self, link: DeviceLink) -> FrameBudget:
        if link.budget is None:
            link.budget = FrameBudget(self._rates)
        return link.budget

    def _charge(self, link: DeviceLink, frame: protocol.ClientFrame) -> None:
        """Take the frame's cost from its kind's budget on this connection (``send``: see ``_admit``)."""
        if isinstance(frame, protocol.Send | protocol.Hello | protocol.LiveSend):
            return
        live = isinstance(frame, protocol.LiveJoin | protocol.LiveLeave)  # reads the store: the read budget
        kind = "read" if live else kind_of(type(frame).__name__.lower())
        cost = len(frame.users) if isinstance(frame, protocol.Presence) else 1
        wait = self.budget(link).charge(kind, time.monotonic(), cost)
        if wait is not None:
            self._metrics.refusals.labels(kind).inc()
            extra = {"conv": frame.conv} if isinstance(frame, protocol.Typing | protocol.Read) else {}
            raise RateLimited(f"too many {kind} frames; slow down", retry_after_ms=int(wait * 1000) + 1, **extra)

    async def _strike_out(self, link: DeviceLink) -> None:
        """Too many refused frames outstanding: close (4029) once the sends already admitted are answered, so every
        message stored for this connection is acked to it (nothing more is read meanwhile)."""
        sends = self._sends.get(link)
        if sends is not None:
            await sends.settle()
        link.close(CLOSE_ABUSE, "too many rejected frames")

    def _failed(self, link: DeviceLink, frame: protocol.ClientFrame | None, err: Exception) -> None:
        """A frame failed: the error frame (``ref`` = the send's cid) and, if it was the client's fault, a
        strike."""
        cid = frame.cid if isinstance(frame, protocol.Send | protocol.LiveSend) else None
        if isinstance(err, PeerError):
            if frame is None:
                self._metrics.frames_in.labels("invalid").inc()
            self.reject(link, err)
        elif isinstance(err, ParleyError):  # ours, retryable: the client resends
            self._metrics.errors.labels(err.code).inc()
            link.send(protocol.error_bytes(err))
        elif (fault := as_unavailable(err, "handling a frame")) is not None:  # an election or a reconnect
            self._metrics.errors.labels(fault.code).inc()
            if cid is not None:
                fault.details["ref"] = cid
            link.send(protocol.error_bytes(fault))
        else:
            log.error("conn %s: frame failed", link.conn_id, exc_info=err, extra={"conn": link.conn_id})
            self._metrics.errors.labels("internal").inc()
            link.send(protocol.internal_error_bytes(cid))

    def reject(self, link: DeviceLink, err: ParleyError) -> None:
        self._metrics.errors.labels(err.code).inc()
        link.send(protocol.error_bytes(err))
        self.budget(link).strike(time.monotonic())  # past the limit the read loop closes it (``_strike_out``)

    async def _handle(self, link: DeviceLink, frame: protocol.ClientFrame) -> None:
        match frame:
            case protocol.Send():
                await self._admit(link, frame)
            case protocol.Ack(cursor=token):
                covered = link.ack(self._open(token))
                if covered is not None:
                    self._on_cursor(link)
                    await self._events.delivered(link, covered)
            case protocol.Typing(conv=conv, state=state):
                async with self._within_deadline():
                    await self._membership.check_send(link.user, conv)
                    await self._events.typing(link, conv, state)
            case protocol.Read(conv=conv, upto=upto):
                async with self._within_deadline():
                    await self._membership.check(link.user, conv)
                    await self._events.read(link, conv, upto)
            case protocol.Presence(users=users):
                if self.presence is None:
                    raise Unavailable("presence is not available on this node yet", code="bus_unavailable")
                async with self._within_deadline():
                    hidden = await self._membership.hidden_from(link.user)
                found = await self.presence(list(users), hidden)
                async with self._within_deadline():
                    found = await self._membership.without_deleted(found)
                link.send(protocol.frame_bytes(protocol.presence_frame(found)))
            case protocol.Sync(cursor=token):
                action = link.core.client_sync(self._open(token) if token else {})
                if action is not None:
                    self._sync(link, action.point)
            case protocol.Ping(ts=ts):
                link.send(protocol.frame_bytes(protocol.pong_frame(ts, now_ms())))
            case protocol.LiveJoin(room=room):
                await self._live().join(link, room)
            case protocol.LiveLeave(room=room):
                await self._live().leave(link, room)
            case protocol.LiveSend():
                self._take_send(link, frame.cid)
                await self._live().send(link, frame)
            case protocol.Hello():
                raise PeerError("hello was already received", code="hello_repeated")

    def _live(self) -> LiveHall:
        if self.live is None:
            raise Unavailable("live rooms are not available on this node yet", code="bus_unavailable")
        return self.live

    def _take_send(self, link: DeviceLink, cid: str) -> None:
        """A message (``send`` or ``live_send``) takes from the user's send bucket on this node."""
        bucket = self._buckets.setdefault(link.user, TokenBucket(self._settings.rate_per_s, self._settings.rate_burst))
        if not bucket.take(time.monotonic()):
            self._metrics.refusals.labels("send").inc()
            raise RateLimited("too many messages; slow down", ref=cid,
                              retry_after_ms=int(bucket.retry_after() * 1000) + 1)

    def _open(self, token: str) -> Vector:
        """The token opened: from memory if this node sealed or opened it lately (ADR 0034, 0042), else checked."""
        try:
            return self._cursors.open(token)
        except BadCursor as err:
            raise BadRequest(f"cursor not accepted: {err}", code="bad_cursor") from None

    async def _admit(self, link: DeviceLink, frame: protocol.Send) -> None:
        sends = self._sends.get(link)
        if sends is None:
            sends = self._sends[link] = LinkSends(self._settings.sends_in_flight,
                                                  lambda f, at: self._answer_send(link, f, at))
        if sends.full:
            await sends.wait_room()  # backpressure: the rest of the device's frames wait in the socket
        self._take_send(link, frame.cid)
        sends.admit(frame)

    async def finish(self, link: DeviceLink) -> None:
        """The connection ended: the publishes it started finish, its queued sends are dropped."""
        sends = self._sends.pop(link, None)
        if sends is not None:
            await sends.close()

    @contextlib.asynccontextmanager
    async def _within_deadline(self) -> AsyncIterator[None]:
        """A frame handled in the read loop that needs the store (``typing``, ``read``: a membership check,
        a read mark) holds the connection's later frames at most ``store_deadline_s``, all its calls
        together, then answers ``store_unavailable``."""
        try:
            async with asyncio.timeout(self._settings.store_deadline_s):
                yield
        except TimeoutError:
            raise Unavailable("the store did not answer in time", code="store_unavailable") from None

    async def _check_by(self, user: UserId, conv: ConversationId, when: float) -> None:
        """The membership check of a send, answered by ``when`` (loop time: its admission plus the store's
        deadline), so sends queued in a lane behind a hung store all get ``store_unavailable`` in time."""
        try:
            async with asyncio.timeout_at(when):
                await self._membership.check_send(user, conv)
        except TimeoutError:
            raise Unavailable("the store did not answer in time", code="store_unavailable") from None

    async def _attached(self, link: DeviceLink, frame: protocol.Send) -> tuple[AttachmentRef, ...]:
        """The send's attachments, checked and claimed (``node/attachments.py``)."""
        if not frame.attachments:
            return ()
        if self.attachments is None:
            raise Unavailable("attachments are not available on this node yet", code="bus_unavailable")
        return await self.attachments.claim(frame.attachments, conv=frame.conv, sender=link.user,
                                            claim=dedup_id(link.user, frame.conv, frame.cid))

    async def _answer_send(self, link: DeviceLink, frame: protocol.Send, admitted: float) -> None:
        """Publish one send (its lane's turn) and answer it: the SENT ack, or an error frame with ``ref``. One
        coroutine, not two: each layer is resumed again at the PubAck (ADR 0065)."""
        try:
            try:
                if not self._membership.may_send_now(link.user, frame.conv):  # most DM sends: known here
                    await self._check_by(link.user, frame.conv, admitted + self._settings.store_deadline_s)
                ts = now_ms()
                entry: dict[str, Any] = {}
                if frame.kind or frame.reply_to:
                    try:
                        entry = await self._targets.entry(link.user, frame, ts, self._settings.edit_window_s)
                    except Duplicate as dup:
                        link.send(protocol.frame_bytes(protocol.sent_frame(cid=frame.cid, id=dup.id, conv=frame.conv,
                                                                           duplicate=True)))
                        return
                # last: a refused reply target claims no upload
                refs = await self._attached(link, frame) if frame.attachments else ()

                def payload(prev: int) -> bytes:
                    return encode_payload(sender=link.user, device=link.device, cid=frame.cid, body=frame.body, ts=ts,
                                          prev=prev, attachments=refs, **entry)

                self._metrics.send_wait_seconds.observe(max(0.0, asyncio.get_running_loop().time() - admitted))
                began = time.perf_counter()
                seq, duplicate = await self._publisher.publish(frame.conv, payload,
                                                               dedup_id(link.user, frame.conv, frame.cid))
                self._metrics.publish_seconds.observe(time.perf_counter() - began)
            except ParleyError as err:
                err.details["ref"] = frame.cid
                raise
            if not duplicate:
                self._metrics.published.inc()
            self._events.message_sent(link.user, frame.conv)
            link.send(protocol.frame_bytes(protocol.sent_frame(cid=frame.cid, id=seq, conv=frame.conv,
                                                               duplicate=duplicate)))
            if frame.kind == "delete":
                self._release_files(frame.conv, frame.target)
        except Exception as err:
            self._failed(link, frame, err)


    def _release_files(self, conv: ConversationId, target: int) -> None:
        """A stored delete: the deleted message's attachments go after the grace period (ADR 0024). Best effort,
        after the ack: if it fails the files stay (logged), the message is deleted all the same."""
        if self.attachments is None:
            return

        async def release(claims: AttachmentClaims) -> None:
            try:
                message = await self._targets.current(conv, target)
                if message is not None and message.attachments:
                    await claims.release(tuple(a.id for a in message.attachments), now_ms())
            except Exception:
                log.exception("could not release the attachments of deleted message %d in %s", target, conv)

        task = asyncio.get_running_loop().create_task(release(self.attachments))
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)
