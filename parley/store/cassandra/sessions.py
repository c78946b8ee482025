"""Cassandra sessions and devices. A device is claimed with a lightweight transaction (its owner and
creation time never change); ``devices_by_user`` lists a user's in creation order;
``sessions_by_user`` lists a user's sessions until they end (TTL);
``device_cursors.cursor_token`` holds the cursor the device last acked (an opaque token, parley.cursor): the
last save wins — a node only saves positions at or beyond the one a connection started from, and a
device drops ids it already has."""

from __future__ import annotations

import time

from parley.ids import DeviceId, SessionId, UserId
from parley.store.cassandra.cql import Cql
from parley.store.records import Device, Session

QUERIES = {
    "session_insert": "INSERT INTO sessions (id, user_id, device, created_at, expires_at, revoked) "
                      "VALUES (?,?,?,?,?,?)",
    "session_get": "SELECT id, user_id, device, created_at, expires_at, revoked FROM sessions WHERE id = ?",
    "session_revoke": "UPDATE sessions SET revoked = true WHERE id = ?",
    "session_index": "INSERT INTO sessions_by_user (user_id, id) VALUES (?,?) USING TTL ?",
    "sessions_of_user": "SELECT id FROM sessions_by_user WHERE user_id = ?",
    "device_claim": "INSERT INTO devices (id, user_id, name, created_at) VALUES (?,?,?,?) IF NOT EXISTS",
    "device_rename": "UPDATE devices SET name = ? WHERE id = ?",
    "device_get": "SELECT id, user_id, name, created_at FROM devices WHERE id = ?",
    "device_index": "INSERT INTO devices_by_user (user_id, created_at, id) VALUES (?,?,?)",
    "devices_of_user": "SELECT id FROM devices_by_user WHERE user_id = ?",
    "cursor_save": "UPDATE device_cursors SET cursor_token = ? WHERE device = ?",
    "cursor_get": "SELECT cursor_token FROM device_cursors WHERE device = ?",
}


class CassandraSessions:
    _cql: Cql

    async def create_session(self, session: Session) -> None:
        await self._cql.write("session_insert", session.id, session.user, session.device, session.created_at,
                              session.expires_at, session.revoked)
        ttl = session.expires_at - int(time.time())
        if ttl > 0:
            await self._cql.write("session_index", session.user, session.id, ttl)

    async def get_session(self, session: SessionId) -> Session | None:
        row = await self._cql.one("session_get", session)
        if row is None:
            return None
        return Session(row.id, row.user_id, row.device, row.created_at, row.expires_at, bool(row.revoked))

    async def sessions_of(self, user: UserId) -> list[Session]:
        ids = [r.id for r in await self._cql.rows("sessions_of_user", user)]
        found = await self._cql.gather(self.get_session(s) for s in ids)
        return [s for s in found if s is not None and not s.revoked]

    async def revoke_session(self, session: SessionId) -> None:
        await self._cql.write("session_revoke", session)

    async def upsert_device(self, device: Device) -> Device:
        applied, existing = await self._cql.applied("device_claim", device.id, device.user, device.name,
                                                    device.created_at)
        created_at = device.created_at if applied else existing.created_at
        user = device.user if applied else existing.user_id
        if not applied:
            await self._cql.write("device_rename", device.name, device.id)
        await self._cql.write("device_index", user, created_at, device.id)
        return Device(device.id, user, device.name, created_at, await self._cursor(device.id))

    async def _cursor(self, device: DeviceId) -> str:
        row = await self._cql.one("cursor_get", device)
        return str(row.cursor_token) if row and row.cursor_token is not None else ""

    async def get_device(self, device: DeviceId) -> Device | None:
        row, cursor = await self._cql.gather([self._cql.one("device_get", device), self._cursor(device)])
        return Device(row.id, row.user_id, row.name, row.created_at, cursor) if row else None

    async def list_devices(self, user: UserId) -> list[Device]:
        ids = [r.id for r in await self._cql.rows("devices_of_user", user)]  # in created_at order
        found = await self._cql.gather(self.get_device(d) for d in ids)
        return [d for d in found if d is not None]

    async def save_cursors(self, cursors: dict[DeviceId, str]) -> None:
        with self._cql.in_background():  # a node's periodic flush, retried by it: never ahead of a read
            await self._cql.gather(self._cql.write("cursor_save", cursor, device)
                                   for device, cursor in cursors.items())
