"""When ``parley up`` starts an exited process again, and when it gives up on one. Pure: times come in.

A process that crashes is started again after a delay that doubles with every crash in a row
(``first_delay_s``, then 2×, 4×… capped at ``max_delay_s``); one that stayed up ``stable_after_s``
before crashing starts the doubling over. One that crashed ``crash_limit`` times within
``crash_window_s`` is crash-looping: starting it yet again would only hide the cause, so the caller
stops and names it. A planned exit (a node that drained) is started again at once and is not a crash.

``Supervision`` keeps every process's ``Record`` by name and the restarts that are due:
``exited`` → a ``Restart`` (when) or a ``GiveUp``; ``due(now)`` → the names to start now;
``started`` once it runs again. Times are seconds on one monotonic clock, passed in.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Policy:
    first_delay_s: float = 0.5
    max_delay_s: float = 10.0
    stable_after_s: float = 30.0  # up this long: its next crash is the first of a new streak
    crash_limit: int = 5
    crash_window_s: float = 60.0


@dataclass(frozen=True)
class Record:
    """One process as the supervisor knows it."""

    started_at: float
    restarts: int = 0  # how many times it was started again (run.json shows it)
    delay_s: float = 0.0  # the delay before its last restart, 0 when that was not a crash
    crashes: tuple[float, ...] = ()  # when it crashed, within the window


@dataclass(frozen=True)
class Restart:
    at: float
    delay_s: float
    crashes: int  # within the window, this one included


@dataclass(frozen=True)
class GiveUp:
    crashes: int
    window_s: float


def next_delay(record: Record, now: float, policy: Policy) -> float:
    """The pause before starting it again: doubled from the last one, unless it had been up long enough."""
    if record.delay_s <= 0 or now - record.started_at >= policy.stable_after_s:
        return policy.first_delay_s
    return min(record.delay_s * 2, policy.max_delay_s)


def after_exit(record: Record, now: float, policy: Policy, planned: bool = False) -> tuple[Record, Restart | GiveUp]:
    """What to do about a process that exited at ``now``: its record updated, and the decision."""
    if planned:
        return replace(record, delay_s=0.0), Restart(at=now, delay_s=0.0, crashes=len(record.crashes))
    crashes = (*(t for t in record.crashes if now - t < policy.crash_window_s), now)
    delay = next_delay(record, now, policy)
    updated = replace(record, delay_s=delay, crashes=crashes)
    if len(crashes) >= policy.crash_limit:
        return updated, GiveUp(crashes=len(crashes), window_s=now - crashes[0])
    return updated, Restart(at=now + delay, delay_s=delay, crashes=len(crashes))


def started_again(record: Record, now: float) -> Record:
    return replace(record, started_at=now, restarts=record.restarts + 1)


def describe_exit(returncode: int | None) -> str:
    """``exit code 1`` or ``killed by SIGKILL`` (a negative return code is the signal, as Popen has it)."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


@dataclass
class Supervision:
    policy: Policy = field(default_factory=Policy)
    records: dict[str, Record] = field(default_factory=dict)
    pending: dict[str, Restart] = field(default_factory=dict)  # exited, waiting for its restart

    def track(self, name: str, now: float) -> None:
        self.records.setdefault(name, Record(started_at=now))

    def waiting(self, name: str) -> bool:
        return name in self.pending

    def restarts(self, name: str) -> int:
        record = self.records.get(name)
        return record.restarts if record else 0

    def exited(self, name: str, now: float, planned: bool = False) -> Restart | GiveUp:
        self.track(name, now)
        self.records[name], decision = after_exit(self.records[name], now, self.policy, planned)
        if isinstance(decision, Restart):
            self.pending[name] = decision
        return decision

    def due(self, now: float) -> list[str]:
        """The processes whose restart time has come, in the order they exited; no longer pending."""
        names = [name for name, r in self.pending.items() if r.at <= now]
        for name in names:
            del self.pending[name]
        return names

    def started(self, name: str, now: float) -> Record:
        self.records[name] = started_again(self.records[name], now)
        return self.records[name]
