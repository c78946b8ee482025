"""The message an action or reply names, as it is now, and the entry fields the send then publishes (ADR 0025).

The target is read from the store (one row by its id: the ``messages_by_conv`` index, or one Cassandra
partition) and brought up to date with the conversation's unarchived tail in the stream (usually a few
messages: the archiver writes within ``archiver_linger_s`` + ``COALESCE_S``), so a reaction right after a delete
is refused here, not only ignored by the archiver. A target the archiver has not written yet is read from the
stream, from its own sequence on. The archiver still applies every action in stream order
(``parley.actions.apply``), so what two nodes let through at the same moment ends the same everywhere.

A resend of a delete that was stored (its cid is the target's ``delete_cid``) is answered ``duplicate``, like
a resent message, though the target is now deleted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from parley.actions import apply, check, quote_of
from parley.bus.port import StreamReads
from parley.ids import ConversationId, UserId
from parley.messages import decode_payload
from parley.protocol import Send
from parley.shards import message_subject, pos_of_id, shard_of_id
from parley.store import Conversation, StoredMessage

TAIL_BATCH = 200


class TargetReads(Protocol):
    async def history(self, conv: ConversationId, *, before: int | None, after: int | None, limit: int,
                      newest_first: bool) -> list[StoredMessage]: ...
    async def get_conversation(self, conv: ConversationId) -> Conversation | None: ...


class Duplicate(Exception):
    """The send is a resend of an action already stored as ``id``."""

    def __init__(self, id: int) -> None:
        super().__init__(id)
        self.id = id


class Targets:
    def __init__(self, store: TargetReads, reads: StreamReads,
                 shard_of: Callable[[ConversationId], Awaitable[int]]) -> None:
        self._store, self._reads, self._shard_of = store, reads, shard_of

    async def entry(self, user: UserId, frame: Send, now_ms: int, edit_window_s: float) -> dict[str, Any]:
        """The payload fields of an action or reply (``{}`` for a plain message), once its sender may send it;
        else the documented error, or ``Duplicate``."""
        if not frame.kind and not frame.reply_to:
            return {}
        target = await self.current(frame.conv, frame.target or frame.reply_to)
        if (frame.kind == "delete" and target is not None and target.state.delete_from == user
                and target.state.delete_cid == frame.cid):
            raise Duplicate(target.state.delete_id)
        role = None
        if frame.kind == "delete" and target is not None and target.sender != user:
            conv = await self._store.get_conversation(frame.conv)
            role = conv.role_of(user) if conv is not None and conv.kind == "group" else None
        check(frame.kind, actor=user, role=role, target=target, emoji=frame.emoji, now_ms=now_ms,
              edit_window_s=edit_window_s)
        assert target is not None
        if frame.kind:
            out: dict[str, Any] = {"kind": frame.kind, "target": target.id, "target_ts": target.ts}
            return out | ({"emoji": frame.emoji} if frame.emoji else {})
        sender, text = quote_of(target)
        return {"reply_to": target.id, "target_ts": target.ts, "quote_from": sender, "quote": text}

    async def current(self, conv: ConversationId, id: int) -> StoredMessage | None:
        """Message ``id`` of ``conv`` with every action on it so far applied; None if there is none."""
        shard = await self._shard_of(conv)
        if shard_of_id(id) != shard:
            return None
        archived = await self._reads.archived_through(shard)  # before the store read: it holds at least that
        rows = await self._store.history(conv, before=id + 1, after=id - 1, limit=1, newest_first=False)
        target = rows[0] if rows and rows[0].id == id else None
        first, last = await self._reads.bounds(shard)
        start = max(first, archived + 1 if target is not None else pos_of_id(id))
        if start > last:
            return target
        async for batch in self._reads.batches(shard, [message_subject(shard, conv)], start=start, end=last,
                                               size=TAIL_BATCH):
            for row_id, _, data in batch:
                if target is None:
                    target = decode_payload(row_id, conv, data) if row_id == id else None
                    if row_id >= id and target is None:
                        return None
                    continue
                m = decode_payload(row_id, conv, data)
                if row_id > id and (m.target == id and m.kind or m.reply_to == id):
                    target = apply(target, m)[0]
        return target
