"""Presence on a real cluster (beats every 0.5 s, offline after 3 s of silence from every device)."""

from __future__ import annotations

import asyncio
import time

import pytest
from parley.tools.client import ApiError, Device

from tests.poll import eventually

pytestmark = pytest.mark.integration


def changes(device: Device, user: str) -> list[bool]:
    return [u["online"] for e in device.events if e["type"] == "presence" for u in e["users"] if u["user"] == user]


def went_offline(device: Device, user: str) -> dict:
    return next(u for e in device.events if e["type"] == "presence" for u in e["users"]
                if u["user"] == user and not u["online"])


def generous(world) -> float:
    """Time enough for a silent user to be taken offline (the worker ticks every 0.5 s)."""
    return 5 * world.cluster.settings.presence_timeout_s


async def test_friends_see_online_then_offline_without_flapping(world):
    alice, bob, carol = await world.person("alice"), await world.person("bob"), await world.person("carol")
    await alice.befriend(bob)
    await alice.befriend(carol)  # a witness: her offline marks the moment bob's would have come
    a = await alice.device(node=0)
    b, c = await bob.device(node=1), await carol.device(node=1)
    await a.wait_for(lambda: changes(a, bob.id) == [True] and changes(a, carol.id) == [True], timeout=10)
    login = b.login
    await b.close()
    await asyncio.sleep(1.0)  # the scenario, not a wait: away for 1 s, back within the 3 s timeout
    again = Device(world.http, world.cluster.node_url(0), login["token"])
    await again.connect()
    await c.close()  # carol leaves as bob comes back: her offline comes in a later tick than any of bob's would
    await a.wait_for(lambda: changes(a, carol.id) == [True, False], timeout=generous(world))
    assert changes(a, bob.id) == [True]  # no offline, no second online
    closed_at = time.time() * 1000
    await again.close()
    await a.wait_for(lambda: changes(a, bob.id) == [True, False], timeout=10)
    offline = went_offline(a, bob.id)
    assert offline["last_active_at"] >= closed_at - 600  # the last heartbeat, not the moment it was noticed
    assert not changes(b, alice.id) or changes(b, alice.id)[0] is True  # alice was online all along


async def test_a_killed_nodes_users_go_offline_on_their_own(world, cluster):
    alice, bob = await world.person("alice"), await world.person("bob")
    await alice.befriend(bob)
    a = await alice.device(node=0)
    url = cluster.start_extra_node("doomed")
    b = Device(world.http, url, (await bob.login())["token"])
    await b.connect()
    await a.wait_for(lambda: changes(a, bob.id) == [True], timeout=10)
    cluster.kill("doomed")
    killed_at = time.time() * 1000
    await a.wait_for(lambda: changes(a, bob.id) == [True, False], timeout=generous(world))
    seen_at = time.time() * 1000
    last_beat = went_offline(a, bob.id)["last_active_at"]
    assert last_beat <= killed_at  # the doomed node's last beat
    # not before the timeout: offline only once that beat is presence_timeout_s old
    assert seen_at - last_beat >= cluster.settings.presence_timeout_s * 1000
    await b.close()


async def test_presence_on_demand_for_any_list_and_friendships_made_while_connected(world):
    alice, bob, carol = await world.person("alice"), await world.person("bob"), await world.person("carol")
    a = await alice.device(node=0)
    await carol.device(node=1)

    async def carol_online() -> bool:
        found = await world.api.call("GET", f"/v1/presence?user_ids={carol.id}", alice.token)
        return bool(found["presence"][0]["online"])

    await eventually(carol_online, timeout=generous(world), what="carol's first beat reaching the presence worker")
    await a.send_frame({"type": "presence", "users": [bob.id, carol.id]})
    await a.wait_for(lambda: any(e["type"] == "presence" and len(e["users"]) == 2 for e in a.events))
    answer = next(e for e in a.events if e["type"] == "presence" and len(e["users"]) == 2)["users"]
    assert [(u["user"], u["online"]) for u in answer] == [(bob.id, False), (carol.id, True)]
    assert answer[0]["last_active_at"] is None and answer[1]["last_active_at"] > 0
    api = await world.api.call("GET", f"/v1/presence?user_ids={carol.id},{bob.id}", alice.token)
    assert [(u["user"], u["online"]) for u in api["presence"]] == [(carol.id, True), (bob.id, False)]
    await alice.befriend(carol)  # friends now: carol's changes reach alice's device live
    # No wait for alice's node to follow carol (nothing shows when it has): carol's offline is announced
    # presence_timeout_s after she leaves, and the node has that long.
    for d in carol.devices:
        await d.close()
    await a.wait_for(lambda: changes(a, carol.id) == [True, False], timeout=10)  # the answer, then the change


async def test_presence_errors(world):
    alice = await world.person("alice")
    a = await alice.device(node=0)
    for bad, field in ([{"type": "presence", "users": []}, "users"],
                       [{"type": "presence", "users": ["x" * 16] * 101}, "users"],
                       [{"type": "presence", "users": ["not an id"]}, "users"]):
        seen = len(a.errors)
        await a.send_frame(bad)
        await a.wait_for(lambda seen=seen: len(a.errors) > seen)
        assert (a.errors[-1]["code"], a.errors[-1]["field"]) == ("bad_field", field)
    with pytest.raises(ApiError) as info:
        await world.api.call("GET", "/v1/presence?user_ids=", alice.token)
    assert (info.value.status, info.value.code) == (400, "bad_field")
