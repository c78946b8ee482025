"""The cluster member config template: what each of the N servers of a loopback JetStream cluster gets."""

from __future__ import annotations

from pathlib import Path

from parley.tools.natsserver import cluster_config


def test_a_member_has_its_name_ports_store_routes_to_every_member_and_lame_duck():
    text = cluster_config("nats-2", 4223, 6223, Path("/data/nats-2"), [6222, 6223, 6224],
                          extra="authorization { token: t }")
    assert "server_name: nats-2" in text and "port: 4223" in text
    assert 'store_dir: "/data/nats-2"' in text
    assert "cluster {\n  name: parley\n  host: 127.0.0.1\n  port: 6223" in text
    for port in (6222, 6223, 6224):
        assert f"nats-route://127.0.0.1:{port}" in text
    assert 'lame_duck_duration: "30s"' in text  # nats-server refuses less
    assert text.rstrip().endswith("authorization { token: t }")
