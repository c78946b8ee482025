"""Every process serves Prometheus metrics that move with traffic and never name a user."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

import pytest

from tests.poll import eventually

pytestmark = pytest.mark.integration


def value(text: str, name: str, **labels: str) -> float:
    """The sample ``name{labels...}`` in a Prometheus text page (labels matched as a subset)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    raise AssertionError(f"no sample {name}{labels}")


async def metrics_page(world, port: int) -> str:
    async with world.http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        assert resp.status == 200, port
        return await resp.text()


async def test_metrics_move_with_traffic_and_stay_anonymous(world, cluster):
    s = cluster.settings
    ports = {"node1": cluster.node_ports[0], "node2": cluster.node_ports[1], "api": s.api_port,
             "discovery": s.discovery_port, "archiver": s.archiver_port, "presence": s.presence_port}
    archived_before = value(await metrics_page(world, s.archiver_port), "parley_archiver_messages_total")
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a, b = await alice.device(node=0), await bob.device(node=1)
    sent = [await a.send(conv, f"m{i}") for i in range(5)]
    await b.wait_for(lambda: sent[-1]["id"] in b.messages)
    await a.send_frame({"type": "send", "cid": "x", "conv": conv, "body": "   "})  # an error frame
    await a.wait_for(lambda: a.errors)

    async def scrape() -> dict[str, str]:
        pages = {name: await metrics_page(world, port) for name, port in ports.items()}
        moved_with_the_traffic(pages)
        # these five archived (the counter is the session's): so a lag of 0 is the archiver caught up
        assert value(pages["archiver"], "parley_archiver_messages_total") >= archived_before + 5
        return pages

    # node gauges refresh every node beat, the archiver's lag every 5 s
    pages = await eventually(scrape, timeout=20, every=0.5, what="every process's metrics showing the traffic")
    secrets = [alice.id, bob.id, conv, a.welcome["device"], b.welcome["device"]]
    for name, text in pages.items():
        assert not [x for x in secrets if x in text], f"{name} names a user, device or conversation"


def moved_with_the_traffic(pages: dict[str, str]) -> None:
    """Five messages node1 → node2, one bad frame, two logins, friends and a DM, archived."""
    n1, n2 = pages["node1"], pages["node2"]
    assert value(n1, "parley_node_frames_in_total", type="send") >= 5
    assert value(n1, "parley_node_frames_in_total", type="invalid") >= 1
    assert value(n1, "parley_node_messages_published_total") >= 5
    assert value(n1, "parley_node_errors_total", code="bad_field") >= 1
    assert value(n1, "parley_node_publish_seconds_count") >= 5
    assert value(n1, "parley_node_send_wait_seconds_count") >= 5
    assert value(n2, "parley_node_messages_delivered_total") >= 5
    assert value(n2, "parley_node_delivery_seconds_count") >= 5
    assert value(n1, "parley_node_connections") >= 1
    assert value(pages["api"], "parley_api_requests_total", route="/v1/login", method="POST", status="200") >= 2
    assert value(pages["api"], "parley_api_request_seconds_count", route="/v1/friends") >= 2
    assert value(pages["discovery"], "parley_discovery_placements_total", region="local", outcome="local") >= 2
    assert value(pages["discovery"], "parley_discovery_nodes", region="local") == 2
    assert value(pages["archiver"], "parley_archiver_messages_total") >= 5
    assert value(pages["archiver"], "parley_archiver_lag") == 0
    assert value(pages["presence"], "parley_presence_online") >= 2
    assert value(pages["presence"], "parley_presence_transitions_total", state="online") >= 2


async def test_parley_status_prints_the_cluster(world, cluster):
    alice = await world.person("alice")
    await alice.device(node=0)
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "parley", "status"],
                                   env={**os.environ, **cluster.settings.as_env()}, capture_output=True, text=True,
                                   timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "region local"
    node1 = next(line for line in lines if line.startswith("  node1 "))
    assert cluster.node_url(0) in node1 and "conns " in node1 and "sent " in node1
    assert any(line.startswith("  node2 ") for line in lines)
    assert any(line.startswith("archiver  lag ") for line in lines)
    assert any(line.startswith("presence  online ") for line in lines)
