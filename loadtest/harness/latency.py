"""One latency summary for every benchmark: nanosecond samples in, percentiles in milliseconds out.

Nearest-rank percentiles on the sorted samples; ``p50_trend`` compares the median of the last quarter
of the samples (in arrival order) with the first quarter's: well above 1 means a queue was growing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TREND_MIN_QUARTER = 20  # fewer samples per quarter than this: no trend


def percentile(sorted_ns: Sequence[int], q: float) -> float | None:
    if not sorted_ns:
        return None
    i = min(len(sorted_ns) - 1, max(0, int(round(q * len(sorted_ns) + 0.5)) - 1))
    return round(sorted_ns[i] / 1e6, 3)


def latency_summary(samples: Sequence[int]) -> dict[str, Any]:
    s = sorted(samples)
    q = len(samples) // 4
    trend = None
    if q >= TREND_MIN_QUARTER:
        first, last = sorted(samples[:q]), sorted(samples[-q:])
        trend = round(last[q // 2] / first[q // 2], 2) if first[q // 2] > 0 else None
    return {"n": len(s), "p50_ms": percentile(s, 0.50), "p90_ms": percentile(s, 0.90), "p99_ms": percentile(s, 0.99),
            "max_ms": round(s[-1] / 1e6, 3) if s else None,
            "mean_ms": round(sum(s) / len(s) / 1e6, 3) if s else None, "p50_trend": trend}


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None
