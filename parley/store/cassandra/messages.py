"""Cassandra messages: everything that reads or writes ``messages`` and ``conversation_buckets``.

- ``messages ((conv, bucket), id DESC)``: bucket = the sending node's ts // the bucket window, so a
  partition stays bounded and the newest page is one read. Rewriting a message writes the same row.
- ``conversation_buckets``: each partition's [first_id, last_id], kept exact with no read before
  the write: last_id is written ``USING TIMESTAMP id`` (the highest id wins) and first_id
  ``USING TIMESTAMP 2^62 - id`` (the lowest wins). ``spans.merge_spans`` reads across them.
- actions (ADR 0025) read their target (its partition from the ``target_ts`` the entry carries) and rewrite its
  body and ``state`` ``USING TIMESTAMP ACTION_BASE + action id``: above any rewrite of the row itself (written
  at the current time), and the later action of a target wins. Two batches applying actions to one target at
  once can lose one's update (read, then write): the archiver applies a batch's actions after its rows, and
  concurrent batches rarely touch one message; an action's entry stays in history either way.
- ``conversation_buckets.newest_id`` (a static column, same trick) sits in the same partition as the
  ranges: the archiver updates both in one batch per conversation (atomic per partition), and sync reads
  one partition per conversation and skips those with nothing new: O(conversations + missed). The newest
  bucket's last_id and the newest id share a timestamp (both the highest id written), so they are one
  statement (``bucket_newest``): a conversation's findability is two statements, not three (ADR 0029).
- a message row binds no null: a column it has no value for (extra, attachments) is left unset, not
  written as a tombstone that every later read of the partition would step over (ADR 0029).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, cast

from cassandra.query import UNSET_VALUE

from parley.actions import Blank, apply
from parley.ids import ConversationId, UserId
from parley.shards import shard_of_id
from parley.store.cassandra.cql import Bound, Cql
from parley.store.cassandra.membership import conversations_of
from parley.store.columns import MessageRow, extra_of, message_of, state_of, with_columns
from parley.store.records import StoredMessage, refs_from_text, refs_to_text
from parley.store.spans import Span, bucket_of, merge_spans

FIRST_ID_BASE = 1 << 62  # first_id is written USING TIMESTAMP FIRST_ID_BASE - id: the lowest id wins
ACTION_BASE = 1 << 53  # actions write USING TIMESTAMP ACTION_BASE + id: after every plain write (now, in µs)
BATCH_BYTES = 64 * 1024  # one mutation per partition batch, kept far below the commit log's mutation limit

QUERIES = {
    "msg_insert": "INSERT INTO messages (conv, bucket, id, prev, sender, device, cid, body, ts, extra, attachments) "
                  "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    "msg_get": "SELECT id, conv, prev, sender, device, cid, body, ts, extra, state, attachments FROM messages "
               "WHERE conv = ? AND bucket = ? AND id = ?",
    "msg_asc": "SELECT id, conv, prev, sender, device, cid, body, ts, extra, state, attachments FROM messages "
               "WHERE conv = ? AND bucket = ? AND id > ? AND id < ? ORDER BY id ASC LIMIT ?",
    "msg_desc": "SELECT id, conv, prev, sender, device, cid, body, ts, extra, state, attachments FROM messages "
                "WHERE conv = ? AND bucket = ? AND id > ? AND id < ? ORDER BY id DESC LIMIT ?",
    "msg_apply": "UPDATE messages USING TIMESTAMP ? SET body = ?, state = ? WHERE conv = ? AND bucket = ? AND id = ?",
    "msg_blank_body": "UPDATE messages USING TIMESTAMP ? SET body = '' WHERE conv = ? AND bucket = ? AND id = ?",
    "msg_set_extra": "UPDATE messages USING TIMESTAMP ? SET extra = ? WHERE conv = ? AND bucket = ? AND id = ?",
    "bucket_last": "UPDATE conversation_buckets USING TIMESTAMP ? SET last_id = ? WHERE conv = ? AND bucket = ?",
    "bucket_first": "UPDATE conversation_buckets USING TIMESTAMP ? SET first_id = ? WHERE conv = ? AND bucket = ?",
    "bucket_newest": "UPDATE conversation_buckets USING TIMESTAMP ? SET last_id = ?, newest_id = ?, newest_bucket = ? "
                     "WHERE conv = ? AND bucket = ?",
    "buckets_of": "SELECT bucket, first_id, last_id, newest_id FROM conversation_buckets WHERE conv = ?",
    "newest_of": "SELECT newest_id, newest_bucket FROM conversation_buckets WHERE conv = ? LIMIT 1",
}


def _message(row: Any) -> StoredMessage:
    return with_columns(StoredMessage(row.id, row.conv, row.prev, row.sender, row.device, row.cid, row.body, row.ts,
                                      attachments=refs_from_text(row.attachments)), row.extra, row.state)


def _size(m: StoredMessage) -> int:
    return len(m.body.encode()) + len(m.cid) + 96 + 256 * len(m.attachments)


def partition_batches(messages: Iterable[StoredMessage], bucket_ms: int) -> list[tuple[str, int, list[StoredMessage]]]:
    """Messages grouped by partition (conv, bucket), split so each group stays under BATCH_BYTES."""
    groups: dict[tuple[str, int], list[list[StoredMessage]]] = defaultdict(lambda: [[]])
    filled: dict[tuple[str, int], int] = defaultdict(int)  # bytes in the last chunk of each partition
    for m in messages:
        key = (m.conv, bucket_of(m.ts, bucket_ms))
        chunks = groups[key]
        if chunks[-1] and filled[key] + _size(m) > BATCH_BYTES:
            chunks.append([])
            filled[key] = 0
        chunks[-1].append(m)
        filled[key] += _size(m)
    return [(conv, bucket, chunk) for (conv, bucket), chunks in groups.items() for chunk in chunks]


def findability(groups: list[tuple[str, int, list[StoredMessage]]]) -> list[list[Bound]]:
    """Per conversation, one batch: each touched partition's [first, last] and the newest message (the
    newest partition's last and the newest id in one statement: the same value at the same timestamp)."""
    ranges: dict[str, dict[int, tuple[int, int]]] = defaultdict(dict)
    for conv, bucket, chunk in groups:
        lo, hi = int(min(m.id for m in chunk)), int(max(m.id for m in chunk))
        old_lo, old_hi = ranges[conv].get(bucket, (lo, hi))
        ranges[conv][bucket] = (min(lo, old_lo), max(hi, old_hi))
    out = []
    for conv, buckets in ranges.items():
        newest, newest_bucket = max((hi, bucket) for bucket, (_, hi) in buckets.items())
        statements: list[Bound] = []
        for bucket, (lo, hi) in buckets.items():
            statements.append(("bucket_first", (FIRST_ID_BASE - lo, lo, conv, bucket)))
            statements.append(("bucket_newest", (hi, hi, hi, bucket, conv, bucket)) if bucket == newest_bucket
                              else ("bucket_last", (hi, hi, conv, bucket)))
        out.append(statements)
    return out


async def newest_message(cql: Cql, conv: str) -> StoredMessage | None:
    """The conversation's newest stored message: its newest id and bucket, then that one row."""
    newest = await cql.one("newest_of", conv)
    if newest is None or newest.newest_id is None:
        return None
    found = await cql.one("msg_get", conv, newest.newest_bucket, newest.newest_id)
    return _message(found) if found else None


async def _spans(cql: Cql, conv: str, *, after: int = 0, shard: int | None = None) -> list[Span]:
    """The conversation's partitions, or none when its newest message is not after ``after`` (or the
    conversation is not homed in ``shard``: every id names its shard)."""
    rows = await cql.rows("buckets_of", conv)
    if not rows or rows[0].newest_id is None or rows[0].newest_id <= after:
        return []
    if shard is not None and shard_of_id(rows[0].newest_id) != shard:
        return []
    return [Span((conv, r.bucket), r.first_id, r.last_id) for r in rows
            if r.bucket is not None and r.first_id is not None and r.last_id is not None]


class CassandraMessages:
    _cql: Cql
    _bucket_ms: int
    _folding: asyncio.Lock

    async def put_messages(self, messages: list[StoredMessage]) -> None:
        """Rows first, then what makes them findable (each partition's id range, each conversation's
        newest; one partition per conversation); partitions with the same replicas share an unlogged
        batch (``Cql.write_partitions``: a request per ten or so partitions, not one each); all
        idempotent. Readers trust the store only below the archiver's ack floor, which moves after this returns."""
        groups = partition_batches(messages, self._bucket_ms)
        await self._cql.write_partitions([("msg_insert", (m.conv, bucket, m.id, m.prev, m.sender, m.device, m.cid,
                                                          m.body, m.ts, extra_of(m) or UNSET_VALUE,
                                                          refs_to_text(m.attachments) or UNSET_VALUE)) for m in chunk]
                                         for _, bucket, chunk in groups)
        await self._cql.write_partitions(findability(groups))

    async def put_rows(self, rows: list[MessageRow]) -> None:
        """The messages back from their rows: the partitioning reads them (ADR 0069 left this path as it was)."""
        await self.put_messages([message_of(r) for r in rows])

    async def apply_actions(self, entries: list[StoredMessage]) -> list[StoredMessage]:
        """Each entry in turn (one target's actions must see each other): read the target, write it back.
        Calls fold one at a time (the archiver writes several batches at once): two folds of one target side
        by side would each write back a state without the other's change — a reply's quote kept on a message
        deleted meanwhile. SQLite gets the same from its transaction. Archivers in several processes can
        still meet so; that they rarely do is ADR 0025's limit."""
        async with self._folding:
            return await self._fold(entries)

    async def _fold(self, entries: list[StoredMessage]) -> list[StoredMessage]:
        missing = []
        for entry in entries:
            bucket = bucket_of(entry.target_ts, self._bucket_ms)
            row = await self._cql.one("msg_get", entry.conv, bucket, entry.target or entry.reply_to)
            if row is None:
                missing.append(entry)
                continue
            after, blanks = apply(_message(row), entry)
            at = ACTION_BASE + entry.id
            await self._cql.write("msg_apply", at, after.body, state_of(after) or None, entry.conv, bucket, after.id)
            for b in blanks:
                await self._blank(entry.conv, b, at)
        return missing

    async def _blank(self, conv: str, b: Blank, at: int) -> None:
        bucket = bucket_of(b.ts, self._bucket_ms)
        if b.field == "body":
            await self._cql.write("msg_blank_body", at, conv, bucket, b.id)
            return
        row = await self._cql.one("msg_get", conv, bucket, b.id)
        if row is not None:
            m = _message(row)
            await self._cql.write("msg_set_extra", at, extra_of(replace(m, quote="")) or None, conv, bucket, b.id)

    async def _fetch(self, span: Span, lo: int, hi: int, n: int, descending: bool) -> list[StoredMessage]:
        conv, bucket = cast(tuple[str, int], span.key)  # the key _spans gave the span
        rows = await self._cql.rows("msg_desc" if descending else "msg_asc", conv, bucket, lo, hi, n, limit=n)
        return [_message(r) for r in rows]

    async def messages_for_user(self, user: UserId, *, shard: int, after: int, upto: int,
                                limit: int) -> list[StoredMessage]:
        convs = await conversations_of(self._cql, user)
        spans = [s for found in await self._cql.gather(_spans(self._cql, c, after=after, shard=shard) for c in convs)
                 for s in found]
        return await merge_spans(spans, self._fetch, after=after, before=upto + 1, limit=limit, descending=False,
                                 page=limit)

    async def history(
        self, conv: ConversationId, *, before: int | None, after: int | None, limit: int, newest_first: bool
    ) -> list[StoredMessage]:
        return await merge_spans(await _spans(self._cql, conv), self._fetch, after=after or 0,
                                 before=before if before is not None else 2**63 - 1, limit=limit,
                                 descending=newest_first, page=limit)
