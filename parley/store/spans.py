"""Reading messages that are spread over time-bucketed partitions: exactly, lazily, in id order.

A partition of a bucketed store (one conversation, one time window) holds the ids of a ``Span``,
[first, last]. Buckets come from the sending node's clock while ids come from the stream, so two
neighbouring buckets of a conversation may overlap a little (clock skew at a boundary): nothing here
assumes that bucket order is id order. ``merge_spans`` returns the first ``limit`` ids in the asked
order over any number of spans, reading a span only once it could hold the next id, then a page at
a time (the first page small, each next one twice as large, up to ``page``): cost is the rows
returned plus a small page per span opened. An id found in two partitions (written twice under two
bucket windows, e.g. across a change of the window setting) is returned once.

Pure: the I/O is the ``fetch`` callable the caller passes in.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar


class HasId(Protocol):
    @property
    def id(self) -> int: ...


T = TypeVar("T", bound=HasId)


@dataclass(frozen=True, slots=True)
class Span:
    key: Hashable  # which partition, e.g. (conversation, bucket)
    first: int  # lowest id the partition holds
    last: int  # highest id the partition holds


# fetch(span, lo, hi, n, descending): up to n items of the span with lo < id < hi, in the asked order
Fetch = Callable[[Span, int, int, int, bool], Awaitable[list[T]]]


def bucket_of(ts_ms: int, bucket_ms: int) -> int:
    """The time window a message written at ``ts_ms`` belongs to."""
    return ts_ms // bucket_ms


def overlapping(spans: Sequence[Span], after: int, before: int) -> list[Span]:
    """The spans that can hold an id strictly between ``after`` and ``before``."""
    return [s for s in spans if s.last > after and s.first < before]


FIRST_PAGE = 8


@dataclass
class _Reader(Generic[T]):
    span: Span
    lo: int
    hi: int
    size: int = FIRST_PAGE
    buffer: deque[T] = field(default_factory=deque)
    done: bool = False


async def merge_spans(
    spans: Sequence[Span], fetch: Fetch[T], *, after: int, before: int, limit: int, descending: bool,
    page: int = 100,
) -> list[T]:
    """The first ``limit`` items with ``after < id < before`` over all spans, ascending or descending."""

    def rank(value: int) -> int:  # smaller rank is read first
        return -value if descending else value

    def start(span: Span) -> int:  # the first id a span could give, in reading order
        return rank(span.last if descending else span.first)

    pending = deque(sorted(overlapping(spans, after, before), key=start))
    heap: list[tuple[int, int, T, _Reader[T]]] = []
    order = itertools.count()
    most = max(1, min(page, limit))

    async def refill(reader: _Reader[T]) -> None:
        if not reader.buffer and not reader.done:
            size = min(reader.size, most)
            rows = await fetch(reader.span, reader.lo, reader.hi, size, descending)
            reader.done = len(rows) < size
            reader.size = size * 2
            reader.buffer.extend(rows)
            if rows:
                if descending:
                    reader.hi = rows[-1].id
                else:
                    reader.lo = rows[-1].id
        if reader.buffer:
            item = reader.buffer.popleft()
            heapq.heappush(heap, (rank(item.id), next(order), item, reader))

    out: list[T] = []
    while len(out) < limit:
        # Open, together, every span that could hold something before the current head.
        opening = []
        while pending and (not heap or start(pending[0]) <= heap[0][0]):
            opening.append(_Reader[T](pending.popleft(), after, before))
            if not heap and len(opening) == 1:
                await refill(opening.pop())
        await asyncio.gather(*(refill(r) for r in opening))
        if not heap:
            break
        _, _, item, reader = heapq.heappop(heap)
        if not out or out[-1].id != item.id:
            out.append(item)
        await refill(reader)
    return out
