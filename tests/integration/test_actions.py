"""Replies, edits, deletes and reactions on a real cluster (ADR 0025, protocol.md §19): live on every device,
again after a reconnect's sync, and in HTTP history as the message is now; refusals with their codes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from parley.tools.client import ApiError, Device

from tests.integration.conftest import Person, World
from tests.poll import eventually

pytestmark = pytest.mark.integration


async def history(person: Person, conv: str) -> dict[int, dict[str, Any]]:
    page = await person.world.api.call("GET", f"/v1/conversations/{conv}/messages?order=asc&limit=200",
                                       person.token)
    return {m["id"]: m for m in page["messages"]}


async def refused(dev: Device, conv: str, body: str = "", **fields: Any) -> dict[str, Any]:
    with pytest.raises(ApiError) as err:
        await dev.send(conv, body, **fields)
    return err.value.body


async def pair(world: World) -> tuple[Person, Person, str]:
    alice, bob = await world.person("alice"), await world.person("bob")
    return alice, bob, await alice.befriend(bob)


async def test_an_edit_reaches_the_peers_other_device_and_history_marks_it_edited(world: World):
    alice, bob, conv = await pair(world)
    a, b1, b2 = await alice.device(node=0), await bob.device(node=0), await bob.device(node=1)
    sent = await a.send(conv, "helo bob")
    edit = await a.send(conv, "hello bob", kind="edit", target=sent["id"])
    for dev in (b1, b2, a):
        await dev.wait_for(lambda dev=dev: edit["id"] in dev.messages)
        got = dev.messages[edit["id"]]
        assert (got["kind"], got["target"], got["body"], got["prev"]) == ("edit", sent["id"], "hello bob", sent["id"])

    async def edited() -> bool:
        m = (await history(bob, conv))[sent["id"]]
        return m["body"] == "hello bob" and m.get("edited") is True and m["edited_at"] >= m["ts"]

    await eventually(edited, what="history shows the edit")
    assert (await history(bob, conv))[edit["id"]]["kind"] == "edit"  # the entry stays: the chain holds
    # a device that connects later gets the message as it is now from the store, and the edit entry
    b3 = await bob.device(node=1, cursor="")
    await b3.wait_for(lambda: edit["id"] in b3.messages)
    assert b3.messages[sent["id"]]["body"] == "hello bob" and b3.messages[sent["id"]]["edited"] is True


async def test_only_the_sender_edits_and_nothing_is_stored_for_a_refusal(world: World):
    alice, bob, conv = await pair(world)
    a, b = await alice.device(node=0), await bob.device(node=1)
    sent = await a.send(conv, "mine")
    err = await refused(b, conv, "yours now", kind="edit", target=sent["id"])
    assert (err["code"], err["target"]) == ("not_sender", sent["id"])
    assert (await refused(b, conv, "x", kind="edit", target=sent["id"] + 64 * 1000))["code"] == "unknown_message"
    assert (await refused(b, conv, "x", reply_to=sent["id"] + 1))["code"] == "unknown_message"  # not its shard
    after = await a.send(conv, "next")
    await b.wait_for(lambda: after["id"] in b.messages)
    assert b.messages[after["id"]]["prev"] == sent["id"]  # the refused edits are not in the chain


@pytest.fixture(scope="module")
def short_edits(cluster) -> Iterator[str]:
    url = cluster.start_extra_node("short-edits", edit_window_s=1.0)
    try:
        yield url
    finally:
        cluster.stop("short-edits")


async def test_an_edit_after_the_window_is_refused(world: World, short_edits: str):
    alice, _, conv = await pair(world)
    a = Device(world.http, short_edits, (await alice.login())["token"])
    alice.devices.append(a)
    await a.connect()
    await a.synced.wait()
    sent = await a.send(conv, "quick")

    async def closed() -> dict[str, Any] | None:
        try:
            await a.send(conv, "too late?", kind="edit", target=sent["id"])
        except ApiError as err:
            return err.body
        return None

    err = await eventually(closed, what="the edit window closes", timeout=15, every=0.3)
    assert (err["code"], err["window_s"]) == ("edit_window_closed", 1.0)


async def test_a_delete_leaves_a_tombstone_live_after_a_reconnect_and_in_history(world: World):
    alice, bob, conv = await pair(world)
    a, b = await alice.device(node=0), await bob.device(node=1)
    sent = await a.send(conv, "oops, secret")
    edit = await a.send(conv, "oops, still secret", kind="edit", target=sent["id"])
    reply = await b.send(conv, "what?", reply_to=sent["id"])
    await b.wait_for(lambda: reply["id"] in b.messages)
    assert b.messages[reply["id"]]["quote"] == {"from": alice.id, "body": "oops, still secret"}
    cursor = await b.cursor_after(reply["id"])
    await b.close()
    deleted = await a.send(conv, "", kind="delete", target=sent["id"])
    # live: alice's device gets the delete entry
    await a.wait_for(lambda: deleted["id"] in a.messages)
    assert (a.messages[deleted["id"]]["kind"], a.messages[deleted["id"]]["body"]) == ("delete", "")
    # bob reconnects with his cursor: the sync brings the delete
    b2 = await bob.device(node=0, cursor=cursor)
    await b2.wait_for(lambda: deleted["id"] in b2.messages)
    assert b2.messages[deleted["id"]]["target"] == sent["id"]

    async def tombstone() -> bool:
        rows = await history(bob, conv)
        return rows[sent["id"]].get("deleted") is True
    await eventually(tombstone, what="history shows the tombstone")
    rows = await history(bob, conv)
    assert rows[sent["id"]]["body"] == "" and "reactions" not in rows[sent["id"]]
    assert rows[edit["id"]]["body"] == "" and rows[reply["id"]]["quote"]["body"] == ""  # the text is gone
    assert rows[reply["id"]]["body"] == "what?"
    # a device syncing from the start sees the tombstone, never the text
    b3 = await bob.device(node=1, cursor="")
    await b3.wait_for(lambda: deleted["id"] in b3.messages)
    assert "secret" not in str([b3.messages[i] for i in (sent["id"], edit["id"], reply["id"])])
    # and after a delete: no reaction, no edit, no reply; a resent delete is a duplicate
    assert (await refused(a, conv, "x", kind="edit", target=sent["id"]))["code"] == "message_deleted"
    assert (await refused(b3, conv, "x", kind="react", target=sent["id"], emoji="👍"))["code"] == "message_deleted"
    assert (await refused(a, conv, "x", reply_to=sent["id"]))["code"] == "message_deleted"
    again = await a.send(conv, "", cid=deleted["cid"], kind="delete", target=sent["id"])
    assert (again["id"], again["duplicate"]) == (deleted["id"], True)


async def test_group_admins_delete_others_messages_plain_members_cannot(world: World):
    owner, admin, member = (await world.person("own"), await world.person("adm"), await world.person("mem"))
    for p in (admin, member):
        await owner.befriend(p)
    body = {"name": "team", "members": [admin.id, member.id]}
    conv = (await world.api.call("POST", "/v1/groups", owner.token, body))["conversation"]["id"]
    await world.api.call("PUT", f"/v1/groups/{conv}/members/{admin.id}/role", owner.token, {"role": "admin"})
    o, ad, me = await owner.device(node=0), await admin.device(node=1), await member.device(node=0)
    mine, theirs = await me.send(conv, "by the member"), await o.send(conv, "by the owner")
    assert (await refused(me, conv, kind="delete", target=theirs["id"]))["code"] == "not_sender"
    assert (await refused(ad, conv, "edited", kind="edit", target=mine["id"]))["code"] == "not_sender"
    gone = await ad.send(conv, "", kind="delete", target=mine["id"])
    own = await me.send(conv, "", kind="delete", target=(await me.send(conv, "again"))["id"])
    await o.wait_for(lambda: {gone["id"], own["id"]} <= set(o.messages))
    assert o.messages[gone["id"]]["from"] == admin.id

    async def tombstones() -> bool:
        rows = await history(owner, conv)
        return all(rows[i].get("deleted") for i in (mine["id"], o.messages[own["id"]]["target"]))
    await eventually(tombstones, what="both deletes in history")
    assert (await history(owner, conv))[theirs["id"]]["body"] == "by the owner"


async def test_reactions_add_and_remove_with_counts_exactly_once(world: World):
    alice, bob, conv = await pair(world)
    a, b = await alice.device(node=0), await bob.device(node=1)
    sent = await a.send(conv, "lunch?")
    first = await b.send(conv, "", cid="r-1", kind="react", target=sent["id"], emoji="👍")
    retry = await b.send(conv, "", cid="r-1", kind="react", target=sent["id"], emoji="👍")
    assert (retry["id"], retry["duplicate"], first["duplicate"]) == (first["id"], True, False)
    await b.send(conv, "", kind="react", target=sent["id"], emoji="👍")  # again, new cid: changes nothing
    await a.send(conv, "", kind="react", target=sent["id"], emoji="👍")
    await a.send(conv, "", kind="react", target=sent["id"], emoji="🍕")
    last = await a.send(conv, "", kind="unreact", target=sent["id"], emoji="🍕")
    await b.wait_for(lambda: last["id"] in b.messages)
    assert sum(1 for m in b.messages.values() if m.get("cid") == "r-1") == 1 and b.duplicates == 0

    async def counted() -> bool:
        return (await history(alice, conv))[sent["id"]].get("reactions") == {
            "👍": {"count": 2, "users": [bob.id, alice.id]}}
    await eventually(counted, what="history counts the reactions")
    bad = await refused(b, conv, kind="react", target=sent["id"], emoji="not one")
    assert (bad["code"], bad["field"]) == ("bad_field", "emoji")
