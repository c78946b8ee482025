"""The arithmetic of the live-room benchmark (``loadtest.live_bench``), pure: no clock, no I/O.

- ``sustained``: a step is sustained when its window delivered ≥ 90% of (messages sent × viewers), its
  sampled p99 ≤ 1 s, and nothing was missing after the drain.
- ``next_rates``: a step that is not sustained is run once more; a second failure ends the ladder.
- ``quoted``: per-delivery costs are quoted at the busiest sustained step whose p99 ≤ ``QUOTE_P99_MS`` (a
  sane p99, a quarter of the issue's 1 s), never at saturation; else at none (the record says so).
- ``ledger``: every viewer joined before the first send and stayed, so each owes exactly the messages the
  room accepted: ``lost`` = what some viewer is short, ``surplus`` = what some viewer got beyond that
  (duplicates, counted); sampled viewers are checked id by id (missing, duplicates, strays).
- ``filter_cost``: the banned-word screen's cost per send with 10k entries, from ``words.jsonl``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

QUOTE_P99_MS = 250.0
SUSTAINED_SHARE, SUSTAINED_P99_MS = 0.9, 1000.0
RULE = f"the busiest sustained step with p99 <= {QUOTE_P99_MS:g} ms"


def sustained(step: Mapping[str, Any]) -> bool:
    w, p99 = step["window"], step["latency"]["p99_ms"]
    owed = step["sent_in_window"] * step["viewers"]
    return (not step["missing_after_drain"] and p99 is not None and p99 <= SUSTAINED_P99_MS
            and owed > 0 and w["deliveries"] >= SUSTAINED_SHARE * owed)


def next_rates(steps: Sequence[Mapping[str, Any]], rates: Sequence[float]) -> list[float]:
    """The rates still to run after ``steps`` (``rates[0]`` the one just run): the next, or the same once
    more after a first failure, or none after a second."""
    last = steps[-1]
    if sustained(last):
        return list(rates[1:])
    tries = sum(s["offered_rate"] == last["offered_rate"] for s in steps)
    return list(rates) if tries == 1 else []


def quoted(steps: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    calm = [s for s in steps if sustained(s) and s["latency"]["p99_ms"] <= QUOTE_P99_MS]
    return max(calm, key=lambda s: s["window"]["deliveries_per_s"]) if calm else None


def per_message(cpu_s: Mapping[str, float], messages: int) -> dict[str, float | None]:
    """CPU ms per accepted message, by process (what the bus and the archiver pay once per message)."""
    return {k: round(1000 * v / messages, 4) if messages else None for k, v in cpu_s.items()}


def ledger(accepted: Iterable[int], counts: Sequence[int], sampled: Mapping[int, Sequence[int]]) -> dict[str, int]:
    """``accepted``: ids the room acknowledged; ``counts``: live_msg frames each viewer got; ``sampled``:
    viewer index -> the ids it got, in order."""
    ids = set(accepted)
    owed = len(ids)
    lost = sum(max(owed - c, 0) for c in counts)
    surplus = sum(max(c - owed, 0) for c in counts)
    missing = duplicates = strays = 0
    for got in sampled.values():
        seen = set(got)
        missing += len(ids - seen)
        duplicates += len(got) - len(seen)
        strays += len(seen - ids)
    return {"accepted": owed, "viewers": len(counts), "expected_deliveries": owed * len(counts),
            "delivered": sum(counts), "lost": lost, "surplus": surplus, "sampled_viewers": len(sampled),
            "sampled_missing": missing, "sampled_duplicates": duplicates, "sampled_strays": strays}


def filter_cost(words_record: Mapping[str, Any] | None) -> dict[str, Any]:
    """The banned-word screen per send (once, on the sender's node; never per delivery), from the newest
    ``words.jsonl`` line: the judge's median µs for a short clean Latin and Korean message, 10k entries."""
    if not words_record:
        return {"source": None}
    r, git = words_record["results"], words_record.get("git", {})
    cases = r.get("cases", {})
    return {"source": "loadtest/results/words.jsonl", "date": words_record.get("date"),
            "commit": git.get("commit"), "entries": r.get("entries"),
            "judge_us_latin_short": cases.get("latin_short_clean", {}).get("judge_us"),
            "judge_us_korean_short": cases.get("korean_short_clean", {}).get("judge_us"),
            "judge_us_latin_short_masked": cases.get("latin_short_masked", {}).get("judge_us")}
