"""A connection's set-up reads in one call (``connect_reads``, ADR 0035): the session, and the device's cursor or
the user's groups and friends when asked, all in flight at once (the same statements as ``get_session``,
``get_device``, ``groups_of`` and ``list_friends``)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

from parley.ids import ConversationId, DeviceId, SessionId, UserId
from parley.store.cassandra.cql import Cql
from parley.store.records import ConnectReads, Device, FriendState, Session


class _Reads(Protocol):
    _cql: Cql

    async def get_session(self, session: SessionId) -> Session | None: ...
    async def get_device(self, device: DeviceId) -> Device | None: ...
    async def groups_of(self, user: UserId) -> list[ConversationId]: ...
    async def list_friends(self, user: UserId) -> list[tuple[UserId, FriendState]]: ...


class CassandraConnects:
    async def connect_reads(self: _Reads, session: SessionId, *, device: DeviceId | None = None,
                            user: UserId | None = None) -> ConnectReads:
        reads: list[Awaitable[Any]] = [self.get_session(session)]
        if device is not None:
            reads.append(self.get_device(device))
        if user is not None:
            reads += [self.groups_of(user), self.list_friends(user)]
        found = await self._cql.gather(reads)
        got = found[1] if device is not None else None
        cursor = got.cursor if isinstance(got, Device) else None
        if user is None:
            return ConnectReads(found[0], cursor)
        return ConnectReads(found[0], cursor, found[-2], found[-1])
