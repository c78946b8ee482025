"""What a live room's send path asks before it accepts a message: a chain of screens (banned words, flood
rules, time-outs and bans), each pure or backed by shared state, each answering with a Verdict."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Action = Literal["accept", "mask", "reject"]

@dataclass(frozen=True)
class Attempt:
    room: str            # the live room id
    user: str            # the sender's user id
    text: str            # the message body as sent (after masking by earlier screens)
    now: float           # wall-clock seconds
    account_age_s: float # seconds since the sender signed up (new-account rules)
    moderator: bool      # the sender owns or moderates the room (moderators skip flood rules)

@dataclass(frozen=True)
class Verdict:
    action: Action
    text: str = ""               # "mask": the text to send instead
    code: str = ""               # "reject": the documented error code (e.g. "banned_word", "flooding", "slow_mode", "timed_out", "banned")
    retry_after_s: float = 0.0   # "reject": when a retry may pass (slow mode, time-outs); 0 = not by waiting
    reason: str = ""             # for the sender and moderators (which rule), never the matched secret list

ACCEPT = Verdict("accept")

class Screen(Protocol):
    async def screen(self, attempt: Attempt) -> Verdict: ...
    def accepted(self, attempt: Attempt, text: str) -> None:
        """Told after the whole chain accepted ``attempt`` (sent as ``text``): a screen with state counts it."""
