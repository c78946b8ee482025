"""Typing indicators and delivery receipts: what a node forwards, decided without I/O.

Both travel on a conversation's event subject (``evt.<conv>``, core NATS, never stored).
- ``TypingGate``: a client may say "typing" on every keystroke; the node forwards at most one
  ``start`` per sender and conversation per ``interval_s`` (receivers expire it after ``ttl``), a
  ``stop`` at once (a sent message counts as one). A flood of typing frames is refused before it gets
  here, by the connection's frame budget (``parley.ratelimit.FrameBudget``).
- ``ReceiptMarks``: the highest "delivered up to" this node has announced per user and conversation,
  so a user's second device acking the same messages announces nothing new.
Pure: callers pass ``now`` (monotonic seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

TypingVerdict = Literal["forward", "coalesce"]


@dataclass
class TypingGate:
    interval_s: float = 2.0
    _last: dict[tuple[str, str], float] = field(default_factory=dict)

    def judge(self, user: str, conv: str, state: str, now: float) -> TypingVerdict:
        key = (user, conv)
        if state == "stop":
            self._last.pop(key, None)
            return "forward"
        if now - self._last.get(key, -self.interval_s) < self.interval_s:
            return "coalesce"
        self._last[key] = now
        return "forward"

    def sent(self, user: str, conv: str) -> None:
        """The typist sent a message: receivers clear the indicator on it, so the next ``start`` is
        news and goes out at once rather than waiting out the interval."""
        self._last.pop((user, conv), None)

    def forget(self, user: str) -> None:
        for key in [k for k in self._last if k[0] == user]:
            del self._last[key]


@dataclass
class ReceiptMarks:
    _marks: dict[tuple[str, str], int] = field(default_factory=dict)

    def raise_to(self, user: str, conv: str, upto: int) -> bool:
        """True when ``upto`` is news: higher than anything announced for this user and conversation."""
        key = (user, conv)
        if upto <= self._marks.get(key, 0):
            return False
        self._marks[key] = upto
        return True

    def forget(self, user: str) -> None:
        for key in [k for k in self._marks if k[0] == user]:
            del self._marks[key]
