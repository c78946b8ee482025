"""The presence worker's announcements: each transition's bucket write, then its ``presence.<user>`` event.

A transition is queued (``announce``, which does not wait) and a drain task writes what is queued in
rounds (ADR 0044): a round takes every queued transition up to a user's second one, sends their bucket
writes together and waits for all their acks, then publishes their events in order. A round starts
``GATHER_S`` after the drain wakes or the last round ends, so the transitions of a storm's next few
milliseconds share its writes (ADR 0052). Under a connect
storm many users come online between two turns of the drain, and their writes and events leave in a few
socket writes instead of one acked round trip and one event per user, each waited for before the next
heartbeat message was read (ADR 0041).

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
from nats.js.kv import KeyValue

from parley import wire
from parley.bus import BusClient
from parley.bus.outage import is_transient
from parley.presence import Transition
from parley.presence_bus import presence_subject
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
    def __init__(self, nc: BusClient, online: KeyValue, seen: KeyValue,
                 unstored: Callable[[str], None] = lambda user: None) -> None:
        self._nc, self._online, self._seen, self._unstored = nc, online, seen, unstored
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
        results = await asyncio.gather(*(self._write(change) for change in batch), return_exceptions=True)
        for change, result in zip(batch, results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                if is_transient(result):  # a KV leader election: the change still goes out; the refresh stores it
                    log.warning("presence: KV unavailable (%s); %s announced, stored at the next refresh",
                                type(result).__name__, change.user)
                    if change.online:
                        self._unstored(change.user)
                else:
                    log.error("presence: storing %s's change failed: %r", change.user, result)
        for change in batch:
            event = wire.PresenceChange(change.user, change.online, change.last_active_at)
            await self._nc.publish(presence_subject(change.user), wire.encode(event))

    async def _write(self, change: Transition) -> None:
        value = orjson.dumps({"last_active_at": change.last_active_at})
        if change.online:
            await self._online.put(change.user, value)
        else:
            await self._seen.put(change.user, value)
            await self._online.delete(change.user)
