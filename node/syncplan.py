"""Planning one sync round, without I/O: what to read from the store, what from the stream, from where.

A round reads every message of the user's conversations after the device's position. The store has
every message up to the archiver's ack floor (``archived``); the stream holds the last
``stream_max_age_s`` of messages, ``first`` to ``last``. So: the store for (after, min(archived, last)],
then the stream for the rest up to ``last`` — read *after* the user's live subscriptions were in place,
so everything stored later arrives live. If the store fails, the stream can stand in for it only where
it still holds the messages (``first`` ≤ the next id wanted).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SyncPlan:
    after: int  # the round reads everything after this (the cursor, or ``last`` if it was beyond it)
    store_upto: int  # the store for (after, store_upto]; nothing from the store if not above ``after``
    last: int  # the stream's newest id when the round began: the round covers everything up to it
    first: int  # the stream's oldest id
    bad_cursor: bool  # the cursor was beyond the newest message

    def stream_start(self, cursor: int) -> int:
        """Where the stream read begins once everything up to ``cursor`` was sent."""
        return max(cursor + 1, self.first)

    def stream_holds_after(self, cursor: int) -> bool:
        """Whether the stream still has every message after ``cursor`` (the store may be skipped)."""
        return self.first <= cursor + 1


def plan_round(after: int, *, first: int, last: int, archived: int) -> SyncPlan:
    bad = after > last  # a cursor from the future would hide messages until ids caught up with it
    start = last if bad else after
    return SyncPlan(after=start, store_upto=min(archived, last), last=last, first=first, bad_cursor=bad)
