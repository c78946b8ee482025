"""The Cassandra schema: numbered CQL migrations, applied in order at start-up.

Every statement is idempotent (``IF NOT EXISTS``), so a migration interrupted half-way is simply run
again. Applied versions are rows of ``schema_migrations``; a lock row taken with a lightweight
transaction (and a TTL, so a crashed migrator cannot hold it forever) keeps two processes starting
at once from changing the schema together. ADR 0004 explains the data model.
"""

from __future__ import annotations

import logging
import time
import uuid

from cassandra.cluster import Session as CqlSession

from parley.errors import ParleyError
from parley.store.cassandra.cql import DOWN
from parley.store.cassandra.replication import checked_keyspace, cql_map, refuse_mismatch

log = logging.getLogger("parley.store.cassandra")
LOCK_TTL_S = 120
DDL_TIMEOUT_S = 60

# (version, what it does, statements); {ks} is the keyspace. Never edit a shipped migration: add one.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "accounts, friends, conversations, messages", [
        """CREATE TABLE IF NOT EXISTS {ks}.users (
            id text PRIMARY KEY, username text, display_name text, bio text, created_at bigint)""",
        # usernames are claimed with INSERT ... IF NOT EXISTS: unique across the cluster
        """CREATE TABLE IF NOT EXISTS {ks}.usernames (
            username text PRIMARY KEY, user_id text, password_hash text)""",
        """CREATE TABLE IF NOT EXISTS {ks}.sessions (
            id text PRIMARY KEY, user_id text, device text, created_at bigint, expires_at bigint,
            revoked boolean)""",
        """CREATE TABLE IF NOT EXISTS {ks}.devices (
            id text PRIMARY KEY, user_id text, name text, created_at bigint)""",
        """CREATE TABLE IF NOT EXISTS {ks}.devices_by_user (
            user_id text, created_at bigint, id text, PRIMARY KEY (user_id, created_at, id))""",
        # written USING TIMESTAMP <cursor>: the highest cursor wins, whatever order writes arrive in
        """CREATE TABLE IF NOT EXISTS {ks}.device_cursors (device text PRIMARY KEY, cursor bigint)""",
        # "user has added other"; a friendship is both directions. friend_in is the reverse index.
        """CREATE TABLE IF NOT EXISTS {ks}.friend_out (user_id text, other text, PRIMARY KEY (user_id, other))""",
        """CREATE TABLE IF NOT EXISTS {ks}.friend_in (user_id text, other text, PRIMARY KEY (user_id, other))""",
        # last_id/last_bucket written USING TIMESTAMP <id>: the newest message wins
        """CREATE TABLE IF NOT EXISTS {ks}.conversations (
            id text PRIMARY KEY, kind text, created_at bigint, last_id bigint, last_bucket bigint)""",
        """CREATE TABLE IF NOT EXISTS {ks}.conversation_members (
            conv text, user_id text, PRIMARY KEY (conv, user_id))""",
        """CREATE TABLE IF NOT EXISTS {ks}.user_conversations (
            user_id text, conv text, PRIMARY KEY (user_id, conv))""",
        """CREATE TABLE IF NOT EXISTS {ks}.messages (
            conv text, bucket bigint, id bigint, prev bigint, sender text, device text, cid text, body text,
            ts bigint, PRIMARY KEY ((conv, bucket), id))
            WITH CLUSTERING ORDER BY (id DESC)""",
        # each messages partition's id range; last_id USING TIMESTAMP <id>, first_id USING TIMESTAMP <2^62-id>
        """CREATE TABLE IF NOT EXISTS {ks}.conversation_buckets (
            conv text, bucket bigint, first_id bigint, last_id bigint, PRIMARY KEY (conv, bucket))
            WITH CLUSTERING ORDER BY (bucket DESC)""",
    ]),
    (2, "groups (name, roles, member count) and receipts", [
        # member_count changes only by compare-and-set: the 100-member cap holds under concurrent adds
        "ALTER TABLE {ks}.conversations ADD IF NOT EXISTS (name text, member_count int)",
        "ALTER TABLE {ks}.conversation_members ADD IF NOT EXISTS role text",
        # a conversation's newest message, kept beside its bucket ranges (static: once per partition), so
        # the archiver updates ranges and newest in one single-partition batch and sync reads one partition
        # per conversation; written USING TIMESTAMP <id>. conversations.last_id/last_bucket are no longer used.
        "ALTER TABLE {ks}.conversation_buckets ADD IF NOT EXISTS "
        "(newest_id bigint static, newest_bucket bigint static)",
        # delivered written USING TIMESTAMP <delivered>, read USING TIMESTAMP <read>: marks only move forward
        """CREATE TABLE IF NOT EXISTS {ks}.receipts (
            conv text, user_id text, delivered bigint, read bigint, PRIMARY KEY (conv, user_id))""",
    ]),
    (3, "push tokens and preferences", [
        """CREATE TABLE IF NOT EXISTS {ks}.push_tokens (
            user_id text, device text, platform text, reg_token text, updated_at bigint,
            PRIMARY KEY (user_id, device))""",
        # who holds a token now: a token registered on another account's device stops being this one's
        """CREATE TABLE IF NOT EXISTS {ks}.push_token_owner (reg_token text PRIMARY KEY, user_id text, device text)""",
        """CREATE TABLE IF NOT EXISTS {ks}.push_prefs (
            user_id text PRIMARY KEY, muted boolean, hide_text boolean, muted_convs set<text>)""",
    ]),
    (4, "sharded streams: a conversation's home shard, device cursors as tokens (ADR 0005)", [
        """ALTER TABLE {ks}.conversations ADD IF NOT EXISTS shard int""",
        """ALTER TABLE {ks}.device_cursors ADD IF NOT EXISTS cursor_token text""",
    ]),
    (5, "a user's sessions (password change, sign out other devices)", [
        # rows written with a TTL to their session's end: the index holds only sessions that may be live
        """CREATE TABLE IF NOT EXISTS {ks}.sessions_by_user (user_id text, id text, PRIMARY KEY (user_id, id))""",
    ]),
    (6, "blocks, and deleted accounts (ADR 0015)", [
        # "user has blocked other"; block_in is the reverse index (who blocked user)
        """CREATE TABLE IF NOT EXISTS {ks}.block_out (
            user_id text, other text, created_at bigint, PRIMARY KEY (user_id, other))""",
        """CREATE TABLE IF NOT EXISTS {ks}.block_in (user_id text, other text, PRIMARY KEY (user_id, other))""",
        # set once the account is deleted: the row stays as a placeholder, its username claim stays taken
        "ALTER TABLE {ks}.users ADD IF NOT EXISTS deleted_at bigint",
    ]),
    (7, "live rooms' messages (ADR 0018)", [
        # partition = (room, id bucket): ids are the LIVE stream's sequences, so a partition holds at most
        # LIVE_BUCKET_IDS messages however hot the room, and the id alone names its partition
        """CREATE TABLE IF NOT EXISTS {ks}.live_messages (
            room text, bucket bigint, id bigint, sender text, cid text, body text, ts bigint, deleted boolean,
            PRIMARY KEY ((room, bucket), id)) WITH CLUSTERING ORDER BY (id DESC)""",
        """CREATE TABLE IF NOT EXISTS {ks}.live_buckets (
            room text, bucket bigint, PRIMARY KEY (room, bucket)) WITH CLUSTERING ORDER BY (bucket DESC)""",
    ]),
    (8, "replies, edits, deletes, reactions (ADR 0025)", [
        # extra: the entry's own fields; state: what actions made of it, written USING TIMESTAMP 2^53 + action id
        "ALTER TABLE {ks}.messages ADD IF NOT EXISTS extra text",
        "ALTER TABLE {ks}.messages ADD IF NOT EXISTS state text",
    ]),
    (9, "a message's attachments (ADR 0024)", [
        # a JSON list of their references; null or '' for none
        "ALTER TABLE {ks}.messages ADD IF NOT EXISTS attachments text",
    ]),
]
SHARDED = 4  # the first version with sharded ids: older message rows carry global ids it cannot read


class StoreTooOld(RuntimeError):
    pass

BOOTSTRAP = [
    """CREATE TABLE IF NOT EXISTS {ks}.schema_migrations (
        version int PRIMARY KEY, description text, applied_at timestamp)""",
    """CREATE TABLE IF NOT EXISTS {ks}.schema_lock (name text PRIMARY KEY, owner text)""",
]


def latest_version() -> int:
    return MIGRATIONS[-1][0]


def create_keyspace(keyspace: str, replication: str) -> str:
    return f"CREATE KEYSPACE IF NOT EXISTS {checked_keyspace(keyspace)} WITH replication = {cql_map(replication)}"


def migrate(session: CqlSession, keyspace: str, replication: str) -> None:
    """Blocking: keyspace, bookkeeping tables, then every migration not yet applied, under a lock.
    Nothing is changed (and no schema permission is needed) when the schema is already current. A
    keyspace replicated otherwise than ``replication`` says is refused: only an explicit command
    changes replication (replication.py)."""
    refuse_mismatch(session, checked_keyspace(keyspace), replication)
    if _schema_is_current(session, keyspace):
        return
    _ddl(session, create_keyspace(keyspace, replication))
    for cql in BOOTSTRAP:
        _ddl(session, cql.format(ks=keyspace))
    owner = uuid.uuid4().hex
    _take_lock(session, keyspace, owner)
    try:
        done = _applied_versions(session, keyspace)
        if done and SHARDED not in done and session.execute(f"SELECT id FROM {keyspace}.messages LIMIT 1").one():
            raise StoreTooOld("this keyspace holds history with protocol-1 message ids (one global stream), which "
                              "sharded Parley cannot read; use a fresh keyspace (docs/adr/0005)")
        for version, description, statements in MIGRATIONS:
            if version in done:
                continue
            log.info("cassandra: applying migration %d (%s) to %s", version, description, keyspace)
            for cql in statements:
                _ddl(session, cql.format(ks=keyspace))
            session.execute(f"INSERT INTO {keyspace}.schema_migrations (version, description, applied_at) "
                            "VALUES (%s, %s, toTimestamp(now()))", (version, description))
    finally:
        _release_lock(session, keyspace, owner)


def _take_lock(session: CqlSession, keyspace: str, owner: str) -> None:
    deadline = time.monotonic() + LOCK_TTL_S + 30  # outlasts a crashed holder's lock
    while not session.execute(f"INSERT INTO {keyspace}.schema_lock (name, owner) VALUES ('migrate', %s) "
                              f"IF NOT EXISTS USING TTL {LOCK_TTL_S}", (owner,)).was_applied:
        if time.monotonic() > deadline:
            raise ParleyError("another process has held the schema lock for too long", code="store_locked")
        time.sleep(0.5)


def _release_lock(session: CqlSession, keyspace: str, owner: str) -> None:
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
