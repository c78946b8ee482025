"""What a node has yet to write to the store — acked cursors, delivered marks — bounded while the store is down.

Entries are written in batches (``take``); a batch the store refused is ``put_back`` behind what was put
since (newer, so it wins: a cursor or a mark only moves forward). At most ``cap`` entries are kept: past it
the oldest is dropped unsaved (docs/adr/0016). Dropping one loses no message: a device whose acked cursor
was not saved resumes from its older stored cursor (it gets again what it had, never less); a delivered mark
not saved was announced live already and shows lower in a member list read later. Pure: no I/O.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Unsaved(Generic[K, V]):
    __slots__ = ("cap", "_entries", "dropped")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._entries: dict[K, V] = {}  # oldest first
        self.dropped = 0  # entries dropped unsaved, since the start

    def put(self, key: K, value: V) -> None:
        self._entries.pop(key, None)
        self._entries[key] = value
        self._shed()

    def take(self) -> dict[K, V]:
        """Everything unsaved, for one write; empty afterwards."""
        taken, self._entries = self._entries, {}
        return taken

    def put_back(self, taken: dict[K, V]) -> None:
        """The write of ``taken`` failed: keep it for the next one, older than whatever was put since."""
        self._entries = {**taken, **self._entries}
        self._shed()

    def _shed(self) -> None:
        while len(self._entries) > self.cap:
            del self._entries[next(iter(self._entries))]
            self.dropped += 1

    def __len__(self) -> int:
        return len(self._entries)
