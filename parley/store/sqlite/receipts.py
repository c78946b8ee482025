"""SQLite receipts: one row per (conversation, member); an upsert keeps the higher of each mark,
and a read mark raises the delivered mark with it."""

from __future__ import annotations

import sqlite3

from parley.ids import ConversationId
from parley.store.records import Receipt
from parley.store.sqlite.db import Database


class SQLiteReceipts:
    _db: Database

    async def save_receipts(self, receipts: list[Receipt]) -> None:
        def save(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT INTO receipts (conv, user, delivered, read) VALUES (?,?,?,?) ON CONFLICT (conv, user) "
                "DO UPDATE SET delivered = MAX(delivered, excluded.delivered), read = MAX(read, excluded.read)",
                [(r.conv, r.user, max(r.delivered, r.read), r.read) for r in receipts])

        if receipts:
            await self._db.tx(save)

    async def receipts(self, conv: ConversationId) -> list[Receipt]:
        rows = await self._db.run(lambda db: db.execute(
            "SELECT conv, user, delivered, read FROM receipts WHERE conv = ? ORDER BY user", (conv,)).fetchall())
        return [Receipt(*row) for row in rows]
