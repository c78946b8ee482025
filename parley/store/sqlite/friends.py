"""SQLite friendships: a row per direction holding that side's state, both rows changed in one
transaction."""

from __future__ import annotations

import sqlite3

from parley.ids import UserId
from parley.store.records import FriendState
from parley.store.sqlite.db import Database


def _friend_state(db: sqlite3.Connection, a: UserId, b: UserId) -> FriendState:
    row = db.execute("SELECT state FROM friends WHERE user = ? AND other = ?", (a, b)).fetchone()
    return row[0] if row else "none"


class SQLiteFriends:
    _db: Database

    async def add_friend(self, a: UserId, b: UserId) -> FriendState:
        def add(db: sqlite3.Connection) -> FriendState:
            current = _friend_state(db, a, b)
            if current in ("friends", "outgoing"):
                return current
            new: FriendState = "friends" if current == "incoming" else "outgoing"
            back = "friends" if new == "friends" else "incoming"
            db.execute("INSERT OR REPLACE INTO friends VALUES (?,?,?)", (a, b, new))
            db.execute("INSERT OR REPLACE INTO friends VALUES (?,?,?)", (b, a, back))
            return new

        return await self._db.tx(add)

    async def remove_friend(self, a: UserId, b: UserId) -> None:
        await self._db.tx(
            lambda db: db.execute(
                "DELETE FROM friends WHERE (user = ? AND other = ?) OR (user = ? AND other = ?)", (a, b, b, a)
            )
        )

    async def friend_state(self, a: UserId, b: UserId) -> FriendState:
        return await self._db.run(lambda db: _friend_state(db, a, b))

    async def list_friends(self, user: UserId) -> list[tuple[UserId, FriendState]]:
        rows = await self._db.run(
            lambda db: db.execute("SELECT other, state FROM friends WHERE user = ?", (user,)).fetchall()
        )
        return [(row[0], row[1]) for row in rows]
