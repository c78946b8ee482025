"""Friend requests, acceptances, declines and unfriends reach both users' devices as ``friend`` frames as they
happen (protocol.md §5), on whichever node each device is, with no polling."""

from __future__ import annotations

from typing import Any

import pytest
from parley.tools.client import Device

from tests.integration.conftest import Person

pytestmark = pytest.mark.integration


def friend_frames(device: Device, about: str) -> list[str]:
    return [f["state"] for f in device.events if f.get("type") == "friend" and f["user"] == about]


async def wait_state(device: Device, about: str, state: str, count: int = 1) -> None:
    await device.wait_for(lambda: friend_frames(device, about).count(state) >= count)


async def call(person: Person, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    return await person.world.api.call(method, path, person.token, body)


async def test_a_request_its_acceptance_and_an_unfriend_reach_every_device_on_both_nodes(world):
    ann, bob = await world.person("fa"), await world.person("fb")
    ann0, ann1, bob0, bob1 = await ann.device(node=0), await ann.device(node=1), await bob.device(node=0), \
        await bob.device(node=1)
    await call(ann, "POST", "/v1/friends", {"user_id": bob.id})
    for d in (bob0, bob1):
        await wait_state(d, ann.id, "incoming")
    for d in (ann0, ann1):
        await wait_state(d, bob.id, "outgoing")
    await call(bob, "POST", "/v1/friends", {"user_id": ann.id})
    for d, other in ((ann0, bob), (ann1, bob), (bob0, ann), (bob1, ann)):
        await wait_state(d, other.id, "friends")
    conv = (await call(ann, "POST", "/v1/conversations", {"user_id": bob.id}))["conversation"]["id"]
    sent = await ann0.send(conv, "we are friends")  # the nodes follow the friendship: the DM is open
    await bob1.wait_for(lambda: sent["id"] in bob1.messages)
    await call(bob, "DELETE", f"/v1/friends/{ann.id}")
    for d, other in ((ann0, bob), (ann1, bob), (bob0, ann), (bob1, ann)):
        await wait_state(d, other.id, "none")
    assert friend_frames(bob0, ann.id) == ["incoming", "friends", "none"]
    assert friend_frames(ann1, bob.id) == ["outgoing", "friends", "none"]


async def test_a_declined_and_a_withdrawn_request_say_none_to_both(world):
    ann, bob = await world.person("fc"), await world.person("fd")
    ann0, bob1 = await ann.device(node=0), await bob.device(node=1)
    await call(ann, "POST", "/v1/friends", {"user_id": bob.id})
    await wait_state(bob1, ann.id, "incoming")
    await call(bob, "DELETE", f"/v1/friends/{ann.id}")  # declined
    await wait_state(ann0, bob.id, "none")
    await wait_state(bob1, ann.id, "none")
    await call(ann, "POST", "/v1/friends", {"user_id": bob.id})
    await wait_state(bob1, ann.id, "incoming", count=2)
    await call(ann, "DELETE", f"/v1/friends/{bob.id}")  # withdrawn
    await wait_state(bob1, ann.id, "none", count=2)
    await wait_state(ann0, bob.id, "none", count=2)
    assert friend_frames(ann0, bob.id) == ["outgoing", "none", "outgoing", "none"]


async def test_a_block_ends_a_pending_request_and_asking_again_tells_nobody(world):
    ann, bob = await world.person("fe"), await world.person("ff")
    ann0, bob0 = await ann.device(node=0), await bob.device(node=1)
    await call(ann, "POST", "/v1/friends", {"user_id": bob.id})
    await call(ann, "POST", "/v1/friends", {"user_id": bob.id})  # the same again: no change, no frame
    await wait_state(bob0, ann.id, "incoming")
    await call(bob, "PUT", f"/v1/blocks/{ann.id}")
    await wait_state(ann0, bob.id, "none")
    await wait_state(bob0, ann.id, "none")
    assert friend_frames(ann0, bob.id) == ["outgoing", "none"]
    assert friend_frames(bob0, ann.id) == ["incoming", "none"]


async def test_a_new_display_name_reaches_friends_co_members_and_ones_own_devices_not_strangers(world):
    ann, bob, cat, eve = [await world.person(p) for p in ("fg", "fh", "fi", "fj")]
    await ann.befriend(bob)  # a friend (and a DM)
    await bob.befriend(cat)
    await call(bob, "POST", "/v1/groups", {"name": "g", "members": [ann.id, cat.id]})  # cat: not ann's friend
    ann1, bob0, cat1, eve0 = await ann.device(node=1), await bob.device(node=0), await cat.device(node=1), \
        await eve.device(node=0)
    await call(ann, "PATCH", "/v1/me", {"display_name": "Ann A."})
    want = {"type": "user", "user": {"id": ann.id, "display_name": "Ann A.", "bio": ""}}
    for d in (ann1, bob0, cat1):
        await d.wait_for(lambda d=d: want in d.events)
    await call(ann, "PATCH", "/v1/me", {})  # nothing changed: nothing sent
    await call(ann, "PATCH", "/v1/me", {"bio": "hi"})  # on the same subjects, from the same API: after it
    then = {"type": "user", "user": {"id": ann.id, "display_name": "Ann A.", "bio": "hi"}}
    for d in (ann1, bob0, cat1):
        await d.wait_for(lambda d=d: then in d.events)
    assert [f for f in cat1.events if f.get("type") == "user"] == [want, then]
    assert [f for f in eve0.events if f.get("type") == "user"] == []
