"""The store benchmark's workload (loadtest/store_workload.py) on sharded streams: every message gets
the id its home shard's stream will give it, and each conversation's prev chain links those ids."""

from __future__ import annotations

import argparse

from parley.loadtest.store_workload import HOT_MIN, build_plan

from parley.shards import home_for, pack, pos_of_id, shard_of_id


def test_ids_are_each_shards_next_sequence_and_prev_chains_each_conversation() -> None:
    args = argparse.Namespace(seed=3, conversations=120, messages=1500, put_messages=200, msgs_per_day=5000)
    plan = build_plan(args, shards=4)
    assert plan.total == 1500 + 2 * 200 + plan.topped_up
    next_seq = dict.fromkeys(range(4), 1)
    last: dict[str, int] = {}
    for n in range(1, plan.total + 1):
        m = plan.message(n)
        shard = shard_of_id(m.id)
        assert shard == home_for(m.conv, 4) == plan.convs[plan.conv_of[n - 1]].shard
        assert pos_of_id(m.id) == next_seq[shard]  # what a fresh stream assigns, publishing in order
        next_seq[shard] += 1
        assert m.prev == last.get(m.conv, 0)
        last[m.conv] = m.id
        subject, _payload = plan.payload(n)
        assert subject == f"msg.{shard}.{m.conv}"
    assert plan.stream_lasts(plan.total) == {s: next_seq[s] - 1 for s in range(4)}
    assert plan.hot_ids == sorted(plan.hot_ids) and len(plan.hot_ids) >= HOT_MIN
    assert {shard_of_id(i) for i in plan.sync_ids} == {plan.sync_shard} and plan.sync_ids == sorted(plan.sync_ids)
    assert plan.shard_top(plan.sync_shard) == pack(plan.sync_shard, next_seq[plan.sync_shard] - 1)
