"""What a node publishes for a group's delivered receipts, on a real nats-server: each sender's gathered into one
``receipts`` message per window (ADR 0048), everything gathered at once when the node stops, and one ``receipt``
each with the gathering off (what nodes before it read: the rolling upgrade's setting)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import nats
import orjson
from parley.node.events import ConversationEvents
from parley.node.hub import Hub

from parley.settings import Settings
from tests.poll import eventually

A, B = "g.aaaaaaaaaaaaaaaa", "g.bbbbbbbbbbbbbbbb"  # two groups' ids


@dataclass
class Acker:
    user: str  # all ``delivered`` reads of the acking device


async def watched(nats_url: str, events_of: list[str]) -> tuple[Any, dict[str, list[dict[str, Any]]]]:
    """A connection and what it hears on the senders' receipt subjects."""
    nc = await nats.connect(nats_url)
    seen: dict[str, list[dict[str, Any]]] = {s: [] for s in events_of}
    for sender in events_of:
        async def heard(msg: Any, sender: str = sender) -> None:
            seen[sender].append(orjson.loads(msg.data))

        await nc.subscribe(f"rcpt.user.{sender}", cb=heard)
    await nc.flush()
    return nc, seen


def events(nats_url: str, nc: Any, gather_s: float) -> ConversationEvents:
    settings = Settings(nats_url=nats_url, receipt_gather_s=gather_s)
    return ConversationEvents(settings, cast(Any, None), nc, cast(Any, None), Hub(), cast(Any, None))


async def test_a_senders_receipts_from_several_members_go_as_one_message_with_each_members_highest_mark(nats_url):
    nc, seen = await watched(nats_url, ["s1", "s2"])
    try:
        ev = events(nats_url, nc, 0.2)
        await ev.delivered(cast(Any, Acker("m1")), {A: (5, {"s1", "s2"})})
        await ev.delivered(cast(Any, Acker("m2")), {A: (4, {"s1"})})
        await ev.delivered(cast(Any, Acker("m1")), {A: (7, {"s1"}), B: (3, {"s1"})})
        await eventually(lambda: seen["s1"] and seen["s2"], what="a batch for each sender")
        assert seen["s1"] == [{"kind": "receipts", "delivered": [[A, "m1", 7], [A, "m2", 4], [B, "m1", 3]]}]
        assert seen["s2"] == [{"kind": "receipts", "delivered": [[A, "m1", 5]]}]
        await ev.close()
    finally:
        await nc.close()


async def test_a_node_stopping_publishes_what_it_gathered_without_waiting_out_the_window(nats_url):
    nc, seen = await watched(nats_url, ["s"])
    try:
        ev = events(nats_url, nc, 1.0)  # the longest window: closing well within it is closing at once
        await ev.delivered(cast(Any, Acker("m")), {A: (9, {"s"})})
        await ev.close()
        await eventually(lambda: seen["s"], what="the gathered batch", timeout=0.5)
        assert seen["s"] == [{"kind": "receipts", "delivered": [[A, "m", 9]]}]
    finally:
        await nc.close()


async def test_with_the_gathering_off_each_receipt_goes_alone_as_before(nats_url):
    nc, seen = await watched(nats_url, ["s1", "s2"])
    try:
        ev = events(nats_url, nc, 0.0)
        await ev.delivered(cast(Any, Acker("m")), {A: (5, {"s1", "s2"})})
        await eventually(lambda: seen["s1"] and seen["s2"], what="a receipt for each sender")
        for sender in ("s1", "s2"):
            assert seen[sender] == [{"kind": "receipt", "user": "m", "status": "delivered", "upto": 5, "conv": A}]
    finally:
        await nc.close()
