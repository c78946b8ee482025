"""SQLite accounts: one ``users`` row per user, the password hash beside the profile; usernames are
unique by the table's constraint. A deleted account's row stays, emptied, with ``deleted_at`` set: its
username stays taken, and ``user_by_name`` no longer finds it."""

from __future__ import annotations

import sqlite3
from typing import Any

from parley.errors import Conflict, NotFound
from parley.ids import UserId
from parley.store.records import User
from parley.store.sqlite.db import Database, chunks, marks

COLUMNS = "id, username, display_name, bio, created_at, deleted_at"


def _user(row: tuple[Any, ...]) -> User:
    if row[5] is not None:  # deleted: the placeholder shows no username
        return User(id=row[0], username="", display_name="", created_at=row[4], deleted=True)
    return User(id=row[0], username=row[1], display_name=row[2], bio=row[3], created_at=row[4])


class SQLiteAccounts:
    _db: Database

    async def create_user(self, user: User, password_hash: str) -> None:
        def insert(db: sqlite3.Connection) -> None:
            try:
                db.execute(
                    "INSERT INTO users (id, username, display_name, bio, password_hash, created_at) "
                    "VALUES (?,?,?,?,?,?)",
                    (user.id, user.username, user.display_name, user.bio, password_hash, user.created_at),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"username {user.username!r} is taken", code="username_taken") from None

        await self._db.run(insert)

    async def user_by_name(self, username: str) -> tuple[User, str] | None:
        row = await self._db.run(
            lambda db: db.execute(
                f"SELECT {COLUMNS}, password_hash FROM users WHERE username = ? AND deleted_at IS NULL",
                (username,),
            ).fetchone()
        )
        return (_user(row), row[6]) if row else None

    async def set_password_hash(self, user: User, password_hash: str) -> None:
        await self._db.run(lambda db: db.execute("UPDATE users SET password_hash = ? WHERE id = ?",
                                                 (password_hash, user.id)))

    async def get_user(self, user: UserId) -> User | None:
        return (await self.get_users([user])).get(user)

    async def get_users(self, users: list[UserId]) -> dict[UserId, User]:
        if not users:
            return {}
        def read(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return [row for chunk in chunks(sorted(set(users))) for row in db.execute(
                f"SELECT {COLUMNS} FROM users WHERE id IN ({marks(len(chunk))})",
                list(chunk)).fetchall()]

        return {row[0]: _user(row) for row in await self._db.run(read)}

    async def update_user(self, user: UserId, *, display_name: str | None, bio: str | None) -> User:
        def update(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE users SET display_name = COALESCE(?, display_name), bio = COALESCE(?, bio) "
                "WHERE id = ? AND deleted_at IS NULL",
                (display_name, bio, user),
            )

        await self._db.run(update)
        found = await self.get_user(user)
        if found is None or found.deleted:
            raise NotFound("no such user", code="unknown_user")
        return found
