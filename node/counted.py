"""The node's stream reads, counted by kind (``parley_node_stream_requests_total``), so operators — and
the tests — can see that connecting devices cost no JetStream API call of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from prometheus_client import Counter

from parley.bus import StreamReads, StreamRow


class CountedReads:
    def __init__(self, reads: StreamReads, counter: Counter) -> None:
        self._reads = reads
        self._bounds, self._floor = counter.labels("bounds"), counter.labels("floor")
        self._last, self._read = counter.labels("last"), counter.labels("read")

    @property
    def shards(self) -> int:
        return self._reads.shards

    async def bounds(self, shard: int) -> tuple[int, int]:
        self._bounds.inc()
        return await self._reads.bounds(shard)

    async def archived_through(self, shard: int) -> int:
        self._floor.inc()
        return await self._reads.archived_through(shard)

    async def last_of(self, shard: int, conv: str) -> int:
        self._last.inc()
        return await self._reads.last_of(shard, conv)

    def batches(self, shard: int, filters: Iterable[str], *, start: int, end: int,
                size: int) -> AsyncIterator[list[StreamRow]]:
        self._read.inc()
        return self._reads.batches(shard, filters, start=start, end=end, size=size)
