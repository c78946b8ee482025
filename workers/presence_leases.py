"""Presence partition leases in NATS KV: the thin shell over ``parley.presence_partitions``.

Bucket ``presence_leases`` (memory storage, entries expire ``presence_lease_s`` after their last
write) holds ``p.<p>`` = the owning worker's id and ``w.<id>`` for each live worker. Every
``presence_lease_s / 3`` a worker renews what it holds (compare-and-set on its last revision, all at
once) and gives up what it could not renew in time; as often, in a loop of its own so a slow read
never delays a renewal, it reads the bucket and takes or releases partitions by ``plan``. The worker
is told through two callbacks: ``adopt`` after a lease is ours (then it subscribes and restores the
partition's online users), ``drop`` before a lease is given back (then it stops handling them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import KeyValueConfig, StorageType
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from parley.presence_partitions import (
    LeaseBook,
    parse_partition_key,
    partition_key,
    plan,
    worker_key,
)
from parley.settings import Settings

log = logging.getLogger("parley.presence")
LEASE_BUCKET = "presence_leases"
Moves = Callable[[list[int]], Awaitable[None]]


async def open_lease_bucket(js: JetStreamContext, settings: Settings) -> KeyValue:
    config = KeyValueConfig(bucket=LEASE_BUCKET, history=1, ttl=settings.presence_lease_s,
                            storage=StorageType.MEMORY, replicas=settings.stream_replicas)
    try:
        return await js.create_key_value(config)
    except BadRequestError:  # made already (by another worker): used as it is
        return await js.key_value(LEASE_BUCKET)


async def snapshot(kv: KeyValue) -> tuple[dict[int, str], set[str]]:
    """Who holds each partition now, and which workers are alive (their keys not expired)."""
    owners: dict[int, str] = {}
    workers: set[str] = set()
    watcher = await kv.watchall(ignore_deletes=True)
    try:
        while (entry := await watcher.updates(timeout=5)) is not None:  # type: ignore[no-untyped-call]
            value = (entry.value or b"").decode()
            p = parse_partition_key(entry.key)
            if p is not None and value:
                owners[p] = value
            elif entry.key.startswith("w."):
                workers.add(entry.key[2:])
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]
    return owners, workers


class PartitionLeases:
    def __init__(self, kv: KeyValue, me: str, settings: Settings, adopt: Moves, drop: Moves,
                 reopen: Callable[[], Awaitable[KeyValue]] | None = None) -> None:
        """``reopen``: the bucket again after an error; a NATS restart loses a memory bucket, and every
        write to the old one fails until it is created again."""
        self._kv, self.me, self._partitions = kv, me, settings.presence_partitions
        self._reopen = reopen
        self.round_s = settings.presence_lease_s / 3
        self.book = LeaseBook(settings.presence_lease_s)
        self._adopt, self._drop = adopt, drop

    async def run(self, stop: asyncio.Event) -> None:
        """Renewals and rebalancing in two loops of their own, so a slow bucket read never delays a renewal."""
        await asyncio.gather(self._every(stop, self.renew), self._every(stop, self.balance))

    async def _every(self, stop: asyncio.Event, step: Callable[[], Awaitable[None]]) -> None:
        while not stop.is_set():
            try:
                await step()
            except (NatsTimeout, TimeoutError, OSError) as err:  # NATS away: held leases expire on their own
                log.warning("presence leases: %s", err)
            except Exception as err:
                log.warning("presence leases: %r", err)
                await self._reopen_bucket()
            await self._give_up_expiring()
            try:
                await asyncio.wait_for(stop.wait(), self.round_s)
            except TimeoutError:
                pass

    async def _reopen_bucket(self) -> None:
        """Leases held in a lost bucket fail their next renewal (wrong revision) and are taken anew."""
        if self._reopen is not None:
            try:
                self._kv = await self._reopen()
            except Exception as err:  # NATS still away: tried again after the next failure
                log.info("presence leases: reopening the bucket: %r", err)

    async def round(self) -> None:
        await self.renew()
        await self.balance()

    async def renew(self) -> None:
        """Rewrite every lease we hold (all at once), each only if it is still the revision we wrote."""
        await self._kv.put(worker_key(self.me), b"1")
        held, sent = list(self.book.held.items()), time.monotonic()  # the lease runs from before the write
        results = await asyncio.gather(*(self._kv.update(partition_key(p), self.me.encode(), last=lease.revision)
                                         for p, lease in held), return_exceptions=True)
        lost = []
        for (p, _), result in zip(held, results, strict=True):
            if isinstance(result, KeyWrongLastSequenceError):  # it expired and another worker holds it now
                lost.append(p)
            elif isinstance(result, int):
                self.book.renewed(p, result, sent)
            else:  # NATS trouble: tried again next round; given up if that is too late
                log.info("presence: renewing partition %d: %r", p, result)
        if lost:
            log.warning("presence: lost partitions %s to other workers", lost)
            await self._drop(lost)
            for p in lost:
                self.book.lost(p)
        await self._give_up_expiring()

    async def balance(self) -> None:
        owners, workers = await snapshot(self._kv)
        moves = plan(self.me, self._partitions, owners, workers)
        if moves.release:
            await self.release(list(moves.release))
        taken = [p for p in moves.take if await self._take(p)]
        if taken:
            log.info("presence: took partitions %s (now %s)", taken, self.book.owned())
            await self._adopt(taken)

    async def release(self, partitions: list[int]) -> None:
        """Stop handling, then hand back: another worker creates the key on its next round."""
        await self._drop(partitions)
        for p in partitions:
            lease = self.book.held.pop(p, None)
            if lease is not None:
                try:
                    await self._kv.delete(partition_key(p), last=lease.revision)
                except Exception as err:  # taken meanwhile, or NATS away: it expires by itself
                    log.info("presence: releasing partition %d: %r", p, err)
        log.info("presence: released partitions %s", partitions)

    async def release_all(self) -> None:
        await self.release(self.book.owned())
        try:
            await self._kv.delete(worker_key(self.me))
        except Exception as err:
            log.info("presence: removing the worker key: %r", err)

    async def _take(self, p: int) -> bool:
        try:
            revision = await self._kv.create(partition_key(p), self.me.encode())
        except KeyWrongLastSequenceError:  # another worker was quicker
            return False
        self.book.took(p, revision, time.monotonic())
        return True

    async def _give_up_expiring(self) -> None:
        expiring = self.book.expiring(time.monotonic(), margin=self.round_s)
        if expiring:
            log.warning("presence: could not renew partitions %s in time; giving them up", expiring)
            await self._drop(expiring)
            for p in expiring:
                self.book.lost(p)
