"""The Cassandra store: accounts, friends, conversations and history in Apache Cassandra 5.0.

Driver use: one ``Cluster`` per process with token-aware, DC-aware routing; every query a prepared
statement; consistency (and serial consistency for the few lightweight transactions) from settings.
Requests run on the driver's I/O thread and come back to asyncio through callbacks, so the event
loop never waits on Cassandra; only connecting, preparing and schema changes run in a worker thread.
Large reads page. Any "cannot reach Cassandra" error becomes ``Unavailable(store_unavailable)``.

Data model (schema in ``cassandra_schema``, reasons in docs/adr/0004):
- ``messages ((conv, bucket), id DESC)``: bucket = the sending node's ts // the bucket window, so a
  partition stays bounded and the newest page is one read. Rewriting a message writes the same row.
- ``conversation_buckets``: each partition's [first_id, last_id], kept exact with no read before
  the write: last_id is written ``USING TIMESTAMP id`` (the highest id wins) and first_id
  ``USING TIMESTAMP 2^62 - id`` (the lowest wins). ``spans.merge_spans`` reads across them.
- ``conversation_buckets.newest_id`` (a static column, same trick) sits in the same partition as the
  ranges: the archiver updates both in one single-partition batch per conversation, and sync reads
  one partition per conversation and skips those with nothing new: O(conversations + missed).
- ``device_cursors`` is written ``USING TIMESTAMP cursor``: a cursor only ever moves forward.
- Friendships are facts "a has added b" (no read-modify-write to tangle under concurrency);
  usernames and conversations are created with lightweight transactions.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

from cassandra import ConsistencyLevel, OperationTimedOut, ProtocolVersion, RequestExecutionException
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    ResponseFuture,
)
from cassandra.cluster import (
    Session as CqlSession,
)
from cassandra.connection import ConnectionException
from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, TokenAwarePolicy
from cassandra.query import UNSET_VALUE, BatchStatement, BatchType, PreparedStatement, Statement

from parley.errors import Conflict, NotFound, ParleyError, Unavailable
from parley.ids import ConversationId, DeviceId, SessionId, UserId
from parley.settings import Settings
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
from parley.store.cassandra_schema import BOOTSTRAP, MIGRATIONS, create_keyspace, replication_map
from parley.store.spans import Span, bucket_of, merge_spans

log = logging.getLogger("parley.store.cassandra")
T = TypeVar("T")

DOWN = (NoHostAvailable, OperationTimedOut, RequestExecutionException, ConnectionException)
FIRST_ID_BASE = 1 << 62  # first_id is written USING TIMESTAMP FIRST_ID_BASE - id: the lowest id wins
BATCH_BYTES = 64 * 1024  # one mutation per partition batch, kept far below the commit log's mutation limit
PAGE = 1000
LOCK_TTL_S = 120
DDL_TIMEOUT_S = 60
CAS_ATTEMPTS = 20

QUERIES = {
    # users
    "user_insert": "INSERT INTO users (id, username, display_name, bio, created_at) VALUES (?,?,?,?,?)",
    "user_delete": "DELETE FROM users WHERE id = ?",
    "user_get": "SELECT id, username, display_name, bio, created_at FROM users WHERE id = ?",
    "user_update": "UPDATE users SET display_name = ?, bio = ? WHERE id = ?",
    "name_claim": "INSERT INTO usernames (username, user_id, password_hash) VALUES (?,?,?) IF NOT EXISTS",
    "name_get": "SELECT user_id, password_hash FROM usernames WHERE username = ?",
    # sessions and devices
    "session_insert": "INSERT INTO sessions (id, user_id, device, created_at, expires_at, revoked) "
                      "VALUES (?,?,?,?,?,?)",
    "session_get": "SELECT id, user_id, device, created_at, expires_at, revoked FROM sessions WHERE id = ?",
    "session_revoke": "UPDATE sessions SET revoked = true WHERE id = ?",
    "device_claim": "INSERT INTO devices (id, user_id, name, created_at) VALUES (?,?,?,?) IF NOT EXISTS",
    "device_rename": "UPDATE devices SET name = ? WHERE id = ?",
    "device_get": "SELECT id, user_id, name, created_at FROM devices WHERE id = ?",
    "device_index": "INSERT INTO devices_by_user (user_id, created_at, id) VALUES (?,?,?)",
    "devices_of_user": "SELECT id FROM devices_by_user WHERE user_id = ?",
    "cursor_save": "UPDATE device_cursors USING TIMESTAMP ? SET cursor = ? WHERE device = ?",
    "cursor_get": "SELECT cursor FROM device_cursors WHERE device = ?",
    # friends
    "out_add": "INSERT INTO friend_out (user_id, other) VALUES (?,?)",
    "in_add": "INSERT INTO friend_in (user_id, other) VALUES (?,?)",
    "out_del": "DELETE FROM friend_out WHERE user_id = ? AND other = ?",
    "in_del": "DELETE FROM friend_in WHERE user_id = ? AND other = ?",
    "out_has": "SELECT other FROM friend_out WHERE user_id = ? AND other = ?",
    "out_list": "SELECT other FROM friend_out WHERE user_id = ?",
    "in_list": "SELECT other FROM friend_in WHERE user_id = ?",
    # conversations
    "conv_claim": "INSERT INTO conversations (id, kind, created_at) VALUES (?,?,?) IF NOT EXISTS",
    "conv_get": "SELECT id, kind, created_at, name, member_count FROM conversations WHERE id = ?",
    "member_add": "INSERT INTO conversation_members (conv, user_id, role) VALUES (?,?,?)",
    "member_claim": "INSERT INTO conversation_members (conv, user_id, role) VALUES (?,?,?) IF NOT EXISTS",
    "member_del": "DELETE FROM conversation_members WHERE conv = ? AND user_id = ? IF EXISTS",
    "member_role": "UPDATE conversation_members SET role = ? WHERE conv = ? AND user_id = ? IF EXISTS",
    "members_of": "SELECT user_id, role FROM conversation_members WHERE conv = ?",
    "user_conv_add": "INSERT INTO user_conversations (user_id, conv) VALUES (?,?)",
    "user_conv_del": "DELETE FROM user_conversations WHERE user_id = ? AND conv = ?",
    "group_claim": "INSERT INTO conversations (id, kind, created_at, name, member_count) VALUES (?,?,?,?,?) "
                   "IF NOT EXISTS",
    "group_count": "UPDATE conversations SET member_count = ? WHERE id = ? IF member_count = ?",
    "group_rename": "UPDATE conversations SET name = ? WHERE id = ?",
    "convs_of_user": "SELECT conv FROM user_conversations WHERE user_id = ?",
    # messages
    "msg_insert": "INSERT INTO messages (conv, bucket, id, prev, sender, device, cid, body, ts) "
                  "VALUES (?,?,?,?,?,?,?,?,?)",
    "msg_get": "SELECT id, conv, prev, sender, device, cid, body, ts FROM messages "
               "WHERE conv = ? AND bucket = ? AND id = ?",
    "msg_asc": "SELECT id, conv, prev, sender, device, cid, body, ts FROM messages "
               "WHERE conv = ? AND bucket = ? AND id > ? AND id < ? ORDER BY id ASC LIMIT ?",
    "msg_desc": "SELECT id, conv, prev, sender, device, cid, body, ts FROM messages "
                "WHERE conv = ? AND bucket = ? AND id > ? AND id < ? ORDER BY id DESC LIMIT ?",
    "bucket_last": "UPDATE conversation_buckets USING TIMESTAMP ? SET last_id = ? WHERE conv = ? AND bucket = ?",
    "bucket_first": "UPDATE conversation_buckets USING TIMESTAMP ? SET first_id = ? WHERE conv = ? AND bucket = ?",
    "conv_newest": "UPDATE conversation_buckets USING TIMESTAMP ? SET newest_id = ?, newest_bucket = ? WHERE conv = ?",
    "buckets_of": "SELECT bucket, first_id, last_id, newest_id FROM conversation_buckets WHERE conv = ?",
    "newest_of": "SELECT newest_id, newest_bucket FROM conversation_buckets WHERE conv = ? LIMIT 1",
    # push
    "push_put": "INSERT INTO push_tokens (user_id, device, platform, reg_token, updated_at) VALUES (?,?,?,?,?)",
    "push_del": "DELETE FROM push_tokens WHERE user_id = ? AND device = ? IF EXISTS",
    "push_del_if": "DELETE FROM push_tokens WHERE user_id = ? AND device = ? IF reg_token = ?",
    "push_of": "SELECT user_id, device, platform, reg_token, updated_at FROM push_tokens WHERE user_id = ?",
    "push_get": "SELECT reg_token FROM push_tokens WHERE user_id = ? AND device = ?",
    "owner_get": "SELECT user_id, device FROM push_token_owner WHERE reg_token = ?",
    "owner_put": "INSERT INTO push_token_owner (reg_token, user_id, device) VALUES (?,?,?)",
    "owner_del": "DELETE FROM push_token_owner WHERE reg_token = ? IF user_id = ? AND device = ?",
    "prefs_get": "SELECT muted, hide_text, muted_convs FROM push_prefs WHERE user_id = ?",
    "prefs_set": "UPDATE push_prefs SET muted = ?, hide_text = ? WHERE user_id = ?",
    "prefs_mute": "UPDATE push_prefs SET muted_convs = muted_convs + ? WHERE user_id = ?",
    "prefs_unmute": "UPDATE push_prefs SET muted_convs = muted_convs - ? WHERE user_id = ?",
    # receipts
    "receipt_delivered": "UPDATE receipts USING TIMESTAMP ? SET delivered = ? WHERE conv = ? AND user_id = ?",
    "receipt_read": "UPDATE receipts USING TIMESTAMP ? SET read = ? WHERE conv = ? AND user_id = ?",
    "receipts_of": "SELECT conv, user_id, delivered, read FROM receipts WHERE conv = ?",
}


def _message(row: Any) -> StoredMessage:
    return StoredMessage(row.id, row.conv, row.prev, row.sender, row.device, row.cid, row.body, row.ts)


def _user(row: Any) -> User:
    return User(id=row.id, username=row.username, display_name=row.display_name, bio=row.bio or "",
                created_at=row.created_at)


def _size(m: StoredMessage) -> int:
    return len(m.body.encode()) + len(m.cid) + 96


def partition_batches(messages: Iterable[StoredMessage], bucket_ms: int) -> list[tuple[str, int, list[StoredMessage]]]:
    """Messages grouped by partition (conv, bucket), split so each group stays under BATCH_BYTES."""
    groups: dict[tuple[str, int], list[list[StoredMessage]]] = defaultdict(lambda: [[]])
    filled: dict[tuple[str, int], int] = defaultdict(int)  # bytes in the last chunk of each partition
    for m in messages:
        key = (m.conv, bucket_of(m.ts, bucket_ms))
        chunks = groups[key]
        if chunks[-1] and filled[key] + _size(m) > BATCH_BYTES:
            chunks.append([])
            filled[key] = 0
        chunks[-1].append(m)
        filled[key] += _size(m)
    return [(conv, bucket, chunk) for (conv, bucket), chunks in groups.items() for chunk in chunks]


def replicas_answering(level: str, rf: int) -> int:
    """How many replicas of ``rf`` a request at ``level`` waits for (in the local datacenter)."""
    return {"ONE": 1, "LOCAL_ONE": 1, "TWO": 2, "THREE": 3, "ALL": rf}.get(level.upper(), rf // 2 + 1)


def check_consistency(settings: Settings) -> None:
    """Nodes read history below the archiver's ack floor and trust it complete, so a read must meet
    the archiver's write on some replica: reads + writes > replicas (per datacenter)."""
    level = settings.cassandra_consistency.upper()
    if level not in ConsistencyLevel.name_to_value:
        raise ParleyError(f"PARLEY_CASSANDRA_CONSISTENCY={level!r} is not a consistency level "
                          "(ONE, LOCAL_QUORUM, ...)", code="bad_setting")
    factors = [v for k, v in replication_map(settings.cassandra_replication).items()
               if k != "class" and isinstance(v, int)]
    rf = max(factors, default=1)
    if 2 * replicas_answering(level, rf) <= rf:
        raise ParleyError(f"PARLEY_CASSANDRA_CONSISTENCY={level} with {rf} replicas can read a replica that "
                          "missed a write, and sync would skip messages: use LOCAL_QUORUM (or QUORUM)",
                          code="bad_setting")


def findability(groups: list[tuple[str, int, list[StoredMessage]]]) -> list[list[tuple[str, tuple[Any, ...]]]]:
    """Per conversation, one batch: each touched partition's [first, last] and the newest message."""
    ranges: dict[str, dict[int, tuple[int, int]]] = defaultdict(dict)
    for conv, bucket, chunk in groups:
        lo, hi = int(min(m.id for m in chunk)), int(max(m.id for m in chunk))
        old_lo, old_hi = ranges[conv].get(bucket, (lo, hi))
        ranges[conv][bucket] = (min(lo, old_lo), max(hi, old_hi))
    out = []
    for conv, buckets in ranges.items():
        newest, newest_bucket = max((hi, bucket) for bucket, (_, hi) in buckets.items())
        statements: list[tuple[str, tuple[Any, ...]]] = [("conv_newest", (newest, newest, newest_bucket, conv))]
        for bucket, (lo, hi) in buckets.items():
            statements += [("bucket_first", (FIRST_ID_BASE - lo, lo, conv, bucket)),
                           ("bucket_last", (hi, hi, conv, bucket))]
        out.append(statements)
    return out


class CassandraStore:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._bucket_ms = settings.cassandra_bucket_s * 1000
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cassandra-setup")
        self._cluster: Cluster | None = None
        self._session: CqlSession | None = None
        self._q: dict[str, PreparedStatement] = {}
        self._limit = asyncio.Semaphore(settings.cassandra_concurrency)

    # ---- plumbing ------------------------------------------------------------------------------

    def _new_cluster(self) -> Cluster:
        s = self._settings
        consistency = ConsistencyLevel.name_to_value[s.cassandra_consistency.upper()]
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=s.cassandra_local_dc or None)),
            consistency_level=consistency,
            serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
            request_timeout=s.cassandra_timeout_s,
        )
        auth = (PlainTextAuthProvider(s.cassandra_username, s.cassandra_password.reveal())
                if s.cassandra_username else None)
        return Cluster(
            contact_points=[h.strip() for h in s.cassandra_hosts.split(",") if h.strip()],
            port=s.cassandra_port,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            auth_provider=auth,
            # come back within seconds of an outage, not after the default's minutes
            reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.5, max_delay=2.0),
            connect_timeout=5,
            protocol_version=ProtocolVersion.V5,  # Cassandra 5.0's; no downgrade dance at every connect
        )

    def _connect_and_migrate(self) -> None:
        """Blocking: connect, bring the schema up to date, prepare every statement."""
        check_consistency(self._settings)
        cluster = self._new_cluster()
        try:
            session = cluster.connect()
            _migrate(session, self._settings.cassandra_keyspace, self._settings.cassandra_replication)
            session.set_keyspace(self._settings.cassandra_keyspace)
            self._q = {name: session.prepare(cql) for name, cql in QUERIES.items()}
        except BaseException:
            cluster.shutdown()
            raise
        self._cluster, self._session = cluster, session

    async def migrate(self) -> None:
        if self._session is not None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._connect_and_migrate)
        except DOWN as err:
            raise Unavailable(f"cassandra: {err}", code="store_unavailable") from err

    async def close(self) -> None:
        cluster, self._cluster, self._session = self._cluster, None, None
        if cluster is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, cluster.shutdown)
        self._pool.shutdown(wait=True)

    async def _page(self, statement: Statement, paging_state: bytes | None = None) -> tuple[list[Any], bytes | None]:
        """One page of a statement's rows and the state to ask for the next (None: that was all)."""
        if self._session is None:
            raise Unavailable("cassandra: not connected (migrate() first)", code="store_unavailable")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle(error: BaseException | None) -> None:
            if not done.done():
                done.set_exception(error) if error is not None else done.set_result(None)

        def wake(error: BaseException | None) -> None:  # on the driver's thread
            try:
                loop.call_soon_threadsafe(settle, error)
            except RuntimeError:  # the loop closed while Cassandra answered: nobody is waiting
                pass

        async with self._limit:
            try:
                future: ResponseFuture = self._session.execute_async(statement, paging_state=paging_state)
                future.add_callbacks(lambda _rows: wake(None), wake)
                await done
                result = future.result()  # already there: the callback ran after the result was set
            except DOWN as err:
                raise Unavailable(f"cassandra: {err}", code="store_unavailable") from err
        return list(result.current_rows), result.paging_state

    async def _rows(self, name: str, *params: Any, limit: int | None = None) -> list[Any]:
        """All rows (or the first ``limit``) of a prepared query, a page at a time."""
        statement = self._q[name].bind(params)
        statement.fetch_size = min(limit, PAGE) if limit else PAGE
        rows, state = await self._page(statement)
        while state is not None and (limit is None or len(rows) < limit):
            more, state = await self._page(statement, state)
            rows += more
        return rows[:limit] if limit else rows

    async def _one(self, name: str, *params: Any) -> Any:
        rows = await self._rows(name, *params, limit=1)
        return rows[0] if rows else None

    async def _write(self, name: str, *params: Any) -> None:
        await self._page(self._q[name].bind(params))

    async def _applied(self, name: str, *params: Any) -> tuple[bool, Any]:
        """A lightweight transaction: whether it applied, and the row that was there if not."""
        row = (await self._page(self._q[name].bind(params)))[0][0]
        return bool(row.applied), row

    async def _batch(self, statements: Sequence[tuple[str, tuple[Any, ...]]], logged: bool = False) -> None:
        if len(statements) == 1:
            await self._write(statements[0][0], *statements[0][1])
            return
        batch = BatchStatement(batch_type=BatchType.LOGGED if logged else BatchType.UNLOGGED)
        for name, params in statements:
            batch.add(self._q[name], params)
        await self._page(batch)

    @staticmethod
    async def _all(calls: Iterable[Any]) -> list[Any]:
        return list(await asyncio.gather(*calls))

    # ---- users ---------------------------------------------------------------------------------

    async def create_user(self, user: User, password_hash: str) -> None:
        # The users row first: if the name turns out to be taken it is removed, and a crash in
        # between leaves only a row no name points to.
        await self._write("user_insert", user.id, user.username, user.display_name, user.bio, user.created_at)
        applied, _ = await self._applied("name_claim", user.username, user.id, password_hash)
        if not applied:
            await self._write("user_delete", user.id)
            raise Conflict(f"username {user.username!r} is taken", code="username_taken")

    async def user_by_name(self, username: str) -> tuple[User, str] | None:
        claim = await self._one("name_get", username)
        if claim is None:
            return None
        row = await self._one("user_get", claim.user_id)
        return (_user(row), claim.password_hash) if row else None

    async def get_user(self, user: UserId) -> User | None:
        row = await self._one("user_get", user)
        return _user(row) if row else None

    async def get_users(self, users: list[UserId]) -> dict[UserId, User]:
        found = await self._all(self.get_user(u) for u in dict.fromkeys(users))
        return {u.id: u for u in found if u is not None}

    async def update_user(self, user: UserId, *, display_name: str | None, bio: str | None) -> User:
        if await self.get_user(user) is None:
            raise NotFound("no such user", code="unknown_user")
        # UNSET leaves a column alone, so two updates of different fields never undo each other
        await self._write("user_update", UNSET_VALUE if display_name is None else display_name,
                          UNSET_VALUE if bio is None else bio, user)
        found = await self.get_user(user)
        assert found is not None
        return found

    # ---- sessions and devices ------------------------------------------------------------------

    async def create_session(self, session: Session) -> None:
        await self._write("session_insert", session.id, session.user, session.device, session.created_at,
                          session.expires_at, session.revoked)

    async def get_session(self, session: SessionId) -> Session | None:
        row = await self._one("session_get", session)
        if row is None:
            return None
        return Session(row.id, row.user_id, row.device, row.created_at, row.expires_at, bool(row.revoked))

    async def revoke_session(self, session: SessionId) -> None:
        await self._write("session_revoke", session)

    async def upsert_device(self, device: Device) -> Device:
        applied, existing = await self._applied("device_claim", device.id, device.user, device.name,
                                                device.created_at)
        created_at = device.created_at if applied else existing.created_at
        user = device.user if applied else existing.user_id
        if not applied:
            await self._write("device_rename", device.name, device.id)
        await self._write("device_index", user, created_at, device.id)
        return Device(device.id, user, device.name, created_at, await self._cursor(device.id))

    async def _cursor(self, device: DeviceId) -> int:
        row = await self._one("cursor_get", device)
        return int(row.cursor) if row and row.cursor is not None else 0

    async def get_device(self, device: DeviceId) -> Device | None:
        row, cursor = await self._all([self._one("device_get", device), self._cursor(device)])
        return Device(row.id, row.user_id, row.name, row.created_at, cursor) if row else None

    async def list_devices(self, user: UserId) -> list[Device]:
        ids = [r.id for r in await self._rows("devices_of_user", user)]  # in created_at order
        found = await self._all(self.get_device(d) for d in ids)
        return [d for d in found if d is not None]

    async def save_cursors(self, cursors: dict[DeviceId, int]) -> None:
        await self._all(self._write("cursor_save", cursor, cursor, device) for device, cursor in cursors.items())

    # ---- friends -------------------------------------------------------------------------------

    async def friend_state(self, a: UserId, b: UserId) -> FriendState:
        out, back = await self._all([self._one("out_has", a, b), self._one("out_has", b, a)])
        if out and back:
            return "friends"
        return "outgoing" if out else "incoming" if back else "none"

    async def add_friend(self, a: UserId, b: UserId) -> FriendState:
        current = await self.friend_state(a, b)
        if current in ("friends", "outgoing"):
            return current
        await self._batch([("out_add", (a, b)), ("in_add", (b, a))], logged=True)
        return "friends" if current == "incoming" else "outgoing"

    async def remove_friend(self, a: UserId, b: UserId) -> None:
        await self._batch([("out_del", (a, b)), ("in_del", (b, a)), ("out_del", (b, a)), ("in_del", (a, b))],
                          logged=True)

    async def list_friends(self, user: UserId) -> list[tuple[UserId, FriendState]]:
        outs, ins = await self._all([self._rows("out_list", user), self._rows("in_list", user)])
        out_set, in_set = {r.other for r in outs}, {r.other for r in ins}
        states: dict[str, FriendState] = {
            other: "friends" if other in out_set and other in in_set else "outgoing" if other in out_set
            else "incoming" for other in out_set | in_set}
        return sorted(states.items())  # type: ignore[arg-type]

    # ---- conversations ---------------------------------------------------------------------------

    async def open_conversation(self, conv: Conversation) -> None:
        await self._applied("conv_claim", conv.id, conv.kind, conv.created_at)
        await self._add_member_rows(conv.id, [(m, "member") for m in conv.members])

    async def _add_member_rows(self, conv: str, members: list[tuple[UserId, Role]]) -> None:
        await self._all([self._write("member_add", conv, m, role) for m, role in members]
                        + [self._write("user_conv_add", m, conv) for m, _ in members])

    async def get_conversation(self, conv: ConversationId) -> Conversation | None:
        row, members, newest = await self._all([self._one("conv_get", conv), self._rows("members_of", conv),
                                                self._one("newest_of", conv)])
        if row is None or row.kind is None:
            return None
        last = None
        if newest is not None and newest.newest_id is not None:
            found = await self._one("msg_get", conv, newest.newest_bucket, newest.newest_id)
            last = _message(found) if found else None
        ordered: list[tuple[UserId, Role]] = sorted((r.user_id, r.role or "member") for r in members)
        return Conversation(row.id, row.kind, tuple(u for u, _ in ordered), row.created_at, last, row.name or "",
                            tuple((u, r) for u, r in ordered if r != "member"))

    async def list_conversations(self, user: UserId) -> list[Conversation]:
        ids = [r.conv for r in await self._rows("convs_of_user", user)]
        found = [c for c in await self._all(self.get_conversation(i) for i in ids) if c is not None]
        return sorted(found, key=lambda c: c.last_message.id if c.last_message else 0, reverse=True)

    # ---- groups ------------------------------------------------------------------------------------
    # member_count is the cap's source of truth, moved only by compare-and-set: slots are reserved
    # before member rows are claimed (IF NOT EXISTS), and a claim lost to a concurrent add gives its
    # slot back; a row is removed (IF EXISTS) before its slot is freed. A crash between the two steps
    # leaves the count above the rows (a slot lost), never below (the cap is never passed).

    async def create_group(self, conv: Conversation) -> None:
        applied, _ = await self._applied("group_claim", conv.id, conv.kind, conv.created_at, conv.name,
                                         len(conv.members))
        if not applied:
            raise Conflict(f"conversation {conv.id} exists", code="conflict")
        roles = dict(conv.roles)
        await self._add_member_rows(conv.id, [(m, roles.get(m, "member")) for m in conv.members])

    async def _move_count(self, conv: ConversationId, change: Callable[[int], int]) -> int:
        """Compare-and-set member_count to ``change(count)`` (which may raise); return the old count."""
        for _ in range(CAS_ATTEMPTS):
            row = await self._one("conv_get", conv)
            if row is None:
                raise NotFound("no such conversation", code="unknown_conversation")
            count = row.member_count or 0
            applied, _ = await self._applied("group_count", change(count), conv, row.member_count)
            if applied:
                return count
        raise Unavailable("the group is changing too fast; try again", code="store_unavailable")

    async def add_members(self, conv: ConversationId, users: list[UserId], *, cap: int) -> list[UserId]:
        present = {r.user_id for r in await self._rows("members_of", conv)}
        new = [u for u in dict.fromkeys(users) if u not in present]
        if not new:
            return []

        def grow(count: int) -> int:
            if count + len(new) > cap:
                raise group_full(cap, count, len(new))
            return count + len(new)

        await self._move_count(conv, grow)
        claims = await self._all(self._applied("member_claim", conv, u, "member") for u in new)
        added = [u for u, (applied, _) in zip(new, claims, strict=True) if applied]
        if len(added) < len(new):  # someone else added them meanwhile: their slots are not ours
            await self._move_count(conv, lambda count: max(0, count - (len(new) - len(added))))
        await self._all(self._write("user_conv_add", u, conv) for u in added)
        return added

    async def remove_member(self, conv: ConversationId, user: UserId) -> bool:
        removed, _ = await self._applied("member_del", conv, user)
        if not removed:
            return False
        await self._write("user_conv_del", user, conv)
        await self._move_count(conv, lambda count: max(0, count - 1))
        return True

    async def set_role(self, conv: ConversationId, user: UserId, role: Role) -> None:
        await self._applied("member_role", role, conv, user)  # IF EXISTS: never makes a member

    async def rename_group(self, conv: ConversationId, name: str) -> None:
        await self._write("group_rename", name, conv)

    async def groups_of(self, user: UserId) -> list[ConversationId]:
        return sorted(r.conv for r in await self._rows("convs_of_user", user) if r.conv.startswith("g."))

    # ---- push ------------------------------------------------------------------------------------------

    async def put_push_token(self, token: PushToken) -> None:
        owner = await self._one("owner_get", token.token)
        if owner is not None and (owner.user_id, owner.device) != (token.user, token.device):
            await self._applied("push_del_if", owner.user_id, owner.device, token.token)  # not theirs any more
        await self._write("owner_put", token.token, token.user, token.device)
        await self._write("push_put", token.user, token.device, token.platform, token.token, token.updated_at)

    async def delete_push_token(self, user: UserId, device: DeviceId, *, only: str | None = None) -> bool:
        current = await self._one("push_get", user, device)
        applied, _ = (await self._applied("push_del", user, device) if only is None
                      else await self._applied("push_del_if", user, device, only))
        if applied and current is not None:
            await self._applied("owner_del", current.reg_token, user, device)
        return applied

    async def push_tokens(self, users: list[UserId]) -> list[PushToken]:
        found = await self._all(self._rows("push_of", u) for u in dict.fromkeys(users))
        return sorted((PushToken(r.user_id, r.device, r.platform, r.reg_token, r.updated_at) for rows in found
                       for r in rows), key=lambda t: (t.user, t.device))

    async def push_prefs(self, user: UserId) -> PushPrefs:
        row = await self._one("prefs_get", user)
        if row is None:
            return PushPrefs()
        return PushPrefs(bool(row.muted), bool(row.hide_text), tuple(sorted(row.muted_convs or ())))

    async def set_push_prefs(self, user: UserId, *, muted: bool | None, hide_text: bool | None) -> PushPrefs:
        await self._write("prefs_set", UNSET_VALUE if muted is None else muted,
                          UNSET_VALUE if hide_text is None else hide_text, user)
        return await self.push_prefs(user)

    async def mute_conversation(self, user: UserId, conv: ConversationId, muted: bool) -> None:
        await self._write("prefs_mute" if muted else "prefs_unmute", {conv}, user)

    # ---- receipts ------------------------------------------------------------------------------------

    async def save_receipts(self, receipts: list[Receipt]) -> None:
        def statements(r: Receipt) -> list[tuple[str, tuple[Any, ...]]]:
            delivered = max(r.delivered, r.read)
            out: list[tuple[str, tuple[Any, ...]]] = []
            if delivered:
                out.append(("receipt_delivered", (delivered, delivered, r.conv, r.user)))
            if r.read:
                out.append(("receipt_read", (r.read, r.read, r.conv, r.user)))
            return out

        await self._all(self._batch(batch) for batch in map(statements, receipts) if batch)

    async def receipts(self, conv: ConversationId) -> list[Receipt]:
        rows = await self._rows("receipts_of", conv)
        return sorted((Receipt(r.conv, r.user_id, r.delivered or 0, r.read or 0) for r in rows),
                      key=lambda r: r.user)

    # ---- messages ----------------------------------------------------------------------------------

    async def put_messages(self, messages: list[StoredMessage]) -> None:
        """Rows first, then what makes them findable (each partition's id range, each conversation's
        newest), one single-partition batch per conversation; all idempotent. Readers trust the store
        only below the archiver's ack floor, which moves after this returns."""
        groups = partition_batches(messages, self._bucket_ms)
        await self._all(self._batch([("msg_insert", (m.conv, bucket, m.id, m.prev, m.sender, m.device, m.cid,
                                                     m.body, m.ts)) for m in chunk])
                        for _, bucket, chunk in groups)
        await self._all(self._batch(statements) for statements in findability(groups))

    async def _spans(self, conv: str, *, after: int = 0) -> list[Span]:
        """The conversation's partitions, or none when its newest message is not after ``after``."""
        rows = await self._rows("buckets_of", conv)
        if not rows or rows[0].newest_id is None or rows[0].newest_id <= after:
            return []
        return [Span((conv, r.bucket), r.first_id, r.last_id) for r in rows
                if r.bucket is not None and r.first_id is not None and r.last_id is not None]

    async def _fetch(self, span: Span, lo: int, hi: int, n: int, descending: bool) -> list[StoredMessage]:
        conv, bucket = cast(tuple[str, int], span.key)  # the key this store gave the span
        rows = await self._rows("msg_desc" if descending else "msg_asc", conv, bucket, lo, hi, n, limit=n)
        return [_message(r) for r in rows]

    async def messages_for_user(self, user: UserId, *, after: int, upto: int, limit: int) -> list[StoredMessage]:
        convs = [r.conv for r in await self._rows("convs_of_user", user)]
        spans = [s for found in await self._all(self._spans(c, after=after) for c in convs) for s in found]
        return await merge_spans(spans, self._fetch, after=after, before=upto + 1, limit=limit, descending=False,
                                 page=limit)

    async def history(
        self, conv: ConversationId, *, before: int | None, after: int | None, limit: int, newest_first: bool
    ) -> list[StoredMessage]:
        return await merge_spans(await self._spans(conv), self._fetch, after=after or 0,
                                 before=before if before is not None else 2**63 - 1, limit=limit,
                                 descending=newest_first, page=limit)


# ---- schema ---------------------------------------------------------------------------------------


def _migrate(session: CqlSession, keyspace: str, replication: str) -> None:
    """Blocking: keyspace, bookkeeping tables, then every migration not yet applied, under a lock.
    Nothing is changed (and no schema permission is needed) when the schema is already current."""
    if _schema_is_current(session, keyspace):
        return
    _ddl(session, create_keyspace(keyspace, replication))
    for cql in BOOTSTRAP:
        _ddl(session, cql.format(ks=keyspace))
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + LOCK_TTL_S + 30  # outlasts a crashed holder's lock
    while not session.execute(f"INSERT INTO {keyspace}.schema_lock (name, owner) VALUES ('migrate', %s) "
                              f"IF NOT EXISTS USING TTL {LOCK_TTL_S}", (owner,)).was_applied:
        if time.monotonic() > deadline:
            raise ParleyError("another process has held the schema lock for too long", code="store_locked")
        time.sleep(0.5)
    try:
        done = _applied_versions(session, keyspace)
        for version, description, statements in MIGRATIONS:
            if version in done:
                continue
            log.info("cassandra: applying migration %d (%s) to %s", version, description, keyspace)
            for cql in statements:
                _ddl(session, cql.format(ks=keyspace))
            session.execute(f"INSERT INTO {keyspace}.schema_migrations (version, description, applied_at) "
                            "VALUES (%s, %s, toTimestamp(now()))", (version, description))
    finally:
        try:
            session.execute(f"DELETE FROM {keyspace}.schema_lock WHERE name = 'migrate' IF owner = %s", (owner,))
        except DOWN as err:  # the TTL frees it; do not hide the error that got us here
            log.warning("cassandra: could not release the schema lock: %s", err)


def _ddl(session: CqlSession, cql: str) -> None:
    session.execute(cql, timeout=DDL_TIMEOUT_S)  # schema changes wait for agreement; slower than queries


def _schema_is_current(session: CqlSession, keyspace: str) -> bool:
    meta = session.cluster.metadata.keyspaces.get(keyspace)
    if meta is None or "schema_migrations" not in meta.tables:
        return False
    return _applied_versions(session, keyspace) >= {v for v, _, _ in MIGRATIONS}


def _applied_versions(session: CqlSession, keyspace: str) -> set[int]:
    return {row.version for row in session.execute(f"SELECT version FROM {keyspace}.schema_migrations")}
