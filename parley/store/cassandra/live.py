"""Cassandra live-room messages: ``live_messages ((room, bucket), id DESC)`` and ``live_buckets (room, bucket
DESC)``, the partitions each room has (ADR 0018).

bucket = id >> LIVE_BUCKET_BITS: the ids are one stream's sequences, so buckets advance with time, a partition
never holds more than 2^16 messages however hot its room, and a message's id names its partition (a deletion
or a page ``before`` an id needs no lookup). Rows are written ``USING TIMESTAMP 1``: a message never changes,
so a rewrite (the archiver redelivers) is the same row, and a deletion (written at the present time) always
wins over it, in any order.
"""

from __future__ import annotations

from typing import Any

from parley.ids import UserId
from parley.store.cassandra.cql import Bound, Cql
from parley.store.records import LiveMessage

LIVE_BUCKET_BITS = 16
_COLS = "room, id, sender, cid, body, ts, deleted"

QUERIES = {
    "live_insert": "INSERT INTO live_messages (room, bucket, id, sender, cid, body, ts, deleted) "
                   "VALUES (?,?,?,?,?,?,?,false) USING TIMESTAMP 1",
    "live_bucket": "INSERT INTO live_buckets (room, bucket) VALUES (?,?)",
    "live_page": f"SELECT {_COLS} FROM live_messages WHERE room = ? AND bucket = ? AND id < ? ORDER BY id DESC LIMIT ?",
    "live_get": "SELECT id FROM live_messages WHERE room = ? AND bucket = ? AND id = ?",
    "live_delete": "UPDATE live_messages SET deleted = true, body = '' WHERE room = ? AND bucket = ? AND id = ?",
    "live_buckets_upto": "SELECT bucket FROM live_buckets WHERE room = ? AND bucket <= ?",
}


def bucket_of(id: int) -> int:
    return id >> LIVE_BUCKET_BITS


def _message(row: Any) -> LiveMessage:
    return LiveMessage(row.room, row.id, UserId(row.sender), row.cid, row.body, row.ts, bool(row.deleted))


class CassandraLive:
    _cql: Cql

    async def put_live_messages(self, messages: list[LiveMessage]) -> None:
        parts: dict[tuple[str, int], list[Bound]] = {}
        for m in messages:
            parts.setdefault((m.room, bucket_of(m.id)), []).append(
                ("live_insert", (m.room, bucket_of(m.id), m.id, m.sender, m.cid, m.body, m.ts)))
        await self._cql.write_partitions(parts.values())
        await self._cql.write_partitions([[("live_bucket", key)] for key in parts])  # findable once written

    async def live_history(self, room: str, *, before: int | None, limit: int) -> list[LiveMessage]:
        below = before if before is not None else 2**63 - 1
        out: list[LiveMessage] = []
        for b in await self._cql.rows("live_buckets_upto", room, bucket_of(below)):
            want = limit - len(out)
            out += [_message(r) for r in await self._cql.rows("live_page", room, b.bucket, below, want, limit=want)]
            if len(out) >= limit:
                break
        return out

    async def delete_live_message(self, room: str, id: int) -> bool:
        if await self._cql.one("live_get", room, bucket_of(id), id) is None:
            return False
        await self._cql.write("live_delete", room, bucket_of(id), id)
        return True
