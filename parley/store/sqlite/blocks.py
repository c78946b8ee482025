"""SQLite blocks: a row per blocker and blocked (``blocks_by_other`` the reverse index); a block and the
end of the pair's friendship are one transaction."""

from __future__ import annotations

import sqlite3
import time

from parley.ids import UserId
from parley.store.sqlite.db import Database


class SQLiteBlocks:
    _db: Database

    async def block(self, a: UserId, b: UserId) -> bool:
        def block(db: sqlite3.Connection) -> bool:
            db.execute("DELETE FROM friends WHERE (user = ? AND other = ?) OR (user = ? AND other = ?)", (a, b, b, a))
            cur = db.execute("INSERT OR IGNORE INTO blocks VALUES (?,?,?)", (a, b, int(time.time() * 1000)))
            return cur.rowcount > 0

        return await self._db.tx(block)

    async def unblock(self, a: UserId, b: UserId) -> bool:
        def unblock(db: sqlite3.Connection) -> bool:
            return db.execute("DELETE FROM blocks WHERE user = ? AND other = ?", (a, b)).rowcount > 0

        return await self._db.tx(unblock)

    async def blocked_by(self, user: UserId) -> list[UserId]:
        rows = await self._db.run(lambda db: db.execute(
            "SELECT other FROM blocks WHERE user = ? ORDER BY other", (user,)).fetchall())
        return [row[0] for row in rows]

    async def blocks_with(self, user: UserId) -> set[UserId]:
        rows = await self._db.run(lambda db: db.execute(
            "SELECT other FROM blocks WHERE user = ? UNION SELECT user FROM blocks WHERE other = ?",
            (user, user)).fetchall())
        return {row[0] for row in rows}
