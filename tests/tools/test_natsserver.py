"""The cluster member config template: what each of the N servers of a loopback JetStream cluster gets."""

from __future__ import annotations

from pathlib import Path

from parley.tools.natsserver import cluster_config, gateway_config


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


def test_a_region_member_has_its_tags_and_a_gateway_advertising_its_proxy():
    block = gateway_config("eu", 7222, 8222, {"us": [8223, 8224]})
    text = cluster_config("nats-eu-1", 4222, 6222, Path("/data/eu"), [6222], cluster="eu", tags=["region:eu"],
                          gateway=block, extra="authorization { token: t }")
    assert 'server_tags: ["region:eu"]' in text
    assert "cluster {\n  name: eu" in text
    assert "gateway {\n  name: eu\n  host: 127.0.0.1\n  port: 7222\n" in text
    assert 'advertise: "127.0.0.1:8222"' in text
    assert '{name: us, urls: ["nats://127.0.0.1:8223", "nats://127.0.0.1:8224"]}' in text
    assert text.rstrip().endswith("authorization { token: t }")


def test_without_regions_there_are_no_tags_and_no_gateway():
    text = cluster_config("nats-1", 4222, 6222, Path("/data/1"), [6222])
    assert "server_tags" not in text and "gateway" not in text


def test_routes_and_gateways_authenticate_with_their_own_users():
    text = cluster_config("nats-1", 4222, 6222, Path("/s"), [6222, 6223], route_auth=("route", "r-pw"),
                          gateway=gateway_config("eu", 7222, 7300, {"us": [7301]}, auth=("gateway", "g-pw")))
    assert 'authorization { user: "route", password: "r-pw", timeout: 2 }' in text
    assert "nats-route://route:r-pw@127.0.0.1:6223" in text
    assert 'authorization { user: "gateway", password: "g-pw", timeout: 2 }' in text
    assert '"nats://gateway:g-pw@127.0.0.1:7301"' in text
    assert "nats-route://127.0.0.1" not in text and '"nats://127.0.0.1' not in text
