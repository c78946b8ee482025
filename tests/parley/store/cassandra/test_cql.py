"""What goes out at the write consistency: the statements sync trusts, and only those."""

import pytest

from parley.settings import Settings
from parley.store.cassandra import QUERIES, TRUSTED_WRITES
from parley.store.cassandra.cql import Cql


def test_trusted_writes_are_the_message_tables_and_conversation_lists():
    assert {"msg_insert", "bucket_first", "bucket_last", "conv_newest", "user_conv_add"} <= TRUSTED_WRITES
    assert not any(QUERIES[name].lstrip().upper().startswith("SELECT") for name in TRUSTED_WRITES)
    assert not {"name_claim", "user_insert", "cursor_save"} & TRUSTED_WRITES  # claims, accounts, cursors: local


def test_a_trusted_write_that_is_no_statement_is_refused():
    with pytest.raises(ValueError, match="user_conv_ad"):
        Cql(Settings(), {"user_conv_add": "INSERT ..."}, {"user_conv_ad"})
