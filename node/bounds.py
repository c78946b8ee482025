"""Every shard's bounds and archiver floor, as this node last read them: one reader for all connections.

A sync round needs, per shard, the stream's first and last sequences and the archiver's ack floor. The
node reads them for every shard about once a second (``PARLEY_BOUNDS_REFRESH_S``) and sooner when a round
asks for a reading newer than the moment its subscriptions were in place (``after``), at most every
``MIN_GAP_S``; every waiting round shares the same reading. So connecting costs no JetStream API call of
its own, however many devices connect at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from parley.bus import StreamReads
from parley.errors import Unavailable

log = logging.getLogger("parley.node")
MIN_GAP_S = 0.05


@dataclass(frozen=True, slots=True)
class ShardBounds:
    first: int
    last: int
    archived: int


@dataclass(frozen=True, slots=True)
class Reading:
    taken: float  # monotonic time the reading started: everything stored before it is within ``last``
    shards: tuple[ShardBounds, ...]

    def last(self) -> dict[int, int]:
        return {s: b.last for s, b in enumerate(self.shards)}


class ShardWatch:
    def __init__(self, reads: StreamReads, *, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._reads, self._every, self._clock = reads, every_s, clock
        self.latest: Reading | None = None
        self._changed = asyncio.Condition()
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _read(self) -> Reading:
        taken = self._clock()
        shards = []
        for shard in range(self._reads.shards):
            # the floor first: read after it, ``last`` is never below it
            archived = await self._reads.archived_through(shard)
            first, last = await self._reads.bounds(shard)
            shards.append(ShardBounds(first, last, min(archived, last)))
        return Reading(taken, tuple(shards))

    async def _run(self) -> None:
        while True:
            self._wanted.clear()  # a round asking during the read gets the next one at once
            try:
                reading = await self._read()
                self.failures = 0
                async with self._changed:
                    self.latest = reading
                    self._changed.notify_all()
            except Unavailable as err:
                self.failures += 1
                log.warning("shard bounds: %s", err)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failures += 1
                log.exception("shard bounds read failed")
            try:
                await asyncio.wait_for(self._wanted.wait(), timeout=self._every)
                await asyncio.sleep(MIN_GAP_S)  # let a burst of rounds share one reading
            except TimeoutError:
                pass

    async def after(self, moment: float, *, timeout: float = 10.0) -> Reading:
        """A reading that started at or after ``moment`` (monotonic); asks for one when needed."""
        async with self._changed:
            if self.latest is None or self.latest.taken < moment:
                self._wanted.set()
                try:
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: self.latest is not None and self.latest.taken >= moment),
                        timeout)
                except TimeoutError:
                    raise Unavailable("the message bus did not answer for the shards' bounds",
                                      code="bus_unavailable") from None
            assert self.latest is not None
            return self.latest

    def now(self) -> float:
        return self._clock()
