"""Store-and-forward: a device that was away gets exactly what it missed, in order."""

from __future__ import annotations

import asyncio

import pytest
from parley.tools.client import Device

from tests.poll import eventually

pytestmark = pytest.mark.integration


async def cursor_saved(world, person, device: str, cursor: int) -> bool:
    """The store holds ``cursor`` for ``device`` (what a reconnect without a cursor resumes from)."""
    listed = await world.api.call("GET", "/v1/devices", person.token)
    saved = next(d["cursor"] for d in listed["devices"] if d["id"] == device)
    assert saved == cursor, f"the store has cursor {saved}"
    return True


def flush_wait(world) -> float:
    """Long enough for an ack to reach the node and the node's periodic flush to save it."""
    return 10 * world.cluster.settings.cursor_flush_s


async def test_offline_device_gets_500_missed_messages_once_in_order(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    b = await bob.device(node=1)
    await alice.device(node=0)
    warm = await alice.devices[0].send(conv, "before")
    await b.wait_for(lambda: warm["id"] in b.messages)
    await eventually(lambda: cursor_saved(world, bob, b.welcome["device"], warm["id"]), timeout=flush_wait(world),
                     what="bob's ack of the warm-up saved as his device's cursor")
    login = b.login
    await b.close()
    acks = [await alice.devices[0].send(conv, f"missed {i}") for i in range(500)]
    # Reconnect without a cursor: the server-side cursor of this device is used.
    again = Device(world.http, world.cluster.node_url(0), login["token"])
    welcome = await again.connect()
    assert welcome["cursor"] == warm["id"]
    await again.synced.wait()
    assert again.order == [a["id"] for a in acks]
    assert again.bodies() == [f"missed {i}" for i in range(500)]
    assert again.duplicates == 0
    await again.close()


async def test_messages_sent_while_reconnecting_are_neither_lost_nor_repeated(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    sender = await alice.device(node=0)
    b = await bob.device(node=1)
    sent: list[int] = []
    stop = asyncio.Event()

    async def keep_sending():
        i = 0
        while not stop.is_set():
            sent.append((await sender.send(conv, f"m{i}"))["id"])
            i += 1
            await asyncio.sleep(0.002)  # not a wait: a steady stream rather than one burst

    task = asyncio.create_task(keep_sending())
    seen: list[int] = []
    for round_ in range(5):
        await b.wait_for(lambda b=b: len(b.order) >= 10)  # this connection carries live traffic before it drops
        cursor = max(b.order) if b.order else 0
        seen.extend(b.order)
        login = b.login
        await b.close()
        b = Device(world.http, world.cluster.node_url(round_ % 2), login["token"])
        b.login = login
        await b.connect(cursor=cursor)
    stop.set()
    await task
    # the last message may have reached the previous connection, and then this one starts past it
    await b.wait_for(lambda: sent[-1] in b.messages or sent[-1] in seen)
    seen.extend(b.order)
    assert seen == sent, "each message exactly once, in send order, across five reconnects"
    await b.close()


async def test_a_new_device_syncs_the_whole_history(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    acks = [await a.send(conv, f"old {i}") for i in range(20)]
    fresh = await bob.device(node=1)  # a device that never connected before: cursor 0
    assert fresh.welcome["cursor"] == 0
    assert fresh.order == [x["id"] for x in acks]


async def test_sync_frame_replays_after_a_given_id(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    acks = [await a.send(conv, f"x{i}") for i in range(10)]
    b = await bob.device(node=1)
    assert len(b.messages) == 10
    b.messages.clear()
    b.order.clear()
    b.synced.clear()
    await b.send_frame({"type": "sync", "after": acks[4]["id"]})
    await b.synced.wait()
    assert b.order == [x["id"] for x in acks[5:]]


async def test_a_cursor_from_the_future_is_corrected_not_trusted(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    b = await bob.device(node=1, cursor=2**40)
    assert b.errors[0]["code"] == "bad_cursor"
    a = await alice.device(node=0)
    ack = await a.send(conv, "you still get this")
    await b.wait_for(lambda: ack["id"] in b.messages)


async def test_sync_reads_the_stream_when_the_archiver_is_behind(world, cluster):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    cluster.stop("archiver")
    try:
        acks = [await a.send(conv, f"unarchived {i}") for i in range(300)]
        b = await bob.device(node=1)  # nothing of this is in the store yet
        assert b.order == [x["id"] for x in acks] and b.duplicates == 0
        history = await world.api.call("GET", f"/v1/conversations/{conv}/messages", bob.token,
                                       params={"limit": 5})
        assert [m["id"] for m in history["messages"]] == [x["id"] for x in acks][::-1][:5]
    finally:
        cluster.start_archiver()


async def test_a_future_cursor_is_never_saved_as_the_device_cursor(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    b = await bob.device(node=1, cursor=2**40)
    a = await alice.device(node=0)
    seen = await a.send(conv, "seen before leaving")
    await b.wait_for(lambda: seen["id"] in b.messages)
    # the ack is flushed: the store keeps the real position (a 2**40 saved at any point would stay: cursors only grow)
    await eventually(lambda: cursor_saved(world, bob, b.welcome["device"], seen["id"]), timeout=flush_wait(world),
                     what="bob's ack saved as his device's cursor")
    login = b.login
    await b.close()
    ack = await a.send(conv, "missed while away")
    again = Device(world.http, world.cluster.node_url(0), login["token"])
    welcome = await again.connect()
    assert welcome["cursor"] == seen["id"] < 2**40
    await again.synced.wait()
    assert ack["id"] in again.messages
    await again.close()
