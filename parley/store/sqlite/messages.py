"""SQLite messages: everything that reads or writes the ``messages`` table.

A message's id is its row's primary key, so a rewrite is ``INSERT OR IGNORE`` of the same row.
Reads are range scans of the ``messages_by_conv (conv, id)`` index: a conversation's page, the
newest message of one, and a user's missed messages (one scan per conversation they are in).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from parley.ids import ConversationId, UserId
from parley.store.records import StoredMessage
from parley.store.sqlite.db import Database

_MSG_COLS = "m.id, m.conv, m.prev, m.sender, m.device, m.cid, m.body, m.ts"


def _message(row: tuple[Any, ...]) -> StoredMessage:
    return StoredMessage(*row)


def last_message(db: sqlite3.Connection, conv: str) -> StoredMessage | None:
    row = db.execute(
        f"SELECT {_MSG_COLS} FROM messages m WHERE m.conv = ? ORDER BY m.id DESC LIMIT 1", (conv,)
    ).fetchone()
    return _message(row) if row else None


class SQLiteMessages:
    _db: Database

    async def put_messages(self, messages: list[StoredMessage]) -> None:
        def put(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT OR IGNORE INTO messages VALUES (?,?,?,?,?,?,?,?)",
                [(m.id, m.conv, m.prev, m.sender, m.device, m.cid, m.body, m.ts) for m in messages],
            )

        if messages:
            await self._db.tx(put)

    async def messages_for_user(self, user: UserId, *, shard: int, after: int, upto: int,
                                limit: int) -> list[StoredMessage]:
        # One range scan per conversation of the user (index messages_by_conv), merged by id; ids of
        # one shard compare like its stream sequences (parley.shards).
        rows = await self._db.run(
            lambda db: db.execute(
                f"SELECT {_MSG_COLS} FROM members mb JOIN messages m ON m.conv = mb.conv "
                "WHERE mb.user = ? AND m.id > ? AND m.id <= ? AND (m.id & 63) = ? ORDER BY m.id LIMIT ?",
                (user, after, upto, shard, limit),
            ).fetchall()
        )
        return [_message(row) for row in rows]

    async def history(
        self, conv: ConversationId, *, before: int | None, after: int | None, limit: int, newest_first: bool
    ) -> list[StoredMessage]:
        order = "DESC" if newest_first else "ASC"
        rows = await self._db.run(
            lambda db: db.execute(
                f"SELECT {_MSG_COLS} FROM messages m WHERE m.conv = ? AND m.id > ? AND m.id < ? "
                f"ORDER BY m.id {order} LIMIT ?",
                (conv, after or 0, before if before is not None else 2**63 - 1, limit),
            ).fetchall()
        )
        return [_message(row) for row in rows]
