"""SQLite ``IN (…)`` lists are read in chunks (any number of ids works), and a bad query is a bug (internal,
not retryable), never reported as a retryable outage (docs/adr/0016)."""

from __future__ import annotations

import sqlite3

import pytest

from parley.errors import ServerError, Unavailable
from parley.ids import DeviceId, UserId
from parley.store.records import PushToken, User
from parley.store.sqlite import SQLiteStore
from parley.store.sqlite.db import IN_CHUNK, chunks, store_error

MANY = 3 * IN_CHUNK + 7  # past one chunk, and (with the absent ids) past old SQLite's 999 variables


async def test_many_ids_are_read_in_chunks(tmp_path):
    store = SQLiteStore(str(tmp_path / "s.db"))
    try:
        ids = [UserId(f"u{i:05}") for i in range(MANY)]
        for uid in ids:
            await store.create_user(User(uid, uid, uid, 1), "hash")
            await store.put_push_token(PushToken(uid, DeviceId(f"d-{uid}"), "android", f"t-{uid}", 1))
        absent = [UserId(f"x{i}") for i in range(40_000)]  # past SQLite's variable limit in one list
        users = await store.get_users(ids + absent + ids[:5])
        assert sorted(users) == ids
        tokens = await store.push_tokens(list(reversed(ids)) + absent)
        assert [t.user for t in tokens] == ids  # ordered by user, as one query would
    finally:
        await store.close()


def test_chunks_cover_every_value_once_and_stay_under_the_bound():
    values = list(range(MANY))
    parts = list(chunks(values))
    assert [v for p in parts for v in p] == values and max(len(p) for p in parts) == IN_CHUNK


@pytest.mark.parametrize(("err", "outage"), [
    (sqlite3.OperationalError("database is locked"), True),
    (sqlite3.OperationalError("disk I/O error"), True),
    (sqlite3.OperationalError("unable to open database file"), True),
    (sqlite3.OperationalError("too many SQL variables"), False),
    (sqlite3.OperationalError('near "SELEC": syntax error'), False),
    (sqlite3.OperationalError("no such column: nope"), False),
    (sqlite3.ProgrammingError("Incorrect number of bindings supplied"), False),
])
def test_an_outage_is_retryable_and_a_bad_query_is_a_bug(err, outage):
    got = store_error(err)
    assert isinstance(got, Unavailable) is outage
    assert got.retryable is outage and got.code == ("store_unavailable" if outage else "internal")


async def test_a_bad_query_through_the_database_is_an_internal_error(tmp_path):
    store = SQLiteStore(str(tmp_path / "s.db"))
    try:
        with pytest.raises(ServerError) as caught:
            await store._db.run(lambda db: db.execute("SELECT nope FROM users"))
        assert not isinstance(caught.value, Unavailable) and caught.value.code == "internal"
    finally:
        await store.close()
