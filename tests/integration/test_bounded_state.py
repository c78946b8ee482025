"""Bounded state on a real node (docs/adr/0016): a device that reads but never acks is closed once its unacked
messages reach the bound (4009 ``too many unacked messages``), and loses nothing: reconnected, it gets every
message it did not ack. A node of its own with a small bound (``sync_max`` 25: 100 frames, 100 unacked)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from parley.tools.client import Device

from tests.integration.conftest import World

pytestmark = pytest.mark.integration
BOUND = 100  # 4 × sync_max


@pytest.fixture(scope="module")
def small_node(cluster) -> Iterator[str]:
    # sync rounds read 10 at a time: a round goes at most one batch past where it waits (half the bound)
    url = cluster.start_extra_node("small-node", sync_max=BOUND // 4, sync_batch=10)
    try:
        yield url
    finally:
        cluster.stop("small-node")


async def test_a_device_that_never_acks_is_closed_at_the_bound_and_loses_nothing(world: World, small_node):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    login = await bob.login()
    b = Device(world.http, small_node, login["token"])
    b.auto_ack = False  # reads everything, acks nothing
    await b.connect()
    await b.synced.wait()
    sent = [(await a.send(conv, f"m{i}"))["id"] for i in range(BOUND + 20)]
    code, _ = await asyncio.wait_for(asyncio.shield(b.closed), timeout=30)
    assert code == 4009
    assert len(b.messages) <= BOUND  # never more than the bound queued without an ack

    again = Device(world.http, small_node, login["token"])  # acks, as a client should
    await again.connect()  # no cursor acked: from the device's stored one (none): everything
    await again.wait_for(lambda: all(i in again.messages for i in sent))
    assert again.duplicates == 0 and not again.errors
