"""What to do after the WebSocket closed: docs/protocol.md §13 and §15 as a table, the way the web client
(web/static/connection.js) does it.

``after_close`` maps the close code (and a ``moved`` frame, if the node sent one) to a ``Plan``: log in
again first or not, which node URLs to try (none: ask ``GET /v1/place``), how long to wait, and a line for
the user. ``Backoff`` doubles from 0.5 s to 30 s with jitter; a connection that got to ``welcome`` resets
it. Pure: the jitter's random number is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

AUTH_CLOSES = frozenset({4001, 4002, 4003})
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0


@dataclass(frozen=True)
class Plan:
    note: str
    relogin: bool = False
    nodes: tuple[str, ...] = ()  # WebSocket URLs to try in order; empty: GET /v1/place
    backoff: bool = True  # wait the backoff first (else go at once, after ``delay_s``)
    delay_s: float = 0.0
    at_least_s: float = 0.0


def urls_of(placement: dict[str, Any]) -> tuple[str, ...]:
    node = placement.get("node")
    return tuple(n["url"] for n in ([node] if node else []) + list(placement.get("fallbacks") or []))


def after_close(code: int | None, moved: dict[str, Any] | None, jitter: float) -> Plan:
    """``jitter`` in [0, 1): spreads the clients of one node over 100–500 ms when they all go at once."""
    if code == 4010 or moved is not None:
        target = moved.get("node") if moved else None
        if target:
            return Plan(f"{target['id']} takes over (the node is draining)", nodes=urls_of(moved or {}),
                        backoff=False)
        return Plan("the node is draining; finding another", backoff=False, delay_s=0.1 + 0.4 * jitter)
    if code in AUTH_CLOSES:
        return Plan(f"the session ended ({code}); logging in again", relogin=True, backoff=False)
    if code == 1001:
        return Plan("the node is stopping; finding another", backoff=False, delay_s=0.1 + 0.4 * jitter)
    if code == 4029:
        return Plan("too many refused frames; waiting", at_least_s=MAX_BACKOFF_S)
    return Plan(f"connection lost ({code if code is not None else 'no close code'}); reconnecting")


class Backoff:
    def __init__(self) -> None:
        self.next_s = FIRST_BACKOFF_S

    def take(self, jitter: float) -> float:
        """The wait before this attempt (backoff × 0.5–1.5); doubles the next one up to the cap."""
        delay = self.next_s * (0.5 + jitter)
        self.next_s = min(self.next_s * 2, MAX_BACKOFF_S)
        return delay

    def reset(self) -> None:
        self.next_s = FIRST_BACKOFF_S
