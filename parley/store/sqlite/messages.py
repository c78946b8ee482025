"""SQLite messages: everything that reads or writes the ``messages`` table.

A message's id is its row's primary key, so a rewrite is ``INSERT OR IGNORE`` of the same row (which also
keeps the ``state`` actions gave it). Reads are range scans of the ``messages_by_conv (conv, id)`` index: a
conversation's page, the newest message of one, and a user's missed messages (one scan per conversation they
are in). Actions (ADR 0025) are applied in one transaction, each target read and rewritten by its id.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from parley.actions import apply
from parley.ids import ConversationId, UserId
from parley.store.columns import MessageRow, row_of, state_of, with_columns
from parley.store.records import StoredMessage, refs_from_text
from parley.store.sqlite.db import Database

_MSG_COLS = "m.id, m.conv, m.prev, m.sender, m.device, m.cid, m.body, m.ts, m.extra, m.state, m.attachments"


def _message(row: tuple[Any, ...]) -> StoredMessage:
    id, conv, prev, sender, device, cid, body, ts, extra, state, attachments = row
    return with_columns(StoredMessage(id, conv, prev, sender, device, cid, body, ts,
                                      attachments=refs_from_text(attachments)), extra, state)


def last_message(db: sqlite3.Connection, conv: str) -> StoredMessage | None:
    row = db.execute(
        f"SELECT {_MSG_COLS} FROM messages m WHERE m.conv = ? ORDER BY m.id DESC LIMIT 1", (conv,)
    ).fetchone()
    return _message(row) if row else None


def _apply(db: sqlite3.Connection, entries: list[StoredMessage]) -> list[StoredMessage]:
    missing = []
    for entry in entries:
        row = db.execute(f"SELECT {_MSG_COLS} FROM messages m WHERE m.id = ? AND m.conv = ?",
                         (entry.target or entry.reply_to, entry.conv)).fetchone()
        if row is None:
            missing.append(entry)
            continue
        after, blanks = apply(_message(row), entry)
        db.execute("UPDATE messages SET body = ?, state = ? WHERE id = ?", (after.body, state_of(after), after.id))
        for b in blanks:
            if b.field == "body":
                db.execute("UPDATE messages SET body = '' WHERE id = ?", (b.id,))
            else:
                db.execute("UPDATE messages SET extra = json_set(extra, '$.quote', '') WHERE id = ? AND extra != ''",
                           (b.id,))
    return missing


class SQLiteMessages:
    _db: Database

    async def put_messages(self, messages: list[StoredMessage]) -> None:
        await self.put_rows([row_of(m) for m in messages])

    async def put_rows(self, rows: list[MessageRow]) -> None:
        def put(db: sqlite3.Connection) -> None:  # a row is the statement's parameters, in the columns' order
            db.executemany(
                "INSERT OR IGNORE INTO messages (id, conv, prev, sender, device, cid, body, ts, extra, attachments) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)", rows)

        if rows:
            await self._db.tx(put)

    async def apply_actions(self, entries: list[StoredMessage]) -> list[StoredMessage]:
        if not entries:
            return []
        return await self._db.tx(lambda db: _apply(db, entries))

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
