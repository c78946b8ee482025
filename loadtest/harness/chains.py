"""One device's view of its conversations' ``prev`` chains: is an arriving message new, a re-send the
protocol allows, a duplicate, or past a gap? Pure: no clock, no I/O.

Protocol v2 ids are increasing within a conversation only (never compare ids of two conversations),
and a message names its conversation's previous id in ``prev``; cursors are opaque. So everything is
kept per conversation:

- ``tail``: the newest id this device holds of the conversation (the chain it holds ends there);
- ``connection``: the newest id received on the current connection — the node never sends a message
  twice on one connection (unless the client asks with ``sync``, which load clients do not), and a
  conversation's messages arrive in chain order, so anything at or below it is a **duplicate**;
- ``covered``: the tails when the cursor this device holds was offered (a cursor frame covers every
  frame before it) and ``resumed``: those of the cursor the connection started from. After a
  reconnect the node re-sends what came after that cursor; a message at or below the tail is then a
  **resent** one the device drops (allowed), but one at or below ``resumed`` was covered by the cursor
  and should never have come again: a **duplicate**.
- a new message whose ``prev`` is not the tail is past a **gap** (``prev`` > tail: something is
  missing; ``prev`` < tail: the chain forked). The first message seen of a conversation starts its
  chain (history before the device's start is not its business).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Verdict = Literal["new", "resent", "duplicate", "gap"]


@dataclass
class Chains:
    tail: dict[str, int] = field(default_factory=dict)
    connection: dict[str, int] = field(default_factory=dict)
    covered: dict[str, int] = field(default_factory=dict)
    resumed: dict[str, int] = field(default_factory=dict)

    def judge(self, conv: str, id: int, prev: int) -> Verdict:
        """A ``msg`` frame arrived; a "gap" message is taken (the chain goes on from it)."""
        if id <= self.connection.get(conv, 0):
            return "duplicate"
        self.connection[conv] = id
        tail = self.tail.get(conv)
        if tail is not None and id <= tail:
            return "duplicate" if id <= self.resumed.get(conv, 0) else "resent"
        self.tail[conv] = id
        return "gap" if tail is not None and prev != tail else "new"

    def offered(self) -> None:
        """The node offered a cursor (a ``cursor`` or ``synced`` frame) after the frames judged so far."""
        self.covered = dict(self.tail)

    def reconnected(self, with_cursor: bool) -> None:
        """A new connection starts: from the cursor last offered (``with_cursor``), else from one the
        device cannot vouch for (the server's stored one, or none after ``bad_cursor``)."""
        self.connection.clear()
        self.resumed = dict(self.covered) if with_cursor else {}

    def cursor_refused(self) -> None:
        """``bad_cursor`` on hello: the node syncs this device from the beginning (and its welcome's
        cursor, which the device now holds, covers nothing)."""
        self.resumed, self.covered = {}, {}
