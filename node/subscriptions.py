"""A user's subscriptions on this node, from their first device's arrival to their last one's leaving,
and the control events that reach them (``ctl.user.<user>``, ``parley.wire`` types, from the API).

Per user, three subscriptions (``user_subjects``): the DM deliveries and events, and the control subject
with the group receipts (``rcpt.user.<user>``, from other nodes),
plus each group with a member here (``GroupRoutes``) and each friend's presence (``PresenceRelay``).
Order matters: the control subject first, then the store (groups, friends) — a membership or
friendship change made while we read is either in what we read or arrives as an event, which is
held until the read is done and applied after; friendship events missed while NATS was away are made
up for when it comes back (``refresh_friends``). A per-user lock makes a second device wait for the
first one's set-up, and a leave wait for an arrival in progress. A user's first device here is checked in the
same store call (``first_arrival``, ADR 0051): its hello's session is read after the subscriptions, so
everything for the user but the deliveries (which its first sync reads) is held until its link is attached.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, Protocol, TypeVar

from parley.node.events import ConversationEvents
from parley.node.groups import GroupRoutes
from parley.node.hub import Hub
from parley.node.link import DeviceLink
from parley.node.ports import Memberships, Sessions
from parley.node.presence import PresenceRelay

from parley import contact_frames, protocol, wire
from parley.bus import Bus, Handler
from parley.bus.ordered import HeadedHandler
from parley.errors import CLOSE_REVOKED, Unavailable
from parley.ids import DELIVERY_PREFIX, EVENT_PREFIX, DeviceId, SessionId, UserId
from parley.store import ConnectReads

log = logging.getLogger("parley.node")
FRIEND_WAVE = 64  # users whose friends are read at once after a NATS reconnect
Deliver = Callable[..., None]  # (subject, raw headers, data, only=user): a delivery through a user's subscription
T = TypeVar("T")
CONTROL_PREFIX, RECEIPT_PREFIX = "ctl.", "rcpt."  # parley.ids.control_subject, receipt_subject


def user_subjects(user: UserId) -> tuple[str, str, str]:
    """A user's three subscriptions (ADR 0035): the deliveries and events of the user's DMs, both sides
    (``dlv.dm.<a>.<b>``, ``evt.dm.<a>.<b>``), and the user's control and receipt subjects (``ctl.user.<user>``,
    ``rcpt.user.<user>``): each handler tells them apart by the first token. Three interests in nats-server
    instead of six (~0.9 KB each, ADR 0028)."""
    return f"*.dm.{user}.*", f"*.dm.*.{user}", f"*.user.{user}"


class SetUpReads(Memberships, Sessions, Protocol):
    """The store as a user's set-up reads it."""


class UserSubscriptions:
    def __init__(self, bus: Bus, store: SetUpReads, hub: Hub[DeviceLink], *, groups: GroupRoutes,
                 presence: PresenceRelay, events: ConversationEvents, deliver: Deliver) -> None:
        self._bus, self._store, self._hub = bus, store, hub
        self._groups, self._presence, self._events, self._deliver = groups, presence, events, deliver
        self._subs: dict[UserId, list[object]] = {}
        # a user's lock lives while a set-up or a leave of theirs holds it or waits for it, not for the user's whole
        # stay (an idle user's Lock and dict entry were ~0.3 KB, ADR 0041)
        self._locks: weakref.WeakValueDictionary[UserId, asyncio.Lock] = weakref.WeakValueDictionary()
        # what is held while a user's set-up reads, applied once it is done (a first arrival's: all but the
        # deliveries; ``arrive``'s: the group and friendship changes)
        self._loading: dict[UserId, list[Callable[[], None]]] = {}
        self._first: set[UserId] = set()  # users whose set-up is a first arrival's: their link is not attached yet
        self._chores: set[asyncio.Task[None]] = set()
        # one handler per subject shape for every user here, the user read from the subject the server matched to
        # that user's subscription: no handler objects per user (ADR 0039)
        self._dm_first: HeadedHandler = self._on_dm_first
        self._dm_second: HeadedHandler = self._on_dm_second
        self._mine: Handler = self._on_mine

    async def arrive(self, user: UserId, session: SessionId) -> ConnectReads | None:
        """A device of ``user`` is attached: make sure the user's subscriptions are in place. If this set them
        up, what it read once the control subject was subscribed, ``session`` included (the device's check
        after set-up, ``revocation.check_again``, takes it instead of a read of its own)."""
        async with self._lock(user):
            if user in self._subs:
                return None
            self._loading[user] = []
            try:
                await self._subscribe(user)
                reads = await self._store.connect_reads(session, user=user)  # one store call (ADR 0035)
                await self._join(user, reads)
            finally:
                held = self._loading.pop(user, [])
            for apply in held:
                apply()
            return reads

    async def first_arrival(self, user: UserId, session: SessionId, *, device: DeviceId | None,
                            admit: Callable[[ConnectReads], T]) -> tuple[ConnectReads, T] | None:
        """The first device of ``user`` here, set up with one store call (ADR 0051): the user's subjects subscribed,
        then the session, ``device``'s cursor (None: not asked), groups and friends read at once; ``admit`` judges
        them (welcome and attach; an exception refuses the hello) before the groups are joined and the friends
        followed. What was read and what ``admit`` returned, or None if the user is set up here already (the
        caller checks the session on its own). Everything that came on the user's subjects meanwhile but the
        deliveries (the first sync reads them) is held and applied after: a revocation finds the attached link.
        Refused or failed, nothing is left behind: the subjects are unsubscribed and the held events dropped."""
        async with self._lock(user):
            if user in self._subs:
                return None
            self._loading[user] = []
            self._first.add(user)
            try:
                await self._subscribe(user)
                reads = await self._store.connect_reads(session, device=device, user=user)
                admitted = admit(reads)
                await self._join(user, reads)
            except BaseException:
                await self._drop(user)
                raise
            finally:
                self._first.discard(user)
                held = self._loading.pop(user, [])
            for apply in held:
                apply()
            return reads, admitted

    async def _subscribe(self, user: UserId) -> None:
        one, other, mine = user_subjects(user)
        # plain subscriptions, not a queue group per node: a member of a group that has just moved to another
        # NATS server can be chosen for a message and lose it (ADR 0033, "Withdrawn"); the DM ones headed: a
        # delivery's stream and sequence are read from the header block as it came (ADR 0037)
        self._subs[user] = [await self._bus.subscribe_headed(one, self._dm_first),
                            await self._bus.subscribe_headed(other, self._dm_second),
                            await self._bus.subscribe_ordered(mine, self._mine)]
        await self._bus.flush(timeout=5)  # the server has our interest before the store is read

    async def _join(self, user: UserId, reads: ConnectReads) -> None:
        friends = [other for other, state in reads.friends or () if state == "friends"]
        await self._groups.join_all(user, reads.groups or [])
        await self._presence.follow(user, friends)
        if reads.groups or friends:  # a user with neither subscribed nothing more: no round trip to wait for
            await self._bus.flush(timeout=5)  # the server has our interest before sync reads the stream

    async def leave(self, user: UserId) -> None:
        """A device of ``user`` left: if it was the last one here, drop the user's subscriptions."""
        async with self._lock(user):
            if not self._hub.of_user(user):
                await self._drop(user)

    async def _drop(self, user: UserId) -> None:
        await self._bus.unsubscribe_ordered(*self._subs.pop(user, []))
        await self._groups.leave_all(user)
        await self._presence.unfollow(user)
        self._events.forget(user)

    def _lock(self, user: UserId) -> asyncio.Lock:
        """The user's lock: the one a set-up or leave under way holds, else a new one (kept alive by its users)."""
        lock = self._locks.get(user)
        if lock is None:
            lock = self._locks[user] = asyncio.Lock()
        return lock

    async def refresh_friends(self) -> int:
        """Friendships that began or ended while this node was cut off from NATS (their control events passed
        it by): each followed user's friends read again, a wave at a time, and the difference applied as the
        events would have been (DM sends, presence). How many changed; a store that does not answer stops it
        (the next reconnect tries again)."""
        users, changed = list(self._subs), 0
        for start in range(0, len(users), FRIEND_WAVE):
            wave = users[start:start + FRIEND_WAVE]
            try:
                found = await asyncio.gather(*(self._store.list_friends(u) for u in wave))
            except Unavailable as err:
                log.warning("could not check the friendships of %d users: %s", len(users) - start, err.message)
                return changed
            for user, rows in zip(wave, found, strict=True):
                known = self._presence.friends_of(user)
                if known is None:
                    continue
                now = {other for other, state in rows if state == "friends"}
                for other, friends in [*((o, True) for o in now - known), *((o, False) for o in known - now)]:
                    self._apply(user, wire.FriendChange(other, friends))
                    changed += 1
        return changed

    def _on_dm_first(self, subject: str, headers: bytes | None, data: bytes) -> None:
        self.on_dm(UserId(subject.split(".", 3)[2]), subject, headers, data)  # *.dm.<user>.*

    def _on_dm_second(self, subject: str, headers: bytes | None, data: bytes) -> None:
        self.on_dm(UserId(subject.split(".", 3)[3]), subject, headers, data)  # *.dm.*.<user>

    def _on_mine(self, subject: str, headers: dict[str, str] | None, data: bytes) -> None:
        self.on_user(UserId(subject.split(".", 2)[2]), subject, headers, data)  # *.user.<user>

    def on_dm(self, user: UserId, subject: str, headers: bytes | None, data: bytes) -> None:
        """A delivery or an event of one of ``user``'s DMs (``headers``: the block as it came); anything else on
        ``*.dm.…`` is not ours."""
        if subject.startswith(DELIVERY_PREFIX):
            self._deliver(subject, headers, data, only=user)
        elif subject.startswith(EVENT_PREFIX):
            if user in self._first:  # no link yet: for it once it is attached
                self._loading[user].append(partial(self._events.on_event, subject, None, data, only=user))
                return
            self._events.on_event(subject, None, data, only=user)  # an event's headers are not read

    def on_user(self, user: UserId, subject: str, headers: dict[str, str] | None, data: bytes) -> None:
        """``ctl.user.<user>`` (the API's alone) or ``rcpt.user.<user>`` (any node's): kept apart as before."""
        if subject.startswith(CONTROL_PREFIX):
            self.on_control(user, subject, headers, data)
        elif subject.startswith(RECEIPT_PREFIX):
            self.on_receipt(user, subject, headers, data)

    def on_control(self, user: UserId, subject: str, headers: dict[str, str] | None, data: bytes) -> None:
        try:
            message = wire.decode(data)
        except wire.WireError as err:
            log.warning("dropped a control message for %s: %s", user, err.message)
            return
        if user in self._first or (isinstance(message, wire.GroupChange | wire.FriendChange) and user in self._loading):
            self._loading[user].append(partial(self._apply, user, message))  # once the groups and friends are read
            return
        self._apply(user, message)

    def on_receipt(self, user: UserId, subject: str, headers: dict[str, str] | None, data: bytes) -> None:
        """A group receipt from another node: nothing else is taken on this subject, which every node may
        publish on (a control message comes from the API alone)."""
        try:
            message = wire.decode(data)
        except wire.WireError as err:
            log.warning("dropped a receipt for %s: %s", user, err.message)
            return
        if user in self._first:  # no link yet: for it once it is attached
            self._loading[user].append(partial(self.on_receipt, user, subject, headers, data))
            return
        if isinstance(message, wire.ReceiptBatch):
            self._events.on_receipts(user, message)
        elif isinstance(message, wire.ReceiptNotice):
            self._events.on_receipt(user, message)

    def _apply(self, user: UserId, message: wire.BusMessage) -> None:
        match message:
            case wire.Revoke(session=session):
                for link in list(self._hub.of_user(user)):
                    if link.session == session:
                        link.close(CLOSE_REVOKED, "session revoked")
            case wire.GroupChange():
                self._groups.on_membership(user, message)
            case wire.ReceiptNotice():
                self._events.on_receipt(user, message)
            case wire.FriendChange(user_id=other, friends=friends, state=state):
                if state not in ("incoming", "outgoing"):  # a pending request changes nothing here
                    self._presence.note_friendship(user, other, friends)  # at once: DM sends check it
                    self._chore(self._presence.friendship(user, other, friends))
                if state is not None:
                    self._tell(user, protocol.frame_bytes(contact_frames.friend_frame(other, state)))
            case wire.ProfileChange():
                self._tell(user, protocol.frame_bytes(contact_frames.user_frame(message.public())))
            case _:
                log.warning("unexpected %s on %s's control subject", message.kind, user)

    def _tell(self, user: UserId, frame: bytes) -> None:
        for link in self._hub.of_user(user):
            link.send(frame)

    def _chore(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)
