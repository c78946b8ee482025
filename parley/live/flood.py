"""The flood rules one node applies to live-room messages, pure (time passed in, no I/O).

Per user per room: at most ``rate_messages`` accepted in any ``rate_window_s`` (a sliding log of the last
accepted times: exact over every window, where a token bucket would let twice the burst through across a
refill) — ``new_rate_messages`` for accounts younger than ``new_account_s``; no text like one of the
user's last ``duplicate_history`` within ``duplicate_window_s`` (``similar``: case and whitespace folded,
3-gram Jaccard ≥ ``duplicate_similarity``); at most ``links_per_message`` links in one message and
``links_per_window`` in ``links_window_s``, and none from a new account; with the room in slow mode, one
message per its seconds. ``check`` only reads; ``count`` records what the whole chain accepted, so a
rejected message costs the sender nothing here (its warning is the standing's business, ``standing``).

Memory is bounded: one ``Track`` per (room, user), each of fixed size, at most ``tracked`` of them (the
least recently active is forgotten first: it had nothing recent to count). These tracks live per node
(ADR 0020: sharing them would cost a KV write per message); warnings, time-outs, bans and slow mode
are shared.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from parley.live import similar
from parley.live.screening import Attempt
from parley.live.standing import Escalation
from parley.settings import Settings


@dataclass(frozen=True)
class FloodRules:
    rate_messages: int = 5
    rate_window_s: float = 10.0
    new_account_s: float = 86400.0
    new_rate_messages: int = 2
    duplicate_window_s: float = 60.0
    duplicate_similarity: float = 0.8
    duplicate_history: int = 5
    links_per_message: int = 2
    links_per_window: int = 4
    links_window_s: float = 60.0
    tracked: int = 100_000
    escalation: Escalation = field(default_factory=Escalation)

    @classmethod
    def from_settings(cls, s: Settings) -> FloodRules:
        return cls(s.flood_rate_messages, s.flood_rate_window_s, s.flood_new_account_s, s.flood_new_rate_messages,
                   s.flood_duplicate_window_s, s.flood_duplicate_similarity, s.flood_duplicate_history,
                   s.flood_links_per_message, s.flood_links_per_window, s.flood_links_window_s, s.flood_tracked,
                   Escalation(s.flood_warnings, s.flood_warning_window_s, s.flood_timeout_s, s.flood_timeouts_to_ban,
                              s.flood_timeout_window_s))


@dataclass(frozen=True)
class Offence:
    """A rule the message broke: ``code`` is its error code (flooding, duplicate, links, slow_mode)."""

    code: str
    reason: str
    retry_after_s: float = 0.0

    @property
    def escalates(self) -> bool:
        """Slow mode only waits; the other rules are flooding and count towards a time-out."""
        return self.code != "slow_mode"


class Track:
    """One user's recent accepted messages in one room, bounded by the rules."""

    __slots__ = ("sent", "texts", "link_times", "last")

    def __init__(self, rules: FloodRules) -> None:
        self.sent: deque[float] = deque(maxlen=rules.rate_messages)
        self.texts: deque[tuple[float, frozenset[str]]] = deque(maxlen=rules.duplicate_history)
        self.link_times: deque[float] = deque(maxlen=rules.links_per_window)
        self.last = float("-inf")


class FloodTracker:
    def __init__(self, rules: FloodRules) -> None:
        self.rules = rules
        self._tracks: OrderedDict[tuple[str, str], Track] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tracks)

    def check(self, attempt: Attempt, slow_mode_s: float = 0.0) -> Offence | None:
        """The first rule ``attempt`` breaks (slow mode, rate, links, duplicate), or None."""
        track = self._tracks.get((attempt.room, attempt.user))
        if track is None:
            return self._links(attempt, None)
        self._tracks.move_to_end((attempt.room, attempt.user))
        return (self._slow(attempt, track, slow_mode_s) or self._rate(attempt, track)
                or self._links(attempt, track) or self._duplicate(attempt, track))

    def count(self, attempt: Attempt, text: str) -> None:
        """``attempt`` was accepted and sent as ``text``."""
        key = (attempt.room, attempt.user)
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = Track(self.rules)
            if len(self._tracks) > self.rules.tracked:
                self._tracks.popitem(last=False)
        else:
            self._tracks.move_to_end(key)
        now = attempt.now
        track.sent.append(now)
        track.texts.append((now, similar.shingles(similar.normalise(text))))
        track.link_times.extend([now] * min(similar.links(text), self.rules.links_per_window))
        track.last = now

    def _limit(self, attempt: Attempt) -> int:
        new = attempt.account_age_s < self.rules.new_account_s
        return min(self.rules.new_rate_messages, self.rules.rate_messages) if new else self.rules.rate_messages

    def _slow(self, attempt: Attempt, track: Track, slow_mode_s: float) -> Offence | None:
        wait = track.last + slow_mode_s - attempt.now
        if slow_mode_s > 0 and wait > 0:
            return Offence(code="slow_mode", reason=f"slow mode: one message every {slow_mode_s:g} s",
                           retry_after_s=wait)
        return None

    def _rate(self, attempt: Attempt, track: Track) -> Offence | None:
        limit, window = self._limit(attempt), self.rules.rate_window_s
        recent = [t for t in track.sent if t > attempt.now - window]
        if len(recent) < limit:
            return None
        return Offence(code="flooding", reason=f"more than {limit} messages in {window:g} s",
                       retry_after_s=recent[-limit] + window - attempt.now)

    def _links(self, attempt: Attempt, track: Track | None) -> Offence | None:
        n = similar.links(attempt.text)
        if n == 0:
            return None
        if attempt.account_age_s < self.rules.new_account_s:
            return Offence(code="links", reason="new accounts may not post links yet")
        if n > self.rules.links_per_message:
            return Offence(code="links", reason=f"more than {self.rules.links_per_message} links in one message")
        window = self.rules.links_window_s
        recent = 0 if track is None else sum(1 for t in track.link_times if t > attempt.now - window)
        if recent + n > self.rules.links_per_window:
            return Offence(code="links", reason=f"more than {self.rules.links_per_window} links in {window:g} s")
        return None

    def _duplicate(self, attempt: Attempt, track: Track) -> Offence | None:
        mine = similar.shingles(similar.normalise(attempt.text))
        since = attempt.now - self.rules.duplicate_window_s
        for at, theirs in track.texts:
            if at > since and similar.similarity(mine, theirs) >= self.rules.duplicate_similarity:
                return Offence(code="duplicate", reason="the same or nearly the same as a recent message of yours")
        return None
