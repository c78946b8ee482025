import pytest

from parley.errors import ParleyError
from parley.store import StoredMessage
from parley.store.cassandra.cql import join_queries
from parley.store.cassandra.messages import BATCH_BYTES, FIRST_ID_BASE, findability, partition_batches
from parley.store.cassandra.schema import MIGRATIONS, create_keyspace


def test_keyspace_statement_and_name_check():
    assert create_keyspace("parley", "NetworkTopologyStrategy:dc1=3") == (
        "CREATE KEYSPACE IF NOT EXISTS parley WITH replication = "
        "{'class': 'NetworkTopologyStrategy', 'dc1': 3}")
    with pytest.raises(ParleyError, match="PARLEY_CASSANDRA_KEYSPACE"):
        create_keyspace("drop table x;", "SimpleStrategy:1")


def test_migrations_are_numbered_in_order_and_idempotent():
    assert [v for v, _, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    for _, _, statements in MIGRATIONS:
        assert all("IF NOT EXISTS" in s for s in statements)  # CREATE ... and ALTER ... ADD IF NOT EXISTS


def test_batches_are_per_partition_and_bounded():
    msgs = [StoredMessage(i, "dm.a" if i % 2 else "dm.b", 0, "u", "d", f"c{i}", "x" * 300, 1000 * (i // 10))
            for i in range(60)]
    groups = partition_batches(msgs, 5000)
    for conv, bucket, chunk in groups:
        assert {(m.conv, m.ts // 5000) for m in chunk} == {(conv, bucket)}
        assert len(chunk) == 1 or sum(len(m.body) + 100 for m in chunk) <= BATCH_BYTES + 100 * len(chunk)
    assert sorted(m.id for _, _, c in groups for m in c) == list(range(60))
    big = StoredMessage(1, "dm.a", 0, "u", "d", "c", "y" * 10_000, 0)
    assert partition_batches([big], 1000) == [("dm.a", 0, [big])]


def test_findability_is_two_statements_per_partition_the_newest_carrying_the_newest_id():
    def m(i: int, conv: str, ts: int) -> StoredMessage:
        return StoredMessage(i, conv, 0, "u", "d", f"c{i}", "x", ts)

    groups = partition_batches([m(5, "dm.a", 0), m(7, "dm.a", 0), m(9, "dm.a", 10_000), m(3, "dm.b", 0)], 5000)
    assert findability(groups) == [
        [("bucket_first", (FIRST_ID_BASE - 5, 5, "dm.a", 0)), ("bucket_last", (7, 7, "dm.a", 0)),
         ("bucket_first", (FIRST_ID_BASE - 9, 9, "dm.a", 2)), ("bucket_newest", (9, 9, 9, 2, "dm.a", 2))],
        [("bucket_first", (FIRST_ID_BASE - 3, 3, "dm.b", 0)), ("bucket_newest", (3, 3, 3, 0, "dm.b", 0))],
    ]


def test_statement_names_are_one_namespace():
    assert join_queries({"a": "SELECT 1"}, {"b": "SELECT 2"}) == {"a": "SELECT 1", "b": "SELECT 2"}
    with pytest.raises(ValueError, match=r"\['a'\]"):
        join_queries({"a": "SELECT 1"}, {"a": "SELECT 2", "b": "SELECT 3"})
