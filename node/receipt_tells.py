"""Group ``delivered`` receipts gathered per sender for a short window, each sender's to go as one bus message
(``wire.ReceiptBatch`` on ``rcpt.user.<sender>``, ADR 0048) instead of one per (member, sender, ack). Pure: no
asyncio, no clock (``now`` is passed in); ``ConversationEvents`` is the shell that publishes what is due.

Invariants:
- a sender's batch holds one mark per (conv, user): the highest added. A receipt is a mark ("delivered up to
  ``upto``", protocol.md §5), so the highest says all the lower ones said; nothing a client can see is lost by
  coalescing, and a mark that arrives twice (or out of order across batches) changes nothing either.
- a batch is due ``window_s`` after its first mark was added; marks added to it meanwhile wait less. Once taken,
  the sender's next mark opens a new batch. So no mark waits longer than ``window_s`` here.
- batches are kept in the order they were opened, so the earliest due is the first (``due`` is O(1)) as long as
  ``now`` never goes back (a monotonic clock).
"""

from __future__ import annotations

from parley import wire

Marks = dict[tuple[str, str], int]  # (conv, user) → the highest delivered mark gathered


class ReceiptTells:
    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._open: dict[str, tuple[float, Marks]] = {}  # sender → (when its batch opened, its marks)

    def __len__(self) -> int:
        """Senders with a batch open."""
        return len(self._open)

    def add(self, sender: str, conv: str, user: str, upto: int, now: float) -> bool:
        """``user``'s devices took ``sender``'s messages in ``conv`` up to ``upto``. True if this opened the
        sender's batch (due ``window_s`` from ``now``)."""
        batch = self._open.get(sender)
        if batch is None:
            self._open[sender] = (now, {(conv, user): upto})
            return True
        marks = batch[1]
        if marks.get((conv, user), -1) < upto:
            marks[conv, user] = upto
        return False

    def due(self) -> float | None:
        """When the earliest open batch is due; None if none is open."""
        for opened, _ in self._open.values():
            return opened + self.window_s
        return None

    def take(self, now: float) -> list[tuple[str, wire.ReceiptBatch]]:
        """The batches due at ``now`` (sender, message), the earliest opened first; they are closed."""
        out = []
        for sender, (opened, _) in self._open.items():
            if opened + self.window_s > now:
                break
            out.append(sender)
        return [(sender, _batch(self._open.pop(sender)[1])) for sender in out]

    def take_all(self) -> list[tuple[str, wire.ReceiptBatch]]:
        """Every open batch, due or not (the node stops: nothing waits out its window)."""
        taken, self._open = self._open, {}
        return [(sender, _batch(marks)) for sender, (_, marks) in taken.items()]


def _batch(marks: Marks) -> wire.ReceiptBatch:
    return wire.ReceiptBatch(tuple((conv, user, upto) for (conv, user), upto in marks.items()))
