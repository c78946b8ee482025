"""What goes out at the write consistency (the statements sync trusts, and only those), and in how many requests."""

import pytest

from parley.ids import ConversationId, DeviceId, UserId
from parley.settings import Settings
from parley.shards import pack as pack_id
from parley.store import StoredMessage, open_store
from parley.store.cassandra import QUERIES, TRUSTED_WRITES
from parley.store.cassandra.cql import Cql, pack
from tests.conftest import cassandra_settings, new_keyspace


def test_trusted_writes_are_the_message_tables_and_conversation_lists():
    assert {"msg_insert", "bucket_first", "bucket_last", "bucket_newest", "user_conv_add"} <= TRUSTED_WRITES
    assert not any(QUERIES[name].lstrip().upper().startswith("SELECT") for name in TRUSTED_WRITES)
    assert not {"name_claim", "user_insert", "cursor_save"} & TRUSTED_WRITES  # claims, accounts, cursors: local


def test_a_trusted_write_that_is_no_statement_is_refused():
    with pytest.raises(ValueError, match="user_conv_ad"):
        Cql(Settings(), {"user_conv_add": "INSERT ..."}, {"user_conv_ad"})


@pytest.mark.parametrize(("items", "packed"), [
    ([], []),
    ([("r1", 10, "a"), ("r2", 10, "b"), ("r1", 10, "c")], [["a", "c"], ["b"]]),  # by replicas, order kept
    ([("r", 1, i) for i in range(7)], [[0, 1, 2], [3, 4, 5], [6]]),  # at most 3 items a list
    ([("r", 60, "a"), ("r", 50, "b"), ("r", 40, "c")], [["a"], ["b", "c"]]),  # at most 100 bytes a list
    ([("r", 500, "big"), ("r", 1, "x")], [["big"], ["x"]]),  # too big for any list: alone
])
def test_partitions_are_packed_by_replicas_within_a_count_and_a_size(items, packed):
    assert pack(items, parts=3, size=100) == packed



async def test_forty_one_message_conversations_go_in_two_requests_that_cassandra_takes_without_a_warning(cassandra):
    """The archiver's write of 40 messages in 40 conversations against a real Cassandra (started by the runner):
    the rows in one unlogged batch, their findability in another (ADR 0058: 40 partitions, not 10, per request),
    no warning in either answer, and every message read back through history."""
    settings = cassandra_settings(cassandra, new_keyspace("cqlbatch"))
    store = open_store(settings)
    await store.migrate()
    session = store._cql._session
    real, sent = session.execute_async, []

    def recording(statement, *args, **kwargs):
        sent.append(real(statement, *args, **kwargs))
        return sent[-1]

    messages = [StoredMessage(pack_id(0, i), ConversationId(f"g.c{i}"), 0, UserId("u"), DeviceId("d"), str(i), f"m{i}",
                              1_700_000_000_000 + i) for i in range(1, 41)]
    try:
        session.execute_async = recording
        await store.put_messages(messages)
    finally:
        session.execute_async = real
        pages = [await store.history(m.conv, before=None, after=None, limit=5, newest_first=True) for m in messages]
        await store.close()
    assert len(sent) == 2
    assert [f.warnings for f in sent] == [None, None]
    assert [[p.id for p in page] for page in pages] == [[m.id] for m in messages]
