"""Running sync rounds: the I/O half of sync (the plan is ``syncplan``'s, the judging the session's).

One round per link at a time: a new request cancels the running round, waits for it to stop, and
starts from its own point. A round first tells the session it begins (live messages are held from
then on; the user's subscriptions are already in place), then takes the node's shard reading
(``ShardWatch``) made after that moment — so anything stored later arrives live — and, shard by shard,
reads what the device misses: from the store up to the archiver's floor, from the stream above it. A hole
in the store below the floor (a message whose ``prev`` the round never read) is filled from the stream
while the stream still holds it (``parley.gaps``), and the archiver is asked to write it back.
When the floor is behind, the round first waits for the archiver (up to ``PARLEY_FLOOR_WAIT_S``), so a
device that is up to date, or only a little behind, costs no JetStream API call. Failures of the store
or the bus are told to the device (retryable error frames) and the round is tried again a second later.

A shard the reading could not reach (another region's, while the link between regions is down) is
skipped: the round finishes over the others, so local conversations go live, and the session holds that
shard in doubt (no cursor past where the device stood in it). Once the shard answers again the connection
is resynced from there (``_revisit``, and the node's resync of everyone), so what was sent there meanwhile
arrives without a reconnect.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from parley.node.bounds import Arrival, Reading, ShardWatch
from parley.node.link import DeviceLink
from parley.node.ports import MessageHistory
from parley.node.session import Delivery
from parley.node.syncplan import SyncPlan, plan_round

from parley import protocol
from parley.bus import StreamReads
from parley.bus.outage import as_unavailable
from parley.errors import CLOSE_INTERNAL, BadRequest, ParleyError, Unavailable
from parley.gaps import Hole, fill_span
from parley.ids import ConversationId, UserId
from parley.messages import decode_payload, frame_of
from parley.shards import Vector, conversation_of_message, message_subject, pack, pos_of_id, user_message_filters
from parley.store import StoredMessage

log = logging.getLogger("parley.node")
RETRY_S = 1.0
FLOOR_POLL_S = 0.1  # while a round waits for the archiver, it looks again this often


def delivery_of(m: StoredMessage) -> Delivery:
    return Delivery(m.id, m.conv, m.prev, m.sender, frame_of(m))


def _floor(reading: Reading, shard: int, plan: SyncPlan) -> int:
    """The archiver's floor in a newer reading (the plan's own when the shard did not answer this time)."""
    b = reading.shards[shard] if shard < len(reading.shards) else None
    return b.archived if b is not None else plan.store_upto


class SyncRunner:
    def __init__(self, store: MessageHistory, reads: StreamReads, watch: ShardWatch,
                 groups_of: Callable[[UserId], Sequence[str]], shard_of: Callable[[str], int | None],
                 synced_frame: Callable[[Vector], bytes], *, batch: int, floor_wait_s: float,
                 repair: Callable[[int, list[int]], None] = lambda shard, seqs: None) -> None:
        self._store, self._reads, self._watch, self._groups_of = store, reads, watch, groups_of
        self._shard_of, self._synced_frame = shard_of, synced_frame
        self._batch, self._floor_wait = batch, floor_wait_s
        self._repair = repair  # (shard, sequences): ask the archiver to write them back to the store
        self._tasks: dict[DeviceLink, asyncio.Task[None]] = {}
        self._skipped: dict[DeviceLink, frozenset[int]] = {}  # shards the link's last round could not reach
        self._revisits: dict[DeviceLink, asyncio.Task[None]] = {}
        self._arrivals: dict[DeviceLink, Arrival] = {}  # counted in the watch until the link's first round asks

    def arriving(self, link: DeviceLink, arrival: Arrival) -> None:
        """``link`` is a new connection counted in the watch (``ShardWatch.arriving``): its first round's ask counts
        it out (or ``forget``, if it goes without one)."""
        self._arrivals[link] = arrival

    def schedule(self, link: DeviceLink, after: Vector) -> None:
        previous = self._tasks.get(link)
        if previous is not None:
            previous.cancel()
        self._tasks[link] = asyncio.get_running_loop().create_task(self._run(link, after, previous))

    def forget(self, link: DeviceLink) -> None:
        self._skipped.pop(link, None)
        arrival = self._arrivals.pop(link, None)
        if arrival is not None:
            arrival.done()
        for task in (self._tasks.pop(link, None), self._revisits.pop(link, None)):
            if task is not None:
                task.cancel()

    def behind(self) -> int:
        """Connections waiting for a shard that did not answer."""
        return len(self._revisits)

    async def _revisit(self, link: DeviceLink, shards: frozenset[int]) -> None:
        """Once none of ``shards`` is unreachable in the node's reading, resync the link from where it stands."""
        while not link.closed:
            await asyncio.sleep(RETRY_S)
            latest = self._watch.latest
            if latest is not None and not shards & latest.unreachable() and len(latest.shards) > max(shards):
                if self._revisits.get(link) is asyncio.current_task():
                    del self._revisits[link]
                link.act(link.core.resync())
                return

    async def _run(self, link: DeviceLink, after: Vector, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        point: Vector | None = after
        while point is not None and not link.closed:
            try:
                point = await self._round(link, point)
            except ParleyError as err:
                link.send(protocol.error_bytes(err))
                await asyncio.sleep(RETRY_S)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                fault = as_unavailable(err, "syncing")
                if fault is not None:  # an election: say so and try the round again
                    link.send(protocol.error_bytes(fault))
                    await asyncio.sleep(RETRY_S)
                    continue
                log.exception("conn %s: sync failed", link.conn_id, extra={"conn": link.conn_id})
                link.close(CLOSE_INTERNAL, "sync failed")
                return
        if not link.closed:
            link.send(self._synced_frame(link.core.take_cursor() or link.core.cursor_position()))
            if self._tasks.get(link) is asyncio.current_task():
                del self._tasks[link]
            skipped = self._skipped.pop(link, frozenset())
            if skipped and link not in self._revisits:
                self._revisits[link] = asyncio.get_running_loop().create_task(self._revisit(link, skipped))

    async def _round(self, link: DeviceLink, after: Vector) -> Vector | None:
        link.core.begin_round(after)
        reading = await self._watch.after(self._watch.now(), came=self._arrivals.pop(link, None))
        skipped = reading.unreachable()
        plans = {}
        for shard, b in enumerate(reading.shards):
            if b is None:
                continue
            plan = plan_round(after.get(shard, 0), first=b.first, last=b.last, archived=b.archived)
            if plan.bad_cursor:
                link.send(protocol.error_bytes(BadRequest(
                    f"cursor is beyond shard {shard}'s newest message", code="bad_cursor")))
                link.core.cap_cursor(shard, b.last)
            plans[shard] = plan
        if any(p.bad_cursor for p in plans.values()):
            link.core.begin_round({s: p.after for s, p in plans.items()})
        plans = await self._wait_for_floor(plans)
        for shard, plan in plans.items():
            cursor = await self._from_store(link, shard, plan)
            if cursor < plan.last:
                await self._from_stream(link, shard, plan, cursor)
        action = link.core.finish_round({s: p.last for s, p in plans.items()}, skipped=skipped)
        if skipped:
            self._skipped[link] = skipped
        link.wake()
        return action.point if action is not None else None

    async def _wait_for_floor(self, plans: dict[int, SyncPlan]) -> dict[int, SyncPlan]:
        """Where the stream would be read (the floor is behind what the round needs), wait a little for the
        archiver to pass it: then the store has it all."""
        deadline = time.monotonic() + self._floor_wait
        while any(p.store_upto < p.last and p.after < p.last for p in plans.values()):
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(FLOOR_POLL_S)  # every waiting round on the node shares the next reading
            try:
                newer = await self._watch.after(self._watch.now(), timeout=max(0.01, deadline - time.monotonic()))
            except Unavailable:
                break
            plans = {s: plan_round(p.after, first=p.first, last=p.last, archived=_floor(newer, s, p))
                     for s, p in plans.items()}
        return plans

    async def _from_store(self, link: DeviceLink, shard: int, plan: SyncPlan) -> int:
        """Reads the store for (after, store_upto] in ``shard``; returns the sequence read through."""
        cursor = plan.after
        try:
            while cursor < plan.store_upto:
                batch = await self._store.messages_for_user(link.user, shard=shard, after=pack(shard, cursor),
                                                            upto=pack(shard, plan.store_upto), limit=self._batch)
                for m in batch:
                    await self._deliver(link, shard, plan, delivery_of(m))
                if len(batch) < self._batch:
                    return plan.store_upto
                cursor = batch[-1].id >> 6
                await self._pace(link)
        except Unavailable:
            if not plan.stream_holds_after(plan.after):
                raise
            log.warning("conn %s: store unavailable, syncing from the stream", link.conn_id,
                        extra={"conn": link.conn_id})
            return plan.after
        return cursor

    async def _from_stream(self, link: DeviceLink, shard: int, plan: SyncPlan, cursor: int) -> None:
        groups = [g for g in self._groups_of(link.user) if self._shard_of(g) in (shard, None)]
        filters = user_message_filters(shard, link.user, groups)
        rows = self._reads.batches(shard, filters, start=plan.stream_start(cursor), end=plan.last, size=self._batch)
        async for batch in rows:
            for id, subject, data in batch:
                await self._deliver(link, shard, plan,
                                    delivery_of(decode_payload(id, conversation_of_message(subject), data)))
            await self._pace(link)

    async def _deliver(self, link: DeviceLink, shard: int, plan: SyncPlan, m: Delivery) -> None:
        """One message the round read, after any hole before it in its conversation that the stream can fill."""
        hole = link.core.hole_before(m)
        if hole is not None:
            await self._fill(link, shard, plan, m.conv, hole)
        if link.core.synced(m):
            log.error("conn %s: store/stream gap in %s before %s", link.conn_id, m.conv, m.id,
                      extra={"conn": link.conn_id})

    async def _fill(self, link: DeviceLink, shard: int, plan: SyncPlan, conv: str, hole: Hole) -> None:
        """Read the hole's messages from the stream (those it still holds) into the round, and ask the
        archiver to write them back to the store (``bus.repair``), so the next reader finds them there."""
        span = fill_span(hole, plan.first)
        if span is None:
            return
        filled: list[int] = []
        async for batch in self._reads.batches(shard, [message_subject(shard, conv)], start=span[0], end=span[1],
                                               size=self._batch):
            for id, _, data in batch:
                link.core.fill(delivery_of(decode_payload(id, ConversationId(conv), data)))
                filled.append(pos_of_id(id))
        if filled:
            log.warning("conn %s: %d messages of %s missing from the store, filled from the stream",
                        link.conn_id, len(filled), conv, extra={"conn": link.conn_id})
            self._repair(shard, filled)

    async def _pace(self, link: DeviceLink) -> None:
        link.wake()
        await link.wait_room()
