"""1:1 chat across two nodes, many devices per account, idempotent send."""

from __future__ import annotations

import asyncio

import pytest
from parley.tools.client import Device

pytestmark = pytest.mark.integration


async def test_dm_crosses_nodes_and_reaches_both_sides(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    b = await bob.device(node=1)
    acks = [await a.send(conv, f"hi {i}") for i in range(10)]
    assert [ack["status"] for ack in acks] == ["sent"] * 10
    ids = [ack["id"] for ack in acks]
    assert ids == sorted(ids) and len(set(ids)) == 10
    await b.wait_for(lambda: len(b.messages) == 10)
    await a.wait_for(lambda: len(a.messages) == 10)  # the sending device gets its own echo, by cid
    assert b.order == ids == a.order
    first = b.messages[ids[0]]
    assert first["from"] == alice.id and first["conv"] == conv and first["cid"] == acks[0]["cid"]
    assert [b.messages[i]["prev"] for i in ids[1:]] == ids[:-1]  # each names its predecessor
    reply = await b.send(conv, "hello alice")
    await a.wait_for(lambda: reply["id"] in a.messages)
    assert a.duplicates == b.duplicates == 0


async def test_three_devices_per_user_on_two_nodes_see_one_order(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    alices = [await alice.device(node=i % 2) for i in range(3)]
    bobs = [await bob.device(node=(i + 1) % 2) for i in range(3)]
    everyone = alices + bobs
    senders = [alices[0], alices[1], bobs[2], bobs[0]]

    async def talk(dev, n):
        for i in range(n):
            await dev.send(conv, f"{id(dev)}-{i}")

    await asyncio.gather(*(talk(d, 25) for d in senders))
    for dev in everyone:
        await dev.wait_for(lambda dev=dev: len(dev.messages) == 100)
    orders = {tuple(dev.order) for dev in everyone}
    assert len(orders) == 1, "every device must see the same order"
    assert list(next(iter(orders))) == sorted(next(iter(orders)))
    assert all(dev.duplicates == 0 for dev in everyone)
    history = await world.api.call("GET", f"/v1/conversations/{conv}/messages", alice.token,
                                   params={"limit": 200, "order": "asc"})
    assert [m["id"] for m in history["messages"]] == alices[0].order


async def test_resending_a_client_message_id_returns_the_same_message(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a, b = await alice.device(node=0), await bob.device(node=1)
    first = await a.send(conv, "only once", cid="dup-1")
    a.acks.clear()
    again = await a.send(conv, "only once", cid="dup-1")
    assert again["id"] == first["id"] and again["duplicate"] is True and first["duplicate"] is False
    other_device = await alice.device(node=1)
    third = await other_device.send(conv, "only once", cid="dup-1")  # same user, other device: same id
    assert third["id"] == first["id"]
    marker = await a.send(conv, "after")
    await b.wait_for(lambda: marker["id"] in b.messages)
    assert b.bodies(conv) == ["only once", "after"]


async def test_the_same_client_message_id_in_two_conversations_is_two_messages(world):
    alice, bob, carol = await world.person("alice"), await world.person("bob"), await world.person("carol")
    with_bob, with_carol = await alice.befriend(bob), await alice.befriend(carol)
    a = await alice.device(node=0)
    one = await a.send(with_bob, "to bob", cid="same")
    two = await a.send(with_carol, "to carol", cid="same")
    assert one["id"] != two["id"] and not two["duplicate"] and two["conv"] == with_carol
    c = await carol.device(node=1)
    assert c.bodies(with_carol) == ["to carol"]


async def test_a_device_on_a_compressed_connection_gets_every_message_in_order(world):
    """Browsers negotiate permessage-deflate: the node sends those frames through aiohttp, not straight to
    the socket as it does for the others."""
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    b = Device(world.http, world.cluster.node_url(1), (await bob.login())["token"], compress=15)
    await b.connect()
    await b.synced.wait()
    assert b.ws is not None and b.ws.compress == 15
    ids = [(await a.send(conv, f"zip {i} " + "z" * i * 40))["id"] for i in range(30)]
    await b.wait_for(lambda: len(b.messages) == 30)
    assert b.order == ids and b.duplicates == 0
    assert [b.messages[i]["body"] for i in ids] == [f"zip {i} " + "z" * i * 40 for i in range(30)]
    await b.close()
