"""SQLite account deletion: one transaction empties the account's row (it stays, ``deleted_at`` set, so
the username stays taken and the id names a placeholder) and removes everything else personal."""

from __future__ import annotations

import sqlite3

from parley.ids import UserId
from parley.store.sqlite.db import Database

ERASE = [
    "UPDATE users SET display_name = '', bio = '', password_hash = '', deleted_at = COALESCE(deleted_at, ?2) "
    "WHERE id = ?1",
    "UPDATE sessions SET revoked = 1 WHERE user = ?1",
    "DELETE FROM devices WHERE user = ?1",
    "DELETE FROM push_tokens WHERE user = ?1",
    "DELETE FROM push_prefs WHERE user = ?1",
    "DELETE FROM push_mutes WHERE user = ?1",
    "DELETE FROM friends WHERE user = ?1 OR other = ?1",
    "DELETE FROM blocks WHERE user = ?1 OR other = ?1",
]


class SQLiteErasure:
    _db: Database

    async def delete_account(self, user: UserId, *, now: int) -> None:
        def erase(db: sqlite3.Connection) -> None:
            for sql in ERASE:
                db.execute(sql, (user, now) if "?2" in sql else (user,))

        await self._db.tx(erase)
