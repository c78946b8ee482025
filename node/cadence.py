"""When each of a node's periodic duties is due, in the one loop that runs them. Pure: the caller passes ``now``.

The duties loop (node/app.py) wakes every ``min(node_beat_s, cursor_flush_s, presence_beat_s)`` — each second by
default, for the cursor flush — and each duty runs on its own period: the registry put every ``node_beat_s`` (2 s),
the presence beat every ``presence_beat_s`` (5 s). Before, the registry put ran at every wakeup, twice as often as
its setting (ADR 0046, What is left). The loop's wakeups come a little late (the sleep follows the duties' own
time), so a duty is due once its period, less half a wakeup, has passed since it last ran: a period that is a
multiple of the wakeups (2 s of 1 s) is kept exactly, not stretched to the next wakeup after it, and one between
two wakeups runs at the earlier (never less often than asked: the registry entry's TTL counts on it).
"""

from __future__ import annotations


class Cadence:
    def __init__(self, every_s: float, wakeup_s: float) -> None:
        self.every_s, self._slack = every_s, wakeup_s / 2
        self._last: float | None = None

    def due(self, now: float) -> bool:
        """Whether the duty runs at this wakeup; if so it counts as run now."""
        if self._last is not None and now - self._last < self.every_s - self._slack:
            return False
        self._last = now
        return True
