"""Shards: homes, packed ids, subjects and position vectors."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from parley.shards import (
    MAX_SHARDS,
    conversation_of_message,
    covers,
    home_for,
    message_subject,
    pack,
    pos_of_id,
    shard_of_id,
    shard_of_message,
    shard_of_stream,
    stream_of,
    user_message_filters,
    vmax,
    vmin,
)


@given(st.integers(0, MAX_SHARDS - 1), st.integers(0, 2**46))
def test_an_id_packs_its_shard_and_sequence(shard, pos):
    id = pack(shard, pos)
    assert (shard_of_id(id), pos_of_id(id)) == (shard, pos)
    assert id < 2**53  # exact in JavaScript for 2^46 sequences per shard


@given(st.integers(0, MAX_SHARDS - 1), st.integers(1, 2**40), st.integers(1, 2**40))
def test_ids_of_one_shard_order_like_their_sequences(shard, a, b):
    assert (pack(shard, a) < pack(shard, b)) == (a < b)


def test_a_home_is_stable_and_spreads():
    assert home_for("dm.aaaa.bbbb", 4) == home_for("dm.aaaa.bbbb", 4)  # same everywhere, every release
    homes = [home_for(f"g.{i:016d}", 4) for i in range(4000)]
    assert all(800 < homes.count(s) < 1200 for s in range(4))


def test_subjects_and_streams():
    assert message_subject(3, "g.abc") == "msg.3.g.abc"
    assert conversation_of_message("msg.3.dm.a.b") == "dm.a.b" and shard_of_message("msg.3.dm.a.b") == 3
    assert stream_of("MSG", 2) == "MSG_2" and shard_of_stream("MSG", "MSG_2") == 2
    assert shard_of_stream("MSG", "OTHER_2") is None and shard_of_stream("MSG", "MSG_x") is None
    assert user_message_filters(1, "u", ["g.x"]) == ("msg.1.dm.u.*", "msg.1.dm.*.u", "msg.1.g.x")


def test_vectors():
    assert vmax({0: 3}, {1: 2}) == {0: 3, 1: 2} and vmin({0: 3, 1: 5}, {0: 4}) == {0: 3, 1: 0}
    assert covers({0: 3, 1: 2}, {0: 3}) and not covers({0: 3}, {1: 1})
