"""discovery/probes.py against real nats-servers: the JetStream API's answers read into the NATS panel's
model (discovery/jetstream.py) — an R3 stream on the session's 3-server cluster, and a server that
went away."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from parley.discovery.jetstream import bus_health
from parley.discovery.probes import BusAnswer, jetstream

from tests.integration.cluster import Cluster
from tests.poll import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def nc(nats_cluster) -> AsyncIterator[Client]:
    client = await nats.connect(**nats_cluster.admin_connect_options())
    yield client
    await client.close()


async def test_an_r3_stream_shows_its_leader_two_current_replicas_and_its_size(nats_cluster, nc):
    name = f"PAGE{secrets.token_hex(3).upper()}"
    js = nc.jetstream()
    await js.add_stream(name=name, subjects=[f"{name.lower()}.>"], num_replicas=3)
    try:
        for i in range(3):
            await js.publish(f"{name.lower()}.x", f"m{i}".encode())

        async def current() -> tuple[dict[str, Any], dict[str, Any]] | None:
            answer = await jetstream(nc, 5.0)
            view = bus_health(answer.streams, answer.account, answer.server, "MSG", answer.error)
            row = next((s for s in view["streams"] if s["name"] == name), None)
            return (view, row) if row and row["messages"] == 3 and all(
                p["state"] == "current" for p in row["peers"]) and len(row["peers"]) == 3 else None

        view, row = await eventually(current, what="the stream with three current copies")
        assert row["kind"] == "other" and row["replicas"] == 3 and row["bytes"] > 0
        assert row["leader"] in {"nats-1", "nats-2", "nats-3"}
        assert sorted(p["name"] for p in row["peers"]) == ["nats-1", "nats-2", "nats-3"]
        assert {s["name"] for s in view["servers"]} == {"nats-1", "nats-2", "nats-3"}
        assert view["connected"]["server"] in {"nats-1", "nats-2", "nats-3"} and view["storage_bytes"] > 0
    finally:
        await js.delete_stream(name)


async def test_a_server_that_went_away_reads_as_down_with_the_reason(tmp_path):
    cluster = Cluster(tmp_path, nodes=0)
    cluster.start_nats()
    client = await nats.connect(**cluster.admin_connect_options(), max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        answer = await jetstream(client, 2.0)
        assert answer.error is None and answer.streams == []
        cluster.stop_nats()
        down = await eventually(lambda: _errored(client), what="the probe saying why there is no answer")
        view = bus_health(down.streams, down.account, down.server, "MSG", down.error)
        assert view["state"] == "down" and view["error"]
    finally:
        await client.close()
        cluster.shutdown()


async def _errored(client: Client) -> BusAnswer | None:
    answer = await jetstream(client, 1.0)
    return answer if answer.error else None
