"""Two regions: a NATS supercluster on loopback (``eu`` and ``us``, one JetStream cluster each, joined by
gateways through TCP proxies), shards homed per region, an edge node, an API and an archiver in each.

A conversation opened in a region is homed in one of its shards (stored on that region's cluster); users
in different regions chat across the gateway; cutting the gateway leaves each region's own conversations
working (sends, deliveries, a device reconnecting) and the cross-region sends are refused with the
retryable ``bus_unavailable``; when it heals, what was sent meanwhile reaches the other side without a
reconnect, once. Cross-region delivery latency is printed, not asserted (``loadtest/`` measures).
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import AsyncIterator, Iterator

import nats
import pytest
from parley.tools.client import Api, ApiError

from parley.bus.connection import connect_options
from parley.shards import shard_of_id, stream_of
from tests.integration.cluster import Cluster
from tests.integration.conftest import Person, World
from tests.poll import eventually

pytestmark = pytest.mark.integration

EU, US = 0, 1  # node indices: node1 runs in eu, node2 in us


@pytest.fixture(scope="module")
def regions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("regions"), nodes=2, regions=("eu", "us"))
    try:
        c.start()
        yield c
    finally:
        c.shutdown()


@pytest.fixture
async def world2(regions: Cluster, http) -> AsyncIterator[World]:
    w = World(regions, http)
    yield w
    await w.close()


async def open_dm(world: World, region: str, a: Person, b: Person) -> str:
    """Friends, and their DM opened through ``region``'s API (so homed in that region)."""
    await world.api.call("POST", "/v1/friends", a.token, {"user_id": b.id})
    await world.api.call("POST", "/v1/friends", b.token, {"user_id": a.id})
    api = Api(world.cluster.api_url_of(region), world.http)
    conv = await api.call("POST", "/v1/conversations", a.token, {"user_id": b.id})
    return str(conv["conversation"]["id"])


async def test_each_regions_shards_live_on_its_cluster_and_a_conversation_homes_where_it_was_opened(world2):
    cluster = world2.cluster
    layout = cluster.settings.layout()
    nc = await nats.connect(**connect_options(cluster.settings))
    try:
        js = nc.jetstream()
        placed = {s: (await js.stream_info(stream_of("MSG", s))).cluster.name for s in range(layout.total)}
    finally:
        await nc.close()
    assert placed == {s: layout.region_of(s) for s in range(layout.total)}

    alice, bob = await world2.person("alice"), await world2.person("bob")
    for region in ("eu", "us"):
        carol = await world2.person("carol")
        conv = await open_dm(world2, region, alice if region == "eu" else bob, carol)
        dev = await carol.device(node=EU if region == "eu" else US)
        ack = await dev.send(conv, f"homed in {region}")
        assert layout.region_of(shard_of_id(ack["id"])) == region


async def test_a_dm_and_a_group_across_regions_go_both_ways(world2):
    alice, bob = await world2.person("alice"), await world2.person("bob")
    conv = await open_dm(world2, "eu", alice, bob)
    a, b = await alice.device(node=EU), await bob.device(node=US)
    took: list[float] = []
    for i in range(20):
        sender, receiver = (a, b) if i % 2 == 0 else (b, a)
        t0 = time.perf_counter()
        ack = await sender.send(conv, f"m{i}")
        await receiver.wait_for(lambda ack=ack, receiver=receiver: ack["id"] in receiver.messages)
        took.append((time.perf_counter() - t0) * 1000)
    assert a.bodies(conv) == b.bodies(conv) == [f"m{i}" for i in range(20)]
    print(f"\ncross-region send->delivery on loopback: median {statistics.median(took):.1f} ms, "
          f"max {max(took):.1f} ms over {len(took)}")

    carol = await world2.person("carol")
    for other in (alice, carol):
        await world2.api.call("POST", "/v1/friends", bob.token, {"user_id": other.id})
        await world2.api.call("POST", "/v1/friends", other.token, {"user_id": bob.id})
    us_api = Api(world2.cluster.api_url_of("us"), world2.http)
    group = (await us_api.call("POST", "/v1/groups", bob.token,
                               {"name": "across", "members": [alice.id, carol.id]}))["conversation"]["id"]
    c = await carol.device(node=EU)
    ack = await c.send(group, "from eu into a us group")
    assert world2.cluster.settings.layout().region_of(shard_of_id(ack["id"])) == "us"
    for dev in (a, b):
        await dev.wait_for(lambda dev=dev: ack["id"] in dev.messages)
    assert a.duplicates == b.duplicates == c.duplicates == 0


async def send_retrying(dev, conv: str, body: str, timeout: float = 60) -> dict:
    """Send as a client does: again (same cid) on a retryable error."""
    cid = re.sub(r"[^A-Za-z0-9_-]", "-", body)[:64]

    async def attempt() -> dict | None:
        assert not dev.closed.done(), f"connection closed: {dev.closed.result()}, errors {dev.errors}"
        try:
            return await dev.send(conv, body, cid=cid)
        except ApiError as err:
            if err.body.get("code") != "bus_unavailable":
                raise RuntimeError(f"{body!r}: {err.body}") from err  # not a retryable refusal: fail now
            return None

    return await eventually(attempt, what=f"{body!r} acked", timeout=timeout, every=0.5)


async def test_cutting_the_gateway_keeps_local_conversations_and_loses_nothing_when_it_heals(world2):
    cluster = world2.cluster
    servers = cluster.nats_servers
    eu1, eu2, us1, us2 = [await world2.person(p) for p in ("eu1", "eu2", "us1", "us2")]
    eu_dm = await open_dm(world2, "eu", eu1, eu2)
    us_dm = await open_dm(world2, "us", us1, us2)
    cross = await open_dm(world2, "eu", eu1, us1)  # homed in eu
    e1, e2 = await eu1.device(node=EU), await eu2.device(node=EU)
    u1, u2 = await us1.device(node=US), await us2.device(node=US)
    before = await e1.send(cross, "before the cut")
    await u1.wait_for(lambda: before["id"] in u1.messages)

    servers.cut_gateways()
    try:
        # each region's own conversation keeps working: sent, acked, delivered
        for dev, peer, conv, name in ((e1, e2, eu_dm, "eu"), (u1, u2, us_dm, "us")):
            ack = await send_retrying(dev, conv, f"{name} during the cut")
            await peer.wait_for(lambda ack=ack, peer=peer: ack["id"] in peer.messages, timeout=30)
        # the cross-region conversation lives in eu: eu can still send to it, us is told to retry later
        during = await e1.send(cross, "eu to us during the cut")
        with pytest.raises(ApiError) as refused:
            await u1.send(cross, "us to eu during the cut", cid="us-to-eu-during-the-cut")
        assert refused.value.body.get("code") == "bus_unavailable", refused.value.body
        # a us device reconnecting during the cut gets its region's conversations
        cursor = u2.cursor
        await u2.close()
        u2 = await us2.device(node=US, login=us2.logins[-1], cursor=cursor)
        late = await send_retrying(u1, us_dm, "us after the reconnect")
        await u2.wait_for(lambda: late["id"] in u2.messages, timeout=30)
        assert during["id"] not in u1.messages
    finally:
        servers.heal_gateways()

    # healed: what eu sent meanwhile reaches us1 without a reconnect; us1's retried send goes through
    await u1.wait_for(lambda: during["id"] in u1.messages, timeout=60)
    again = await send_retrying(u1, cross, "us to eu during the cut")  # the same cid: one message
    await e1.wait_for(lambda: again["id"] in e1.messages, timeout=30)
    assert e1.bodies(cross) == u1.bodies(cross) == [
        "before the cut", "eu to us during the cut", "us to eu during the cut"]
    assert all(d.duplicates == 0 for d in (e1, e2, u1, u2))
