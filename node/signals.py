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
from typing import Literal, TypeVar

TypingVerdict = Literal["forward", "coalesce"]
V = TypeVar("V")
PER_USER = 1000  # conversations remembered per user (the least recently touched go first)


def _remember(by_conv: dict[str, V], conv: str, value: V, cap: int) -> None:
    """Set ``conv``'s value as the newest entry; past ``cap`` the oldest goes (dicts keep insertion order)."""
    by_conv.pop(conv, None)
    by_conv[conv] = value
    if len(by_conv) > cap:
        del by_conv[next(iter(by_conv))]


@dataclass
class TypingGate:
    """Per user (a connected typist), per conversation: when the last ``start`` was forwarded. Bounded: the
    users with a device here (``forget`` at the last one's goodbye, O(conversations of that user)) times
    ``per_user``; an entry forgotten early only lets a ``start`` through sooner."""

    interval_s: float = 2.0
    per_user: int = PER_USER
    _last: dict[str, dict[str, float]] = field(default_factory=dict)

    def judge(self, user: str, conv: str, state: str, now: float) -> TypingVerdict:
        mine = self._last.get(user)
        if state == "stop":
            if mine is not None:
                mine.pop(conv, None)
            return "forward"
        if mine is not None and now - mine.get(conv, -self.interval_s) < self.interval_s:
            return "coalesce"
        _remember(self._last.setdefault(user, {}), conv, now, self.per_user)
        return "forward"

    def sent(self, user: str, conv: str) -> None:
        """The typist sent a message: receivers clear the indicator on it, so the next ``start`` is
        news and goes out at once rather than waiting out the interval."""
        mine = self._last.get(user)
        if mine is not None:
            mine.pop(conv, None)

    def forget(self, user: str) -> None:
        self._last.pop(user, None)

    def __len__(self) -> int:
        return sum(len(v) for v in self._last.values())


@dataclass
class ReceiptMarks:
    """Per user, per conversation: the highest "delivered up to" announced. Bounded like ``TypingGate``; a
    mark forgotten early (past ``per_user``) only lets the same mark be announced once more."""

    per_user: int = PER_USER
    _marks: dict[str, dict[str, int]] = field(default_factory=dict)

    def raise_to(self, user: str, conv: str, upto: int) -> bool:
        """True when ``upto`` is news: higher than anything announced for this user and conversation."""
        mine = self._marks.setdefault(user, {})
        if upto <= mine.get(conv, 0):
            return False
        _remember(mine, conv, upto, self.per_user)
        return True

    def forget(self, user: str) -> None:
        self._marks.pop(user, None)

    def __len__(self) -> int:
        return sum(len(v) for v in self._marks.values())
