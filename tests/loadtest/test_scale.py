"""The scale benchmark (loadtest/scale.py, scale_gen.py, harness/natscluster.py): its stream settings are
Parley's, its payloads and subjects are what it says, its summaries are medians; and one tiny real run,
K=2 on a 3-server cluster, keeps every conversation's chain (no refusal, no retry) and republishes to dlv.>."""

from __future__ import annotations

import argparse

from parley.loadtest import scale, scale_gen
from parley.loadtest.harness.natscluster import server_config

from parley.settings import Settings


def test_shard_streams_keep_parleys_settings_and_change_only_name_subjects_replicas_republish() -> None:
    base = scale.parley_config(Settings(), 0)
    configs = scale.shard_configs(Settings(), 2, 3)
    assert [c.name for c in configs] == ["MSG_0", "MSG_1"]
    assert [c.subjects for c in configs] == [["msg.0.>"], ["msg.1.>"]]
    assert [(c.republish.src, c.republish.dest) for c in configs if c.republish] == [("msg.0.>", "dlv.>"),
                                                                                   ("msg.1.>", "dlv.>")]
    for c in configs:
        assert c.num_replicas == 3
        assert (c.duplicate_window, c.storage, c.max_age, c.allow_direct, c.retention) == (
            base.duplicate_window, base.storage, base.max_age, base.allow_direct, base.retention)


def test_a_conversation_lives_in_one_shard_and_payloads_have_the_asked_size() -> None:
    assert [scale_gen.subject(4, c) for c in (0, 5, 7)] == ["msg.0.c.0", "msg.1.c.5", "msg.3.c.7"]
    assert len(scale_gen.payload(12345, 678, 300)) == 300
    assert b'"prev":678' in scale_gen.payload(12345, 678, 300)


def test_a_cluster_config_routes_to_every_member() -> None:
    text = server_config("n1", 4300, scale.Path("/tmp/s"), 6301, [6300, 6301, 6302])
    assert "listen: 127.0.0.1:6301" in text and text.count("nats-route://") == 3
    assert "cluster" not in server_config("n0", 4300, scale.Path("/tmp/s"), None, [])


def test_the_bench_servers_run_as_the_products_without_a_match_cache() -> None:
    for text in (server_config("n1", 4300, scale.Path("/tmp/s"), 6301, [6300, 6301, 6302]),
                 server_config("n0", 4300, scale.Path("/tmp/s"), None, [])):
        assert "disable_sublist_cache: true" in text.splitlines()  # nats.conf's (ADR 0062)


def phase(name: str, rate: float, nats_ms: float, p99: float, busiest: str = "nats-server0") -> dict[str, object]:
    return {"phase": name, "publish_rate": rate, "delivered_rate": rate, "nats_cpu_ms_per_msg": nats_ms,
            "generator_cpu_ms_per_msg": 0.05, "subscriber_cpu_ms_per_msg": 0.03, "nats_cpu_pct": 90.0,
            "generators_cpu_pct": 80.0, "machine_busy_pct": 190.0, "ack": {"p50_ms": 1.0, "p99_ms": p99},
            "busiest_process": busiest}


def test_the_summary_is_the_median_of_the_repetitions() -> None:
    runs = [{"shards": 2, "replicas": 3, "phases": [phase("max", r, c, p), phase("80%", r * 0.8, c, p / 10)]}
            for r, c, p in ((10_000, 0.05, 90), (12_000, 0.04, 70), (30_000, 0.03, 50))]
    (row,) = scale.summarize(runs)
    assert (row["shards"], row["replicas"], row["reps"]) == (2, 3, 3)
    assert (row["max"]["publish_rate"], row["max"]["nats_cpu_ms_per_msg"], row["max"]["ack_p99_ms"]) == (
        12_000, 0.04, 70)
    assert row["80%"]["publish_rate"] == 9_600 and row["max"]["busiest"] == "nats-server0"


def test_a_tiny_run_on_a_three_server_cluster_keeps_every_chain() -> None:
    _, args = scale.parse_args(["--generators", "1", "--inflight", "4", "--conversations", "200",
                                "--warmup", "0.2", "--seconds", "1", "--loads", "0.5", "--no-save"])
    assert isinstance(args, argparse.Namespace)
    out = scale.one_run(2, 3, 0, args)
    assert out["servers"] == 3 and [p["phase"] for p in out["phases"]] == ["max", "50%"]
    for p in out["phases"]:
        assert p["acked"] > 0 and p["errors"] == 0 and p["retries"] == 0
        assert p["slow_consumer_errors"] == 0 and p["delivered_rate"] > 0
