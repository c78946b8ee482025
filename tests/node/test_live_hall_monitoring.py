"""The hall's monitoring without servers: a reject counted by its screen's code (any code: rules merged
later need no change), masks and accepted sends per room, a fan-out's deliveries counted at once with one
latency observation, and the viewer count told to the other nodes and shown to viewers when it changes."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from parley.node.live.hall import LiveHall

from parley.errors import ParleyError
from parley.metrics import NodeMetrics
from parley.settings import Settings
from tests.node.test_live_hall import FakeViewer, send, sending_hall

ROOM = "r" * 16


def sample(h: LiveHall, name: str, **labels: str) -> float:
    return h._metrics.registry.get_sample_value(name, labels) or 0.0


async def test_rejects_masks_and_accepts_are_counted_per_room_by_code() -> None:
    h, _, _ = sending_hall()
    h.refresh_metrics()  # no viewers: the room is _other
    viewer = FakeViewer("u" * 16)
    with pytest.raises(ParleyError):
        await h.send(viewer, send("spam spam", cid="c1"))
    await h.send(viewer, send("oh darn", cid="c2"))
    await h.send(viewer, send("fine", cid="c3"))
    assert sample(h, "parley_live_room_blocked_total", room="_other", reason="flooding") == 1
    assert sample(h, "parley_live_room_masked_total", room="_other") == 1
    assert sample(h, "parley_live_room_messages_in_total", room="_other") == 2


async def test_a_fan_out_counts_its_deliveries_at_once_and_the_latency_once() -> None:
    h, _, _ = sending_hall()
    viewers = [FakeViewer(f"v{i}") for i in range(3)]
    for v in viewers:
        h.viewers.expect(ROOM, v)
        h.viewers.admit(ROOM, v, after=0)
    h.refresh_metrics()
    assert sample(h, "parley_live_room_viewers", room=ROOM) == 3
    h.hand_out(ROOM, b"frame", 7, sent_ms=int(time.time() * 1000) - 40)
    h.hand_out(ROOM, b"event", 0)  # an event: not a message
    assert sample(h, "parley_live_room_messages_out_total", room=ROOM) == 3
    assert sample(h, "parley_live_room_delivery_seconds_count", room=ROOM) == 1
    assert 0.03 < sample(h, "parley_live_room_delivery_seconds_sum", room=ROOM) < 5


class CountBus:
    def __init__(self) -> None:
        self.told: list[tuple[str, dict[str, Any]]] = []  # on live.cnt.<room>
        self.stored: list[tuple[str, int]] = []  # into the live_viewers bucket

    def jetstream(self) -> None:
        return None

    async def publish(self, subject: str, payload: bytes) -> None:
        if subject.startswith("$KV.live_viewers."):
            self.stored.append((subject.removeprefix("$KV.live_viewers."), int(payload)))
        else:
            self.told.append((subject, orjson.loads(payload)))


async def test_counts_are_told_to_the_other_nodes_and_totals_shown_to_viewers() -> None:
    bus = CountBus()
    h = LiveHall(Settings(), bus, None, None, NodeMetrics(), [], node="n1")  # type: ignore[arg-type]
    v = FakeViewer("a")
    h.viewers.expect(ROOM, v)
    h.viewers.admit(ROOM, v, after=0)
    await h.tell_counts()
    assert bus.told == [("live.cnt." + ROOM, {"node": "n1", "viewers": 1})]
    await h._on_count(SimpleNamespace(subject="live.cnt." + ROOM, data=b'{"node": "n2", "viewers": 4}'))
    await h._on_count(SimpleNamespace(subject="live.cnt." + ROOM, data=b"not json"))
    await h.tell_counts()
    assert len(bus.told) == 2  # n2 is new: owed our count
    await h.tell_counts()
    assert len(bus.told) == 2  # nothing changed
    shown = [orjson.loads(f) for f in v.got if b"live_viewers" in f]
    assert shown == [{"type": "live_viewers", "room": ROOM, "viewers": 1},
                     {"type": "live_viewers", "room": ROOM, "viewers": 5}]
    assert bus.stored == [(ROOM, 1), (ROOM, 5)]  # n1 < n2: n1 keeps the total for the API
    h.viewers.leave(ROOM, v)
    await h.tell_counts()
    assert bus.told[-1] == ("live.cnt." + ROOM, {"node": "n1", "viewers": 0}) and list(h.audience.told()) == []
