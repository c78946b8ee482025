"""Presence on a node: heartbeats of the devices connected here out, friends' changes in.

- The node tells the presence workers of each device the moment it connects and the moment it disconnects
  (so the worker's clock starts from the last moment the device was really there), one subject per presence
  partition (``hb.<partition>.<node>``: only the partition's owner hears them), and every ``presence_beat_s``
  beats once per partition without listing devices: "I still hold what I said", with the number of its last
  change there (``node/presence_changes.py``, ADR 0049). A worker that missed a change, or is new to the
  partition, asks (``hb.ask.<node>``) and gets the partition's report, every device held here; each
  partition's report also goes out by itself every ``REPORT_EVERY`` beats.
- While a user has a device here, the node listens to ``presence.<friend>`` for each of their
  friends (one subscription per friend, however many local users share them) and forwards each
  change to those users' devices as a ``presence`` frame. Friendships made or ended while connected
  arrive as control events and change the subscriptions at once. The same friend sets answer whether a
  user may send in a DM (``friends_of``, node/membership.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from collections.abc import Set as AbstractSet

from parley.node.hub import Hub
from parley.node.link import DeviceLink
from parley.node.presence_changes import ChangeNumbers

from parley import protocol, wire
from parley.bus import Bus
from parley.ids import UserId
from parley.presence_bus import PRESENCE_PREFIX, ask_subject, heartbeat_subject, presence_subject
from parley.presence_partitions import partition_of

log = logging.getLogger("parley.node")

REPORT_EVERY = 60  # beats between a partition's unasked reports: 5 minutes at the default 5 s beat
_NO_FRIENDS: frozenset[str] = frozenset()  # shared by every user here without friends (an empty set is 0.24 KB)


def now_ms() -> int:
    return int(time.time() * 1000)


class PresenceRelay:
    def __init__(self, nc: Bus, hub: Hub[DeviceLink], node_id: str, partitions: int) -> None:
        self._nc, self._hub, self._node, self._partitions = nc, hub, node_id, partitions
        self._friends_of: dict[UserId, set[str] | frozenset[str]] = {}
        self._watchers: dict[str, set[UserId]] = {}
        self._subs: dict[str, object] = {}
        # each partition's heartbeat subject from this node, worked out once (not one string per user)
        self._beat_subjects = [heartbeat_subject(p, node_id) for p in range(partitions)]
        self._lock = asyncio.Lock()
        # a restart's numbers start again from 1: its incarnation, its start in µs, tells the workers so
        self._numbers = ChangeNumbers(node_id, time.time_ns() // 1000, partitions, REPORT_EVERY)
        self._sending = asyncio.Lock()  # numbers given and published in the same order
        self._asks: object | None = None
        self._answering: set[asyncio.Task[None]] = set()

    # ---- heartbeats ------------------------------------------------------------------------------

    def _partition(self, user: str) -> int:
        return partition_of(user, self._partitions)

    async def beat(self) -> None:
        """Each partition's ``StillHeld`` (or its report, when due); the first beat also starts listening to asks."""
        if self._asks is None:
            self._asks = await self._nc.subscribe_ordered(ask_subject(self._node), self.on_ask)
        async with self._sending:
            beats = self._numbers.beat(now_ms())
            due = {p for p, beat in enumerate(beats) if beat is None}
            for p, beat in enumerate(beats):
                if beat is not None:
                    await self._nc.publish(self._beat_subjects[p], wire.encode(beat))
            if due:
                await self._report(due)

    def on_ask(self, subject: str, headers: dict[str, str] | None, data: bytes) -> None:
        try:
            ask = wire.decode(data)
        except wire.WireError as err:
            log.warning("dropped a presence ask: %s", err.message)
            return
        if isinstance(ask, wire.ReportAsk) and 0 <= ask.partition < self._partitions:
            task = asyncio.get_running_loop().create_task(self._answer(ask.partition))
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)

    async def _answer(self, partition: int) -> None:
        try:
            async with self._sending:
                await self._report({partition})
        except Exception as err:  # NATS away: the worker asks again at the next beat
            log.info("presence report of partition %d: %r", partition, err)

    async def _report(self, partitions: set[int]) -> None:
        """These partitions' devices, in one pass over the links (a closing one is not held: its departure
        follows); called holding ``_sending``, so no change is numbered between the list and its number."""
        held: dict[int, list[tuple[str, str]]] = {p: [] for p in partitions}
        part_of = self._partition
        for link in self._hub:
            devices = held.get(part_of(link.user))
            if devices is not None and not link.closed:
                devices.append((link.user, link.device))
        at = now_ms()
        for p, devices in held.items():
            for report in self._numbers.report(p, devices, at):
                await self._nc.publish(self._beat_subjects[p], wire.encode(report))

    async def arrived(self, link: DeviceLink) -> None:
        """A device connected: held from now (a user back within the timeout never flickers)."""
        await self._one(link, True)

    async def gone(self, link: DeviceLink) -> None:
        """A device disconnected: its last moment, where the offline timeout starts."""
        await self._one(link, False)

    async def _one(self, link: DeviceLink, here: bool) -> None:
        p = self._partition(link.user)
        async with self._sending:
            change = self._numbers.change(p, link.user, link.device, here, now_ms())
            try:
                await self._nc.publish(self._beat_subjects[p], wire.encode(change))
            except Exception:  # NATS away: the number is missed, the next beat says so, the worker asks
                pass

    # ---- friends' presence -----------------------------------------------------------------------

    async def follow(self, user: UserId, friends: Sequence[str]) -> None:
        """``user``'s first device arrived here: listen to their friends."""
        async with self._lock:
            self._friends_of[user] = _NO_FRIENDS  # a set of its own with the first friend (``_befriend``)
            for friend in friends:
                await self._watch(user, friend)

    def friends_of(self, user: UserId) -> AbstractSet[str] | None:
        """``user``'s friends as this node knows them live (None: the user has no device set up here)."""
        return self._friends_of.get(user)

    def note_friendship(self, user: UserId, other: str, friends: bool) -> None:
        """The friendship's change in ``friends_of`` at once, before ``friendship``'s awaits: a DM send
        right after an unfriend or a block is checked against it (node/membership.py)."""
        known = self._friends_of.get(user)
        if known is None:
            return
        if friends:
            self._befriend(user, other)
        elif isinstance(known, set):  # else the shared empty one: no one to drop
            known.discard(other)
            if not known:
                self._friends_of[user] = _NO_FRIENDS

    async def unfollow(self, user: UserId) -> None:
        async with self._lock:
            for friend in self._friends_of.pop(user, set()):
                await self._unwatch(user, friend)

    async def friendship(self, user: UserId, other: str, friends: bool) -> None:
        """A friendship of ``user`` (connected here) began or ended."""
        async with self._lock:
            if user not in self._friends_of:
                return
            if friends:
                await self._watch(user, other)
            else:
                self.note_friendship(user, other, False)
                await self._unwatch(user, other)

    def _befriend(self, user: UserId, friend: str) -> None:
        known = self._friends_of[user]
        if isinstance(known, frozenset):  # the shared empty one: never changed in place
            known = self._friends_of[user] = set(known)
        known.add(friend)

    async def _watch(self, user: UserId, friend: str) -> None:
        self._befriend(user, friend)
        self._watchers.setdefault(friend, set()).add(user)
        if friend not in self._subs:
            self._subs[friend] = await self._nc.subscribe_ordered(presence_subject(friend), self.on_presence)

    async def _unwatch(self, user: UserId, friend: str) -> None:
        watchers = self._watchers.get(friend, set())
        watchers.discard(user)
        if not watchers:
            self._watchers.pop(friend, None)
            sub = self._subs.pop(friend, None)
            if sub is not None:
                await self._nc.unsubscribe_ordered(sub)

    def on_presence(self, subject: str, headers: dict[str, str] | None, data: bytes) -> None:
        friend = subject[len(PRESENCE_PREFIX):]
        try:
            change = wire.decode(data)
        except wire.WireError as err:
            log.warning("dropped a presence change of %s: %s", friend, err.message)
            return
        if not isinstance(change, wire.PresenceChange):
            return
        frame = protocol.frame_bytes(protocol.presence_frame([change.public()]))
        for user in self._watchers.get(friend, ()):
            for link in self._hub.of_user(user):
                link.send(frame)
