"""Ordered, task-free dispatch for nats-py subscriptions: the one place Parley reaches into nats-py.

nats-py gives every callback subscription its own asyncio task and queue. An edge node holds several
subscriptions per connected user (tens of thousands of users a node), and, worse, two subscriptions
of one user can then be handled out of the order the server sent them, so a device would see ids out
of order (measured: docs/adr/0002). A subscription made with ``subscribe_ordered`` has no callback
(so nats-py starts no task for it); ``_process_msg`` is intercepted and its handler runs inline, in
the order the parser read the messages off the socket. Handlers must not block. Nor does it get a
nats-py ``Subscription`` (3.6 KB each, with its own asyncio queue — five per connected user): an
``OrderedSub`` of two slots sits in the client's subscription table instead, with the attributes
nats-py reads when it replays subscriptions after a reconnect, drains, or closes.

``subscribe_raw`` is the same with the wire's bytes handed over as they are (subject, reply, the raw
header block, data: no decoding, no header parsing), for the archiver's pull loop (``parley.bus.pull``),
which reads a few hundred thousand messages a second and needs only the reply subject of most.
``publish_bare`` sends many payload-less or tiny messages (JetStream acks) in one write command instead
of one ``publish`` each. ``request_raw`` is a request whose reply comes back inline, as the wire's bytes, on
one wildcard inbox subscription of this client (the node's JetStream publishes, ``parley.bus.stream``):
nats-py's ``request`` costs a ``Msg``, a header parse, a hop through the inbox subscription's task and two
through ``wait_for`` per reply (docs/adr/0026). And a publish kicks nats-py's flusher only when no kick is
already queued (``_flush_pending``): one kick writes everything pending, so the others were wakeups for nothing.
A ``request_raw`` alone in flight with nothing pending before it is written to the transport at once
(``_transport``); under load they go through the flusher, which writes all of them at once.
An ordered handler's headers are read by ``parse_headers`` (one decode and a split, not nats-py's coroutine and
per-name scan: ~4× less per message, docs/adr/0037); a block with an inline status goes to nats-py's parse.
``subscribe_headed`` is ``subscribe_ordered`` with the header block handed over unparsed (a group's deliveries:
the node reads ``Nats-Stream`` and ``Nats-Sequence`` straight from it, ``stream_position``).

This overrides a private method of nats-py, so the dependency is pinned (pyproject) and
tests/parley/bus/test_ordered.py fails when an upgrade changes what this relies on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from nats.aio.client import PING_PROTO, Client
from nats.aio.subscription import Subscription
from nats.errors import (
    ConnectionClosedError,
    ConnectionDrainingError,
    FlushTimeoutError,
    OutboundBufferLimitError,
)
from nats.errors import TimeoutError as NatsTimeout

log = logging.getLogger("parley.bus")

Handler = Callable[[str, dict[str, str] | None, bytes], None]
HeadedHandler = Callable[[str, bytes | None, bytes], None]  # subject, the raw header block (None without), data
RawHandler = Callable[[bytes, bytes, bytes | None, bytes], None]  # subject, reply, raw headers, data
# What this module relies on in nats-py (checked by the test): the private hook's parameters and the
# helpers it calls.
RELIES_ON = {"_process_msg": ("sid", "subject", "reply", "data", "headers"), "_process_headers": ("headers",),
             "_send_subscribe": ("sub",), "_send_unsubscribe": ("sid", "limit"),
             "_send_command": ("cmd", "priority"), "_flush_pending": ("force_flush",)}
RawReply = tuple[bytes | None, bytes]  # a reply's raw header block (None without) and its data
NO_RESPONDERS = b"NATS/1.0 503"  # a raw reply's status line when nobody answered the request
HEADER_LINE = b"NATS/1.0\r\n"  # a header block without an inline status starts so (every stored message's)


def parse_headers(raw: bytes) -> dict[str, str] | None:
    """A ``NATS/1.0`` header block without an inline status as a dict (``Name: value`` per line, both stripped),
    else None. Never raises: bad UTF-8 is replaced, a line without a colon skipped (what nats-py's parse also
    drops: names with a space in them, or not ASCII, are kept here, under a name nobody looks up)."""
    if not raw.startswith(HEADER_LINE):
        return None
    out: dict[str, str] = {}
    for line in raw[len(HEADER_LINE):].decode("utf-8", "replace").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            out[name.strip()] = value.strip()
    return out or None


def stream_position(raw: bytes) -> tuple[str, int] | None:
    """(``Nats-Stream``, ``Nats-Sequence``) read straight from a stored message's header block, as its stream
    republishes it; None if either is missing or the sequence is not a number. The last of a name counts (the
    stream appends its own after the publisher's, and ``parse_headers`` keeps the last too)."""
    stream, seq = _value(raw, b"\r\nNats-Stream:"), _value(raw, b"\r\nNats-Sequence:")
    if stream is None or seq is None or not seq.isdigit():
        return None
    return stream.decode("utf-8", "replace"), int(seq)


def _value(raw: bytes, name: bytes) -> bytes | None:
    at = raw.rfind(name)
    if at < 0:
        return None
    at += len(name)
    end = raw.find(b"\r\n", at)
    return raw[at:end if end >= 0 else len(raw)].strip()


class OrderedSub:
    """A subscription dispatched inline; in nats-py's ``_subs`` table, read there on reconnect (``_subject``,
    ``_queue``, ``_max_msgs``, ``_received``), drain (``_drain``) and close (the task and iterator fields)."""

    __slots__ = ("_id", "_subject")
    _queue = ""
    _max_msgs = 0
    _received = 0
    _wait_for_msgs_task = None
    _message_iterator = None
    _pending_next_msgs_calls = None

    def __init__(self, sid: int, subject: str) -> None:
        self._id, self._subject = sid, subject

    async def _drain(self) -> None:
        """The client drains before closing: nothing is queued here to wait for."""


class BusClient(Client):
    """A nats-py client whose ``subscribe_ordered`` subscriptions are dispatched inline, in order."""

    def __init__(self) -> None:
        super().__init__()
        self._ordered: dict[int, Handler] = {}
        self._headed: dict[int, HeadedHandler] = {}
        self._raw: dict[int, RawHandler] = {}
        self._replies: dict[bytes, asyncio.Future[RawReply]] = {}  # request_raw's, by token
        self._reply_prefix = b""  # this client's reply inbox, with the trailing dot (made on first use)
        self._reply_lock = asyncio.Lock()
        self._reply_count = 0
        self._ping_due: asyncio.Future[bool] | None = None  # the last flush's PING, answered by its PONG
        self._ping_in: list[bytes] | None = None  # the pending list it was queued in (written once replaced)

    async def subscribe_ordered(self, subject: str, handler: Handler) -> OrderedSub:
        return await self._subscribe(subject, handler, None)

    async def subscribe_headed(self, subject: str, handler: HeadedHandler) -> OrderedSub:
        """``subscribe_ordered`` whose handler gets the header block as it came (None without one)."""
        return await self._subscribe(subject, None, handler)

    async def _subscribe(self, subject: str, handler: Handler | None, headed: HeadedHandler | None) -> OrderedSub:
        if self.is_closed:
            raise ConnectionClosedError
        self._sid += 1
        sub = OrderedSub(self._sid, subject)
        self._subs[sub._id] = sub  # type: ignore[assignment]  # duck-typed: what nats-py reads of it
        if headed is not None:
            self._headed[sub._id] = headed
        elif handler is not None:
            self._ordered[sub._id] = handler
        await self._send_subscribe(sub)  # type: ignore[arg-type]
        return sub

    async def unsubscribe_ordered(self, *subs: OrderedSub) -> None:
        live = not self.is_closed and not self.is_reconnecting
        for sub in subs:
            self._ordered.pop(sub._id, None)
            self._headed.pop(sub._id, None)
            self._subs.pop(sub._id, None)
            if live:
                await self._send_unsubscribe(sub._id)

    async def flush(self, timeout: int = 10) -> None:
        """The server has read everything sent before this call once it returns. nats-py's own ``flush`` writes
        its PING straight to the socket, ahead of the commands still queued for its flusher, so its PONG could
        come before the server has read a SUB or a PUB made just before (a user's subscriptions then a sync
        reading the stream, ``node/subscriptions.py``): the PING is queued after them, for the same write.
        Flushes made while it is still queued share it (a storm of connects: the set-ups of a loop turn, one
        write and one PONG, ADR 0059): the PING is moved behind what each of them queued before its call."""
        if timeout <= 0 or not self._loops_alive():
            self._write_pending()
            await super().flush(timeout)
            return
        future = self._ping_queued()
        if future is not None:  # join it, behind what this caller queued
            if self._pending[-1] is not PING_PROTO:
                self._pending.remove(PING_PROTO)  # the only PING ever queued (nats-py writes its own at once)
                self._pending.append(PING_PROTO)
        else:
            future = self._ping_due = asyncio.get_running_loop().create_future()
            self._pongs.append(future)  # before the write: the PONG that answers this PING resolves it
            self._pending.append(PING_PROTO)
            self._pending_data_size += len(PING_PROTO)
            self._ping_in = self._pending  # a write replaces the list: then the PING is on its way
            await self._flush_pending()
        try:  # shielded: the future is every caller's, and a PONG after a timeout finds it pending
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            raise FlushTimeoutError from None

    def _ping_queued(self) -> asyncio.Future[bool] | None:
        """The future of the PING ``flush`` queued and nobody has written yet, else None. Queued before a reconnect
        (nats-py dropped the futures of PINGs in flight, then replays what was queued), it is taken out: its PONG
        would answer a later PING's future before the server has read what was queued after it."""
        future = self._ping_due
        if future is None or self._pending is not self._ping_in:
            return None
        if future in self._pongs:
            return future
        self._pending.remove(PING_PROTO)  # the only PING ever queued (nats-py writes its own at once)
        self._pending_data_size -= len(PING_PROTO)
        self._ping_due = None
        return None

    def _loops_alive(self) -> bool:
        """Connected, with the read loop (it reads the PONG) and the flusher running."""
        return (self.is_connected and self._transport is not None and self._reading_task is not None
                and not self._reading_task.done() and self._flusher_task is not None
                and not self._flusher_task.done())

    def _write_pending(self) -> None:
        """What is queued for the flusher, written now (``flush``)."""
        if self._pending and self._transport is not None and self.is_connected:
            self._transport.writelines(self._pending[:])
            self._pending = []
            self._pending_data_size = 0

    async def subscribe_raw(self, subject: str, handler: RawHandler) -> Subscription:
        sub = await self.subscribe(subject)
        self._raw[sub._id] = handler
        return sub

    async def unsubscribe_raw(self, sub: Subscription) -> None:
        self._raw.pop(sub._id, None)
        if not self.is_closed:
            await sub.unsubscribe()

    async def publish_bare(self, subjects: list[str], payload: bytes) -> None:
        """``payload`` to each of ``subjects`` (no reply, no headers) in one command, flushed once. Like
        ``publish``, it raises while closed and buffers while reconnecting."""
        if self.is_closed:
            raise ConnectionClosedError
        if not subjects:
            return
        size = len(payload)
        tail = b" %d\r\n%b\r\n" % (size, payload)
        command = b"".join(b"PUB " + s.encode() + tail for s in subjects)
        if not self.is_connected and len(command) + self._pending_data_size > self._max_pending_size:
            raise OutboundBufferLimitError
        await self._send_command(command)
        self.stats["out_msgs"] += len(subjects)
        self.stats["out_bytes"] += size * len(subjects)
        await self._flush_pending()

    async def request_raw(self, subject: str, headers: bytes, payload: bytes, timeout: float, *,
                          alone: bool = True) -> RawReply:
        """Publish ``payload`` (with ``headers``, a complete ``NATS/1.0`` block, or b"") with a reply inbox and
        return the reply as it came: (raw headers or None, data). nats-py's ``TimeoutError`` after ``timeout``;
        raises like ``publish`` while closed, draining, or reconnecting with a full buffer. ``alone`` false: never
        written at once, always queued for the flusher (requests made side by side in a loop turn: one write)."""
        if self.is_closed:
            raise ConnectionClosedError
        if self.is_draining_pubs:
            raise ConnectionDrainingError
        if not self._reply_prefix:
            await self._open_replies()
        self._reply_count += 1
        token = b"%d" % self._reply_count
        reply = self._reply_prefix + token
        if headers:
            cmd = b"HPUB %b %b %d %d\r\n%b%b\r\n" % (subject.encode(), reply, len(headers),
                                                      len(headers) + len(payload), headers, payload)
        else:
            cmd = b"PUB %b %b %d\r\n%b\r\n" % (subject.encode(), reply, len(payload), payload)
        if not self.is_connected and len(cmd) + self._pending_data_size > self._max_pending_size:
            raise OutboundBufferLimitError
        loop = asyncio.get_running_loop()
        future: asyncio.Future[RawReply] = loop.create_future()
        self._replies[token] = future
        timer = loop.call_later(timeout, _expire, future)
        try:
            if (alone and len(self._replies) == 1 and not self._pending and self.is_connected
                    and self._transport is not None):
                self._transport.write(cmd)  # alone, nothing queued before it: in order, and no flusher wakeup
            else:
                await self._send_command(cmd)
                await self._flush_pending()
            self.stats["out_msgs"] += 1
            self.stats["out_bytes"] += len(payload)
            return await future
        finally:
            timer.cancel()
            del self._replies[token]

    async def _open_replies(self) -> None:
        async with self._reply_lock:
            if self._reply_prefix:
                return
            prefix = bytes(self._inbox_prefix) + b"." + bytes(self._nuid.next()) + b"."
            await self.subscribe_raw(prefix.decode() + "*", self._on_reply)
            self._reply_prefix = prefix

    def _on_reply(self, subject: bytes, reply: bytes, headers: bytes | None, data: bytes) -> None:
        future = self._replies.get(subject[len(self._reply_prefix):])
        if future is not None and not future.done():
            future.set_result((headers, data))

    async def _flush_pending(self, force_flush: bool = False) -> Any:
        """nats-py queues one flusher kick per publish; a kick already queued will write whatever is pending
        when the flusher takes it, so another is only a wakeup for nothing."""
        if not force_flush and self._flush_queue is not None and not self._flush_queue.empty() \
                and self._flusher_task is not None and not self._flusher_task.done():
            return None
        return await super()._flush_pending(force_flush)

    async def _process_msg(self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes) -> None:
        raw = self._raw.get(sid)
        if raw is not None:
            self.stats["in_msgs"] += 1
            self.stats["in_bytes"] += len(data)
            try:
                raw(subject, reply, headers or None, data)
            except Exception:
                log.exception("raw handler for %s failed", subject)
            return
        headed = self._headed.get(sid)
        if headed is not None:
            self.stats["in_msgs"] += 1
            self.stats["in_bytes"] += len(data)
            try:
                headed(subject.decode(), headers or None, data)
            except Exception:
                log.exception("handler for %s failed", subject)
            return
        handler = self._ordered.get(sid)
        if handler is None:
            await super()._process_msg(sid, subject, reply, data, headers)
            return
        self.stats["in_msgs"] += 1
        self.stats["in_bytes"] += len(data)
        hdr = None
        if headers:
            hdr = parse_headers(headers)
            if hdr is None and not headers.startswith(HEADER_LINE):  # an inline status: nats-py's parse
                try:
                    hdr = await self._process_headers(headers)
                except Exception:  # a malformed block: dropped, the read loop goes on
                    log.warning("dropped a message on %s with a malformed header block", subject)
                    return
        try:
            handler(subject.decode(), hdr, data)
        except Exception:
            log.exception("handler for %s failed", subject)


def _expire(future: asyncio.Future[RawReply]) -> None:
    if not future.done():
        future.set_exception(NatsTimeout())
