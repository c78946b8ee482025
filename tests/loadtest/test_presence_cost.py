"""The presence worker bench's pure parts (loadtest/presence_cost.py): batches as nodes send them, medians."""

from __future__ import annotations

import zlib

from parley.loadtest import presence_cost

from parley import wire


def test_batches_are_node_sized_heartbeat_messages_covering_every_user() -> None:
    out = presence_cost.batches(4_500, 1_000)
    assert [p for p, _ in out] == [None] * 3
    beats = [b for _, data in out for b in presence_cost.wire_beats(data)]
    assert [len(presence_cost.wire_beats(data)) for _, data in out] == [2000, 2000, 500]
    assert {u for u, _, _ in beats} == {f"u{i}" for i in range(4_500)} and {at for _, _, at in beats} == {1_000}


def test_partitioned_batches_keep_each_users_partition() -> None:
    out = presence_cost.batches(5_000, 1_000, partitions=4)
    seen = {u: p for p, data in out for u, _, _ in presence_cost.wire_beats(data)}
    assert len(seen) == 5_000 and {p for p, _ in out} == {0, 1, 2, 3}
    assert all(seen[u] == zlib.crc32(u.encode()) % 4 for u in seen)
    assert all(isinstance(wire.decode(data), wire.Heartbeats) for _, data in out)


def test_the_summary_is_the_median_per_rate() -> None:
    def one(rate: int, ms: float) -> dict[str, float]:
        return {"rate": rate, "presence_cpu_ms_per_entry": ms, "nats_cpu_ms_per_entry": ms / 2, "presence_cpu_pct": 9}

    def rep(a: float, b: float) -> list[dict[str, float]]:
        return [one(20_000, a), one(50_000, b)]

    rows = presence_cost.summarize([rep(0.02, 0.01), rep(0.01, 0.008), rep(0.03, 0.009)])
    assert [(r["rate"], r["reps"], r["presence_cpu_ms_per_entry"]) for r in rows] == [(20_000, 3, 0.02),
                                                                                     (50_000, 3, 0.009)]
