"""The traffic and capacity models' arithmetic (loadtest/traffic.py, loadtest/model.py): known inputs,
expected counts; no server, no results files of the repository."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from parley.loadtest.model import (
    Deployment,
    Measured,
    NoFigures,
    cassandra_nodes,
    connections_per_node,
    cursor_writes_per_s,
    measured_from,
    nats_servers,
    nodes,
    plan,
)
from parley.loadtest.traffic import SCENARIOS, GroupSizes, TrafficModel, scenario

# round numbers: 86,400 DAU x 10 msgs/day = 10 msg/s average, x 2 peak = 20 msg/s
SMALL = TrafficModel(dau=86_400, messages_per_user_day=10, peak_factor=2, dm_share=1.0, devices_per_user=1.0,
                     online_share_peak=0.5, recipient_online_share=1.0, friends_per_user=0, heartbeat_s=10,
                     session_s=1e12, reconnects_per_connection_hour=0)
UNIT = Measured(node_cpu_ms_per_send=1.0, node_cpu_ms_per_delivery=1.0, node_cpu_ms_per_heartbeat=0.0,
                node_cpu_ms_per_connect=0.0, rss_per_connection_kb=1024.0, node_base_rss_mb=24.0,
                nats_cpu_ms_per_message=1.0, cassandra_cpu_ms_per_write=1.0)


def test_default_model_matches_the_design_figures() -> None:
    m = TrafficModel()
    assert m.messages_per_s_average() == pytest.approx(50e6 * 40 / 86_400)  # 23,148/s
    assert m.messages_per_s_peak() == pytest.approx(115_740.7, rel=1e-4)  # ~116k/s, DESIGN.md
    assert m.connections_peak() == pytest.approx(10.5e6)
    assert m.heartbeats_per_s_peak() == pytest.approx(420_000)
    assert m.send_rate_per_online_user() == pytest.approx(115_740.74 / 7.5e6, rel=1e-6)


def test_fan_out_arithmetic() -> None:
    g = GroupSizes(bands=((10, 10, 1.0),))
    m = TrafficModel(dm_share=0.5, group_sizes=g, recipient_online_share=0.5, devices_per_user=2.0)
    assert g.mean() == 10
    assert m.recipients_per_message() == pytest.approx(0.5 * 1 + 0.5 * 9)  # 5 recipients
    assert m.device_deliveries_per_message() == pytest.approx((5 * 0.5 + 1) * 2)  # 7 device frames


def test_group_sizes_are_validated() -> None:
    with pytest.raises(ValueError):
        GroupSizes(bands=((3, 10, 0.5),))
    with pytest.raises(ValueError):
        GroupSizes(bands=((3, 101, 1.0),))


def test_scenarios_scale_down_by_the_stated_factor() -> None:
    peak = SCENARIOS["peak"]
    m = TrafficModel()
    assert peak.messages_per_s(m) == pytest.approx(100 * 200 * m.send_rate_per_online_user())
    assert peak.scale_factor(m) == pytest.approx(7.5e6 / 20_000)
    assert scenario("smoke", users=3).users == 3 and SCENARIOS["smoke"].users == 10
    with pytest.raises(ValueError):
        scenario("nope")


def test_nodes_by_cpu_round_up_with_target_and_spare() -> None:
    # a DM reaches the recipient's device and the sender's own (the echo): 40 deliveries/s
    assert SMALL.deliveries_per_s_peak() == pytest.approx(40)
    # 20 sends x 1 ms + 40 deliveries x 1 ms = 60 ms/s = 0.06 cores; / 0.01 target = 6 nodes; x 1.25 = 7.5 -> 8
    d = Deployment(node_cpu_target=0.01, node_spare_share=0.25, node_memory_mb=10_000)
    count, lines, driver = nodes(SMALL, UNIT, d)
    assert (count, driver) == (8, "CPU") and lines[0].endswith("= 6")


def test_nodes_by_memory_when_connections_dominate() -> None:
    # (124 MiB - 24 MiB base) / 1 MiB per connection = 100 connections per node; 43,200 connections -> 432 nodes
    d = Deployment(node_memory_mb=124, node_spare_share=0.0)
    assert connections_per_node(UNIT, d) == 100
    count, _lines, driver = nodes(SMALL, UNIT, d)
    assert SMALL.connections_peak() == 43_200
    assert (count, driver) == (432, "memory (connections per node)")
    # the configured cap applies before memory does
    assert connections_per_node(UNIT, Deployment(node_memory_mb=1e9, node_max_connections=7)) == 7


def test_spare_share_rounds_up() -> None:
    d = Deployment(node_memory_mb=124, node_spare_share=0.001)
    assert nodes(SMALL, UNIT, d)[0] == math.ceil(432 * 1.001) == 433


def test_nats_servers_minimum_and_cpu() -> None:
    assert nats_servers(SMALL, UNIT, Deployment())[0] == 3  # 20 msg/s is nothing: the R3 minimum
    # 20 msg/s x 1 ms x R3 = 0.06 cores; one 1-core server at 1% -> 6 servers
    count, _lines, driver = nats_servers(SMALL, UNIT, Deployment(nats_cores=1, nats_cpu_target=0.01))
    assert (count, driver) == (6, "CPU")


def test_cursor_writes_are_bounded_by_devices_and_flush_interval() -> None:
    m = TrafficModel()
    every_second = cursor_writes_per_s(m, Deployment(cursor_flush_s=1))
    assert every_second < m.deliveries_per_s_peak()  # a device writes at most once per flush
    assert cursor_writes_per_s(m, Deployment(cursor_flush_s=30)) < every_second * 0.6  # a 30 s flush saves ~43%
    assert every_second == pytest.approx(
        m.connections_peak() * (1 - math.exp(-m.deliveries_per_s_peak() / m.connections_peak())))


def test_cassandra_by_replication_cpu_and_disk() -> None:
    tiny = Deployment(retention_days=1, cursor_write_cost=0.0)
    assert cassandra_nodes(SMALL, UNIT, tiny)[0] == 3  # the replication factor is the floor
    # 20 writes/s x RF3 x 1 ms = 0.06 cores; 1 core at 1% -> 6 nodes
    cpu = Deployment(retention_days=1, cursor_write_cost=0.0, cassandra_cores=1, cassandra_cpu_target=0.01)
    assert cassandra_nodes(SMALL, UNIT, cpu)[0::2] == (6, "CPU (writes)")
    # 864,000 msgs/day x 1000 days x 1e6 B x RF3 = 2,592 TB; / (4 TB x 0.5) = 1,296 nodes
    disk = Deployment(retention_days=1000, bytes_per_message_on_disk=1e6, cursor_write_cost=0.0)
    assert cassandra_nodes(SMALL, UNIT, disk)[0::2] == (1296, "disk (retention)")


def test_plan_has_the_three_components() -> None:
    lines = plan(TrafficModel(), UNIT, Deployment())
    assert [x.component for x in lines] == ["edge nodes (1 core each)", "NATS servers (JetStream)", "Cassandra nodes"]
    assert all(x.count >= 1 and x.arithmetic for x in lines)


def _write(path: Path, *records: dict[str, object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_measured_figures_come_from_the_newest_usable_results(tmp_path: Path) -> None:
    raw = {"throughput": {"at_max": {"node_cpu_ms_per_send": 0.12, "node_cpu_ms_per_delivery": 0.05,
                                     "nats_cpu_ms_per_message": 0.07}},
           "idle": {"rss_per_connection_kb": 40.0, "rss_before_mb": 60.0, "heartbeats": {"cpu_ms_per_ping": 0.06}},
           "reconnects": {"cpu_ms_per_reconnect": {"node1": 0.9}}}
    cap = _write(tmp_path / "capacity.jsonl", {"date": "old", "results": {"raw": raw}},
                 {"date": "new", "results": {"raw": raw}}, {"date": "broken", "results": {}})
    store = _write(tmp_path / "store.jsonl",
                   {"date": "s", "results": {"cassandra": {"archiver": {"cpu_s_per_1k": {"cassandra": 0.4}}}}},
                   {"date": "sqlite-only", "results": {"sqlite": {}}})
    m = measured_from(cap, store)
    assert (m.node_cpu_ms_per_send, m.node_cpu_ms_per_heartbeat, m.node_cpu_ms_per_connect) == (0.12, 0.06, 0.9)
    assert (m.rss_per_connection_kb, m.cassandra_cpu_ms_per_write) == (40.0, 0.4)
    assert "new" in m.source and "s" in m.source
    with pytest.raises(NoFigures):
        measured_from(tmp_path / "missing.jsonl", store)
