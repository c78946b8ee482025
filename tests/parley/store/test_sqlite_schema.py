"""The SQLite schema's move to sharded ids: an empty v1 store upgrades, one with v1 history is refused."""

from __future__ import annotations

import sqlite3

import pytest

from parley.store.sqlite.schema import MIGRATIONS, SHARDED, StoreTooOld, migrate


def at_version(path, version: int) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:version]:
        for statement in filter(str.strip, script.split(";")):
            db.execute(statement)
    db.execute(f"PRAGMA user_version={version}")
    db.execute("INSERT INTO devices VALUES ('d', 'u', 'phone', 1, 40)")
    return db


def test_a_store_without_history_upgrades_and_forgets_v1_cursors(tmp_path):
    db = at_version(tmp_path / "a.db", SHARDED - 1)
    migrate(db)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("SELECT cursor FROM devices").fetchall() == [("",)]
    db.execute("INSERT INTO conversations (id, kind, created_at, shard) VALUES ('g.x', 'group', 1, 3)")


def test_a_store_with_v1_history_is_refused_and_left_as_it_was(tmp_path):
    db = at_version(tmp_path / "b.db", SHARDED - 1)
    db.execute("INSERT INTO messages VALUES (7, 'g.x', 0, 'u', 'd', 'c', 'hi', 1)")
    with pytest.raises(StoreTooOld, match="fresh store"):
        migrate(db)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SHARDED - 1
    assert db.execute("SELECT id FROM messages").fetchall() == [(7,)]
