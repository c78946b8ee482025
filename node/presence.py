"""Presence on a node: heartbeats of the devices connected here out, friends' changes in.

- Every ``presence_beat_s`` the node reports each connected device to the presence workers in
  batches, one subject per presence partition (``hb.<partition>.<node>``: only the partition's owner
  hears them), and once more the moment a device disconnects, so the worker's clock starts from the
  last moment the device was really there.
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

from parley import protocol, wire
from parley.bus import Bus
from parley.ids import UserId
from parley.presence_bus import PRESENCE_PREFIX, heartbeat_subject, presence_subject
from parley.presence_partitions import partition_of

log = logging.getLogger("parley.node")

BATCH = 2000  # heartbeats per message, well under NATS's max payload
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

    # ---- heartbeats ------------------------------------------------------------------------------

    def _subject(self, user: UserId) -> str:
        return self._beat_subjects[partition_of(user, self._partitions)]

    async def beat(self) -> None:
        at = now_ms()
        by_subject: dict[str, list[tuple[str, str, int]]] = {}
        subject_of = self._subject
        for link in self._hub:
            by_subject.setdefault(subject_of(link.user), []).append((link.user, link.device, at))
        for subject, beats in by_subject.items():
            for start in range(0, len(beats), BATCH):
                await self._nc.publish(subject, wire.encode(wire.Heartbeats(tuple(beats[start:start + BATCH]))))

    async def arrived(self, link: DeviceLink) -> None:
        """A device connected: heard from now (a user back within the timeout never flickers)."""
        await self._one(link)

    async def gone(self, link: DeviceLink) -> None:
        """A device disconnected: its last moment, where the offline timeout starts."""
        await self._one(link)

    async def _one(self, link: DeviceLink) -> None:
        try:
            await self._nc.publish(self._subject(link.user),
                                   wire.encode(wire.Heartbeats(((link.user, link.device, now_ms()),))))
        except Exception:  # NATS away: the regular beats stand
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
