"""Running sync rounds: the I/O half of sync (the plan is ``syncplan``'s, the judging the session's).

One round per link at a time: a new request cancels the running round, waits for it to stop, and
starts from its own point. A round first tells the session it begins (live messages are held from
then on), then reads the stream's bounds and the archiver's floor — after that, so nothing stored
in between can slip past both the round and the held live messages — and then the store and the
stream as planned, waiting for room in the device's queue between batches. Failures of the store or
the bus are told to the device (retryable error frames) and the round is tried again a second later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from parley.node.link import DeviceLink
from parley.node.ports import MessageHistory
from parley.node.session import Delivery
from parley.node.syncplan import SyncPlan, plan_round

from parley import protocol
from parley.bus import StreamReads
from parley.bus.outage import as_unavailable
from parley.errors import CLOSE_INTERNAL, BadRequest, ParleyError, Unavailable
from parley.ids import UserId, conversation_of_message, user_message_filters
from parley.messages import decode_payload, frame_of
from parley.store import StoredMessage

log = logging.getLogger("parley.node")
RETRY_S = 1.0


def delivery_of(m: StoredMessage) -> Delivery:
    return Delivery(m.id, m.conv, m.prev, m.sender, frame_of(m))


class SyncRunner:
    def __init__(self, store: MessageHistory, reads: StreamReads, groups_of: Callable[[UserId], Sequence[str]],
                 *, batch: int) -> None:
        self._store, self._reads, self._groups_of, self._batch = store, reads, groups_of, batch
        self._tasks: dict[DeviceLink, asyncio.Task[None]] = {}

    def schedule(self, link: DeviceLink, after: int) -> None:
        previous = self._tasks.get(link)
        if previous is not None:
            previous.cancel()
        self._tasks[link] = asyncio.get_running_loop().create_task(self._run(link, after, previous))

    def forget(self, link: DeviceLink) -> None:
        task = self._tasks.pop(link, None)
        if task is not None:
            task.cancel()

    async def _run(self, link: DeviceLink, after: int, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        point: int | None = after
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
            link.send(protocol.frame_bytes(protocol.synced_frame(cursor=link.position.delivered)))
            if self._tasks.get(link) is asyncio.current_task():
                del self._tasks[link]

    async def _round(self, link: DeviceLink, after: int) -> int | None:
        link.core.begin_round(after)
        first, last = await self._reads.bounds()
        plan = plan_round(after, first=first, last=last, archived=await self._reads.archived_through())
        if plan.bad_cursor:
            link.send(protocol.error_bytes(BadRequest(
                f"cursor {after} is beyond the newest message {last}", code="bad_cursor", cursor=last)))
            link.core.cap_cursor(last)
            link.core.begin_round(plan.after)
        cursor = await self._from_store(link, plan)
        if cursor < plan.last:
            await self._from_stream(link, plan, cursor)
        action = link.core.finish_round(plan.last)
        link.wake()
        return action.point if action is not None else None

    async def _from_store(self, link: DeviceLink, plan: SyncPlan) -> int:
        cursor = plan.after
        try:
            while cursor < plan.store_upto:
                batch = await self._store.messages_for_user(link.user, after=cursor, upto=plan.store_upto,
                                                            limit=self._batch)
                for m in batch:
                    self._synced(link, delivery_of(m))
                if len(batch) < self._batch:
                    return plan.store_upto
                cursor = batch[-1].id
                await self._pace(link)
        except Unavailable:
            if not plan.stream_holds_after(plan.after):
                raise
            log.warning("conn %s: store unavailable, syncing from the stream", link.conn_id,
                        extra={"conn": link.conn_id})
            return plan.after
        return cursor

    async def _from_stream(self, link: DeviceLink, plan: SyncPlan, cursor: int) -> None:
        filters = user_message_filters(link.user, self._groups_of(link.user))
        rows = self._reads.batches(filters, start=plan.stream_start(cursor), end=plan.last, size=self._batch)
        async for batch in rows:
            for seq, subject, data in batch:
                self._synced(link, delivery_of(decode_payload(seq, conversation_of_message(subject), data)))
            await self._pace(link)

    def _synced(self, link: DeviceLink, m: Delivery) -> None:
        if link.core.synced(m):
            log.error("conn %s: store/stream gap in %s before %s", link.conn_id, m.conv, m.id,
                      extra={"conn": link.conn_id})

    async def _pace(self, link: DeviceLink) -> None:
        link.wake()
        await link.wait_room()
