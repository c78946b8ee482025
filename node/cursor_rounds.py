"""Cursor offers spread over a round (docs/adr/0040). Pure: no clock, no asyncio; the node ticks it.

A device whose position moved is offered a cursor to ack at most once a round (``cursor_every_s``). Offered
all at one instant, as they were, the offers made the node's busiest moments: every round each moved device
got its cursor and their acks came back together, tens of ms of work in one go on the node (and on the
processes sharing its core) that every message arriving meanwhile waited behind — the p99's tail. Here each
link belongs to one of ``slices`` slots (its connection number modulo ``slices``) and each tick takes one
slot: a round's offers, and the acks they bring, are spread over ``slices`` ticks of ``cursor_every_s /
slices``, and each link is still offered once a round, at most a round after it moved, as before.

The ticks keep to their schedule (``next_tick``): a loop late by a few ms at each of ten ticks would otherwise
stretch the round by ten times that, and offer cursors less often than ``cursor_every_s`` under load.

A moved link with nothing about to be written is set aside (``wait``): it gets its cursor alone at its slot's
next tick if nothing was written to it meanwhile (a write on the way takes the cursor with it, ADR 0027).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

L = TypeVar("L", bound=Hashable)


class CursorRounds(Generic[L]):
    __slots__ = ("_moved", "_waiting", "_slot_of", "_next")

    def __init__(self, slices: int, slot_of: Callable[[L], int]) -> None:
        if slices < 1:
            raise ValueError("a round has at least one slice")
        self._moved: list[set[L]] = [set() for _ in range(slices)]
        self._waiting: list[list[L]] = [[] for _ in range(slices)]
        self._slot_of = slot_of
        self._next = 0

    @property
    def slices(self) -> int:
        return len(self._moved)

    def moved(self, link: L) -> None:
        """``link`` was sent something since its slot's last tick: it is offered a cursor at the next one."""
        self._moved[self._slot_of(link) % len(self._moved)].add(link)

    def wait(self, link: L) -> None:
        """``link`` had nothing about to be written at its tick: it comes back at its slot's next tick."""
        self._waiting[self._slot_of(link) % len(self._waiting)].append(link)

    def idle(self) -> bool:
        """No link moved or set aside in any slot: every tick of a round would find nothing."""
        return not any(self._moved) and not any(self._waiting)

    def tick(self) -> tuple[list[L], list[L]]:
        """The next slot's links: (those set aside a round ago, those moved since), each slot once per round."""
        i = self._next
        self._next = (i + 1) % len(self._moved)
        moved, self._moved[i] = self._moved[i], set()
        waiting, self._waiting[i] = self._waiting[i], []
        return waiting, list(moved)


def next_tick(due: float, now: float, tick: float, slices: int) -> float:
    """When the tick after the one that was ``due`` is due: on the schedule, whatever the loop's lateness (a late
    tick is followed at once by the next one that is due); a loop a whole round behind starts again from ``now``."""
    following = due + tick
    return following if following > now - tick * slices else now + tick
