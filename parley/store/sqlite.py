"""The embedded store: one SQLite file in WAL mode, shared by every process on the machine.

All SQL runs on one worker thread per process, so the event loop never blocks on disk and the
connection is never used from two threads. ``synchronous=FULL``: a commit is on disk when it returns.
Schema changes are numbered migrations applied at open (``PRAGMA user_version``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from parley.errors import Conflict, NotFound, Unavailable
from parley.ids import ConversationId, DeviceId, SessionId, UserId
from parley.store import (
    Conversation,
    Device,
    FriendState,
    PushPrefs,
    PushToken,
    Receipt,
    Role,
    Session,
    StoredMessage,
    User,
    group_full,
)

T = TypeVar("T")

MIGRATIONS = [
    """
    CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL,
        bio TEXT NOT NULL DEFAULT '', password_hash TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE TABLE sessions (id TEXT PRIMARY KEY, user TEXT NOT NULL, device TEXT NOT NULL,
        created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE devices (id TEXT PRIMARY KEY, user TEXT NOT NULL, name TEXT NOT NULL,
        created_at INTEGER NOT NULL, cursor INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX devices_by_user ON devices(user);
    CREATE TABLE friends (user TEXT NOT NULL, other TEXT NOT NULL, state TEXT NOT NULL,
        PRIMARY KEY (user, other)) WITHOUT ROWID;
    CREATE TABLE conversations (id TEXT PRIMARY KEY, kind TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE TABLE members (user TEXT NOT NULL, conv TEXT NOT NULL, PRIMARY KEY (user, conv)) WITHOUT ROWID;
    CREATE TABLE messages (id INTEGER PRIMARY KEY, conv TEXT NOT NULL, prev INTEGER NOT NULL,
        sender TEXT NOT NULL, device TEXT NOT NULL, cid TEXT NOT NULL, body TEXT NOT NULL,
        ts INTEGER NOT NULL);
    CREATE INDEX messages_by_conv ON messages(conv, id);
    """,
    """
    ALTER TABLE conversations ADD COLUMN name TEXT NOT NULL DEFAULT '';
    ALTER TABLE members ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
    CREATE INDEX members_by_conv ON members(conv, user);
    """,
    """
    CREATE TABLE receipts (conv TEXT NOT NULL, user TEXT NOT NULL, delivered INTEGER NOT NULL DEFAULT 0,
        read INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (conv, user)) WITHOUT ROWID;
    """,
    """
    CREATE TABLE push_tokens (user TEXT NOT NULL, device TEXT NOT NULL, platform TEXT NOT NULL, token TEXT NOT NULL,
        updated_at INTEGER NOT NULL, PRIMARY KEY (user, device)) WITHOUT ROWID;
    CREATE TABLE push_prefs (user TEXT PRIMARY KEY, muted INTEGER NOT NULL DEFAULT 0,
        hide_text INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
    CREATE TABLE push_mutes (user TEXT NOT NULL, conv TEXT NOT NULL, PRIMARY KEY (user, conv)) WITHOUT ROWID;
    """,
]

_MSG_COLS = "m.id, m.conv, m.prev, m.sender, m.device, m.cid, m.body, m.ts"


def _message(row: tuple[Any, ...]) -> StoredMessage:
    return StoredMessage(*row)


def _user(row: tuple[Any, ...]) -> User:
    return User(id=row[0], username=row[1], display_name=row[2], bio=row[3], created_at=row[4])


class SQLiteStore:
    def __init__(self, path: str) -> None:
        self._path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._db: sqlite3.Connection | None = None

    # ---- plumbing --------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=10)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=10000")
            self._migrate(db)
            self._db = db
        return self._db

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={number}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            try:
                return fn(self._connect())
            except sqlite3.OperationalError as err:
                raise Unavailable(f"sqlite: {err}", code="store_unavailable") from err

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def _tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def body(db: sqlite3.Connection) -> T:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

        return await self._run(body)

    async def migrate(self) -> None:
        await self._run(lambda db: None)

    async def close(self) -> None:
        def shut(_: sqlite3.Connection) -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        if self._db is not None:
            await self._run(shut)
        self._pool.shutdown(wait=True)

    # ---- users -----------------------------------------------------------------------------

    async def create_user(self, user: User, password_hash: str) -> None:
        def insert(db: sqlite3.Connection) -> None:
            try:
                db.execute(
                    "INSERT INTO users VALUES (?,?,?,?,?,?)",
                    (user.id, user.username, user.display_name, user.bio, password_hash, user.created_at),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"username {user.username!r} is taken", code="username_taken") from None

        await self._run(insert)

    async def user_by_name(self, username: str) -> tuple[User, str] | None:
        row = await self._run(
            lambda db: db.execute(
                "SELECT id, username, display_name, bio, created_at, password_hash FROM users "
                "WHERE username = ?",
                (username,),
            ).fetchone()
        )
        return (_user(row), row[5]) if row else None

    async def get_user(self, user: UserId) -> User | None:
        return (await self.get_users([user])).get(user)

    async def get_users(self, users: list[UserId]) -> dict[UserId, User]:
        if not users:
            return {}
        marks = ",".join("?" * len(users))
        rows = await self._run(
            lambda db: db.execute(
                f"SELECT id, username, display_name, bio, created_at FROM users WHERE id IN ({marks})",
                list(users),
            ).fetchall()
        )
        return {row[0]: _user(row) for row in rows}

    async def update_user(self, user: UserId, *, display_name: str | None, bio: str | None) -> User:
        def update(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE users SET display_name = COALESCE(?, display_name), bio = COALESCE(?, bio) "
                "WHERE id = ?",
                (display_name, bio, user),
            )

        await self._run(update)
        found = await self.get_user(user)
        if found is None:
            raise NotFound("no such user", code="unknown_user")
        return found

    # ---- sessions and devices ----------------------------------------------------------------

    async def create_session(self, session: Session) -> None:
        await self._run(
            lambda db: db.execute(
                "INSERT INTO sessions VALUES (?,?,?,?,?,?)",
                (session.id, session.user, session.device, session.created_at, session.expires_at,
                 int(session.revoked)),
            )
        )

    async def get_session(self, session: SessionId) -> Session | None:
        row = await self._run(
            lambda db: db.execute("SELECT * FROM sessions WHERE id = ?", (session,)).fetchone()
        )
        return Session(row[0], row[1], row[2], row[3], row[4], bool(row[5])) if row else None

    async def revoke_session(self, session: SessionId) -> None:
        await self._run(lambda db: db.execute("UPDATE sessions SET revoked = 1 WHERE id = ?", (session,)))

    async def upsert_device(self, device: Device) -> Device:
        def upsert(db: sqlite3.Connection) -> Device:
            db.execute(
                "INSERT INTO devices (id, user, name, created_at) VALUES (?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET name = excluded.name",
                (device.id, device.user, device.name, device.created_at),
            )
            row = db.execute("SELECT * FROM devices WHERE id = ?", (device.id,)).fetchone()
            return Device(*row)

        return await self._tx(upsert)

    async def get_device(self, device: DeviceId) -> Device | None:
        row = await self._run(lambda db: db.execute("SELECT * FROM devices WHERE id = ?", (device,)).fetchone())
        return Device(*row) if row else None

    async def list_devices(self, user: UserId) -> list[Device]:
        rows = await self._run(
            lambda db: db.execute("SELECT * FROM devices WHERE user = ? ORDER BY created_at", (user,)).fetchall()
        )
        return [Device(*row) for row in rows]

    async def save_cursors(self, cursors: dict[DeviceId, int]) -> None:
        def save(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE devices SET cursor = MAX(cursor, ?) WHERE id = ?",
                [(cursor, device) for device, cursor in cursors.items()],
            )

        if cursors:
            await self._tx(save)

    # ---- friends -----------------------------------------------------------------------------

    async def add_friend(self, a: UserId, b: UserId) -> FriendState:
        def add(db: sqlite3.Connection) -> FriendState:
            current = _friend_state(db, a, b)
            if current in ("friends", "outgoing"):
                return current
            new: FriendState = "friends" if current == "incoming" else "outgoing"
            back = "friends" if new == "friends" else "incoming"
            db.execute("INSERT OR REPLACE INTO friends VALUES (?,?,?)", (a, b, new))
            db.execute("INSERT OR REPLACE INTO friends VALUES (?,?,?)", (b, a, back))
            return new

        return await self._tx(add)

    async def remove_friend(self, a: UserId, b: UserId) -> None:
        await self._tx(
            lambda db: db.execute(
                "DELETE FROM friends WHERE (user = ? AND other = ?) OR (user = ? AND other = ?)", (a, b, b, a)
            )
        )

    async def friend_state(self, a: UserId, b: UserId) -> FriendState:
        return await self._run(lambda db: _friend_state(db, a, b))

    async def list_friends(self, user: UserId) -> list[tuple[UserId, FriendState]]:
        rows = await self._run(
            lambda db: db.execute("SELECT other, state FROM friends WHERE user = ?", (user,)).fetchall()
        )
        return [(row[0], row[1]) for row in rows]

    # ---- conversations and messages ------------------------------------------------------------

    async def open_conversation(self, conv: Conversation) -> None:
        def insert(db: sqlite3.Connection) -> None:
            db.execute("INSERT OR IGNORE INTO conversations (id, kind, created_at) VALUES (?,?,?)",
                       (conv.id, conv.kind, conv.created_at))
            db.executemany("INSERT OR IGNORE INTO members (user, conv) VALUES (?,?)",
                           [(m, conv.id) for m in conv.members])

        await self._tx(insert)

    async def get_conversation(self, conv: ConversationId) -> Conversation | None:
        return await self._run(lambda db: _conversation(db, conv))

    async def list_conversations(self, user: UserId) -> list[Conversation]:
        def listing(db: sqlite3.Connection) -> list[Conversation]:
            ids = [r[0] for r in db.execute("SELECT conv FROM members WHERE user = ?", (user,))]
            out = [c for c in (_conversation(db, i) for i in ids) if c is not None]
            out.sort(key=lambda c: c.last_message.id if c.last_message else 0, reverse=True)
            return out

        return await self._run(listing)

    # ---- groups --------------------------------------------------------------------------------

    async def create_group(self, conv: Conversation) -> None:
        def insert(db: sqlite3.Connection) -> None:
            try:
                db.execute("INSERT INTO conversations (id, kind, created_at, name) VALUES (?,?,?,?)",
                           (conv.id, conv.kind, conv.created_at, conv.name))
            except sqlite3.IntegrityError:
                raise Conflict(f"conversation {conv.id} exists", code="conflict") from None
            roles = dict(conv.roles)
            db.executemany("INSERT INTO members (user, conv, role) VALUES (?,?,?)",
                           [(m, conv.id, roles.get(m, "member")) for m in conv.members])

        await self._tx(insert)

    async def add_members(self, conv: ConversationId, users: list[UserId], *, cap: int) -> list[UserId]:
        def add(db: sqlite3.Connection) -> list[UserId]:
            present = {r[0] for r in db.execute("SELECT user FROM members WHERE conv = ?", (conv,))}
            new = [u for u in dict.fromkeys(users) if u not in present]
            if len(present) + len(new) > cap:
                raise group_full(cap, len(present), len(new))
            db.executemany("INSERT INTO members (user, conv, role) VALUES (?,?,'member')", [(u, conv) for u in new])
            return new

        return await self._tx(add)

    async def remove_member(self, conv: ConversationId, user: UserId) -> bool:
        def remove(db: sqlite3.Connection) -> bool:
            return db.execute("DELETE FROM members WHERE conv = ? AND user = ?", (conv, user)).rowcount > 0

        return await self._tx(remove)

    async def set_role(self, conv: ConversationId, user: UserId, role: Role) -> None:
        await self._tx(lambda db: db.execute("UPDATE members SET role = ? WHERE conv = ? AND user = ?",
                                             (role, conv, user)))

    async def rename_group(self, conv: ConversationId, name: str) -> None:
        await self._tx(lambda db: db.execute("UPDATE conversations SET name = ? WHERE id = ?", (name, conv)))

    async def groups_of(self, user: UserId) -> list[ConversationId]:
        rows = await self._run(lambda db: db.execute(
            "SELECT conv FROM members WHERE user = ? AND conv LIKE 'g.%' ORDER BY conv", (user,)).fetchall())
        return [r[0] for r in rows]

    async def put_messages(self, messages: list[StoredMessage]) -> None:
        def put(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT OR IGNORE INTO messages VALUES (?,?,?,?,?,?,?,?)",
                [(m.id, m.conv, m.prev, m.sender, m.device, m.cid, m.body, m.ts) for m in messages],
            )

        if messages:
            await self._tx(put)

    async def save_receipts(self, receipts: list[Receipt]) -> None:
        def save(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT INTO receipts (conv, user, delivered, read) VALUES (?,?,?,?) ON CONFLICT (conv, user) "
                "DO UPDATE SET delivered = MAX(delivered, excluded.delivered), read = MAX(read, excluded.read)",
                [(r.conv, r.user, max(r.delivered, r.read), r.read) for r in receipts])

        if receipts:
            await self._tx(save)

    async def receipts(self, conv: ConversationId) -> list[Receipt]:
        rows = await self._run(lambda db: db.execute(
            "SELECT conv, user, delivered, read FROM receipts WHERE conv = ? ORDER BY user", (conv,)).fetchall())
        return [Receipt(*row) for row in rows]

    # ---- push --------------------------------------------------------------------------------

    async def put_push_token(self, token: PushToken) -> None:
        def put(db: sqlite3.Connection) -> None:
            # a token belongs to one app install: registered elsewhere (another account on the same
            # phone), it stops being anyone else's
            db.execute("DELETE FROM push_tokens WHERE token = ? AND NOT (user = ? AND device = ?)",
                       (token.token, token.user, token.device))
            db.execute("INSERT OR REPLACE INTO push_tokens VALUES (?,?,?,?,?)",
                       (token.user, token.device, token.platform, token.token, token.updated_at))

        await self._tx(put)

    async def delete_push_token(self, user: UserId, device: DeviceId, *, only: str | None = None) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            if only is None:
                cur = db.execute("DELETE FROM push_tokens WHERE user = ? AND device = ?", (user, device))
            else:
                cur = db.execute("DELETE FROM push_tokens WHERE user = ? AND device = ? AND token = ?",
                                 (user, device, only))
            return cur.rowcount > 0

        return await self._tx(delete)

    async def push_tokens(self, users: list[UserId]) -> list[PushToken]:
        if not users:
            return []
        marks = ",".join("?" * len(users))
        rows = await self._run(lambda db: db.execute(
            f"SELECT * FROM push_tokens WHERE user IN ({marks}) ORDER BY user, device", list(users)).fetchall())
        return [PushToken(*row) for row in rows]

    async def push_prefs(self, user: UserId) -> PushPrefs:
        def read(db: sqlite3.Connection) -> PushPrefs:
            row = db.execute("SELECT muted, hide_text FROM push_prefs WHERE user = ?", (user,)).fetchone()
            convs = tuple(r[0] for r in db.execute("SELECT conv FROM push_mutes WHERE user = ? ORDER BY conv",
                                                   (user,)))
            return PushPrefs(bool(row[0]), bool(row[1]), convs) if row else PushPrefs(muted_convs=convs)

        return await self._run(read)

    async def set_push_prefs(self, user: UserId, *, muted: bool | None, hide_text: bool | None) -> PushPrefs:
        await self._tx(lambda db: db.execute(
            "INSERT INTO push_prefs (user, muted, hide_text) VALUES (?, COALESCE(?, 0), COALESCE(?, 0)) "
            "ON CONFLICT (user) DO UPDATE SET muted = COALESCE(?, muted), hide_text = COALESCE(?, hide_text)",
            (user, muted, hide_text, muted, hide_text)))
        return await self.push_prefs(user)

    async def mute_conversation(self, user: UserId, conv: ConversationId, muted: bool) -> None:
        sql = ("INSERT OR IGNORE INTO push_mutes VALUES (?,?)" if muted
               else "DELETE FROM push_mutes WHERE user = ? AND conv = ?")
        await self._tx(lambda db: db.execute(sql, (user, conv)))

    async def messages_for_user(self, user: UserId, *, after: int, upto: int, limit: int) -> list[StoredMessage]:
        # One range scan per conversation of the user (index messages_by_conv), merged by id.
        rows = await self._run(
            lambda db: db.execute(
                f"SELECT {_MSG_COLS} FROM members mb JOIN messages m ON m.conv = mb.conv "
                "WHERE mb.user = ? AND m.id > ? AND m.id <= ? ORDER BY m.id LIMIT ?",
                (user, after, upto, limit),
            ).fetchall()
        )
        return [_message(row) for row in rows]

    async def history(
        self, conv: ConversationId, *, before: int | None, after: int | None, limit: int, newest_first: bool
    ) -> list[StoredMessage]:
        order = "DESC" if newest_first else "ASC"
        rows = await self._run(
            lambda db: db.execute(
                f"SELECT {_MSG_COLS} FROM messages m WHERE m.conv = ? AND m.id > ? AND m.id < ? "
                f"ORDER BY m.id {order} LIMIT ?",
                (conv, after or 0, before if before is not None else 2**63 - 1, limit),
            ).fetchall()
        )
        return [_message(row) for row in rows]


def _conversation(db: sqlite3.Connection, conv: str) -> Conversation | None:
    row = db.execute("SELECT id, kind, created_at, name FROM conversations WHERE id = ?", (conv,)).fetchone()
    if not row:
        return None
    members = db.execute("SELECT user, role FROM members WHERE conv = ? ORDER BY user", (conv,)).fetchall()
    roles = tuple((u, r) for u, r in members if r != "member")
    return Conversation(row[0], row[1], tuple(u for u, _ in members), row[2], _last_message(db, conv), row[3], roles)


def _friend_state(db: sqlite3.Connection, a: UserId, b: UserId) -> FriendState:
    row = db.execute("SELECT state FROM friends WHERE user = ? AND other = ?", (a, b)).fetchone()
    return row[0] if row else "none"


def _last_message(db: sqlite3.Connection, conv: str) -> StoredMessage | None:
    row = db.execute(
        f"SELECT {_MSG_COLS} FROM messages m WHERE m.conv = ? ORDER BY m.id DESC LIMIT 1", (conv,)
    ).fetchone()
    return _message(row) if row else None

