"""The edge node's behaviour: connect, sync, deliver, send, ack, and the control plane.

Connection life: hello (token, optional cursor) → welcome → sync round(s) → live. Sync reads the
store up to what the archiver has written, then the stream's tail up to the stream's last id at the
moment the user's subscriptions were in place; live messages that arrive meanwhile are buffered and
judged against the device's position, so nothing is skipped and nothing is sent twice.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from functools import partial

import orjson
from aiohttp import WSMsgType, web
from nats.aio.subscription import Subscription
from nats.js.kv import KeyValue
from parley.node.events import ConversationEvents
from parley.node.groups import GroupRoutes
from parley.node.hub import Hub
from parley.node.link import DeviceLink
from parley.node.presence import PresenceRelay
from parley.node.publisher import Publisher

from parley import bus, protocol
from parley.auth import Claims, verify_token
from parley.bus import BusClient
from parley.errors import (
    AUTH_CLOSE_CODES,
    CLOSE_ABUSE,
    CLOSE_DRAINING,
    CLOSE_GOING_AWAY,
    CLOSE_IDLE,
    CLOSE_INTERNAL,
    CLOSE_PROTOCOL,
    CLOSE_REVOKED,
    CLOSE_TRY_AGAIN,
    Forbidden,
    NotFound,
    ParleyError,
    PeerError,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from parley.ids import (
    ConversationId,
    UserId,
    control_subject,
    conversation_of_delivery,
    conversation_of_message,
    dedup_id,
    dm_members,
    is_group,
    user_delivery_subjects,
    user_event_subjects,
    user_message_filters,
)
from parley.messages import decode_payload, encode_payload, frame_of
from parley.metrics import NodeMetrics
from parley.presence_bus import read_presence
from parley.ratelimit import TokenBucket
from parley.settings import Settings
from parley.store import Store

log = logging.getLogger("parley.node")

MAX_STRIKES = 50  # rejected frames in a row before the link is closed (4029)


def now_ms() -> int:
    return int(time.time() * 1000)


class EdgeNode:
    def __init__(self, settings: Settings, store: Store, nc: BusClient, node_id: str) -> None:
        self.settings = settings
        self.store = store
        self.nc = nc
        self.js = nc.jetstream()
        self.node_id = node_id
        self.hub: Hub[DeviceLink] = Hub()
        self.draining = False
        self.moved_to: tuple[dict[str, object] | None, list[dict[str, object]]] = (None, [])  # while draining
        self._subs: dict[UserId, list[Subscription]] = {}
        self._sub_locks: dict[UserId, asyncio.Lock] = {}
        self.metrics = NodeMetrics()
        self.events = ConversationEvents(settings, store, nc, self.hub)
        self.presence = PresenceRelay(nc, self.hub, node_id)
        self.presence_buckets: tuple[KeyValue, KeyValue] | None = None  # set by app.py
        self._chores: set[asyncio.Task[None]] = set()
        self._loading: dict[UserId, list[dict[str, object]]] = {}  # users whose subscriptions are being set up
        self.groups = GroupRoutes(nc, self.hub, self.on_delivery, self.events.on_event, self.resync)
        self._known_convs: set[str] = set()
        self._buckets: dict[UserId, TokenBucket] = {}
        self._dirty_cursors: dict[str, int] = {}
        self._conn_ids = itertools.count(1)
        self._sync_tasks: dict[DeviceLink, asyncio.Task[None]] = {}
        self.publisher = Publisher(
            self.js, lambda subject: bus.last_seq_of_subject(nc, settings, subject), self._store_last
        )

    # ---- NATS side ---------------------------------------------------------------------------

    def on_delivery(self, subject: str, headers: dict[str, str] | None, data: bytes,
                    only: UserId | None = None) -> None:
        """A stored message, in stream order. ``only``: it came through that user's own DM
        subscription, so it is for that user's devices (both members of a DM may be here)."""
        if not headers or "Nats-Sequence" not in headers:
            return
        conv = conversation_of_delivery(subject)
        seq = int(headers["Nats-Sequence"])
        self.publisher.observe(conv, seq)
        links = self.hub.of_user(only) if only else self.hub.of_conversation(conv)
        if not links:
            return
        message = decode_payload(seq, conv, data)
        frame = frame_of(message)
        for link in links:
            link.offer(message.id, conv, message.prev, frame, message.sender)
        self.metrics.delivered.inc(len(links))
        self.metrics.e2e_seconds.observe(max(0.0, time.time() - message.ts / 1000))

    def on_control(self, subject: str, headers: dict[str, str] | None, data: bytes) -> None:
        event = orjson.loads(data)
        user = UserId(subject.rsplit(".", 1)[-1])
        if event.get("kind") == "revoke":
            for link in list(self.hub.of_user(user)):
                if link.session == event.get("session"):
                    link.close(CLOSE_REVOKED, "session revoked")
        elif event.get("kind") in ("group", "friend") and user in self._loading:
            self._loading[user].append(event)  # applied once the user's groups and friends are loaded
        elif event.get("kind") == "group":
            self.groups.on_membership(user, event)
        elif event.get("kind") == "receipt":
            self.events.on_receipt(user, event)
        elif event.get("kind") == "friend":
            task = asyncio.get_running_loop().create_task(
                self.presence.friendship(user, str(event.get("user_id")), bool(event.get("friends"))))
            self._chores.add(task)
            task.add_done_callback(self._chores.discard)

    def resync(self, link: DeviceLink, point: int | None = None) -> None:
        """Sync the link again from ``point`` (default: where it stands); the device drops what it has."""
        link.syncing = True
        self.schedule_sync(link, link.position.delivered if point is None else point)

    async def on_reconnected(self) -> None:
        """NATS came back: anything republished while we were away must be read, so resync all."""
        log.warning("NATS reconnected; resyncing %d connections", len(self.hub))
        for link in list(self.hub):
            self.resync(link)

    async def _subscribe_user(self, user: UserId) -> None:
        lock = self._sub_locks.setdefault(user, asyncio.Lock())
        async with lock:
            if user in self._subs:
                return
            # Control subject first, then the store: a membership or friendship change made while we
            # read is either in what we read or arrives as an event, which is held and applied after.
            self._loading[user] = []
            try:
                deliver, event = partial(self.on_delivery, only=user), partial(self.events.on_event, only=user)
                handlers: list[Callable[[str, dict[str, str] | None, bytes], None]] = [
                    deliver, deliver, self.on_control, event, event]
                subjects = (*user_delivery_subjects(user), *user_event_subjects(user))
                self._subs[user] = [await self.nc.subscribe_ordered(s, h)
                                    for s, h in zip(subjects, handlers, strict=True)]
                await self.nc.flush(timeout=5)
                groups = await self.store.groups_of(user)
                friends = [other for other, state in await self.store.list_friends(user) if state == "friends"]
                await self.groups.join_all(user, groups)
                await self.presence.follow(user, friends)
                await self.nc.flush(timeout=5)  # the server has our interest before we read the stream
            finally:
                held = self._loading.pop(user, [])
            for change in held:
                self.on_control(control_subject(user), None, orjson.dumps(change))

    async def _unsubscribe_user(self, user: UserId) -> None:
        lock = self._sub_locks.setdefault(user, asyncio.Lock())
        async with lock:
            if self.hub.of_user(user):
                return
            for sub in self._subs.pop(user, []):
                await self.nc.unsubscribe_ordered(sub)
            await self.groups.leave_all(user)
            await self.presence.unfollow(user)
            self.events.forget(user)
            self._sub_locks.pop(user, None)

    async def _store_last(self, conv: ConversationId) -> int:
        try:
            rows = await self.store.history(conv, before=None, after=None, limit=1, newest_first=True)
        except Unavailable:
            return 0
        return rows[0].id if rows else 0

    # ---- the WebSocket -----------------------------------------------------------------------

    async def handle_ws(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=self.settings.max_frame_bytes, autoping=True)
        await ws.prepare(request)
        if self.draining:  # no node named: another node named at the drain's start may be draining by now
            await ws.send_str(protocol.encode(protocol.moved_frame(None, [])))
            await ws.close(code=CLOSE_DRAINING, message=b"node is draining")
            return ws
        claims, hello = await self._handshake(ws)
        if claims is None or hello is None:
            return ws
        link = DeviceLink(ws, claims, next(self._conn_ids), max_queue=4 * self.settings.sync_max,
                          on_gap=self.schedule_sync, on_sent=self.metrics.frame_out)
        writer = asyncio.get_running_loop().create_task(link.run_writer())
        try:
            try:
                await self._start(link, hello)
            except ParleyError as err:
                link.send(orjson.dumps(protocol.error_frame(err.as_dict())))
                link.close(CLOSE_TRY_AGAIN, err.code)
            await self._read_loop(link)
        finally:
            await self._finish(link, writer)
        return ws

    async def _handshake(self, ws: web.WebSocketResponse) -> tuple[Claims | None, protocol.Hello | None]:
        try:
            msg = await ws.receive(timeout=self.settings.hello_timeout_s)
        except TimeoutError:
            await ws.close(code=CLOSE_PROTOCOL, message=b"hello expected")
            return None, None
        if msg.type != WSMsgType.TEXT:
            await ws.close(code=CLOSE_PROTOCOL, message=b"hello expected")
            return None, None
        try:
            frame = protocol.parse_client_frame(msg.data, max_body=self.settings.max_body_bytes)
            if not isinstance(frame, protocol.Hello):
                raise PeerError("the first frame must be hello", code="hello_required")
            if frame.version != protocol.VERSION:
                raise PeerError(f"protocol version {frame.version} is not supported; use 1", code="bad_version")
            claims = verify_token(self.settings.secret.reveal(), frame.token, now=int(time.time()))
            await self._check_session(claims)
        except ParleyError as err:
            await ws.send_str(protocol.encode(protocol.error_frame(err.as_dict())))
            code = AUTH_CLOSE_CODES.get(err.code, CLOSE_PROTOCOL)
            await ws.close(code=code, message=err.code.encode())
            return None, None
        return claims, frame

    async def _check_session(self, claims: Claims) -> None:
        try:
            session = await self.store.get_session(claims.session)
        except Unavailable:
            log.warning("store unavailable: admitting %s without its revocation check", claims.session)
            return
        if session is None or session.revoked:
            raise Unauthorized("this session was logged out", code="session_revoked")

    async def _start(self, link: DeviceLink, hello: protocol.Hello) -> None:
        cursor = hello.cursor
        if cursor is None:
            device = await self.store.get_device(link.device)
            cursor = device.cursor if device else 0
        link.acked = cursor
        link.position.restart(cursor)
        limits = {
            "max_body_bytes": self.settings.max_body_bytes,
            "max_frame_bytes": self.settings.max_frame_bytes,
            "rate_per_s": self.settings.rate_per_s,
            "rate_burst": self.settings.rate_burst,
            "heartbeat_s": self.settings.heartbeat_s,
            "idle_timeout_s": self.settings.idle_timeout_s,
        }
        # welcome first: once attached, presence, group and receipt frames may be queued to the link
        link.send(orjson.dumps(protocol.welcome_frame(
            user=link.user, device=link.device, node=self.node_id, cursor=cursor, limits=limits)))
        self.hub.attach(link)
        if self.draining:  # the drain began during this hello: it may have listed its connections already
            link.send(orjson.dumps(protocol.moved_frame(None, [])))
            link.close(CLOSE_DRAINING, "node is draining")
            return
        await self._subscribe_user(link.user)  # a second device waits for the first one's, if still going
        await self.presence.arrived(link)  # online now, not at the next periodic beat
        self.schedule_sync(link, cursor)

    async def _read_loop(self, link: DeviceLink) -> None:
        ws = link.ws
        while not link.closed:
            try:
                msg = await ws.receive(timeout=self.settings.idle_timeout_s)
            except TimeoutError:
                link.close(CLOSE_IDLE, "no heartbeat")
                return
            if msg.type == WSMsgType.TEXT:
                await self._on_text(link, msg.data)
            elif msg.type == WSMsgType.BINARY:
                self._reject(link, PeerError("frames are JSON text", code="bad_json"))
            elif msg.type == WSMsgType.ERROR:
                log.info("conn %s: %s", link.conn_id, ws.exception(), extra={"conn": link.conn_id})
                return
            else:  # CLOSE, CLOSING, CLOSED
                return

    async def _on_text(self, link: DeviceLink, raw: str) -> None:
        frame: protocol.ClientFrame | None = None
        try:
            frame = protocol.parse_client_frame(raw, max_body=self.settings.max_body_bytes)
            self.metrics.frames_in.labels(type(frame).__name__.lower()).inc()
            await self._dispatch(link, frame)
            link.strikes = 0
        except PeerError as err:
            if frame is None:
                self.metrics.frames_in.labels("invalid").inc()
            self._reject(link, err)
        except ParleyError as err:  # ours, retryable: the client resends
            self.metrics.errors.labels(err.code).inc()
            link.send(orjson.dumps(protocol.error_frame(err.as_dict())))
        except Exception:
            log.exception("conn %s: frame failed", link.conn_id, extra={"conn": link.conn_id})
            self.metrics.errors.labels("internal").inc()
            details: dict[str, object] = {"code": "internal", "message": "internal error; resend", "retryable": True}
            if isinstance(frame, protocol.Send):
                details["ref"] = frame.cid
            link.send(orjson.dumps(protocol.error_frame(details)))

    def _reject(self, link: DeviceLink, err: ParleyError) -> None:
        self.metrics.errors.labels(err.code).inc()
        link.send(orjson.dumps(protocol.error_frame(err.as_dict())))
        link.strikes += 1
        if link.strikes >= MAX_STRIKES:
            link.close(CLOSE_ABUSE, "too many rejected frames")

    async def _dispatch(self, link: DeviceLink, frame: protocol.ClientFrame) -> None:
        match frame:
            case protocol.Send():
                await self._send(link, frame)
            case protocol.Ack(id=id):
                covered = link.ack(id)
                if covered is not None:
                    self._dirty_cursors[link.device] = link.acked
                    await self.events.delivered(link, covered)
            case protocol.Typing(conv=conv, state=state):
                await self._check_member(link.user, conv)
                await self.events.typing(link, conv, state)
            case protocol.Read(conv=conv, upto=upto):
                await self._check_member(link.user, conv)
                await self.events.read(link, conv, upto)
            case protocol.Presence(users=users):
                if self.presence_buckets is None:
                    raise Unavailable("presence is not available on this node yet", code="bus_unavailable")
                found = await read_presence(*self.presence_buckets, list(users))
                link.send(orjson.dumps(protocol.presence_frame(found)))
            case protocol.Sync(after=after):
                link.syncing = True
                self.schedule_sync(link, after)
            case protocol.Ping(ts=ts):
                link.send(orjson.dumps(protocol.pong_frame(ts, now_ms())))
            case protocol.Hello():
                raise PeerError("hello was already received", code="hello_repeated")

    async def _send(self, link: DeviceLink, frame: protocol.Send) -> None:
        bucket = self._buckets.setdefault(link.user, TokenBucket(self.settings.rate_per_s, self.settings.rate_burst))
        if not bucket.take(time.monotonic()):
            raise RateLimited("too many messages; slow down", ref=frame.cid,
                              retry_after_ms=int(bucket.retry_after() * 1000) + 1)
        try:
            await self._check_member(link.user, frame.conv)
        except ParleyError as err:
            err.details["ref"] = frame.cid
            raise
        ts = now_ms()

        def payload(prev: int) -> bytes:
            return encode_payload(
                sender=link.user, device=link.device, cid=frame.cid, body=frame.body, ts=ts, prev=prev
            )

        try:
            msg_id = dedup_id(link.user, frame.conv, frame.cid)
            began = time.perf_counter()
            seq, duplicate = await self.publisher.publish(frame.conv, payload, msg_id)
            self.metrics.publish_seconds.observe(time.perf_counter() - began)
        except ParleyError as err:
            err.details["ref"] = frame.cid
            raise
        if not duplicate:
            self.metrics.published.inc()
        self.events.message_sent(link.user, frame.conv)
        link.send(orjson.dumps(protocol.sent_frame(cid=frame.cid, id=seq, conv=frame.conv, duplicate=duplicate)))

    async def _check_member(self, user: UserId, conv: ConversationId) -> None:
        if is_group(conv):
            await self._check_group_member(user, conv)
            return
        members = dm_members(conv)
        if members is None or user not in members:
            raise Forbidden("you are not a member of this conversation", code="not_member", conv=conv)
        if conv in self._known_convs:
            return
        found = await self.store.get_conversation(conv)
        if found is None:
            raise NotFound("no such conversation; open it through the API first", code="unknown_conversation",
                           conv=conv)
        if len(self._known_convs) > 100_000:
            self._known_convs.clear()
        self._known_convs.add(conv)

    async def _check_group_member(self, user: UserId, conv: ConversationId) -> None:
        """Membership as this node last heard it; the store decides when the node has not heard."""
        if conv in self.hub.groups_of(user):
            return
        found = await self.store.get_conversation(conv)
        if found is None:
            raise NotFound("no such conversation", code="unknown_conversation", conv=conv)
        if user not in found.members:
            raise Forbidden("you are not a member of this group", code="not_member", conv=conv)

    async def _finish(self, link: DeviceLink, writer: asyncio.Task[None]) -> None:
        link.close(link.close_code, link.close_reason)
        if link in self.hub.of_user(link.user):
            await self.presence.gone(link)
        task = self._sync_tasks.pop(link, None)
        if task is not None:
            task.cancel()
        if self.hub.detach(link):
            await self._unsubscribe_user(link.user)
            self._buckets.pop(link.user, None)
        try:
            await asyncio.wait_for(writer, timeout=5)
        except (TimeoutError, asyncio.CancelledError):
            writer.cancel()
        if not link.ws.closed:
            await link.ws.close(code=link.close_code, message=link.close_reason.encode())

    # ---- sync ----------------------------------------------------------------------------------

    def schedule_sync(self, link: DeviceLink, after: int) -> None:
        previous = self._sync_tasks.get(link)
        if previous is not None:
            previous.cancel()
        self._sync_tasks[link] = asyncio.get_running_loop().create_task(self._sync(link, after, previous))

    async def _sync(self, link: DeviceLink, after: int, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        point: int | None = after
        while point is not None and not link.closed:
            try:
                point = await self._sync_round(link, point)
            except ParleyError as err:
                link.send(orjson.dumps(protocol.error_frame(err.as_dict())))
                await asyncio.sleep(1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("conn %s: sync failed", link.conn_id, extra={"conn": link.conn_id})
                link.close(CLOSE_INTERNAL, "sync failed")
                return
        if not link.closed:
            link.send(orjson.dumps(protocol.synced_frame(cursor=link.position.delivered)))
            if self._sync_tasks.get(link) is asyncio.current_task():
                del self._sync_tasks[link]

    async def _sync_round(self, link: DeviceLink, after: int) -> int | None:
        link.begin_round(after)
        first, last = await bus.stream_bounds(self.nc, self.settings)
        if after > last:  # a cursor from the future would hide messages until ids caught up with it
            link.send(orjson.dumps(protocol.error_frame({
                "code": "bad_cursor", "message": f"cursor {after} is beyond the newest message {last}",
                "cursor": last})))
            after = last
            link.acked = min(link.acked, last)
            link.begin_round(after)
        archived = await bus.archived_through(self.nc, self.settings)
        cursor = after
        upto = min(archived, last)
        if cursor < upto:
            try:
                cursor = await self._sync_from_store(link, cursor, upto)
            except Unavailable:
                if first > cursor + 1:
                    raise
                log.warning("conn %s: store unavailable, syncing from the stream", link.conn_id,
                    extra={"conn": link.conn_id})
        if cursor < last:
            filters = user_message_filters(link.user, self.hub.groups_of(link.user))
            batches = bus.stream_batches(self.js, self.settings, filters,
                                         start=max(cursor + 1, first), end=last, size=self.settings.sync_batch)
            async for rows in batches:
                for seq, subject, data in rows:
                    message = decode_payload(seq, conversation_of_message(subject), data)
                    link.deliver_synced(message.id, message.conv, message.prev, frame_of(message), message.sender)
                await link.wait_room()
        return link.finish_round(last)

    async def _sync_from_store(self, link: DeviceLink, cursor: int, upto: int) -> int:
        batch_size = self.settings.sync_batch
        while cursor < upto:
            batch = await self.store.messages_for_user(link.user, after=cursor, upto=upto, limit=batch_size)
            for m in batch:
                link.deliver_synced(m.id, m.conv, m.prev, frame_of(m), m.sender)
            if len(batch) < batch_size:
                return upto
            cursor = batch[-1].id
            await link.wait_room()
        return cursor

    # ---- background duties -----------------------------------------------------------------

    async def flush_cursors(self) -> None:
        """Acked cursors and delivered receipts to the store (kept for the next try if it is down)."""
        await self.events.flush()
        if not self._dirty_cursors:
            return
        dirty, self._dirty_cursors = self._dirty_cursors, {}
        try:
            await self.store.save_cursors(dirty)  # type: ignore[arg-type]
        except (Unavailable, asyncio.CancelledError) as err:  # kept for the next try (the final one at exit)
            for device, cursor in dirty.items():
                self._dirty_cursors[device] = max(cursor, self._dirty_cursors.get(device, 0))
            if isinstance(err, asyncio.CancelledError):
                raise

    async def close_all(self, code: int = CLOSE_GOING_AWAY, reason: str = "node stopping") -> None:
        for link in list(self.hub):
            link.close(code, reason)
        await asyncio.sleep(0.1)
        await self.flush_cursors()
