"""The Cassandra schema: numbered CQL migrations, applied in order at start-up.

Every statement is idempotent (``IF NOT EXISTS``), so a migration interrupted half-way is simply run
again. Applied versions are rows of ``schema_migrations``; a lock row taken with a lightweight
transaction (and a TTL, so a crashed migrator cannot hold it forever) keeps two processes starting
at once from changing the schema together. ADR 0004 explains the data model.
"""

from __future__ import annotations

import re

from parley.errors import ParleyError

KEYSPACE_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")

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
]

BOOTSTRAP = [
    """CREATE TABLE IF NOT EXISTS {ks}.schema_migrations (
        version int PRIMARY KEY, description text, applied_at timestamp)""",
    """CREATE TABLE IF NOT EXISTS {ks}.schema_lock (name text PRIMARY KEY, owner text)""",
]


def latest_version() -> int:
    return MIGRATIONS[-1][0]


def replication_map(spec: str) -> dict[str, str | int]:
    """``SimpleStrategy:1`` or ``NetworkTopologyStrategy:dc1=3,dc2=3`` → a CQL replication map."""
    strategy, _, rest = spec.partition(":")
    try:
        if strategy == "SimpleStrategy":
            return {"class": "SimpleStrategy", "replication_factor": int(rest)}
        if strategy == "NetworkTopologyStrategy":
            pairs = [item.split("=") for item in rest.split(",")]
            return {"class": "NetworkTopologyStrategy", **{dc.strip(): int(rf) for dc, rf in pairs}}
    except ValueError:
        pass
    raise ParleyError(
        f"PARLEY_CASSANDRA_REPLICATION={spec!r}: use SimpleStrategy:<rf> or NetworkTopologyStrategy:<dc>=<rf>,...",
        code="bad_setting")


def create_keyspace(keyspace: str, replication: str) -> str:
    if not KEYSPACE_RE.match(keyspace):
        raise ParleyError(f"PARLEY_CASSANDRA_KEYSPACE={keyspace!r} is not a valid keyspace name", code="bad_setting")
    options = ", ".join(f"'{k}': {v!r}" if isinstance(v, str) else f"'{k}': {v}"
                        for k, v in replication_map(replication).items())
    return f"CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {{{options}}}"
