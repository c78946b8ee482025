"""SQLite push facts: one token per device (a token registered on another device stops being the
old one's), per-user preferences, and a row per muted conversation."""

from __future__ import annotations

import sqlite3
from typing import Any

from parley.ids import ConversationId, DeviceId, UserId
from parley.store.records import PushPrefs, PushToken
from parley.store.sqlite.db import Database, chunks, marks


class SQLitePush:
    _db: Database

    async def put_push_token(self, token: PushToken) -> None:
        def put(db: sqlite3.Connection) -> None:
            # a token belongs to one app install: registered elsewhere (another account on the same
            # phone), it stops being anyone else's
            db.execute("DELETE FROM push_tokens WHERE token = ? AND NOT (user = ? AND device = ?)",
                       (token.token, token.user, token.device))
            db.execute("INSERT OR REPLACE INTO push_tokens VALUES (?,?,?,?,?)",
                       (token.user, token.device, token.platform, token.token, token.updated_at))

        await self._db.tx(put)

    async def delete_push_token(self, user: UserId, device: DeviceId, *, only: str | None = None) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            if only is None:
                cur = db.execute("DELETE FROM push_tokens WHERE user = ? AND device = ?", (user, device))
            else:
                cur = db.execute("DELETE FROM push_tokens WHERE user = ? AND device = ? AND token = ?",
                                 (user, device, only))
            return cur.rowcount > 0

        return await self._db.tx(delete)

    async def push_tokens(self, users: list[UserId]) -> list[PushToken]:
        if not users:
            return []
        def read(db: sqlite3.Connection) -> list[tuple[Any, ...]]:  # chunks in user order: rows stay ordered
            return [row for chunk in chunks(sorted(set(users))) for row in db.execute(
                f"SELECT * FROM push_tokens WHERE user IN ({marks(len(chunk))}) ORDER BY user, device",
                list(chunk)).fetchall()]

        return [PushToken(*row) for row in await self._db.run(read)]

    async def push_prefs(self, user: UserId) -> PushPrefs:
        def read(db: sqlite3.Connection) -> PushPrefs:
            row = db.execute("SELECT muted, hide_text FROM push_prefs WHERE user = ?", (user,)).fetchone()
            convs = tuple(r[0] for r in db.execute("SELECT conv FROM push_mutes WHERE user = ? ORDER BY conv",
                                                   (user,)))
            return PushPrefs(bool(row[0]), bool(row[1]), convs) if row else PushPrefs(muted_convs=convs)

        return await self._db.run(read)

    async def set_push_prefs(self, user: UserId, *, muted: bool | None, hide_text: bool | None) -> PushPrefs:
        await self._db.tx(lambda db: db.execute(
            "INSERT INTO push_prefs (user, muted, hide_text) VALUES (?, COALESCE(?, 0), COALESCE(?, 0)) "
            "ON CONFLICT (user) DO UPDATE SET muted = COALESCE(?, muted), hide_text = COALESCE(?, hide_text)",
            (user, muted, hide_text, muted, hide_text)))
        return await self.push_prefs(user)

    async def mute_conversation(self, user: UserId, conv: ConversationId, muted: bool) -> None:
        sql = ("INSERT OR IGNORE INTO push_mutes VALUES (?,?)" if muted
               else "DELETE FROM push_mutes WHERE user = ? AND conv = ?")
        await self._db.tx(lambda db: db.execute(sql, (user, conv)))
