"""A hello while the store is down, on a real Cassandra that is stopped: a node that fails closed (the
default) refuses it with a retryable ``store_unavailable`` and close 1013; a node configured to fail
open (``PARLEY_REVOCATION_FAIL_CLOSED=0``) admits it unchecked. Once Cassandra is back, the closed node
admits it again.

Each user has a device connected on each node before the outage, so the user's subscriptions are in
place there and the new hello needs the store for its session check only (the hello carries a cursor
the node made, so the device's stored cursor is not read either).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from parley.tools.client import Device

from tests.conftest import CassandraServer, new_keyspace
from tests.integration.cluster import Cluster
from tests.integration.conftest import World
from tests.poll import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def down_cluster(tmp_path_factory: pytest.TempPathFactory, cassandra: CassandraServer) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("sessions-store-down"), nodes=1, **cassandra.settings(new_keyspace("sess")))
    try:
        c.start()
        c.open_url = c.start_extra_node("open", revocation_fail_closed=False)  # type: ignore[attr-defined]
        yield c
    finally:
        c.shutdown()


@pytest.fixture
async def dworld(down_cluster: Cluster, http: aiohttp.ClientSession) -> AsyncIterator[World]:
    w = World(down_cluster, http)
    yield w
    await w.close()


async def connected(world: World, url: str, login: dict, cursor: str | None = None) -> Device:
    device = Device(world.http, url, login["token"])
    await device.connect(cursor=cursor)
    return device


async def test_a_hello_while_the_store_is_down_fails_closed_unless_configured_open(dworld, down_cluster, cassandra):
    closed_url, open_url = down_cluster.node_url(0), down_cluster.open_url  # type: ignore[attr-defined]
    alice = await dworld.person("alice")
    first, second = alice.logins[-1], await alice.login()
    on_open = await eventually(lambda: connected(dworld, open_url, first), timeout=30, every=0.5,
                               ignoring=(ConnectionError, OSError), what="the extra node admitting hellos")
    on_closed = await connected(dworld, closed_url, first)
    cursor = on_closed.cursor  # the second device's hellos carry it: no stored cursor to read
    cassandra.stop()
    try:
        async def refused() -> str:
            with pytest.raises(ConnectionError) as info:
                device = await connected(dworld, closed_url, second, cursor)
                await device.close()  # still admitted: the store's failure is not seen yet
            return str(info.value)

        why = await eventually(refused, timeout=60, every=1, what="the fail-closed node refusing the hello")
        assert "store_unavailable" in why and "'retryable': True" in why and "close 1013" in why
        admitted = await connected(dworld, open_url, second, cursor)  # unchecked: the node logs it
        assert admitted.welcome["type"] == "welcome"
        await admitted.close()
        assert "without its revocation check" in down_cluster.log_text("open")
    finally:
        cassandra.start()
    back = await eventually(lambda: connected(dworld, closed_url, second, cursor), timeout=120, every=1,
                            ignoring=(ConnectionError,), what="the fail-closed node admitting hellos again")
    for device in (on_open, on_closed, back):
        await device.close()
