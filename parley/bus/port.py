"""What the edge node needs of the bus, as small Protocols (the NATS client implements them).

``Bus``: core NATS — ordered subscriptions, publishing, a round trip to the server. ``StreamReads``:
the reads of the message stream that sync and the send path make. Node modules depend on these, not
on nats-py, so the pure parts can be tested without a server and the adapter can change alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol

from parley.bus.ordered import Handler

StreamRow = tuple[int, str, bytes]  # (id, subject, payload)


class Bus(Protocol):
    async def subscribe_ordered(self, subject: str, handler: Handler) -> Any: ...
    async def unsubscribe_ordered(self, sub: Any) -> None: ...
    async def publish(self, subject: str, payload: bytes = b"", reply: str = "",
                      headers: dict[str, str] | None = None) -> None: ...
    async def flush(self, timeout: int = 10) -> None: ...


class StreamReads(Protocol):
    async def bounds(self) -> tuple[int, int]:
        """The first and last ids the stream holds now."""

    async def archived_through(self) -> int:
        """Every message with an id at or below this is in the store (the archiver's ack floor)."""

    async def last_of(self, subject: str) -> int:
        """The id of the last message on ``subject`` (0 if none)."""

    def batches(self, filters: Iterable[str], *, start: int, end: int, size: int) -> AsyncIterator[list[StreamRow]]:
        """Messages with ids in [start, end] on any of ``filters``, in id order, a batch at a time."""
