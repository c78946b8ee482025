"""What goes out at the write consistency: the statements sync trusts, and only those."""

import pytest

from parley.settings import Settings
from parley.store.cassandra import QUERIES, TRUSTED_WRITES
from parley.store.cassandra.cql import Cql, pack


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

