"""Typing indicators and SENT → DELIVERED → READ receipts, end to end on a real cluster."""

from __future__ import annotations

import pytest
from parley.tools.client import ApiError

from tests.integration.test_groups import befriend_all, new_group, people
from tests.poll import eventually

pytestmark = pytest.mark.integration


def of(device, kind: str, **match) -> list[dict]:
    return [e for e in device.events if e["type"] == kind and all(e.get(k) == v for k, v in match.items())]


async def test_dm_receipts_go_sent_delivered_read_and_sync_to_the_readers_other_device(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    b_phone, b_laptop = await bob.device(node=1), await bob.device(node=1)
    ack = await a.send(conv, "did you get this?")
    assert ack["status"] == "sent"
    await a.wait_for(lambda: of(a, "receipt", status="delivered", user=bob.id, upto=ack["id"]))
    await b_phone.send_frame({"type": "read", "conv": conv, "upto": ack["id"]})
    read = {"status": "read", "user": bob.id, "upto": ack["id"], "conv": conv}
    await a.wait_for(lambda: of(a, "receipt", **read))
    await b_laptop.wait_for(lambda: of(b_laptop, "receipt", **read))  # the reader's other device
    # both of bob's devices acked, on one node: one receipt (a node announces each new mark once)
    assert len(of(a, "receipt", status="delivered", user=bob.id)) == 1
    assert not of(b_phone, "receipt", status="delivered", user=alice.id)  # own messages: no receipts
    # a delivered mark is news to the other member only: bob's devices are not told what one of them acked
    # (the read receipt left bob's node after the delivered one, on the same subject: both were handled)
    await b_phone.wait_for(lambda: of(b_phone, "receipt", **read))
    assert not of(b_phone, "receipt", status="delivered", user=bob.id)
    assert not of(b_laptop, "receipt", status="delivered", user=bob.id)
    marks = await world.api.call("GET", f"/v1/conversations/{conv}/receipts", alice.token)
    assert {r["user_id"]: (r["delivered"], r["read"]) for r in marks["receipts"]} == {
        bob.id: (ack["id"], ack["id"]), alice.id: (0, 0)}


async def test_group_read_cursors_per_member(world):
    owner, m1, m2 = await people(world, 3, "r")
    await befriend_all(owner, [m1, m2])
    conv = await new_group(owner, [m1, m2])
    d0, d1, d2 = [await p.device(node=i % 2) for i, p in enumerate((owner, m1, m2))]
    ids = [(await d0.send(conv, f"m{i}"))["id"] for i in range(3)]
    await d1.wait_for(lambda: ids[-1] in d1.messages)
    d1b = await m1.device(node=0)  # m1's second device
    await d1.send_frame({"type": "read", "conv": conv, "upto": ids[1]})
    await d1b.wait_for(lambda: of(d1b, "receipt", status="read", user=m1.id, upto=ids[1]))  # the reader's devices
    await d0.wait_for(lambda: of(d0, "receipt", status="delivered", user=m2.id, upto=ids[-1]))  # the sender
    # Nothing more may come, and no fixed wait decides it: typing goes out on the group's event subject,
    # where a broadcast receipt would go too. A typing frame from each node, published after every ack
    # and read above was handled there, comes after any receipt broadcast before it (NATS keeps one
    # publisher's order to each subscriber).
    await d1b.send_frame({"type": "ping"})  # node1 has handled d1b's ack once this comes back
    await d1b.wait_for(lambda: d1b.pongs)
    await d0.send_frame({"type": "typing", "conv": conv})  # node1: after d2's acks (d0 has their receipt)
    await d1.send_frame({"type": "typing", "conv": conv})  # node2: after d1's acks and read
    await d2.wait_for(lambda: {owner.id, m1.id} <= {e["from"] for e in of(d2, "typing")})
    await d1.wait_for(lambda: of(d1, "typing", **{"from": owner.id}))
    # in a group receipts are not broadcast (members² frames a message): others read the marks on demand
    assert not of(d2, "receipt", user=m1.id) and not of(d1, "receipt", user=m2.id)
    marks = await world.api.call("GET", f"/v1/conversations/{conv}/receipts", m2.token)
    got = {r["user_id"]: r for r in marks["receipts"]}
    assert got[m1.id]["read"] == ids[1] and got[m2.id]["read"] == 0

    async def delivered_saved() -> bool:  # delivered marks are saved with the cursors, every cursor_flush_s
        marks = await world.api.call("GET", f"/v1/conversations/{conv}/receipts", owner.token)
        saved = {r["user_id"]: r["delivered"] for r in marks["receipts"]}.get(m2.id)
        assert saved == ids[-1], f"m2's saved delivered mark is {saved}"
        return True

    await eventually(delivered_saved, timeout=10 * world.cluster.settings.cursor_flush_s,
                     what="m2's delivered mark saved")


async def test_typing_reaches_the_others_once_per_interval_and_expires(world):
    owner, m1, m2 = await people(world, 3, "t")
    await befriend_all(owner, [m1, m2])
    conv = await new_group(owner, [m1, m2])
    d0, d0b, d1, d2 = [await owner.device(node=0), await owner.device(node=1), await m1.device(node=1),
                       await m2.device(node=0)]
    for _ in range(5):  # a keystroke each: one indicator
        await d0.send_frame({"type": "typing", "conv": conv})
    await d1.wait_for(lambda: of(d1, "typing", conv=conv))
    await d2.wait_for(lambda: of(d2, "typing", conv=conv))
    event = of(d1, "typing")[0]
    assert (event["from"], event["device"], event["state"]) == (owner.id, d0.welcome["device"], "start")
    assert event["ttl_ms"] == 6000  # receivers show it for this long unless refreshed
    await d0.send_frame({"type": "typing", "conv": conv, "state": "stop"})
    await d1.wait_for(lambda: of(d1, "typing", state="stop"))
    assert len(of(d1, "typing", state="start")) == 1 and not of(d0b, "typing")  # not to the typist's devices
    assert not d0.errors


async def test_signal_errors_have_codes(world):
    alice, bob, eve = await world.person("alice"), await world.person("bob"), await world.person("eve")
    conv = await alice.befriend(bob)
    a, e = await alice.device(node=0), await eve.device(node=1)
    sent = await a.send(conv, "hi")
    await a.send_frame({"type": "read", "conv": conv, "upto": sent["id"] + 1000})
    await a.wait_for(lambda: a.errors)
    assert (a.errors[-1]["code"], a.errors[-1]["cursor"]) == ("bad_cursor", sent["id"])
    await e.send_frame({"type": "typing", "conv": conv})
    await e.wait_for(lambda: e.errors)
    assert e.errors[-1]["code"] == "not_member"
    await e.send_frame({"type": "typing", "conv": conv, "state": "maybe"})
    await e.wait_for(lambda: len(e.errors) == 2)
    assert (e.errors[-1]["code"], e.errors[-1]["field"]) == ("bad_field", "state")
    # a typing flood's rate_limited: tests/integration/test_limits.py (this cluster's budgets are raised)
    with pytest.raises(ApiError) as denied:
        await world.api.call("GET", f"/v1/conversations/{conv}/receipts", eve.token)
    assert (denied.value.status, denied.value.code) == (403, "not_member")
    again = await a.send(conv, "still fine")  # nothing lost, the connection stays
    assert again["status"] == "sent"
