"""Typing indicators and receipts on a node: from a device's frame to the other members' devices.

Typing travels on the conversation's event subject (``evt.<conv>``, core NATS, never stored), to
which a node listens while a member is connected (DMs through the user's ``evt.dm.`` subjects,
groups through ``groups.GroupRoutes``). Receipts are saved, so a device that was away, or a member
list, can read them later (``GET /v1/conversations/{conv}/receipts``), and announced:
- delivered: when a device acks messages from others, once per user and conversation per new mark;
  saved in batches with the device cursors (``flush``). In a DM on the event subject, to the other
  member's devices (not the acker's own: nothing to show there, ADR 0042); in a group only to the senders
  of the messages the ack covers (their receipt subjects):
  broadcasting every member's receipt to every member would cost members² frames per message.
  A group's are gathered per sender for ``receipt_gather_s`` (``ReceiptTells``) and go as one
  ``ReceiptBatch`` each, instead of one bus message per (member, sender, ack) (ADR 0048); what is gathered
  is published when the node stops (``close``).
  A delivered receipt goes with the next frames written to the device, or at the node's next cursor round
  (``DeviceLink.send_later``, within ``cursor_every_s``): it need not cost a write of its own.
- read: a ``read`` frame, never past the conversation's last message; saved before it is announced.
  In a DM to both members; in a group to the reader's own devices only (others fetch the marks).
A group's typing notice may wait for the node's write gap, as its messages do (``DeviceLink.send_group``, ADR 0056).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Protocol

from parley.node.homes import Homes
from parley.node.hub import Hub
from parley.node.link import DeviceLink
from parley.node.ports import MessageHistory, Receipts
from parley.node.receipt_tells import ReceiptTells
from parley.node.signals import ReceiptMarks, TypingGate
from parley.node.unsaved import Unsaved

from parley import protocol, wire
from parley.bus import Bus, StreamReads
from parley.errors import BadRequest, Unavailable
from parley.ids import EVENT_PREFIX, ConversationId, UserId, event_subject, is_group, receipt_subject
from parley.settings import Settings
from parley.store import Receipt
from parley.tasks import cancel_and_wait


class EventStore(MessageHistory, Receipts, Protocol):
    """Receipts are saved; a read mark is checked against the conversation's last message."""

log = logging.getLogger("parley.node")
UNSAVED_MAX = 100_000  # delivered marks kept for the store while it is down; past it the oldest go


class ConversationEvents:
    def __init__(self, settings: Settings, store: EventStore, nc: Bus, reads: StreamReads,
                 hub: Hub[DeviceLink], homes: Homes) -> None:
        self._settings, self._store, self._nc, self._reads, self._hub = settings, store, nc, reads, hub
        self._homes = homes
        self._typing = TypingGate(interval_s=settings.typing_interval_s)
        self._marks = ReceiptMarks()
        self._unsaved: Unsaved[tuple[str, str], int] = Unsaved(UNSAVED_MAX)  # (conv, user) → delivered mark
        self._tells = ReceiptTells(settings.receipt_gather_s)  # a group's delivered marks, per sender (ADR 0048)
        self._telling: asyncio.Task[None] | None = None  # publishes them as windows close, while any is open

    def on_event(self, subject: str, headers: dict[str, str] | None, data: bytes, only: UserId | None = None) -> None:
        """An event of a conversation: to the connected members' devices (typing: not the typist's).
        ``only``: it came through that user's DM event subscription, for that user's devices (an event of a DM
        between two users here comes once through each member's)."""
        conv = subject[len(EVENT_PREFIX):]
        try:
            event = wire.decode(data)
        except wire.WireError as err:
            log.warning("dropped an event of %s: %s", conv, err.message)
            return
        match event:
            case wire.TypingNotice(user=user, device=device, state=state):
                frame = protocol.frame_bytes(protocol.typing_frame(conv=conv, user=user, device=device, state=state,
                                                                   ttl_ms=self._ttl_ms()))
                skip: str | None = user
                later = False
                group = only is None  # a group's typing may wait for the write gap with its messages (ADR 0056)
            case wire.ReceiptNotice(user=user, status=status, upto=upto):
                # a delivered mark is news to the other member only (protocol.md §5; ADR 0042): the acker's own
                # devices are not told what one of them acked. A read mark goes to the reader's devices too.
                # a delivered mark goes with the next write to the device (ADR 0042); a read mark at once
                later = status == "delivered"
                skip = user if later else None
                group = False
                if only is not None and only == skip:  # this copy came for the acker's devices: nobody to tell
                    return
                frame = protocol.frame_bytes(protocol.receipt_frame(conv=conv, user=user, status=status, upto=upto))
            case _:
                return
        for link in self._hub.of_user(only) if only else self._hub.of_conversation(conv):
            if link.user != skip:
                if later:
                    link.send_later(frame)
                elif group:
                    link.send_group(frame)
                else:
                    link.send(frame)

    def _ttl_ms(self) -> int:
        return int(self._settings.typing_interval_s * 3000)

    async def _announce(self, conv: str, event: wire.BusMessage) -> None:
        try:
            await self._nc.publish(event_subject(conv), wire.encode(event))
        except Exception as err:  # ephemeral: a lost typing or receipt event is not worth failing for
            log.info("could not publish an event of %s: %s", conv, err)

    def message_sent(self, user: str, conv: ConversationId) -> None:
        self._typing.sent(user, conv)

    async def typing(self, link: DeviceLink, conv: ConversationId, state: str) -> None:
        if self._typing.judge(link.user, conv, state, time.monotonic()) == "forward":
            await self._announce(conv, wire.TypingNotice(link.user, link.device, state))  # type: ignore[arg-type]

    async def _tell(self, users: Iterable[str], event: wire.ReceiptNotice) -> None:
        data = wire.encode(event)
        try:
            for user in users:
                await self._nc.publish(receipt_subject(UserId(user)), data)
        except Exception as err:
            log.info("could not publish a receipt: %s", err)

    def on_receipts(self, user: UserId, batch: wire.ReceiptBatch) -> None:
        """Group delivered marks gathered for ``user`` (``ReceiptBatch``): a ``receipt`` frame each, as if each
        had come alone, each framed once for all the user's devices here and sent with their next write."""
        links = self._hub.of_user(user)
        if not links:
            return
        for conv, member, upto in batch.delivered:
            frame = protocol.frame_bytes(protocol.receipt_frame(conv=conv, user=member, status="delivered", upto=upto))
            for link in links:
                link.send_later(frame)

    def on_receipt(self, user: UserId, event: wire.ReceiptNotice) -> None:
        """A group receipt sent to ``user``'s receipt subject."""
        frame = protocol.frame_bytes(protocol.receipt_frame(conv=str(event.conv), user=event.user, status=event.status,
                                                            upto=event.upto))
        for link in self._hub.of_user(user):
            if event.status == "delivered":  # with the next write (ADR 0042)
                link.send_later(frame)
            else:
                link.send(frame)

    async def read(self, link: DeviceLink, conv: ConversationId, upto: int) -> None:
        last = await self._reads.last_of(await self._homes.of(conv), conv)
        if last == 0:  # older than the stream keeps: ask the store
            rows = await self._store.history(conv, before=None, after=None, limit=1, newest_first=True)
            last = rows[0].id if rows else 0
        if upto > last:
            raise BadRequest(f"read cursor {upto} is beyond the conversation's last message {last}",
                             code="bad_cursor", conv=conv, cursor=last)
        try:  # a background write in the store (no deadline there), but this device waits for it
            async with asyncio.timeout(self._settings.store_deadline_s):
                await self._store.save_receipts([Receipt(conv, link.user, read=upto)])
        except TimeoutError:
            raise Unavailable("the store did not save the read mark in time", code="store_unavailable") from None
        if is_group(conv):
            await self._tell([link.user], wire.ReceiptNotice(link.user, "read", upto, conv))
        else:
            await self._announce(conv, wire.ReceiptNotice(link.user, "read", upto))

    async def delivered(self, link: DeviceLink, covered: dict[str, tuple[int, set[str]]]) -> None:
        """A device acked messages from others: announce the conversations with a new mark."""
        for conv, (upto, senders) in covered.items():
            if self._marks.raise_to(link.user, conv, upto):
                self._unsaved.put((conv, link.user), upto)
                if not is_group(conv):
                    await self._announce(conv, wire.ReceiptNotice(link.user, "delivered", upto))
                elif self._tells.window_s > 0:
                    self._gather(senders, conv, link.user, upto)
                else:  # one message each: what a node before ADR 0048 reads
                    await self._tell(senders, wire.ReceiptNotice(link.user, "delivered", upto, conv))

    def _gather(self, senders: Iterable[str], conv: str, user: str, upto: int) -> None:
        now = time.monotonic()
        for sender in senders:
            self._tells.add(sender, conv, user, upto, now)
        if self._telling is None and self._tells:
            self._telling = asyncio.get_running_loop().create_task(self._tell_gathered())

    async def _tell_gathered(self) -> None:
        """Each sender's gathered marks as its window closes, until none is open (then a new mark starts it again)."""
        try:
            while (due := self._tells.due()) is not None:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                # shielded: a stop that cancels this task does not cut short batches already taken
                await asyncio.shield(self._publish_batches(self._tells.take(time.monotonic())))
        finally:
            self._telling = None

    async def _publish_batches(self, batches: list[tuple[str, wire.ReceiptBatch]]) -> None:
        try:
            for sender, batch in batches:
                await self._nc.publish(receipt_subject(UserId(sender)), wire.encode(batch))
        except Exception as err:  # ephemeral, as one at a time: saved anyway, and fetchable (GET …/receipts)
            log.info("could not publish gathered receipts: %s", err)

    async def close(self) -> None:
        """The node stops: what is gathered goes now, without waiting out its window."""
        if self._telling is not None:
            await cancel_and_wait(self._telling)
        await self._publish_batches(self._tells.take_all())

    async def flush(self) -> None:
        if not self._unsaved:
            return
        unsaved = self._unsaved.take()
        try:
            await self._store.save_receipts([Receipt(ConversationId(conv), UserId(user), delivered=upto)
                                             for (conv, user), upto in unsaved.items()])
        except (Unavailable, asyncio.CancelledError) as err:  # kept for the next try (the final one at exit)
            self._unsaved.put_back(unsaved)  # a mark raised meanwhile is the higher: it wins
            if isinstance(err, asyncio.CancelledError):
                raise

    def forget(self, user: UserId) -> None:
        """The user's last device left this node."""
        self._typing.forget(user)
        self._marks.forget(user)
