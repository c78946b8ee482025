"""SQLite sessions and devices; a device's sync cursor is a column of its row and only grows
(``MAX(cursor, ?)``)."""

from __future__ import annotations

import sqlite3
import time

from parley.ids import DeviceId, SessionId, UserId
from parley.store.records import Device, Session
from parley.store.sqlite.db import Database


class SQLiteSessions:
    _db: Database

    async def create_session(self, session: Session) -> None:
        await self._db.run(
            lambda db: db.execute(
                "INSERT INTO sessions VALUES (?,?,?,?,?,?)",
                (session.id, session.user, session.device, session.created_at, session.expires_at,
                 int(session.revoked)),
            )
        )

    async def get_session(self, session: SessionId) -> Session | None:
        row = await self._db.run(
            lambda db: db.execute("SELECT * FROM sessions WHERE id = ?", (session,)).fetchone()
        )
        return Session(row[0], row[1], row[2], row[3], row[4], bool(row[5])) if row else None

    async def sessions_of(self, user: UserId) -> list[Session]:
        rows = await self._db.run(
            lambda db: db.execute("SELECT * FROM sessions WHERE user = ? AND expires_at > ? AND revoked = 0",
                                  (user, int(time.time()))).fetchall()
        )
        return [Session(row[0], row[1], row[2], row[3], row[4], bool(row[5])) for row in rows]

    async def revoke_session(self, session: SessionId) -> None:
        await self._db.run(lambda db: db.execute("UPDATE sessions SET revoked = 1 WHERE id = ?", (session,)))

    async def upsert_device(self, device: Device) -> Device:
        def upsert(db: sqlite3.Connection) -> Device:
            db.execute(
                "INSERT INTO devices (id, user, name, created_at) VALUES (?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET name = excluded.name",
                (device.id, device.user, device.name, device.created_at),
            )
            row = db.execute("SELECT * FROM devices WHERE id = ?", (device.id,)).fetchone()
            return Device(*row)

        return await self._db.tx(upsert)

    async def get_device(self, device: DeviceId) -> Device | None:
        row = await self._db.run(lambda db: db.execute("SELECT * FROM devices WHERE id = ?", (device,)).fetchone())
        return Device(*row) if row else None

    async def list_devices(self, user: UserId) -> list[Device]:
        rows = await self._db.run(
            lambda db: db.execute("SELECT * FROM devices WHERE user = ? ORDER BY created_at", (user,)).fetchall()
        )
        return [Device(*row) for row in rows]

    async def save_cursors(self, cursors: dict[DeviceId, str]) -> None:
        def save(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE devices SET cursor = ? WHERE id = ?",
                [(cursor, device) for device, cursor in cursors.items()],
            )

        if cursors:
            await self._db.tx(save)
