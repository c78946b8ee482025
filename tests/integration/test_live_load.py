"""The live-room load tools, tiny, against the session's cluster: the lean generator (``loadtest.live_bench``:
bare-socket viewers over both nodes, senders, one step) and the Locust ``live-event`` scenario (a hot room and
small ones, the score burst) both run, and their loss ledgers are zero. No figure is judged: the figures are
the benchmarks' to record (loadtest/results/live.jsonl), never a test's."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from parley.loadtest import live_bench

pytestmark = pytest.mark.integration


async def test_the_lean_generator_fills_a_room_over_both_nodes_and_loses_nothing(cluster) -> None:
    args = argparse.Namespace(viewers=8, nodes=2, sample=2, senders=2, devices_per_user=3, rates=[5.0],
                              step_seconds=1.0, concurrency=8)
    out = await live_bench.measure(cluster, args)
    books = out["ledger"]
    assert out["viewers"] == 8 and out["viewers_per_node"] == [4, 4]
    assert books["accepted"] > 0 and books["expected_deliveries"] == 8 * books["accepted"]
    assert (books["lost"], books["surplus"], books["refused"], books["dropped_viewers"]) == (0, 0, 0, 0)
    assert books["sampled_viewers"] == 2  # 8 // 2: every fourth viewer of each node, so one on each
    assert (books["sampled_missing"], books["sampled_duplicates"], books["sampled_strays"]) == (0, 0, 0)
    assert out["steps"][0]["window"]["deliveries"] > 0 and out["steps"][0]["latency"]["n"] > 0
    assert sorted(out["node_count_at_join"]) == [4, 4]  # each node counted its own viewers


def test_the_live_event_scenario_runs_with_a_burst_and_a_zero_loss_ledger(cluster, tmp_path: Path) -> None:
    results = tmp_path / "locust.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    out = subprocess.run(
        [sys.executable, "-m", "parley.loadtest.run", "live-event", "--api", cluster.api_url, "--users", "9",
         "--run-time", "12", "--loss-timeout", "5", "--out", str(tmp_path / "run"), "--results", str(results),
         "--allow-dirty"],  # a record of the harness, not of Parley: the tree may have uncommitted changes
        env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    record = json.loads(results.read_text().splitlines()[-1])
    stats = {row["name"]: row for row in record["stats"]}
    ledger = record["summary"]["ledger"]
    assert record["verdict"]["ok"] and record["verdict"]["lost"] == 0 and stats["Aggregated"]["failures"] == 0
    assert stats["join"]["count"] == 9 and stats["connect"]["count"] == 9
    assert ledger["viewers"] == 9 and ledger["acked"] > 0 and ledger["lost"] == 0 and ledger["duplicates"] == 0
    assert ledger["expected_deliveries"] == ledger["delivered"] > ledger["acked"]  # rooms with several viewers
    assert record["summary"]["counts"].get("sent_in_burst", 0) > 0  # the score burst happened
    assert stats["deliver live"]["count"] + stats["deliver live burst"]["count"] >= ledger["delivered"]
