"""A connection's set-up reads in one hop to the database thread (``connect_reads``, ADR 0035): the session, and
the device's cursor or the user's groups and friends when asked — the same queries as ``get_session``,
``get_device``, ``groups_of`` and ``list_friends``, run one after the other on the thread that owns the file."""

from __future__ import annotations

import sqlite3

from parley.ids import DeviceId, SessionId, UserId
from parley.store.records import ConnectReads, Session
from parley.store.sqlite.db import Database


class SQLiteConnects:
    _db: Database

    async def connect_reads(self, session: SessionId, *, device: DeviceId | None = None,
                            user: UserId | None = None) -> ConnectReads:
        return await self._db.run(lambda db: _read(db, session, device, user))


def _read(db: sqlite3.Connection, session: SessionId, device: DeviceId | None, user: UserId | None) -> ConnectReads:
    row = db.execute("SELECT * FROM sessions WHERE id = ?", (session,)).fetchone()
    found = Session(row[0], row[1], row[2], row[3], row[4], bool(row[5])) if row else None
    cursor = None
    if device is not None:
        got = db.execute("SELECT cursor FROM devices WHERE id = ?", (device,)).fetchone()
        cursor = got[0] if got else None
    if user is None:
        return ConnectReads(found, cursor)
    groups = [r[0] for r in db.execute(
        "SELECT conv FROM members WHERE user = ? AND conv LIKE 'g.%' ORDER BY conv", (user,)).fetchall()]
    friends = [(r[0], r[1]) for r in db.execute("SELECT other, state FROM friends WHERE user = ?", (user,)).fetchall()]
    return ConnectReads(found, cursor, groups, friends)
