"""A node's group subscriptions and the live effect of membership changes.

A node listens to a group's deliveries (``dlv.g.<id>``, their header blocks unparsed: ``subscribe_headed``) and
events (``evt.g.<id>``) exactly while a member with a device here is in the group; ``reconcile`` makes the
subscriptions match the hub, under a per-group lock, so joins and leaves racing each other always end in the
right state.
Membership events arrive on users' control subjects from the API: the hub is updated before
anything else, so a removed member stops receiving at once; a member who joins is subscribed, then
re-synced from where their devices stand, so messages sent around the moment of joining are not
missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence

from parley.node.hub import Hub
from parley.node.link import DeviceLink

from parley import protocol, wire
from parley.bus import Bus
from parley.bus.ordered import HeadedHandler
from parley.ids import UserId, event_subject, group_delivery_subject, is_group
from parley.shards import Vector, pos_of_id, shard_of_id

log = logging.getLogger("parley.node")
Handler = Callable[[str, dict[str, str] | None, bytes], None]


class GroupRoutes:
    def __init__(self, nc: Bus, hub: Hub[DeviceLink], on_delivery: HeadedHandler, on_event: Handler,
                 resync: Callable[[DeviceLink, Vector], None]) -> None:
        self._nc, self._hub = nc, hub
        self._on_delivery, self._on_event, self._resync = on_delivery, on_event, resync
        self._subs: dict[str, tuple[object, object]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._chores: set[asyncio.Task[None]] = set()

    async def join_all(self, user: UserId, convs: Sequence[str]) -> None:
        """A user's first device arrived: they are in these groups."""
        for conv in convs:
            self._hub.join_group(user, conv)
            await self.reconcile(conv)

    async def leave_all(self, user: UserId) -> None:
        """A user's last device left."""
        for conv in self._hub.forget_groups(user):
            await self.reconcile(conv)

    async def reconcile(self, conv: str) -> None:
        lock = self._locks.setdefault(conv, asyncio.Lock())
        async with lock:
            wanted, subs = self._hub.has_members_of(conv), self._subs.get(conv)
            if wanted and subs is None:
                self._subs[conv] = (
                    await self._nc.subscribe_headed(group_delivery_subject(conv), self._on_delivery),
                    await self._nc.subscribe_ordered(event_subject(conv), self._on_event))
            elif not wanted and subs is not None:
                del self._subs[conv]
                for sub in subs:
                    await self._nc.unsubscribe_ordered(sub)
            if not wanted:
                self._locks.pop(conv, None)

    def on_membership(self, user: UserId, change: wire.GroupChange) -> None:
        """A ``group`` control event for ``user``: apply it, tell the user's devices."""
        links = self._hub.of_user(user)
        if not links or not is_group(change.conv):
            return
        if change.event == "joined":
            self._hub.join_group(user, change.conv)
            self._chore(self._after_join(user, change.conv, change.since or 0))
        elif change.event == "left":
            self._hub.leave_group(user, change.conv)
            self._chore(self.reconcile(change.conv))
        frame = protocol.frame_bytes(protocol.group_frame(change.details()))
        for link in links:
            link.send(frame)

    async def _after_join(self, user: UserId, conv: str, since: int) -> None:
        """Subscribed, then every device of the user syncs again from no later than the group's last
        message before the join (what it already has, it drops)."""
        try:
            await self.reconcile(conv)
            await self._nc.flush(timeout=5)
        finally:
            for link in self._hub.of_user(user):  # ``since`` is an id in the group's shard (pos 0 if empty)
                point = link.position.resume()
                shard = shard_of_id(since)
                point[shard] = min(point.get(shard, 0), pos_of_id(since))
                self._resync(link, point)

    def _chore(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._chores.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._chores.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("group subscription change failed: %r", task.exception())
