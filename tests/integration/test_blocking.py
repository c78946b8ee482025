"""Blocking and the end of a friendship on a real cluster (docs/adr/0015): a DM becomes read-only for
both sides, at once on connections that stay open; friend requests, group adds and presence between a
blocked pair are refused or hidden; shared groups carry on; bad input gets its documented code."""

from __future__ import annotations

import pytest
from parley.tools.client import ApiError, Device

from tests.integration.conftest import Person, World
from tests.integration.refusals import expect
from tests.poll import eventually

pytestmark = pytest.mark.integration



async def refused(dev: Device, conv: str, code: str) -> None:
    """The device's sends in ``conv`` are refused with ``code`` (polled: the control event is on its way)."""
    async def check() -> bool:
        try:
            await dev.send(conv, "are you there?")
        except ApiError as err:
            assert err.body["code"] == code and err.body["conv"] == conv, err.body
            return True
        return False

    await eventually(check, timeout=5, every=0.1, what=f"a send refused with {code}")


async def block(world: World, me: Person, other: Person) -> None:
    await world.api.call("PUT", f"/v1/blocks/{other.id}", me.token)


async def history(world: World, me: Person, conv: str) -> list[str]:
    page = await world.api.call("GET", f"/v1/conversations/{conv}/messages?order=asc", me.token)
    return [m["body"] for m in page["messages"]]


async def test_a_block_makes_the_dm_read_only_both_ways_at_once_and_unblocking_lets_friends_talk_again(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a, b = await alice.device(node=0), await bob.device(node=1)
    await a.send(conv, "hi bob")
    await b.send(conv, "hi alice")
    await block(world, alice, bob)
    await block(world, alice, bob)  # idempotent
    await refused(b, conv, "blocked")  # the blocked user, on the connection opened before the block
    await refused(a, conv, "blocked")  # and the blocker
    count = len(a.errors)
    await a.send_frame({"type": "typing", "conv": conv})  # typing too
    await a.wait_for(lambda: len(a.errors) > count)
    assert (a.errors[-1]["code"], a.errors[-1]["conv"]) == ("blocked", conv)
    assert [u["id"] for u in (await world.api.call("GET", "/v1/blocks", alice.token))["blocks"]] == [bob.id]
    assert (await world.api.call("GET", "/v1/blocks", bob.token))["blocks"] == []
    for me in (alice, bob):  # the DM stays listed and readable
        assert await history(world, me, conv) == ["hi bob", "hi alice"]
        assert conv in [c["id"] for c in (await world.api.call("GET", "/v1/conversations", me.token))["conversations"]]
        assert (await world.api.call("GET", "/v1/friends", me.token)) == {"friends": [], "incoming": [], "outgoing": []}
    await world.api.call("DELETE", f"/v1/blocks/{bob.id}", alice.token)
    await world.api.call("DELETE", f"/v1/blocks/{bob.id}", alice.token)  # idempotent
    assert (await world.api.call("GET", "/v1/blocks", alice.token))["blocks"] == []
    await refused(b, conv, "not_friends")  # unblocking brings no friendship back
    assert await alice.befriend(bob) == conv
    await eventually(lambda: _sends(b, conv), timeout=5, every=0.1, what="bob's sends accepted again")
    ack = await a.send(conv, "friends again")
    assert ack["status"] == "sent"
    await b.wait_for(lambda: "friends again" in b.bodies(conv))


async def _sends(dev: Device, conv: str) -> bool:
    try:
        await dev.send(conv, "back")
        return True
    except ApiError:
        return False


async def test_an_unfriend_makes_the_dm_read_only_on_live_connections(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a, b = await alice.device(node=0), await bob.device(node=0)
    sent = await a.send(conv, "before")
    await world.api.call("DELETE", f"/v1/friends/{alice.id}", bob.token)
    await refused(a, conv, "not_friends")
    await refused(b, conv, "not_friends")
    await expect("not_friends", 403, world.api.call("POST", "/v1/conversations", alice.token, {"user_id": bob.id}))
    assert await history(world, bob, conv) == ["before"]
    await b.send_frame({"type": "read", "conv": conv, "upto": sent["id"]})  # reading the past still works
    await a.wait_for(lambda: any(e["type"] == "receipt" and e["status"] == "read" and e["user"] == bob.id
                                 for e in a.events))


async def test_a_blocked_pair_cannot_befriend_add_each_other_to_groups_or_open_their_dm(world):
    api = world.api
    alice, bob, carol = await world.person("alice"), await world.person("bob"), await world.person("carol")
    await bob.befriend(carol)
    await alice.befriend(carol)
    await api.call("POST", "/v1/friends", alice.token, {"user_id": bob.id})  # a pending request: ended by the block
    await block(world, alice, bob)
    assert (await api.call("GET", "/v1/friends", bob.token))["incoming"] == []
    for me, other in ((bob, alice), (alice, bob)):
        got = await expect("blocked", 403, api.call("POST", "/v1/friends", me.token, {"user_id": other.id}))
        assert got["user_id"] == other.id
        await expect("blocked", 403, api.call("POST", "/v1/conversations", me.token, {"user_id": other.id}))
        await expect("blocked", 403, api.call("POST", "/v1/groups", me.token, {"name": "g", "members": [other.id]}))
    group = (await api.call("POST", "/v1/groups", bob.token, {"name": "bob's", "members": [carol.id]}))["conversation"]
    await expect("blocked", 403, api.call("POST", f"/v1/groups/{group['id']}/members", bob.token,
                                          {"user_ids": [alice.id]}))


async def test_members_who_block_each_other_stay_in_a_shared_group_and_both_get_its_messages(world):
    alice, bob, carol = await world.person("alice"), await world.person("bob"), await world.person("carol")
    await carol.befriend(alice)
    await carol.befriend(bob)
    group = (await world.api.call("POST", "/v1/groups", carol.token,
                                  {"name": "all", "members": [alice.id, bob.id]}))["conversation"]["id"]
    a, b = await alice.device(node=0), await bob.device(node=1)
    await block(world, alice, bob)
    await b.send(group, "from bob")
    await a.send(group, "from alice")
    await a.wait_for(lambda: "from bob" in a.bodies(group))
    await b.wait_for(lambda: "from alice" in b.bodies(group))


async def test_presence_is_hidden_both_ways_between_a_blocked_pair(world):
    alice, bob, carol = await world.person("alice"), await world.person("bob"), await world.person("carol")
    await alice.befriend(bob)
    await alice.befriend(carol)  # a witness: her offline marks the moment bob's would have come
    a = await alice.device(node=0)
    b, c = await bob.device(node=1), await carol.device(node=1)
    await a.wait_for(lambda: _changes(a, bob.id) == [True] and _changes(a, carol.id) == [True])
    await block(world, bob, alice)  # the blocked side asks
    unknown = {"online": False, "last_active_at": None}
    for me, other in ((alice, bob), (bob, alice)):
        got = await world.api.call("GET", f"/v1/presence?user_ids={other.id},{carol.id}", me.token)
        assert got["presence"][0] == {"user": other.id, **unknown}
        assert got["presence"][1]["online"] is True  # the others as before
    await a.send_frame({"type": "presence", "users": [bob.id, carol.id]})
    await a.wait_for(lambda: any(len(e["users"]) == 2 for e in a.events if e["type"] == "presence"))
    asked = next(e for e in a.events if e["type"] == "presence" and len(e["users"]) == 2)
    assert asked["users"][0] == {"user": bob.id, **unknown} and asked["users"][1]["online"] is True
    await b.close()
    await c.close()  # carol leaves with bob: her offline comes no earlier than bob's would
    await a.wait_for(lambda: _changes(a, carol.id) == [True, False],
                     timeout=5 * world.cluster.settings.presence_timeout_s)
    assert _changes(a, bob.id) == [True]  # no live change of bob any more


def _changes(device: Device, user: str) -> list[bool]:
    return [u["online"] for e in device.events if e["type"] == "presence" and len(e["users"]) == 1
            for u in e["users"] if u["user"] == user]


async def test_bad_block_requests_get_their_documented_codes(world):
    alice = await world.person("alice")
    me = await expect("bad_field", 400, world.api.call("PUT", f"/v1/blocks/{alice.id}", alice.token))
    assert me["field"] == "user_id"
    await expect("bad_field", 400, world.api.call("DELETE", f"/v1/blocks/{alice.id}", alice.token))
    await expect("bad_field", 400, world.api.call("PUT", "/v1/blocks/not-an-id", alice.token))
    await expect("unknown_user", 404, world.api.call("PUT", "/v1/blocks/aaaaaaaaaaaaaaaa", alice.token))
    await world.api.call("DELETE", "/v1/blocks/aaaaaaaaaaaaaaaa", alice.token)  # nothing to lift: 204
    await expect("bad_token", 401, world.api.call("PUT", "/v1/blocks/aaaaaaaaaaaaaaaa"))


async def test_an_unfriend_made_while_nats_is_away_still_makes_the_dm_read_only(world, cluster):
    """The control event may never reach the node (it was cut off from NATS when it passed): when NATS
    comes back the node reads its users' friends again."""
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    await a.send(conv, "before")
    cluster.stop_nats()
    try:
        await world.api.call("DELETE", f"/v1/friends/{alice.id}", bob.token)  # SQLite: no NATS needed
    finally:
        cluster.start_nats()
    await eventually(lambda: _refused_now(a, conv), timeout=40, every=0.5, what="alice's sends refused")


async def _refused_now(dev: Device, conv: str) -> bool:
    try:
        await dev.send(conv, "still friends?")
    except ApiError as err:
        return err.body["code"] == "not_friends"
    return False
