"""What the edge node needs of the bus, as small Protocols (the NATS client implements them).

``Bus``: core NATS — ordered subscriptions, publishing, a round trip to the server. ``StreamReads``:
the reads of the message stream that sync and the send path make. Node modules depend on these, not
on nats-py, so the pure parts can be tested without a server and the adapter can change alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol

from parley.bus.ordered import Handler, HeadedHandler

StreamRow = tuple[int, str, bytes]  # (id, subject, payload)


class Bus(Protocol):
    async def subscribe_ordered(self, subject: str, handler: Handler) -> Any: ...
    async def subscribe_headed(self, subject: str, handler: HeadedHandler) -> Any: ...
    async def unsubscribe_ordered(self, *subs: Any) -> None: ...
    async def publish(self, subject: str, payload: bytes = b"", reply: str = "",
                      headers: dict[str, str] | None = None) -> None: ...
    async def flush(self, timeout: int = 10) -> None: ...


class StreamReads(Protocol):
    @property
    def shards(self) -> int:
        """How many shard streams the deployment has."""

    async def bounds(self, shard: int) -> tuple[int, int]:
        """The first and last sequences the shard's stream holds now."""

    async def archived_through(self, shard: int) -> int:
        """Every message of the shard at or below this sequence is in the store (the archiver's ack floor)."""

    async def last_of(self, shard: int, conv: str) -> int:
        """The id of ``conv``'s last message in the stream (0 if none)."""

    def batches(self, shard: int, filters: Iterable[str], *, start: int, end: int,
                size: int) -> AsyncIterator[list[StreamRow]]:
        """Messages of the shard with sequences in [start, end] on any of ``filters``, in order, a batch at
        a time; rows carry packed ids."""
