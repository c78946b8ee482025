"""The cluster member config template: what each of the N servers of a loopback JetStream cluster gets; and
what a real nats-server started from nats.conf or from the template runs with (no match cache, ADR 0062)."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

import nats
from parley.tools import natsserver
from parley.tools.cluster import free_port
from parley.tools.natsserver import cluster_config, gateway_config

from tests.poll import eventually


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


def _subsz(monitor: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{monitor}/subsz", timeout=2) as answer:
        return dict(json.loads(answer.read()))


async def _no_match_cache(start: Callable[[int, int], subprocess.Popen[bytes]]) -> None:
    """A server from ``start(client port, monitor port)`` delivers to wildcard interests (the node's kind,
    ``*.dm.<u>.*``) and keeps no match cache: ``/subsz`` counts no cached subjects after publishes that
    a cache would keep."""
    port, monitor = free_port(), free_port()
    proc = start(port, monitor)
    try:
        nc = await eventually(lambda: nats.connect(f"nats://127.0.0.1:{port}", max_reconnect_attempts=0),
                              what="nats-server takes a client", timeout=20, ignoring=(OSError, nats.errors.Error))
        got: list[str] = []

        async def heard(msg: nats.aio.msg.Msg) -> None:
            got.append(msg.subject)

        await nc.subscribe("*.dm.alice.*", cb=heard)
        for i in range(20):
            await nc.publish(f"c{i}.dm.alice.bob", b"x")
            await nc.publish(f"c{i}.dm.carol.bob", b"x")
        await nc.flush()
        await eventually(lambda: len(got) == 20, what="the 20 publishes to alice delivered")
        await nc.close()
        assert sorted(got) == sorted(f"c{i}.dm.alice.bob" for i in range(20))
        subsz = await eventually(lambda: _subsz(monitor), what="/subsz answers", ignoring=(OSError,))
        assert subsz["num_cache"] == 0, subsz
    finally:
        proc.terminate()
        proc.wait(10)


async def test_a_server_from_nats_conf_has_no_match_cache(tmp_path: Path):
    await _no_match_cache(lambda port, monitor: natsserver.start(
        port, tmp_path / "nats", tmp_path / "nats.log", extra=f"http: 127.0.0.1:{monitor}"))


async def test_a_cluster_member_from_the_template_has_no_match_cache(tmp_path: Path):
    def start(port: int, monitor: int) -> subprocess.Popen[bytes]:
        config = tmp_path / "member.conf"
        route = free_port()
        config.write_text(cluster_config("nats-1", port, route, tmp_path / "store", [route],
                                         extra=f"http: 127.0.0.1:{monitor}"))
        return natsserver.start_with(config, tmp_path / "member.log")
    await _no_match_cache(start)
