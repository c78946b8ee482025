"""Cassandra accounts: ``users`` by id, and ``usernames``, claimed with a lightweight transaction so
a name is unique across the cluster (it also holds the password hash).

Claims are decided at SERIAL (cql.py), by a majority of every datacenter's replicas together, so two
regions cannot both win one name. A claim Cassandra cannot give an answer for (a timeout, or Paxos
contention between datacenters: "CAS operation result is unknown") is settled by reading the name at
SERIAL; claiming a name this user already holds counts as won, so a retried sign-up is idempotent.
A deleted account's ``users`` row stays with ``deleted_at`` set (a placeholder) and its name claim stays,
with no password hash: the name is never claimed again, and ``user_by_name`` finds nobody (erasure.py)."""

from __future__ import annotations

from typing import Any

from cassandra.query import UNSET_VALUE

from parley.errors import Conflict, NotFound, Unavailable
from parley.ids import UserId
from parley.store.cassandra.cql import Cql
from parley.store.records import User

QUERIES = {
    "user_insert": "INSERT INTO users (id, username, display_name, bio, created_at) VALUES (?,?,?,?,?)",
    "user_delete": "DELETE FROM users WHERE id = ?",
    "user_get": "SELECT id, username, display_name, bio, created_at, deleted_at FROM users WHERE id = ?",
    "user_update": "UPDATE users SET display_name = ?, bio = ? WHERE id = ?",
    "name_claim": "INSERT INTO usernames (username, user_id, password_hash) VALUES (?,?,?) IF NOT EXISTS",
    "name_get": "SELECT user_id, password_hash FROM usernames WHERE username = ?",
    "name_owner": "SELECT user_id FROM usernames WHERE username = ?",  # read at SERIAL
    # a claimed row is only ever written by lightweight transactions (no mixed timestamps)
    "name_rehash": "UPDATE usernames SET password_hash = ? WHERE username = ? IF user_id = ?",
}


def _user(row: Any) -> User:
    if row.deleted_at is not None:  # the placeholder shows no username
        return User(id=row.id, username="", display_name="", created_at=row.created_at, deleted=True)
    return User(id=row.id, username=row.username, display_name=row.display_name, bio=row.bio or "",
                created_at=row.created_at)


class CassandraAccounts:
    _cql: Cql

    async def create_user(self, user: User, password_hash: str) -> None:
        # The users row first: if the name turns out to be taken it is removed, and a crash in
        # between leaves only a row no name points to.
        await self._cql.write("user_insert", user.id, user.username, user.display_name, user.bio, user.created_at)
        if not await self._claim_name(user, password_hash):
            await self._cql.write("user_delete", user.id)
            raise Conflict(f"username {user.username!r} is taken", code="username_taken")

    async def _claim_name(self, user: User, password_hash: str) -> bool:
        """Whether ``user`` holds its name now (Unavailable: nobody does yet; try again)."""
        try:
            applied, row = await self._cql.applied("name_claim", user.username, user.id, password_hash)
            return applied or row.user_id == user.id
        except Unavailable:
            owner = await self._cql.serial_one("name_owner", user.username)
            if owner is None:
                raise
            return bool(owner.user_id == user.id)

    async def user_by_name(self, username: str) -> tuple[User, str] | None:
        claim = await self._cql.one("name_get", username)
        if claim is None:
            return None
        row = await self._cql.one("user_get", claim.user_id)
        return (_user(row), claim.password_hash) if row and row.deleted_at is None else None

    async def set_password_hash(self, user: User, password_hash: str) -> None:
        await self._cql.applied("name_rehash", password_hash, user.username, user.id)

    async def get_user(self, user: UserId) -> User | None:
        row = await self._cql.one("user_get", user)
        return _user(row) if row else None

    async def get_users(self, users: list[UserId]) -> dict[UserId, User]:
        found = await self._cql.gather(self.get_user(u) for u in dict.fromkeys(users))
        return {u.id: u for u in found if u is not None}

    async def update_user(self, user: UserId, *, display_name: str | None, bio: str | None) -> User:
        found = await self.get_user(user)
        if found is None or found.deleted:
            raise NotFound("no such user", code="unknown_user")
        # UNSET leaves a column alone, so two updates of different fields never undo each other
        await self._cql.write("user_update", UNSET_VALUE if display_name is None else display_name,
                              UNSET_VALUE if bio is None else bio, user)
        found = await self.get_user(user)
        assert found is not None
        return found
