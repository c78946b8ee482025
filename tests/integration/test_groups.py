"""Groups on a real cluster: 100 members over two nodes, the cap, live membership changes, sync."""

from __future__ import annotations

import asyncio

import nats
import orjson
import pytest
from parley.tools.client import ApiError, Device

from tests.integration.conftest import Person, World
from tests.poll import eventually

pytestmark = pytest.mark.integration


async def befriend_all(owner: Person, others: list[Person]) -> None:
    api = owner.world.api

    async def both_ways(other: Person) -> None:
        await api.call("POST", "/v1/friends", owner.token, {"user_id": other.id})
        await api.call("POST", "/v1/friends", other.token, {"user_id": owner.id})

    await asyncio.gather(*(both_ways(o) for o in others))


async def people(world: World, n: int, prefix: str) -> list[Person]:
    out: list[Person] = []
    for start in range(0, n, 20):  # Argon2 for each signup and login: a few at a time
        out += await asyncio.gather(*(world.person(prefix) for _ in range(start, min(n, start + 20))))
    return out


async def new_group(owner: Person, members: list[Person], name: str = "team") -> str:
    body = {"name": name, "members": [m.id for m in members]}
    return str((await owner.world.api.call("POST", "/v1/groups", owner.token, body))["conversation"]["id"])


async def test_a_group_of_100_over_two_nodes_gets_every_message_once_in_one_order(world):
    owner, *rest = await people(world, 100, "g")
    await befriend_all(owner, rest)
    conv = await new_group(owner, rest)
    everyone = [owner, *rest]
    # every member on a node, every third one with a second device on the other node
    wanted = [(p, i % 2) for i, p in enumerate(everyone)] + [(p, (i + 1) % 2) for i, p in enumerate(everyone)
                                                             if i % 3 == 0]
    devices: list[Device] = []
    for start in range(0, len(wanted), 20):
        chunk = wanted[start:start + 20]
        devices += await asyncio.gather(*(p.device(node=n) for p, n in chunk))
    senders = devices[:12]
    acks = await asyncio.gather(*(s.send(conv, f"from {k} #{j}") for j in range(3) for k, s in enumerate(senders)))
    ids = sorted(a["id"] for a in acks)
    for d in devices:
        await d.wait_for(lambda d=d: set(ids) <= set(d.messages), timeout=20)
    history = await world.api.call("GET", f"/v1/conversations/{conv}/messages?order=asc&limit=200", owner.token)
    order = [m["id"] for m in history["messages"]]
    assert order == ids
    for d in devices:
        assert [i for i in d.order if i in set(ids)] == order and d.duplicates == 0
    # the 101st member is refused and nothing changes
    extra = await world.person("late")
    await befriend_all(owner, [extra])
    with pytest.raises(ApiError) as full:
        await world.api.call("POST", f"/v1/groups/{conv}/members", owner.token, {"user_ids": [extra.id]})
    assert (full.value.status, full.value.code, full.value.body["limit"]) == (409, "group_full", 100)
    group = await world.api.call("GET", f"/v1/groups/{conv}", owner.token)
    assert len(group["conversation"]["members"]) == 100 and extra.id not in group["conversation"]["members"]


async def test_membership_changes_apply_live(world):
    owner, stays, goes, joins = await people(world, 4, "m")
    await befriend_all(owner, [stays, goes, joins])
    conv = await new_group(owner, [stays, goes])
    d_owner, d_stays, d_goes, d_joins = [await p.device(node=i % 2) for i, p in enumerate((owner, stays, goes, joins))]
    first = await d_owner.send(conv, "hello all")
    await d_goes.wait_for(lambda: first["id"] in d_goes.messages)
    await world.api.call("DELETE", f"/v1/groups/{conv}/members/{goes.id}", owner.token)
    await d_goes.wait_for(lambda: any(f.get("event") == "left" for f in d_goes.events))
    await world.api.call("POST", f"/v1/groups/{conv}/members", owner.token, {"user_ids": [joins.id]})
    await d_joins.wait_for(lambda: any(f.get("event") == "joined" for f in d_joins.events))
    after = [(await d_owner.send(conv, f"after {i}"))["id"] for i in range(5)]
    await d_stays.wait_for(lambda: set(after) <= set(d_stays.messages))
    await d_joins.wait_for(lambda: set(after) <= set(d_joins.messages))
    assert [i for i in d_joins.order if i in after] == after and d_joins.duplicates == 0
    # No fixed wait for "nothing more": d_owner is on d_goes's node, where one delivery goes to every
    # member's link at once; so once d_owner has them, a frame queued for d_goes would be ahead of a pong.
    await d_owner.wait_for(lambda: set(after) <= set(d_owner.messages))
    await d_goes.send_frame({"type": "ping"})
    await d_goes.wait_for(lambda: d_goes.pongs)
    assert not set(after) & set(d_goes.messages)  # removed: nothing more
    with pytest.raises(ApiError):
        await d_goes.send(conv, "let me back")
    assert d_goes.errors[-1]["code"] == "not_member"
    with pytest.raises(ApiError) as denied:
        await world.api.call("GET", f"/v1/conversations/{conv}/messages", goes.token)
    assert (denied.value.status, denied.value.code) == (403, "not_member")
    sent = await d_joins.send(conv, "thanks for adding me")  # an added member sends at once
    await d_owner.wait_for(lambda: sent["id"] in d_owner.messages)


async def test_a_member_who_was_away_syncs_the_group_exactly(world):
    owner, member = await people(world, 2, "s")
    await befriend_all(owner, [member])
    conv = await new_group(owner, [member])
    d_owner = await owner.device(node=0)
    d_member = await member.device(node=1)
    first = await d_owner.send(conv, "before")
    cursor = await d_member.cursor_after(first["id"])
    login = d_member.login
    await d_member.close()
    missed = [(await d_owner.send(conv, f"missed {i}"))["id"] for i in range(30)]
    again = Device(world.http, world.cluster.node_url(0), login["token"])
    await again.connect(cursor=cursor)
    await again.synced.wait()
    assert again.order == missed and again.duplicates == 0
    await again.close()


async def test_members_acking_together_each_reach_the_sender_as_delivered_in_gathered_receipts(world):
    """Group delivered receipts to one sender go over the bus gathered (``receipts``, ADR 0048) and come out as the
    same ``receipt`` frames as before: one per member, with the mark the member acked."""
    owner, *members = await people(world, 5, "rc")
    await befriend_all(owner, members)
    conv = await new_group(owner, members)
    sender = await owner.device(node=0)
    devices = [await m.device(node=i % 2) for i, m in enumerate(members)]  # two members on each node
    for d in devices:
        d.auto_ack = False  # they ack below, all at once: within one gathering window on each node
    bus = await nats.connect(**world.cluster.admin_connect_options())
    seen: list[dict] = []

    async def watch(msg) -> None:
        seen.append(orjson.loads(msg.data))

    await bus.subscribe(f"rcpt.user.{owner.id}", cb=watch)
    await bus.flush()
    try:
        ids = [(await sender.send(conv, f"m{i}"))["id"] for i in range(3)]
        cursors = await asyncio.gather(*(d.cursor_after(ids[-1]) for d in devices))
        await asyncio.gather(*(d.ack(c) for d, c in zip(devices, cursors, strict=True)))

        def receipts() -> dict[str, list[int]]:
            got: dict[str, list[int]] = {}
            for e in sender.events:
                if e["type"] == "receipt" and e["status"] == "delivered" and e["conv"] == conv:
                    got.setdefault(e["user"], []).append(e["upto"])
            return got

        await sender.wait_for(lambda: len(receipts()) == len(members))
        assert receipts() == {m.id: [ids[-1]] for m in members}  # each member's mark, once
        rows = sorted((conv, m.id, ids[-1]) for m in members)
        await eventually(lambda: sorted(tuple(r) for e in seen for r in e.get("delivered", ())) == rows,
                         what="the test's own subscription saw every gathered mark")
        assert {e["kind"] for e in seen} == {"receipts"}  # gathered: no message of one receipt on the bus
        assert len(seen) <= len(members)
    finally:
        await bus.close()


async def test_group_errors_have_codes_and_change_nothing(world):
    owner, admin, member, stranger, outsider = await people(world, 5, "e")
    await befriend_all(owner, [admin, member, stranger])
    conv = await new_group(owner, [admin, member])
    api = world.api

    async def refused(method: str, path: str, token: str, body=None) -> tuple[int, str]:
        with pytest.raises(ApiError) as info:
            await api.call(method, path, token, body)
        return info.value.status, info.value.code

    unknown = "g." + "a" * 16
    assert await refused("GET", f"/v1/groups/{unknown}", owner.token) == (404, "unknown_conversation")
    assert await refused("GET", f"/v1/groups/{conv}", outsider.token) == (403, "not_member")
    assert await refused("PATCH", f"/v1/groups/{conv}", member.token, {"name": "mine"}) == (403, "not_admin")
    assert await refused("POST", f"/v1/groups/{conv}/members", member.token,
                         {"user_ids": [stranger.id]}) == (403, "not_admin")
    assert await refused("POST", f"/v1/groups/{conv}/members", owner.token,
                         {"user_ids": [outsider.id]}) == (403, "not_friends")
    assert await refused("POST", "/v1/groups", owner.token, {"name": " ", "members": []}) == (400, "bad_field")
    assert await refused("POST", "/v1/groups", owner.token, {"name": "x", "members": "all"}) == (400, "bad_field")
    await api.call("PUT", f"/v1/groups/{conv}/members/{admin.id}/role", owner.token, {"role": "admin"})
    assert await refused("DELETE", f"/v1/groups/{conv}/members/{owner.id}", admin.token) == (403, "not_admin")
    assert await refused("PUT", f"/v1/groups/{conv}/members/{member.id}/role", admin.token,
                         {"role": "admin"}) == (403, "not_admin")
    await api.call("PATCH", f"/v1/groups/{conv}", admin.token, {"name": "renamed"})
    group = (await api.call("GET", f"/v1/groups/{conv}", member.token))["conversation"]
    assert group["name"] == "renamed" and group["roles"] == {owner.id: "owner", admin.id: "admin"}
    assert sorted(m["id"] for m in group["members"]) == sorted([owner.id, admin.id, member.id])
    d = await outsider.device(node=0)
    with pytest.raises(ApiError):
        await d.send(conv, "hi")
    assert d.errors[-1]["code"] == "not_member"
    with pytest.raises(ApiError):
        await d.send(unknown, "hi")
    assert d.errors[-1]["code"] == "unknown_conversation"
    await api.call("DELETE", f"/v1/groups/{conv}/members/{owner.id}", owner.token)  # the owner leaves
    group = (await api.call("GET", f"/v1/groups/{conv}", member.token))["conversation"]
    assert group["roles"] == {admin.id: "owner"} and owner.id not in [m["id"] for m in group["members"]]
    listed = await api.call("GET", "/v1/groups", member.token)
    assert [g["id"] for g in listed["groups"]] == [conv]
