"""Every shard's bounds and archiver floor, as this node last read them: one reader for all connections.

A sync round needs, per shard, the stream's first and last sequences and the archiver's ack floor. The
node reads them for every shard about once a second (``PARLEY_BOUNDS_REFRESH_S``) and sooner when a round
asks for a reading newer than the moment its subscriptions were in place (``after``), at most every
``MIN_GAP_S`` after the last one ended; every waiting round shares the same reading. So connecting costs no
JetStream API call of its own, however many devices connect at once (a storm of connects: back-to-back
readings, each shared by every round that began while the one before it was read). The gap ends sooner when
only connections' first rounds asked and every connection under way has asked: each is counted from its upgrade
(``arriving``) until its first round asks or it goes without one, so a wave of connects shares one reading
without waiting the whole gap (ADR 0067).

Shards are read side by side, each within ``READ_TIMEOUT_S`` (``SUSPECT_TIMEOUT_S`` for one that did not
answer last time): a shard that does not answer (another region's, while the link is down) is ``None`` in
the reading and the others go on — sync skips it and comes back to it (``node/sync.py``). A reading fails
only when no shard answers. When shards stop or start answering, ``on_change(lost, back)`` is told (the
node suspends live delivery from the lost ones and resyncs everyone when they are back: what their
streams republished meanwhile never crossed the link). A shard wholly archived at the last reading whose last
sequence has not moved since is read without its floor (that floor still holds): a storm of connects to idle
shards makes half the requests (ADR 0059).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from parley.bus import StreamReads
from parley.errors import Unavailable
from parley.tasks import cancel_and_wait

log = logging.getLogger("parley.node")
MIN_GAP_S = 0.005  # a burst of connects shares readings; a round waits about one read for its own (ADR 0028)
# (the gap ends sooner once every connection under way has asked: ``arriving``, ADR 0067)
READ_TIMEOUT_S = 5.0
SUSPECT_TIMEOUT_S = 1.0  # a shard that did not answer last time: what the other shards' rounds wait for it


@dataclass(frozen=True, slots=True)
class ShardBounds:
    first: int
    last: int
    archived: int


@dataclass(frozen=True, slots=True)
class Reading:
    taken: float  # monotonic time the reading started: everything stored before it is within ``last``
    shards: tuple[ShardBounds | None, ...]  # None: the shard did not answer

    def last(self) -> dict[int, int]:
        return {s: b.last for s, b in enumerate(self.shards) if b is not None}

    def unreachable(self) -> frozenset[int]:
        return frozenset(s for s, b in enumerate(self.shards) if b is None)


class ShardWatch:
    def __init__(self, reads: StreamReads, *, every_s: float, clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[frozenset[int], frozenset[int]], None] | None = None) -> None:
        self._reads, self._every, self._clock, self._on_change = reads, every_s, clock, on_change
        self.latest: Reading | None = None
        self._changed = asyncio.Condition()
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failures = 0
        self._suspect: frozenset[int] = frozenset()
        self._coming = 0  # connections under way whose first round has not asked yet (``arriving``)
        self._plain = False  # a round other than a connection's first asked since the last reading began
        self._all_in = asyncio.Event()  # set when ``_coming`` falls to 0

    def arriving(self) -> Arrival:
        """A connection under way (from its upgrade): counted until its first round asks for a reading
        (``after(…, came=…)``) or it goes without one (``Arrival.done``). The gap before a reading ends as
        soon as every one counted has asked, when only they asked (at most ``MIN_GAP_S``, as before)."""
        self._coming += 1
        return Arrival(self)

    def _came(self) -> None:
        self._coming -= 1
        if self._coming == 0:
            self._all_in.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _read_shard(self, shard: int) -> ShardBounds:
        before = self.latest.shards[shard] if self.latest is not None and shard < len(self.latest.shards) else None
        if before is not None and before.archived == before.last:
            # everything was archived last time: if nothing was stored since, that floor still holds (what is in
            # the store stays there) and is not asked for (a storm of connects to an idle shard: half the
            # requests, ADR 0059); else it is, a round trip later (capped at ``last`` as below)
            first, last = await self._reads.bounds(shard)
            if last == before.last:
                return ShardBounds(first, last, last)
            return ShardBounds(first, last, min(await self._reads.archived_through(shard), last))
        # side by side (one round trip, not two, before a waiting round goes on); a floor read after the
        # bounds may pass ``last``, and everything up to ``last`` is archived then: the floor is capped there
        archived, (first, last) = await asyncio.gather(self._reads.archived_through(shard), self._reads.bounds(shard))
        return ShardBounds(first, last, min(archived, last))

    async def _read(self) -> Reading:
        taken = self._clock()
        timeouts = [SUSPECT_TIMEOUT_S if s in self._suspect else READ_TIMEOUT_S for s in range(self._reads.shards)]
        got = await asyncio.gather(*(asyncio.wait_for(self._read_shard(s), t) for s, t in enumerate(timeouts)),
                                   return_exceptions=True)
        for g in got:
            if isinstance(g, BaseException) and not isinstance(g, Exception):
                raise g  # cancelled
        shards = tuple(g if isinstance(g, ShardBounds) else None for g in got)
        failed = [(s, g) for s, g in enumerate(got) if not isinstance(g, ShardBounds)]
        if failed and len(failed) == len(got):
            raise Unavailable(f"no shard answered for its bounds ({type(failed[0][1]).__name__}: {failed[0][1]})",
                              code="bus_unavailable")
        unreachable = frozenset(s for s, _ in failed)
        if unreachable != self._suspect:
            log.warning("shard bounds: %s", ", ".join(f"shard {s}: {type(g).__name__} {g}" for s, g in failed)
                        if failed else "every shard answers again")
            lost, back = unreachable - self._suspect, self._suspect - unreachable
            self._suspect = unreachable
            if self._on_change is not None:
                self._on_change(lost, back)
        return Reading(taken, shards)

    async def _run(self) -> None:
        while True:
            self._wanted.clear()  # a round asking during the read gets the next one at once
            self._plain = False
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
                await self._gap()
            except TimeoutError:
                pass

    async def _gap(self) -> None:
        """Let a burst of rounds share one reading: ``MIN_GAP_S``, or until every connection under way has asked
        if only connections' first rounds asked (a wave of connects is all in: nobody else is coming to share)."""
        try:
            async with asyncio.timeout(MIN_GAP_S):
                while self._plain or self._coming:
                    self._all_in.clear()
                    await self._all_in.wait()
        except TimeoutError:
            pass

    async def after(self, moment: float, *, timeout: float = 10.0, came: Arrival | None = None) -> Reading:
        """A reading that started at or after ``moment`` (monotonic); asks for one when needed. ``came``: the
        connection's count, for its first round (counted out once it has asked)."""
        async with self._changed:
            if came is not None:
                came.done()
            if self.latest is None or self.latest.taken < moment:
                self._wanted.set()
                if came is None:
                    self._plain = True
                try:  # in this task, not wait_for's: cancelled twice, wait_for left without the lock back
                    async with asyncio.timeout(timeout):
                        await self._changed.wait_for(lambda: self.latest is not None and self.latest.taken >= moment)
                except TimeoutError:
                    raise Unavailable("the message bus did not answer for the shards' bounds",
                                      code="bus_unavailable") from None
            assert self.latest is not None
            return self.latest

    def now(self) -> float:
        return self._clock()


class Arrival:
    """One connection counted in ``ShardWatch.arriving``; ``done`` counts it out (once, however often called)."""

    __slots__ = ("_watch",)

    def __init__(self, watch: ShardWatch) -> None:
        self._watch: ShardWatch | None = watch

    def done(self) -> None:
        if self._watch is not None:
            self._watch._came()
            self._watch = None
