"""The arithmetic of the side-by-side efficiency bench (``loadtest.efficiency``), pure: no clock, no I/O.

- ``window``: server CPU and deliveries counted over the SAME window, two ``Mark``s each read at one
  instant (a CPU snapshot and the generator's delivery count, no await between them).
- ``next_rate``: the ladder of offered rates (doubling; a failed step tried twice; halving while
  nothing was sustained); ``same_load``: two systems' steps at the busiest rate both sustained.
- ``sustained`` / ``quoted``: a step is sustained when its window delivered ≥ 90% of what was offered,
  p99 ≤ 1 s and nothing was missing after the drain; per-delivery costs are quoted at the busiest
  sustained step with p99 ≤ 50 ms, or at the 80%-of-max step when none qualifies (the record says which).
- ``refine``: the doubling ladder's steps are coarse (p99 ≤ 50 ms at 320 msg/s, 56 ms at 640: quoted at
  320); the rate halfway between the busiest step within 50 ms and the next one tried above it is tried
  too, while the two are more than ``REFINE_RESOLUTION`` apart — ordinary steps, counted and judged alike.
- ``ledger``: every message sent accounted for, delivered exactly once to each other member.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

P99_LIMIT_MS = 50.0
SUSTAINED_SHARE, SUSTAINED_P99_MS = 0.9, 1000.0
RULE_P99, RULE_80 = "p99<=50ms", "80% of max (no step had p99 <= 50 ms)"
REFINE_RESOLUTION = 1.15  # refining stops once the rates around the limit are this close


@dataclass(frozen=True)
class Mark:
    t: float  # seconds, one clock
    cpu_s: Mapping[str, float | None]  # CPU seconds so far, by process (None: gone)
    delivered: int  # deliveries the generator counted so far
    core_busy_s: Mapping[int, float] = field(default_factory=dict)  # busy seconds so far, by core (all processes)


def window(a: Mark, b: Mark, servers: Collection[str]) -> dict[str, Any]:
    """Deliveries and the servers' CPU between two marks; a process read in only one mark is left out."""
    wall = b.t - a.t
    used = {k: y - x for k, x in a.cpu_s.items() if x is not None and (y := b.cpu_s.get(k)) is not None}
    n = b.delivered - a.delivered
    server_s = sum(v for k, v in used.items() if k in servers)
    return {"wall_s": round(wall, 3), "deliveries": n,
            "deliveries_per_s": round(n / wall, 1) if wall > 0 else None,
            "server_cpu_s": round(server_s, 3),
            "cpu_ms_per_delivery": round(1000 * server_s / n, 5) if n > 0 else None,
            "cpu_ms_per_delivery_by_process": {k: round(1000 * v / n, 5) if n > 0 else None
                                               for k, v in used.items() if k in servers},
            "cpu_pct": {k: round(100 * v / wall, 1) if wall > 0 else None for k, v in used.items()},
            "core_busy_pct": {str(c): round(100 * (y - x) / wall, 1) for c, x in a.core_busy_s.items()
                              if wall > 0 and (y := b.core_busy_s.get(c)) is not None}}


def sustained(step: Mapping[str, Any]) -> bool:
    w, p99 = step["window"], step["e2e"]["p99_ms"]
    offered = step["offered_deliveries_per_s"] * w["wall_s"]
    return (not step["missing_after_drain"] and p99 is not None and p99 <= SUSTAINED_P99_MS
            and w["deliveries"] >= SUSTAINED_SHARE * offered)


def next_rate(steps: Sequence[Mapping[str, Any]], floor: float = 1.0) -> float | None:
    """Double after a sustained step; a step that is not sustained is tried once more (one stall of a
    shared machine is not a limit); after the second try, halve while none has been sustained, else
    stop (None: the ladder is done)."""
    last = steps[-1]
    tries = sum(s["offered_rate"] == last["offered_rate"] for s in steps)
    if not sustained(last) and tries == 1:
        return float(last["offered_rate"])
    if sustained(last):
        up = 2 * float(last["offered_rate"])
        return None if any(s["offered_rate"] == up and not sustained(s) for s in steps) else up
    if any(sustained(s) for s in steps) or last["offered_rate"] / 2 < floor:
        return None
    return float(last["offered_rate"]) / 2


def same_load(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]
              ) -> tuple[Mapping[str, Any], Mapping[str, Any]] | None:
    """The steps of two systems at the highest offered rate both sustained (their ladders share rates)."""
    good_a = {s["offered_rate"]: s for s in a if sustained(s)}
    good_b = {s["offered_rate"]: s for s in b if sustained(s)}
    both = set(good_a) & set(good_b)
    return (good_a[max(both)], good_b[max(both)]) if both else None


def maximum(steps: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The sustained step that delivered the most per second."""
    good = [s for s in steps if sustained(s)]
    return max(good, key=lambda s: s["window"]["deliveries_per_s"]) if good else None


def quoted(steps: Sequence[Mapping[str, Any]], at_80: Mapping[str, Any] | None
           ) -> tuple[Mapping[str, Any] | None, str]:
    """The step per-delivery costs are quoted at, and the rule that chose it."""
    calm = [s for s in steps if _calm(s)]
    if calm:
        return max(calm, key=lambda s: s["window"]["deliveries_per_s"]), RULE_P99
    return at_80, RULE_80


def _calm(step: Mapping[str, Any]) -> bool:
    return sustained(step) and step["e2e"]["p99_ms"] <= P99_LIMIT_MS


def refine(steps: Sequence[Mapping[str, Any]], resolution: float = REFINE_RESOLUTION) -> float | None:
    """The next rate to try for the quote: halfway between the busiest step that kept p99 ≤ 50 ms and the
    lowest rate tried above it (which did not), while they are more than ``resolution`` apart; None when
    no step was calm, none was tried above the calm one, or they are close enough."""
    calm = [float(s["offered_rate"]) for s in steps if _calm(s)]
    if not calm:
        return None
    low = max(calm)
    above = [float(s["offered_rate"]) for s in steps if s["offered_rate"] > low]
    if not above or min(above) / low <= resolution:
        return None
    return round((low + min(above)) / 2, 1)


def ledger(sent_conv: Sequence[str], recipients: Mapping[str, Collection[str]],
           received: Mapping[str, Iterable[int]], acked: Collection[int] | None = None) -> dict[str, int]:
    """``sent_conv[seq]``: the conversation message ``seq`` went to; ``recipients[conv]``: who must get it
    (the sender excluded); ``received[user]``: the seqs the user's device got. Lost = expected pairs
    never seen; duplicates = a pair seen again; strays = a message to someone not its recipient. With
    ``acked`` (the seqs whose senders got SENT), lost counts only theirs: a send never acknowledged (refused,
    or unread when the load ended) was never promised, and its pairs are ``unacked_undelivered``."""
    expected = sum(len(recipients[c]) for c in sent_conv)
    owed = None if acked is None else set(acked)
    unique = duplicates = strays = unacked_seen = 0
    for user, seqs in received.items():
        seen: set[int] = set()
        for seq in seqs:
            if seq in seen:
                duplicates += 1
                continue
            seen.add(seq)
            if 0 <= seq < len(sent_conv) and user in recipients[sent_conv[seq]]:
                unique += 1
                unacked_seen += owed is not None and seq not in owed
            else:
                strays += 1
    books = {"sent": len(sent_conv), "expected": expected, "delivered_once": unique, "lost": expected - unique,
             "duplicates": duplicates, "strays": strays}
    if owed is not None:
        unacked_expected = sum(len(recipients[c]) for seq, c in enumerate(sent_conv) if seq not in owed)
        books |= {"acked": len(owed), "lost": expected - unacked_expected - (unique - unacked_seen),
                  "unacked_undelivered": unacked_expected - unacked_seen}
    return books
