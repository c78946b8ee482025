"""SQLite live-room messages: the ``live_messages (room, id)`` table. A rewrite is ``INSERT OR IGNORE``, so
the archiver's redelivery never brings a tombstone's body back."""

from __future__ import annotations

import sqlite3

from parley.ids import UserId
from parley.store.records import LiveMessage
from parley.store.sqlite.db import Database


class SQLiteLive:
    _db: Database

    async def put_live_messages(self, messages: list[LiveMessage]) -> None:
        def put(db: sqlite3.Connection) -> None:
            db.executemany("INSERT OR IGNORE INTO live_messages VALUES (?,?,?,?,?,?,?)",
                           [(m.room, m.id, m.sender, m.cid, m.body, m.ts, int(m.deleted)) for m in messages])

        if messages:
            await self._db.tx(put)

    async def live_history(self, room: str, *, before: int | None, limit: int) -> list[LiveMessage]:
        rows = await self._db.run(lambda db: db.execute(
            "SELECT room, id, sender, cid, body, ts, deleted FROM live_messages WHERE room = ? AND id < ? "
            "ORDER BY id DESC LIMIT ?", (room, before if before is not None else 2**63 - 1, limit)).fetchall())
        return [LiveMessage(r[0], r[1], UserId(r[2]), r[3], r[4], r[5], bool(r[6])) for r in rows]

    async def delete_live_message(self, room: str, id: int) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            cur = db.execute("UPDATE live_messages SET deleted = 1, body = '' WHERE room = ? AND id = ?", (room, id))
            return cur.rowcount > 0

        return bool(await self._db.tx(delete))
