"""Presence churn's books (``loadtest.groups_bench``): who disconnected and connected when, and what the
observers were told, turned into transition rates, flaps and announcement delays.

Pure: times in milliseconds come in (wall clock, ``time.time() * 1000``, the clock the node's
``last_active_at`` uses), figures come out; the random choice of who cycles is seeded by the caller.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from parley.loadtest.harness.latency import latency_summary

MATCH_MS = 2000  # an offline announcement belongs to the disconnect whose time its last_active_at is nearest
U = TypeVar("U")
Announcement = tuple[float, str, bool, int | None]  # at ms, user id, online, last_active_at


@dataclass
class Churn(Generic[U]):
    rng: random.Random
    online: list[U]
    offline: list[U]
    events: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)  # user id → (ms, connected)
    errors: Counter[str] = field(default_factory=Counter)

    def take(self, users: list[U]) -> U:
        i = self.rng.randrange(len(users))
        users[i], users[-1] = users[-1], users[i]
        return users.pop()

    def mark(self, user_id: str, connected: bool, at_ms: float) -> None:
        self.events.setdefault(user_id, []).append((at_ms, connected))


def match_down(events: list[tuple[float, bool]], last_active: int | None) -> int | None:
    """The index of the disconnect an offline announcement is about (its ``last_active_at`` is the
    node's last beat for the device, sent when it disconnected)."""
    downs = [(abs(t - last_active), i) for i, (t, up) in enumerate(events) if not up] if last_active else []
    best = min(downs, default=None)
    return best[1] if best is not None and best[0] <= MATCH_MS else None


@dataclass
class Told:
    """What the announcements said about the recorded transitions."""

    matched: set[tuple[str, int]] = field(default_factory=set)  # (user, index of the disconnect)
    flaps: int = 0  # announced offline although the user was back within the timeout
    flaps_near: int = 0  # of which back in the last second before the timeout
    unmatched: int = 0
    online_delay: list[int] = field(default_factory=list)  # ns
    offline_delay: list[int] = field(default_factory=list)


def read_announcements(events: dict[str, list[tuple[float, bool]]], seen: list[Announcement],
                       timeout_ms: float) -> Told:
    told = Told()
    for at, user, online, last in seen:
        ev = events.get(user, [])
        if online:
            ups = [t for t, up in ev if up and t <= at]
            if ups:
                told.online_delay.append(int((at - ups[-1]) * 1e6))
            continue
        i = match_down(ev, last)
        if i is None:
            told.unmatched += 1
            continue
        told.matched.add((user, i))
        told.offline_delay.append(int((at - ev[i][0]) * 1e6))
        back = next((t for t, up in ev[i + 1:] if up), None)
        if back is not None and back - ev[i][0] < timeout_ms:
            told.flaps += 1
            told.flaps_near += int(back - ev[i][0] >= timeout_ms - 1000)
    return told


def presence_stats(churn: Churn[Any], announced: list[Announcement], t_from: float, t_to: float,
                   window: tuple[float, float], timeout_ms: float) -> dict[str, Any]:
    seen = [a for a in announced if t_from <= a[0] < t_to]
    in_window = [a for a in seen if window[0] <= a[0] < window[1]]
    span_s = (window[1] - window[0]) / 1000
    told = read_announcements(churn.events, seen, timeout_ms)
    gaps = [(user, i, (ev[i + 1][0] if i + 1 < len(ev) else t_to) - ev[i][0], i + 1 < len(ev))
            for user, ev in churn.events.items() for i in range(len(ev)) if not ev[i][1] and t_from <= ev[i][0] < t_to]
    long = [(user, i) for user, i, gap, _ in gaps if gap >= timeout_ms + 1000]  # back later, or not yet
    return {
        "announced_online_per_s": round(sum(1 for a in in_window if a[2]) / span_s, 1),
        "announced_offline_per_s": round(sum(1 for a in in_window if not a[2]) / span_s, 1),
        "announced_total": len(seen),
        "reconnects_within_timeout": sum(1 for *_, gap, back in gaps if back and gap < timeout_ms),
        "flapped": told.flaps,
        "flapped_within_1s_of_timeout": told.flaps_near,
        "offline_longer_than_timeout_plus_1s": len(long),
        "of_which_announced_offline": sum(1 for key in long if key in told.matched),
        "offline_announcements_unmatched": told.unmatched,
        "online_delay_after_connect": latency_summary(told.online_delay),
        "offline_delay_after_disconnect": latency_summary(told.offline_delay),
    }
