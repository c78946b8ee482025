"""The presence worker's announcements: each transition's bucket write, then its ``presence.<user>`` event.

A transition is queued (``announce``, which does not wait) and a drain task writes what is queued in
rounds (ADR 0044): a round takes every queued transition up to a user's second one, sends their bucket
writes together and waits for all their acks, then publishes their events in order. A round starts
``GATHER_S`` after the drain wakes or the last round ends, so the transitions of a storm's next few
milliseconds share its writes (ADR 0052). Under a connect
storm many users come online between two turns of the drain, and their writes and events leave in a few
socket writes instead of one acked round trip and one event per user, each waited for before the next
heartbeat message was read (ADR 0041). The writes are JetStream publishes sent with replies to one inbox of the
worker's and their acks read inline (``parley.bus.acked``), not a KV ``put`` (a request, its task and its
``PubAck``) each (ADR 0061).

What is kept: a user's event goes out after that user's bucket write was answered (a friend who reads the
bucket on hearing it finds it there); one user's transitions are written and announced in the order they
were made (a user's second transition waits for the next round, so an offline's delete never overtakes
the online's put); a write the bus refuses while it is briefly away (an election) is logged and the event
still goes out — the next refresh stores it (an online put that failed is handed to ``unstored``, which makes
the user's refresh due at once, ADR 0046) — as before. Another failure is logged, not raised: the
transitions after it are still announced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import orjson

from parley import wire
from parley.bus import BusClient
from parley.bus.acked import KV_DELETE, AckedPublishes, Outcome, Publish, kv_subject
from parley.bus.outage import is_transient
from parley.presence import Transition
from parley.presence_bus import ONLINE_BUCKET, SEEN_BUCKET, presence_subject
from parley.tasks import cancel_and_wait

log = logging.getLogger("parley.presence")
GATHER_S = 0.005  # a transition waits at most this (and the round before it) for others to share its round


def first_round(queued: list[Transition]) -> int:
    """How many of ``queued`` make the next round: up to (not including) a user's second transition."""
    users: set[str] = set()
    for i, change in enumerate(queued):
        if change.user in users:
            return i
        users.add(change.user)
    return len(queued)


class Announcements:
    def __init__(self, nc: BusClient, unstored: Callable[[str], None] = lambda user: None) -> None:
        self._nc, self._unstored = nc, unstored
        self._writes = AckedPublishes(nc)
        self._queued: list[Transition] = []
        self._drain: asyncio.Task[None] | None = None
        self.rounds = 0  # rounds written so far (how many transitions shared one is what the batching buys)

    def announce(self, change: Transition) -> None:
        """Queue ``change``: written and announced after every change queued before it."""
        self._queued.append(change)
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_task(self._run())

    def pending(self) -> int:
        return len(self._queued)

    async def close(self, timeout: float = 5.0) -> None:
        """What is queued written and announced (within ``timeout``), then the drain stopped."""
        drain = self._drain
        if drain is not None:
            await asyncio.wait({drain}, timeout=timeout)
            await cancel_and_wait(drain)

    async def _run(self) -> None:
        try:
            while self._queued:
                await asyncio.sleep(GATHER_S)
                n = first_round(self._queued)
                batch, self._queued = self._queued[:n], self._queued[n:]
                await self._round(batch)
        finally:
            self._drain = None

    async def _round(self, batch: list[Transition]) -> None:
        self.rounds += 1
        failed = await self._write(batch)
        for change, error in zip(batch, failed, strict=True):
            if error is None:
                continue
            if is_transient(error):  # a KV leader election: the change still goes out; the refresh stores it
                log.warning("presence: KV unavailable (%s); %s announced, stored at the next refresh",
                            type(error).__name__, change.user)
                if change.online:
                    self._unstored(change.user)
            else:
                log.error("presence: storing %s's change failed: %r", change.user, error)
        for change in batch:
            event = wire.PresenceChange(change.user, change.online, change.last_active_at)
            await self._nc.publish(presence_subject(change.user), wire.encode(event))

    async def _write(self, batch: list[Transition]) -> list[BaseException | None]:
        """The round's bucket writes, all sent before any ack is awaited: each online's ``presence`` put and each
        offline's ``last_seen`` put together, then the offlines' ``presence`` deletes (each only once its
        ``last_seen`` put was stored, as the awaited puts did). What failed, by transition (None: stored)."""
        failed: list[BaseException | None] = [None] * len(batch)
        first: list[tuple[int, Publish]] = []
        for i, change in enumerate(batch):
            try:
                subject = kv_subject(ONLINE_BUCKET if change.online else SEEN_BUCKET, change.user)
            except Exception as err:  # a key the bucket refuses
                failed[i] = err
                continue
            first.append((i, Publish(subject, orjson.dumps({"last_active_at": change.last_active_at}))))
        deletes: list[tuple[int, Publish]] = []
        for (i, _), outcome in zip(first, await self._writes.send([p for _, p in first]), strict=True):
            failed[i] = _failure(outcome)
            if failed[i] is None and not batch[i].online:
                deletes.append((i, Publish(kv_subject(ONLINE_BUCKET, batch[i].user), headers=KV_DELETE)))
        for (i, _), outcome in zip(deletes, await self._writes.send([p for _, p in deletes]), strict=True):
            failed[i] = _failure(outcome)
        return failed


def _failure(outcome: Outcome) -> BaseException | None:
    return outcome if isinstance(outcome, BaseException) else None
