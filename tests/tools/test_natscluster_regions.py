"""Two regions on loopback: a supercluster of an eu and a us JetStream cluster joined by gateways that run
through proxies. Streams land in their region by placement tag; cutting the gateways leaves each region's
own stream writable and makes the other region's unreachable until the link heals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.js.api import Placement, StreamConfig
from parley.tools.cluster import free_port
from parley.tools.natscluster import NatsServers

from tests.poll import eventually

UNREACHABLE = (nats.js.errors.NoStreamResponseError, nats.errors.NoRespondersError, nats.errors.TimeoutError)


@pytest.fixture
def regions(tmp_path: Path) -> Iterator[NatsServers]:
    servers = NatsServers(tmp_path, 1, free_port, regions=["eu", "us"])
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


@pytest.fixture
async def clients(regions: NatsServers) -> AsyncIterator[dict[str, nats.aio.client.Client]]:
    conns = {r: await nats.connect(**regions.admin_connect_options(r)) for r in regions.regions}
    try:
        yield conns
    finally:
        for nc in conns.values():
            await nc.close()


def test_members_are_named_and_addressed_by_region(regions: NatsServers):
    assert [m.name for m in regions.members] == ["nats-eu-1", "nats-us-1"]
    assert regions.urls_of("eu") == [regions.member("nats-eu-1").url]
    assert regions.url_list("us") == regions.member("nats-us-1").url
    assert regions.url_list() == ",".join(regions.urls)


async def test_streams_live_in_their_region_and_a_cut_isolates_them(regions: NatsServers, clients):
    js = {r: nc.jetstream(timeout=2) for r, nc in clients.items()}
    for r in regions.regions:
        info = await js[r].add_stream(StreamConfig(name=r.upper(), subjects=[f"{r}.>"],
                                                   placement=Placement(tags=[f"region:{r}"])))
        assert info.cluster is not None and info.cluster.name == r
    assert (await js["us"].publish("eu.hello", b"over the gateway")).stream == "EU"

    regions.cut_gateways()

    async def remote_unreachable() -> bool:
        try:
            await js["us"].publish("eu.cut", b"lost")
        except UNREACHABLE:
            return True
        return False

    await eventually(remote_unreachable, what="a publish across the cut gateways fails", timeout=20)
    for r in regions.regions:
        assert (await js[r].publish(f"{r}.local", b"still here")).stream == r.upper()

    regions.heal_gateways()

    async def remote_reachable() -> bool:
        return (await js["us"].publish("eu.healed", b"back")).stream == "EU"

    await eventually(remote_reachable, what="a publish across the healed gateways is acked", timeout=30,
                     ignoring=UNREACHABLE)
