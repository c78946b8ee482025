"""SQLite groups: conversations whose members and roles change. The cap holds because counting the
members and adding them is one write transaction."""

from __future__ import annotations

import sqlite3

from parley.errors import Conflict
from parley.ids import ConversationId, UserId
from parley.store.protocols import group_full
from parley.store.records import Conversation, Role
from parley.store.sqlite.db import Database


class SQLiteGroups:
    _db: Database

    async def create_group(self, conv: Conversation) -> None:
        def insert(db: sqlite3.Connection) -> None:
            try:
                db.execute("INSERT INTO conversations (id, kind, created_at, name, shard) VALUES (?,?,?,?,?)",
                           (conv.id, conv.kind, conv.created_at, conv.name, conv.shard))
            except sqlite3.IntegrityError:
                raise Conflict(f"conversation {conv.id} exists", code="conflict") from None
            roles = dict(conv.roles)
            db.executemany("INSERT INTO members (user, conv, role) VALUES (?,?,?)",
                           [(m, conv.id, roles.get(m, "member")) for m in conv.members])

        await self._db.tx(insert)

    async def add_members(self, conv: ConversationId, users: list[UserId], *, cap: int) -> list[UserId]:
        def add(db: sqlite3.Connection) -> list[UserId]:
            present = {r[0] for r in db.execute("SELECT user FROM members WHERE conv = ?", (conv,))}
            new = [u for u in dict.fromkeys(users) if u not in present]
            if len(present) + len(new) > cap:
                raise group_full(cap, len(present), len(new))
            db.executemany("INSERT INTO members (user, conv, role) VALUES (?,?,'member')", [(u, conv) for u in new])
            return new

        return await self._db.tx(add)

    async def remove_member(self, conv: ConversationId, user: UserId) -> bool:
        def remove(db: sqlite3.Connection) -> bool:
            return db.execute("DELETE FROM members WHERE conv = ? AND user = ?", (conv, user)).rowcount > 0

        return await self._db.tx(remove)

    async def set_role(self, conv: ConversationId, user: UserId, role: Role) -> None:
        await self._db.tx(lambda db: db.execute("UPDATE members SET role = ? WHERE conv = ? AND user = ?",
                                                (role, conv, user)))

    async def rename_group(self, conv: ConversationId, name: str) -> None:
        await self._db.tx(lambda db: db.execute("UPDATE conversations SET name = ? WHERE id = ?", (name, conv)))

    async def groups_of(self, user: UserId) -> list[ConversationId]:
        rows = await self._db.run(lambda db: db.execute(
            "SELECT conv FROM members WHERE user = ? AND conv LIKE 'g.%' ORDER BY conv", (user,)).fetchall())
        return [r[0] for r in rows]
