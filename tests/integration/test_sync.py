"""Store-and-forward: a device that was away gets exactly what it missed, in order."""

from __future__ import annotations

import asyncio
import re

import pytest
from parley.tools.client import Device

from parley.cursor import cursor_key, open_cursor, seal_cursor
from tests.poll import eventually

pytestmark = pytest.mark.integration


async def cursor_saved(world, person, device: str, cursor: str | None) -> bool:
    """The store holds ``cursor`` for ``device`` (what a reconnect without a cursor resumes from)."""
    listed = await world.api.call("GET", "/v1/devices", person.token)
    saved = next(d["cursor"] for d in listed["devices"] if d["id"] == device)
    assert cursor and saved == cursor, f"the store has cursor {saved!r}"
    return True


def key(world) -> bytes:
    return cursor_key(world.cluster.settings.secret.reveal())


def flush_wait(world) -> float:
    """Long enough for an ack to reach the node and the node's periodic flush to save it."""
    return 10 * world.cluster.settings.cursor_flush_s


async def test_offline_device_gets_500_missed_messages_once_in_order(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    b = await bob.device(node=1)
    await alice.device(node=0)
    warm = await alice.devices[0].send(conv, "before")
    await b.cursor_after(warm["id"])
    await eventually(lambda: cursor_saved(world, bob, b.welcome["device"], b.acked_cursor), timeout=flush_wait(world),
                     what="bob's ack of the warm-up saved as his device's cursor")
    saved = b.acked_cursor
    login = b.login
    await b.close()
    acks = [await alice.devices[0].send(conv, f"missed {i}") for i in range(500)]
    # Reconnect without a cursor: the server-side cursor of this device is used.
    again = Device(world.http, world.cluster.node_url(0), login["token"])
    welcome = await again.connect()
    assert welcome["cursor"] == saved
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
        cursor = b.cursor  # the newest cursor offered: what came after it is sent again, and dropped here
        assert b.duplicates == 0
        seen.extend(i for i in b.order if i not in set(seen))
        login = b.login
        await b.close()
        b = Device(world.http, world.cluster.node_url(round_ % 2), login["token"])
        b.login = login
        await b.connect(cursor=cursor)
    stop.set()
    await task
    # the last message may have reached the previous connection, and then this one starts past it
    await b.wait_for(lambda: sent[-1] in b.messages or sent[-1] in seen)
    seen.extend(i for i in b.order if i not in set(seen))
    assert seen == sent, "each message exactly once, in send order, across five reconnects"
    await b.close()


async def test_a_new_device_syncs_the_whole_history(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    acks = [await a.send(conv, f"old {i}") for i in range(20)]
    fresh = await bob.device(node=1)  # a device that never connected before: the empty cursor
    assert open_cursor(key(world), fresh.welcome["cursor"]) == {}
    assert fresh.order == [x["id"] for x in acks]


async def test_sync_frame_replays_after_a_given_cursor(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    first = [await a.send(conv, f"x{i}") for i in range(5)]
    b = await bob.device(node=1)
    assert b.order == [x["id"] for x in first]
    mark = b.cursor  # synced: everything so far
    later = [await a.send(conv, f"y{i}") for i in range(5)]
    await b.wait_for(lambda: later[-1]["id"] in b.messages)
    b.messages.clear()
    b.order.clear()
    b.synced.clear()
    await b.send_frame({"type": "sync", "cursor": mark})
    await b.synced.wait()
    assert b.order == [x["id"] for x in later]


async def test_a_cursor_from_another_deployment_is_refused_and_the_device_syncs_as_new(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    old = await a.send(conv, "from before")
    b = await bob.device(node=1, cursor=seal_cursor(cursor_key("another deployment"), {0: 5}))
    assert b.errors[0]["code"] == "bad_cursor"
    assert old["id"] in b.messages  # synced from the start
    ack = await a.send(conv, "you still get this")
    await b.wait_for(lambda: ack["id"] in b.messages)
    await b.send_frame({"type": "ack", "cursor": "c1.garbage.x"})
    await b.wait_for(lambda: len(b.errors) == 2)
    assert b.errors[1]["code"] == "bad_cursor"


async def test_a_cursor_from_the_future_is_corrected_not_trusted(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    future = seal_cursor(key(world), {s: 2**40 for s in range(world.cluster.settings.shards)})
    b = await bob.device(node=1, cursor=future)
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
    future = seal_cursor(key(world), {s: 2**40 for s in range(world.cluster.settings.shards)})
    b = await bob.device(node=1, cursor=future)
    a = await alice.device(node=0)
    seen = await a.send(conv, "seen before leaving")
    await b.cursor_after(seen["id"])
    await eventually(lambda: cursor_saved(world, bob, b.welcome["device"], b.acked_cursor), timeout=flush_wait(world),
                     what="bob's ack saved as his device's cursor")
    saved = b.acked_cursor
    assert saved is not None and max(open_cursor(key(world), saved).values()) < 2**40
    login = b.login
    await b.close()
    ack = await a.send(conv, "missed while away")
    again = Device(world.http, world.cluster.node_url(0), login["token"])
    welcome = await again.connect()
    assert welcome["cursor"] == saved
    await again.synced.wait()
    assert ack["id"] in again.messages
    await again.close()


async def node_requests(world, node: int, kind: str) -> float:
    async with world.http.get(f"http://127.0.0.1:{world.cluster.node_ports[node]}/metrics") as resp:
        text = await resp.text()
    pattern = rf'^parley_node_stream_requests_total{{kind="{kind}"}} (\S+)$'
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_up_to_date_devices_connect_without_jetstream_calls_of_their_own(world):
    people = [await world.person("u") for _ in range(16)]
    convs = [await people[0].befriend(p) for p in people[1:]]
    sender = await people[0].device(node=0)
    devices = [await p.device(node=1) for p in people[1:]]
    for conv, d in zip(convs, devices, strict=True):
        sent = await sender.send(conv, "hello")
        await d.cursor_after(sent["id"])
    cursors = [d.cursor for d in devices]
    tokens = [d.login["token"] for d in devices]
    for d in devices:
        await d.close()
    before = {k: await node_requests(world, 1, k) for k in ("read", "last", "bounds")}
    again = [Device(world.http, world.cluster.node_url(1), t) for t in tokens]
    await asyncio.gather(*(d.connect(cursor=c) for d, c in zip(again, cursors, strict=True)))
    await asyncio.gather(*(d.synced.wait() for d in again))
    after = {k: await node_requests(world, 1, k) for k in ("read", "last", "bounds")}
    assert after["read"] == before["read"] and after["last"] == before["last"], "no stream read, no direct get"
    shards = world.cluster.settings.shards
    # the shard watch reads every shard about once a second, and sooner for waiting rounds (shared by all)
    assert after["bounds"] - before["bounds"] < 15 * shards, "the bounds reads are shared, not one per connection"
    assert all(d.order == [] and d.duplicates == 0 for d in again)
    for d in again:
        await d.close()


async def test_a_new_device_starts_from_the_conversation_listings_cursor(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    old = [await a.send(conv, f"old {i}") for i in range(5)]
    listing = await world.api.call("GET", "/v1/conversations", bob.token)
    assert listing["conversations"][0]["last_message"]["id"] == old[-1]["id"]
    after = await a.send(conv, "after the listing")
    fresh = await bob.device(node=1, cursor=listing["cursor"])  # "from now": the listing's view
    await fresh.wait_for(lambda: after["id"] in fresh.messages)
    assert fresh.order == [after["id"]] and fresh.errors == []
