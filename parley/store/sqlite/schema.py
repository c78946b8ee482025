"""The SQLite schema: numbered migrations, applied in order when a process first connects.

The applied count is ``PRAGMA user_version``; each script runs in one ``BEGIN IMMEDIATE``
transaction with the version bump, so two processes opening the file at once apply it once.
Never edit a shipped migration: add one.
"""

from __future__ import annotations

import sqlite3

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
    # 5: sharded streams (ADR 0005): a conversation's home shard; a device's cursor is an opaque token
    """
    ALTER TABLE conversations ADD COLUMN shard INTEGER;
    CREATE TABLE devices_v5 (id TEXT PRIMARY KEY, user TEXT NOT NULL, name TEXT NOT NULL,
        created_at INTEGER NOT NULL, cursor TEXT NOT NULL DEFAULT '');
    INSERT INTO devices_v5 SELECT id, user, name, created_at, '' FROM devices;
    DROP TABLE devices;
    ALTER TABLE devices_v5 RENAME TO devices;
    CREATE INDEX devices_by_user ON devices(user);
    """,
    # 6: a user's sessions (a password change or "sign out other devices" revokes them)
    """
    CREATE INDEX sessions_by_user ON sessions(user, expires_at);
    """,
    # 7: blocks, and deleted accounts (a placeholder row that keeps the username reserved; ADR 0015)
    """
    CREATE TABLE blocks (user TEXT NOT NULL, other TEXT NOT NULL, created_at INTEGER NOT NULL,
        PRIMARY KEY (user, other)) WITHOUT ROWID;
    CREATE INDEX blocks_by_other ON blocks(other, user);
    ALTER TABLE users ADD COLUMN deleted_at INTEGER;
    """,
    # 8: live rooms' messages (ADR 0018); a deleted one is a tombstone
    """
    CREATE TABLE live_messages (room TEXT NOT NULL, id INTEGER NOT NULL, sender TEXT NOT NULL, cid TEXT NOT NULL,
        body TEXT NOT NULL, ts INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (room, id)) WITHOUT ROWID;
    """,
    # 9: replies, edits, deletes, reactions (ADR 0025): an entry's own fields, and what actions made of it
    """
    ALTER TABLE messages ADD COLUMN extra TEXT NOT NULL DEFAULT '';
    ALTER TABLE messages ADD COLUMN state TEXT NOT NULL DEFAULT '';
    """,
    # 10: a message's attachments (ADR 0024): a JSON list of their references, '' for none
    """
    ALTER TABLE messages ADD COLUMN attachments TEXT NOT NULL DEFAULT '';
    """,
]
SHARDED = 5  # the first version with sharded ids: older message rows carry global ids it cannot read


class StoreTooOld(RuntimeError):
    pass


def migrate(db: sqlite3.Connection) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if 0 < version < SHARDED and db.execute("SELECT 1 FROM messages LIMIT 1").fetchone():
            raise StoreTooOld("this store holds history with protocol-1 message ids (one global stream), which "
                              "sharded Parley cannot read; start with a fresh store (docs/adr/0005)")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in filter(str.strip, script.split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version={number}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
