"""The send path: a connection has several sends in flight, and nothing else waits for them."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

pytestmark = pytest.mark.integration

BURST = 200
PEERS = 4


def record_arrivals(dev: Any) -> list[tuple[str, str]]:
    """Every ack, error and pong the device gets, in the order they arrive: (type, cid or ping ts)."""
    arrivals: list[tuple[str, str]] = []
    on_frame = dev._on_frame

    def recording(f: dict[str, Any]) -> None:
        if f.get("type") in ("ack", "pong", "error"):
            arrivals.append((f["type"], str(f.get("cid") or f.get("ts") or f.get("ref"))))
        on_frame(f)

    dev._on_frame = recording
    return arrivals


async def test_pings_are_answered_while_a_burst_of_sends_is_in_flight(world):
    alice = await world.person("alice")
    peers = [await world.person("peer") for _ in range(PEERS)]
    convs = [await alice.befriend(p) for p in peers]
    a = await alice.device(node=0)
    arrivals = record_arrivals(a)
    sent: dict[str, list[str]] = {conv: [] for conv in convs}  # per conversation, cids in send order
    rotation = itertools.cycle(convs)
    for i in range(BURST):
        conv = next(rotation)
        cid = f"burst-{i}"
        sent[conv].append(cid)
        await a.send_frame({"type": "send", "cid": cid, "conv": conv, "body": cid})
        if i % 10 == 9:
            await a.send_frame({"type": "ping", "ts": i})
    await a.wait_for(lambda: len(a.acks) + len(a.errors) >= BURST and len(a.pongs) == BURST // 10, timeout=60)
    assert a.errors == []

    kinds = [kind for kind, _ in arrivals]
    last_ack = len(kinds) - 1 - kinds[::-1].index("ack")
    last_pong = max(i for i, k in enumerate(kinds) if k == "pong")
    assert last_pong < last_ack, "every pong must come before the burst's last ack: pings do not wait for publishes"
    assert [int(ts) for kind, ts in arrivals if kind == "pong"] == list(range(9, BURST, 10))

    for conv, cids in sent.items():
        acked = [cid for kind, cid in arrivals if kind == "ack" and cid in set(cids)]
        assert acked == cids, "one conversation's acks come in send order"
        ids = [a.acks[cid]["id"] for cid in cids]
        assert ids == sorted(ids) and not any(a.acks[cid]["duplicate"] for cid in cids)
        history = await world.api.call("GET", f"/v1/conversations/{conv}/messages", alice.token,
                                       params={"limit": 200, "order": "asc"})
        stored = history["messages"]
        assert [m["cid"] for m in stored] == cids, "stored once each, in send order"
        assert [m["id"] for m in stored] == ids
        assert [m["prev"] for m in stored[1:]] == ids[:-1], "the prev chain is exact"


async def test_a_refused_send_does_not_hold_up_the_others(world):
    alice, bob, carol, dave = [await world.person(n) for n in ("alice", "bob", "carol", "dave")]
    ours = await alice.befriend(bob)
    theirs = await carol.befriend(dave)  # not alice's: refused with not_member
    a = await alice.device(node=0)
    for i in range(5):
        await a.send_frame({"type": "send", "cid": f"ok-{i}", "conv": ours, "body": str(i)})
        await a.send_frame({"type": "send", "cid": f"no-{i}", "conv": theirs, "body": str(i)})
    await a.wait_for(lambda: len(a.acks) == 5 and len(a.errors) == 5)
    assert sorted(e["ref"] for e in a.errors) == [f"no-{i}" for i in range(5)]
    assert {e["code"] for e in a.errors} == {"not_member"}
    ids = [a.acks[f"ok-{i}"]["id"] for i in range(5)]
    assert ids == sorted(ids)
    pong = len(a.pongs)
    await a.send_frame({"type": "ping", "ts": 1})
    await a.wait_for(lambda: len(a.pongs) > pong)  # the connection stays
