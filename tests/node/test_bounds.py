"""The node's shard reading: every shard side by side, a shard that does not answer left out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import pytest
from parley.node import bounds
from parley.node.bounds import ShardBounds, ShardWatch
from parley.node.counted import CountedReads
from prometheus_client import CollectorRegistry, Counter

from parley import bus
from parley.bus.port import StreamRow
from parley.bus.stream import ARCHIVER, JetStreamReads, ensure_archiver_consumer, ensure_stream, stream_of
from parley.errors import Unavailable
from parley.settings import Settings
from parley.shards import message_subject


class Reads:
    """Shards 0..n-1 with fixed bounds; a shard in ``silent`` never answers (another region, link down)."""

    def __init__(self, n: int, silent: set[int]) -> None:
        self.n, self.silent = n, silent

    @property
    def shards(self) -> int:
        return self.n

    async def _maybe_hang(self, shard: int) -> None:
        if shard in self.silent:
            await asyncio.Event().wait()

    async def bounds(self, shard: int) -> tuple[int, int]:
        await self._maybe_hang(shard)
        return 1, 100 + shard

    async def archived_through(self, shard: int) -> int:
        await self._maybe_hang(shard)
        return 50 + shard

    async def last_of(self, shard: int, conv: str) -> int:
        raise NotImplementedError

    def batches(self, shard: int, filters: Iterable[str], *, start: int, end: int,
                size: int) -> AsyncIterator[list[StreamRow]]:
        raise NotImplementedError


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bounds, "READ_TIMEOUT_S", 0.3)
    monkeypatch.setattr(bounds, "SUSPECT_TIMEOUT_S", 0.05)


async def test_a_silent_shard_is_left_out_and_the_others_are_read() -> None:
    watch = ShardWatch(Reads(3, silent={1}), every_s=10)
    watch.start()
    try:
        reading = await watch.after(watch.now(), timeout=5)
        assert reading.shards == (ShardBounds(1, 100, 50), None, ShardBounds(1, 102, 52))
        assert reading.unreachable() == {1} and reading.last() == {0: 100, 2: 102}
        again = await watch.after(watch.now(), timeout=5)  # the silent shard now costs the short timeout
        assert again.taken > reading.taken and again.unreachable() == {1}
    finally:
        await watch.stop()


async def test_when_no_shard_answers_a_round_hears_bus_unavailable() -> None:
    watch = ShardWatch(Reads(2, silent={0, 1}), every_s=10)
    watch.start()
    try:
        with pytest.raises(Unavailable) as err:
            await watch.after(watch.now(), timeout=1)
        assert err.value.code == "bus_unavailable" and watch.failures >= 1
    finally:
        await watch.stop()


async def test_a_round_cancelled_twice_while_it_waits_leaves_the_watch_usable() -> None:
    """Found by the frame fuzzer: a ``sync`` cancels the previous sync's round, and a third cancels it again
    (through the gather that waits for it). Cancelled twice while taking the lock back, the round used to
    leave with RuntimeError (the connection closed 1011, "sync failed") and the lock held for good: every
    later round of the node waited forever."""
    watch = ShardWatch(Reads(1, silent=set()), every_s=10)
    waiter = asyncio.get_running_loop().create_task(watch.after(watch.now(), timeout=5))
    await asyncio.sleep(0.01)  # waiting for a reading, the lock let go
    async with watch._changed:  # another round holds the lock: taking it back has to wait
        waiter.cancel()
        await asyncio.sleep(0.01)
        waiter.cancel()  # again, just before the other round lets the lock go
    with pytest.raises(asyncio.CancelledError):
        await waiter
    watch.start()
    try:
        reading = await asyncio.wait_for(watch.after(watch.now(), timeout=5), 5)
        assert reading.shards == (ShardBounds(1, 100, 50),) and not watch._changed.locked()
    finally:
        await watch.stop()


class Racing(Reads):
    """The floor read answers after the bounds read, and a message was stored and archived in between."""

    def __init__(self) -> None:
        super().__init__(1, silent=set())
        self.bounds_read = asyncio.Event()

    async def archived_through(self, shard: int) -> int:
        await self.bounds_read.wait()  # both requests are in flight at once (one round trip, not two)
        return 101

    async def bounds(self, shard: int) -> tuple[int, int]:
        self.bounds_read.set()
        return 1, 100


async def test_a_shards_floor_and_bounds_are_read_together_and_the_floor_never_passes_last() -> None:
    watch = ShardWatch(Racing(), every_s=10)
    watch.start()
    try:
        reading = await watch.after(watch.now(), timeout=5)
        assert reading.shards == (ShardBounds(1, 100, 100),)  # everything up to last is archived: all from the store
    finally:
        await watch.stop()


async def test_a_shard_wholly_archived_last_time_is_read_without_its_floor_until_more_is_stored(nats_url) -> None:
    """Real streams and the archivers' durable (ADR 0059): once a reading found everything archived, the next ones
    ask only for the bounds while nothing more is stored; a shard with a message stored since is asked for its
    floor again, until a reading finds that message archived."""
    settings = Settings(nats_url=nats_url, shards=2)
    nc = await bus.connect(settings, "test")
    js = nc.jetstream()
    try:
        await ensure_stream(js, settings)
        await ensure_archiver_consumer(js, settings)
        registry = CollectorRegistry()
        asked = Counter("asked", "stream requests by kind", ["kind"], registry=registry)
        watch = ShardWatch(CountedReads(JetStreamReads(nc, settings), asked), every_s=3600)

        def floors() -> float:
            return registry.get_sample_value("asked_total", {"kind": "floor"}) or 0.0

        async def reading() -> tuple[tuple[ShardBounds | None, ...], float]:
            before = floors()
            taken = await watch.after(watch.now(), timeout=5)
            return taken.shards, floors() - before

        watch.start()
        try:
            assert await reading() == ((ShardBounds(0, 0, 0), ShardBounds(0, 0, 0)), 2)  # nothing known yet: asked
            assert await reading() == ((ShardBounds(0, 0, 0), ShardBounds(0, 0, 0)), 0)  # all archived: not asked
            await js.publish(message_subject(1, "c1"), b"m")
            assert await reading() == ((ShardBounds(0, 0, 0), ShardBounds(1, 1, 0)), 1)  # more stored: asked
            assert await reading() == ((ShardBounds(0, 0, 0), ShardBounds(1, 1, 0)), 1)  # behind last: asked
            archiver = await js.pull_subscribe_bind(ARCHIVER, stream_of(settings.stream_name, 1))
            for msg in await archiver.fetch(1, timeout=5):
                await msg.ack_sync()
            assert await reading() == ((ShardBounds(0, 0, 0), ShardBounds(1, 1, 1)), 1)
            assert await reading() == ((ShardBounds(0, 0, 0), ShardBounds(1, 1, 1)), 0)
        finally:
            await watch.stop()
    finally:
        await nc.close()


class Counted(Reads):
    """One answering shard; how many readings asked for its bounds."""

    def __init__(self) -> None:
        super().__init__(1, silent=set())
        self.readings = 0

    async def bounds(self, shard: int) -> tuple[int, int]:
        self.readings += 1
        return await super().bounds(shard)


async def turns(n: int = 50) -> None:
    """Let the loop run ``n`` turns: a reading asked of ``Counted`` (no I/O) is over within a few."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_the_gap_before_a_reading_ends_once_every_connection_under_way_has_asked(monkeypatch) -> None:
    """ADR 0067: connections are counted from their upgrade (``arriving``); the reading their first rounds wait for
    begins once every one counted has asked (or went without a round), not after a fixed gap: here the gap is 30 s
    and the wave still gets its reading at once — one reading for the whole wave."""
    monkeypatch.setattr(bounds, "MIN_GAP_S", 30.0)
    reads = Counted()
    watch = ShardWatch(reads, every_s=60)
    watch.start()
    try:
        await watch.after(watch.now(), timeout=5)  # the watch's first reading, at its start
        before = reads.readings
        a, b, c, gone = (watch.arriving() for _ in range(4))
        loop = asyncio.get_running_loop()
        first = [loop.create_task(watch.after(watch.now(), came=x)) for x in (a, b)]
        await turns()
        assert not any(t.done() for t in first) and reads.readings == before  # c and gone are still under way
        gone.done()  # refused at its hello, say: no round of its own
        gone.done()  # counted out once, however often
        await turns()
        assert not any(t.done() for t in first) and reads.readings == before
        last = await asyncio.wait_for(watch.after(watch.now(), came=c), 5)
        assert [await t for t in first] == [last, last]  # the wave shares it
        assert reads.readings == before + 1 and watch._coming == 0
    finally:
        await watch.stop()


async def test_a_round_that_is_not_a_connections_first_still_waits_the_whole_gap(monkeypatch) -> None:
    """A client's ``sync``, a resync, a wait for the archiver: rounds nobody counted, which the fixed gap lets share a
    reading; asked together with a wave of connects, the wave waits the gap too."""
    monkeypatch.setattr(bounds, "MIN_GAP_S", 0.3)
    reads = Counted()
    watch = ShardWatch(reads, every_s=60)
    watch.start()
    try:
        await watch.after(watch.now(), timeout=5)
        asked = watch.now()
        plain = await watch.after(asked, timeout=5)
        assert plain.taken - asked >= 0.3
        counted = watch.arriving()
        asked = watch.now()
        both = await asyncio.gather(watch.after(asked, came=counted), watch.after(asked))
        assert both[0] is both[1] and both[0].taken - asked >= 0.3
    finally:
        await watch.stop()
