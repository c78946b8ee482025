"""merge_spans against a brute-force answer, over random bucket layouts with overlapping ranges."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from parley.store.spans import Span, bucket_of, merge_spans, overlapping


@dataclass(frozen=True)
class Row:
    id: int


def layout(seed: int) -> dict[tuple[str, int], list[int]]:
    """Ids 1..300 over 3 conversations; bucket from a clock that is sometimes up to 2 windows late."""
    rng = random.Random(seed)
    parts: dict[tuple[str, int], list[int]] = {}
    for i in range(1, 301):
        late = rng.choice([0, 0, 0, 0, 1, 2])
        parts.setdefault((rng.choice("abc"), max(0, i // 25 - late)), []).append(i)
    return parts


class Reads:
    def __init__(self, parts: dict[tuple[str, int], list[int]]) -> None:
        self.parts, self.calls, self.rows = parts, 0, 0

    async def __call__(self, span: Span, lo: int, hi: int, n: int, descending: bool) -> list[Row]:
        ids = sorted((i for i in self.parts[span.key] if lo < i < hi), reverse=descending)[:n]
        self.calls, self.rows = self.calls + 1, self.rows + len(ids)
        return [Row(i) for i in ids]


def spans_of(parts: dict[tuple[str, int], list[int]], convs: str = "abc") -> list[Span]:
    return [Span(k, min(v), max(v)) for k, v in parts.items() if k[0] in convs]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize(("after", "before", "limit", "descending"), [
    (0, 10**9, 50, False), (0, 10**9, 50, True), (120, 180, 1000, False), (120, 180, 7, True),
    (299, 10**9, 10, False), (0, 1, 10, True), (37, 250, 1, False), (37, 250, 1, True),
])
async def test_merge_matches_brute_force(seed, after, before, limit, descending):
    parts = layout(seed)
    for convs in ("abc", "b"):
        expected = sorted((i for (c, _), ids in parts.items() if c in convs for i in ids if after < i < before),
                          reverse=descending)[:limit]
        reads = Reads(parts)
        got = await merge_spans(spans_of(parts, convs), reads, after=after, before=before, limit=limit,
                                descending=descending, page=8)
        assert [r.id for r in got] == expected


async def test_reads_only_what_the_answer_needs():
    parts = {("a", b): list(range(b * 100 + 1, b * 100 + 101)) for b in range(20)}  # disjoint, 2000 rows
    reads = Reads(parts)
    got = await merge_spans(spans_of(parts), reads, after=0, before=10**9, limit=10, descending=True, page=10)
    assert [r.id for r in got] == list(range(2000, 1990, -1))
    assert reads.calls <= 2 and reads.rows <= 20  # the newest partition, not all twenty
    reads = Reads(parts)
    await merge_spans(spans_of(parts), reads, after=1050, before=1300, limit=500, descending=False, page=100)
    assert reads.rows == 249  # three partitions, exactly the rows in range


def test_overlapping_and_bucket_of():
    spans = [Span(1, 1, 10), Span(2, 11, 20), Span(3, 21, 30)]
    assert [s.key for s in overlapping(spans, 10, 21)] == [2]
    assert [s.key for s in overlapping(spans, 9, 22)] == [1, 2, 3]
    assert [bucket_of(t, 1000) for t in (0, 999, 1000, 86_400_000)] == [0, 0, 1, 86_400]


async def test_an_id_in_two_partitions_is_returned_once():
    parts = {("a", 1): [1, 2, 3], ("a", 2): [3, 4]}  # 3 written under two bucket windows
    for descending in (False, True):
        got = await merge_spans(spans_of(parts), Reads(parts), after=0, before=10, limit=10,
                                descending=descending, page=2)
        assert [r.id for r in got] == sorted([1, 2, 3, 4], reverse=descending)
