"""Cassandra accounts: ``users`` by id, and ``usernames``, claimed with a lightweight transaction so
a name is unique across the cluster (it also holds the password hash)."""

from __future__ import annotations

from typing import Any

from cassandra.query import UNSET_VALUE

from parley.errors import Conflict, NotFound
from parley.ids import UserId
from parley.store.cassandra.cql import Cql
from parley.store.records import User

QUERIES = {
    "user_insert": "INSERT INTO users (id, username, display_name, bio, created_at) VALUES (?,?,?,?,?)",
    "user_delete": "DELETE FROM users WHERE id = ?",
    "user_get": "SELECT id, username, display_name, bio, created_at FROM users WHERE id = ?",
    "user_update": "UPDATE users SET display_name = ?, bio = ? WHERE id = ?",
    "name_claim": "INSERT INTO usernames (username, user_id, password_hash) VALUES (?,?,?) IF NOT EXISTS",
    "name_get": "SELECT user_id, password_hash FROM usernames WHERE username = ?",
}


def _user(row: Any) -> User:
    return User(id=row.id, username=row.username, display_name=row.display_name, bio=row.bio or "",
                created_at=row.created_at)


class CassandraAccounts:
    _cql: Cql

    async def create_user(self, user: User, password_hash: str) -> None:
        # The users row first: if the name turns out to be taken it is removed, and a crash in
        # between leaves only a row no name points to.
        await self._cql.write("user_insert", user.id, user.username, user.display_name, user.bio, user.created_at)
        applied, _ = await self._cql.applied("name_claim", user.username, user.id, password_hash)
        if not applied:
            await self._cql.write("user_delete", user.id)
            raise Conflict(f"username {user.username!r} is taken", code="username_taken")

    async def user_by_name(self, username: str) -> tuple[User, str] | None:
        claim = await self._cql.one("name_get", username)
        if claim is None:
            return None
        row = await self._cql.one("user_get", claim.user_id)
        return (_user(row), claim.password_hash) if row else None

    async def get_user(self, user: UserId) -> User | None:
        row = await self._cql.one("user_get", user)
        return _user(row) if row else None

    async def get_users(self, users: list[UserId]) -> dict[UserId, User]:
        found = await self._cql.gather(self.get_user(u) for u in dict.fromkeys(users))
        return {u.id: u for u in found if u is not None}

    async def update_user(self, user: UserId, *, display_name: str | None, bio: str | None) -> User:
        if await self.get_user(user) is None:
            raise NotFound("no such user", code="unknown_user")
        # UNSET leaves a column alone, so two updates of different fields never undo each other
        await self._cql.write("user_update", UNSET_VALUE if display_name is None else display_name,
                              UNSET_VALUE if bio is None else bio, user)
        found = await self.get_user(user)
        assert found is not None
        return found
