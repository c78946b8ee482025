"""Where a device connection stands in its user's message sequence. Pure.

Invariant: every message of the user's conversations with an id at or below ``delivered`` has been
queued to the device, in id order. ``conv_last`` holds, per conversation, the id last queued, so a
message whose ``prev`` names something the device never got is seen as a gap before it is sent.
``base`` is where the position (re)started: a conversation not yet seen may only continue from at
or below it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Verdict = Literal["deliver", "duplicate", "gap"]


@dataclass
class Position:
    delivered: int
    base: int = -1
    conv_last: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.base < 0:
            self.base = self.delivered

    def judge(self, id: int, conv: str, prev: int) -> Verdict:
        if id <= self.delivered:
            return "duplicate"
        known = self.conv_last.get(conv, self.base)
        return "gap" if prev > known else "deliver"

    def advance(self, id: int, conv: str) -> None:
        self.delivered = id
        self.conv_last[conv] = id

    def accept(self, id: int, conv: str, prev: int) -> Verdict:
        verdict = self.judge(id, conv, prev)
        if verdict == "deliver":
            self.advance(id, conv)
        return verdict

    def restart(self, after: int) -> None:
        """Start again from ``after``: what follows is re-sent (the device drops ids it has)."""
        self.delivered = after
        self.base = after
        self.conv_last.clear()

    def resume_point(self, conv: str) -> int:
        """Where to restart to repair a gap in ``conv`` without skipping anything."""
        return min(self.delivered, self.conv_last.get(conv, self.base))
