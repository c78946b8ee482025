"""A user's standing in one room: warnings, time-outs and a ban — the escalation, pure (``now`` passed in).

Each flood offence is a warning; ``warnings`` of them within ``warning_window_s`` turn into a time-out of
``timeout_s`` (the warnings are spent); ``timeouts_to_ban`` time-outs within ``timeout_window_s`` turn into
a ban. A moderator may time out or ban directly (``timed_out_by``, ``banned_by``). A standing is what the
``live_mod`` bucket holds per (room, user), shared by every node; ``keep_s`` says how long it matters
(the key's TTL; a ban: for ever, until a moderator lifts it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

Step = Literal["warning", "timeout", "ban"]


@dataclass(frozen=True)
class Escalation:
    warnings: int = 3  # warnings within warning_window_s that make a time-out
    warning_window_s: float = 300.0
    timeout_s: float = 300.0
    timeouts_to_ban: int = 3  # automatic time-outs within timeout_window_s that make a ban
    timeout_window_s: float = 86400.0


@dataclass(frozen=True)
class Standing:
    warnings: tuple[float, ...] = ()  # when each outstanding warning was given
    timeouts: tuple[float, ...] = ()  # when each automatic time-out began
    until: float = 0.0  # timed out until then
    banned: bool = False

    def timed_out(self, now: float) -> bool:
        return not self.banned and self.until > now

    def to_json(self) -> dict[str, Any]:
        return {"warnings": list(self.warnings), "timeouts": list(self.timeouts), "until": self.until,
                "banned": self.banned}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Standing:
        return cls(tuple(float(t) for t in data.get("warnings", ())), tuple(float(t) for t in data.get("timeouts", ())),
                   float(data.get("until", 0.0)), bool(data.get("banned", False)))


CLEAR = Standing()


def offend(standing: Standing, now: float, rules: Escalation) -> tuple[Standing, Step]:
    """One more flood offence: a warning, or the time-out it completes, or the ban that time-out completes."""
    warnings = tuple(t for t in standing.warnings if t > now - rules.warning_window_s) + (now,)
    if len(warnings) < rules.warnings:
        return replace(standing, warnings=warnings), "warning"
    timeouts = tuple(t for t in standing.timeouts if t > now - rules.timeout_window_s) + (now,)
    if len(timeouts) >= rules.timeouts_to_ban:
        return Standing(timeouts=timeouts, banned=True), "ban"
    return Standing(timeouts=timeouts, until=now + rules.timeout_s), "timeout"


def timed_out_by(standing: Standing, now: float, duration_s: float) -> Standing:
    """A moderator's time-out: until ``now + duration_s`` (it does not count towards a ban)."""
    return replace(standing, until=now + duration_s, warnings=())


def banned_by(standing: Standing) -> Standing:
    return replace(standing, banned=True, warnings=(), until=0.0)


def keep_s(standing: Standing, now: float, rules: Escalation) -> float | None:
    """How long the standing still matters (the KV key's TTL, whole seconds ≥ 1); None: for ever (a ban);
    0: not at all (delete it)."""
    if standing.banned:
        return None
    ends = [standing.until] + [t + rules.warning_window_s for t in standing.warnings] + [
        t + rules.timeout_window_s for t in standing.timeouts]
    left = max(ends) - now
    return float(math.ceil(left)) if left > 0 else 0.0
