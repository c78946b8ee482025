"""SQLite conversations: a ``conversations`` row and a ``members`` row per member (with a role for
groups); a conversation is read with its newest message."""

from __future__ import annotations

import sqlite3

from parley.ids import ConversationId, UserId
from parley.store.records import Conversation
from parley.store.sqlite.db import Database
from parley.store.sqlite.messages import last_message


def _conversation(db: sqlite3.Connection, conv: str) -> Conversation | None:
    row = db.execute("SELECT id, kind, created_at, name, shard FROM conversations WHERE id = ?", (conv,)).fetchone()
    if not row:
        return None
    members = db.execute("SELECT user, role FROM members WHERE conv = ? ORDER BY user", (conv,)).fetchall()
    roles = tuple((u, r) for u, r in members if r != "member")
    return Conversation(row[0], row[1], tuple(u for u, _ in members), row[2], last_message(db, conv), row[3], roles,
                        row[4])


class SQLiteConversations:
    _db: Database

    async def open_conversation(self, conv: Conversation) -> None:
        def insert(db: sqlite3.Connection) -> None:
            db.execute("INSERT OR IGNORE INTO conversations (id, kind, created_at, shard) VALUES (?,?,?,?)",
                       (conv.id, conv.kind, conv.created_at, conv.shard))
            db.executemany("INSERT OR IGNORE INTO members (user, conv) VALUES (?,?)",
                           [(m, conv.id) for m in conv.members])

        await self._db.tx(insert)

    async def get_conversation(self, conv: ConversationId) -> Conversation | None:
        return await self._db.run(lambda db: _conversation(db, conv))

    async def list_conversations(self, user: UserId) -> list[Conversation]:
        def listing(db: sqlite3.Connection) -> list[Conversation]:
            ids = [r[0] for r in db.execute("SELECT conv FROM members WHERE user = ?", (user,))]
            out = [c for c in (_conversation(db, i) for i in ids) if c is not None]
            out.sort(key=lambda c: c.last_message.ts if c.last_message else 0, reverse=True)
            return out

        return await self._db.run(listing)
