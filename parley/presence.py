"""Presence: who is online, decided from device heartbeats. Pure: no I/O, the caller passes ``now``.

A user is online while any of their devices has been heard from within ``timeout_s``, and goes
offline only when the timeout has passed with no heartbeat from any device. So a device that drops
and reconnects quickly (or a second device that stays) never makes the user flap, and a node that
dies silently takes its users offline once their devices' last heartbeats are ``timeout_s`` old.
Heartbeats arrive in batches from nodes before ADR 0049 (every connected device each beat, and one last beat
when a device disconnects); ``heartbeat`` and ``tick`` return the transitions to announce.

Since ADR 0049 a node no longer reports every device each beat: it tells of a device when it comes and goes and
otherwise beats once per partition (``parley.presence_holdings``). A device so held keeps its user online while its
node is heard (``hold``/``release``, a holder per node and partition holding any of the user's devices): a held user
is never due, and its ``last_active`` is its holders' latest beat. Released (the device left, or its node fell
silent for the timeout), the user's time is the release's and the timeout runs from there, as for a last beat.

``tick`` runs twice a second; while no user can be due yet it returns at once instead of walking every online
user (docs/adr/0043): the book keeps a bound below which no user goes offline (the earliest ``last + timeout``, or
``hold_until`` if later, as of the last walk; beats only move a user's time later, new users lower the bound).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

_NEVER = 2**63  # the bound with no one online


@dataclass(frozen=True, slots=True)
class Transition:
    user: str
    online: bool
    last_active_at: int  # unix ms of the last heartbeat


class Holder(Protocol):
    """A node's holding of one partition's devices (``presence_holdings.Holding``), compared by identity."""

    @property
    def heard_at(self) -> int: ...  # the node's latest beat, unix ms


@dataclass(slots=True)
class _User:
    # the newest heartbeat of any of the user's devices, unix ms: all that decides (a device's own time only
    # ever grows, so the newest of them is kept as one number, not a dict per user to take the max of per tick)
    last: int
    hold_until: int = 0  # restored without a heartbeat: not taken offline before this (unix ms)
    holders: list[Holder] | None = None  # nodes holding a device of the user (ADR 0049): online while any is


@dataclass
class PresenceBook:
    timeout_ms: int
    _online: dict[str, _User] = field(default_factory=dict)
    _due: int = 0  # no user goes offline before this (unix ms): a lower bound, exact after each walk

    def heartbeat(self, user: str, device: str, at_ms: int) -> Transition | None:
        """A device was heard from at ``at_ms``; the transition to announce, if the user was offline."""
        entry = self._online.get(user)
        if entry is None:
            self._online[user] = _User(at_ms)
            self._due = min(self._due, at_ms + self.timeout_ms)
            return Transition(user, True, at_ms)
        if at_ms > entry.last:
            entry.last = at_ms
        return None

    def hold(self, user: str, holder: Holder, at_ms: int) -> Transition | None:
        """A device of ``user`` is held by ``holder`` (it came at ``at_ms``); the transition if the user was offline."""
        entry = self._online.get(user)
        if entry is None:
            self._online[user] = _User(at_ms, holders=[holder])
            return Transition(user, True, at_ms)
        if at_ms > entry.last:
            entry.last = at_ms
        if entry.holders is None:
            entry.holders = [holder]
        elif not any(h is holder for h in entry.holders):
            entry.holders.append(holder)
        return None

    def release(self, user: str, holder: Holder, at_ms: int) -> None:
        """``holder`` holds no device of ``user`` since ``at_ms``: the timeout runs from there if no one else does."""
        entry = self._online.get(user)
        if entry is None or entry.holders is None:
            return
        entry.holders = [h for h in entry.holders if h is not holder] or None
        if at_ms > entry.last:
            entry.last = at_ms
        if entry.holders is None:
            self._due = min(self._due, max(entry.last + self.timeout_ms, entry.hold_until))

    def tick(self, now_ms: int) -> list[Transition]:
        """Users whose every device has been silent for the timeout, and whom no node holds, go offline."""
        if now_ms < self._due:  # no one can be due yet: the usual tick, a comparison
            return []
        cutoff = now_ms - self.timeout_ms  # one comparison per online user
        gone = [user for user, e in self._online.items()
                if e.holders is None and e.last <= cutoff and e.hold_until <= now_ms]
        out = [Transition(user, False, self._online.pop(user).last) for user in gone]
        timeout = self.timeout_ms
        self._due = min((max(e.last + timeout, e.hold_until) for e in self._online.values() if e.holders is None),
                        default=_NEVER)
        return out

    def restore(self, user: str, last_active_ms: int, now_ms: int = 0) -> None:
        """Known online (read back from the presence bucket after a restart or a partition takeover); no
        transition. The bucket's time may be a timeout old and beats were not heard meanwhile, so the
        user gets a full timeout from ``now_ms`` to beat again before going offline."""
        if user not in self._online:
            self._online[user] = _User(last_active_ms, hold_until=now_ms + self.timeout_ms)
            self._due = min(self._due, max(last_active_ms, now_ms) + self.timeout_ms)

    def forget(self, users: list[str]) -> None:
        """Another worker handles these users now (their partition moved); no transition."""
        for user in users:
            self._online.pop(user, None)

    def is_held(self, user: str) -> bool:
        entry = self._online.get(user)
        return entry is not None and entry.holders is not None

    def is_online(self, user: str) -> bool:
        return user in self._online

    def last_active(self, user: str) -> int | None:
        entry = self._online.get(user)
        if entry is None:
            return None
        if entry.holders is None:
            return entry.last
        return max(entry.last, max(h.heard_at for h in entry.holders))

    def online_users(self) -> list[str]:
        return list(self._online)

    def online_count(self) -> int:
        return len(self._online)
