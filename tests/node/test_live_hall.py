"""The hall without servers: one frame's bytes to every viewer, a slow viewer dropped, events kept for a
viewer still joining; the send path: screened (masked, or rejected and never published), published with its
dedup id, answered."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from parley.node.live.hall import LiveHall

from parley.errors import Forbidden, RateLimited
from parley.live.rooms import RoomMeta
from parley.live.screening import Attempt, Verdict
from parley.metrics import NodeMetrics
from parley.protocol import LiveSend
from parley.settings import Settings


class FakeViewer:
    def __init__(self, user: str, waiting: int = 0) -> None:
        self.user, self._waiting, self.got = user, waiting, []  # type: ignore[var-annotated]

    def send(self, frame: bytes) -> None:
        self.got.append(frame)

    def waiting(self) -> int:
        return self._waiting


class NoBus:
    def jetstream(self) -> Any:
        return None


def hall(queue: int = 4) -> LiveHall:
    return LiveHall(Settings(live_viewer_queue=queue), NoBus(), None, None, NodeMetrics(), [])  # type: ignore[arg-type]


async def test_every_viewer_gets_the_same_bytes_and_a_slow_one_is_dropped() -> None:
    h = hall(queue=4)
    fast, other, slow = FakeViewer("a"), FakeViewer("b"), FakeViewer("c", waiting=4)
    for v in (fast, other, slow):
        h.viewers.expect("r", v)
        h.viewers.admit("r", v, after=0)
    frame = b'{"type":"live_msg","room":"r","id":9}'
    h.hand_out("r", frame, 9)
    assert fast.got[0] is frame and other.got[0] is frame  # encoded once, shared
    assert [orjson.loads(f) for f in slow.got] == [{"type": "live_dropped", "room": "r", "reason": "slow"}]
    assert list(h.viewers.of("r")) == [fast, other] and h.viewers.total == 2
    h.hand_out("r", b"next", 10)
    assert slow.got[-1] != b"next" and fast.got[-1] == b"next"


async def test_frames_for_a_joining_viewer_wait_for_its_backlog() -> None:
    h = hall()
    v = FakeViewer("a")
    h.viewers.expect("r", v)
    h.hand_out("r", b"m5", 5)
    h.hand_out("r", b"deleted", 0)
    assert v.got == []
    assert h.viewers.admit("r", v, after=5) == [b"deleted"]


class Stream:
    """The ``LIVE`` stream as the send path sees it: publishes and their acks."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any], dict[str, str]]] = []

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> Any:
        duplicate = any(h == headers for _, _, h in self.published)
        if not duplicate:
            self.published.append((subject, orjson.loads(payload), headers))

        seq = next(i for i, (_, _, h) in enumerate(self.published, 1) if h == headers)
        return SimpleNamespace(seq=seq, duplicate=duplicate)


class Bus:
    def __init__(self) -> None:
        self.stream = Stream()

    def jetstream(self) -> Stream:
        return self.stream


class OneRoom:
    def __init__(self, meta: RoomMeta) -> None:
        self.meta = meta

    async def get(self, room: str) -> tuple[RoomMeta, int]:
        return self.meta, 1


class Screen:
    """Masks "darn", rejects "spam"; counts what the chain accepted."""

    def __init__(self) -> None:
        self.accepted_texts: list[str] = []

    async def screen(self, attempt: Attempt) -> Verdict:
        if "spam" in attempt.text:
            return Verdict("reject", code="flooding", retry_after_s=1.5, reason="too fast")
        if "darn" in attempt.text:
            return Verdict("mask", text=attempt.text.replace("darn", "****"))
        return Verdict("accept")

    def accepted(self, attempt: Attempt, text: str) -> None:
        self.accepted_texts.append(text)


def sending_hall(state: str = "open") -> tuple[LiveHall, Bus, Screen]:
    bus, screen = Bus(), Screen()
    meta = RoomMeta(id="r" * 16, owner="o" * 16, title="t", state=state)  # type: ignore[arg-type]
    h = LiveHall(Settings(), bus, OneRoom(meta), None, NodeMetrics(), [screen])  # type: ignore[arg-type]
    h._joined_at["u" * 16] = 0  # no store here: the sender signed up long ago
    return h, bus, screen


def send(text: str, cid: str = "c1") -> LiveSend:
    return LiveSend(room="r" * 16, cid=cid, body=text)


async def test_a_send_is_screened_masked_published_and_answered() -> None:
    h, bus, screen = sending_hall()
    viewer = FakeViewer("u" * 16)
    await h.send(viewer, send("oh darn"))
    [(subject, payload, headers)] = bus.stream.published
    assert (subject, payload["body"], headers) == ("live.msg." + "r" * 16, "oh ****", {"Nats-Msg-Id": "u" * 16 + ".c1"})
    assert orjson.loads(viewer.got[-1]) == {"type": "live_sent", "room": "r" * 16, "cid": "c1", "id": 1,
                                           "duplicate": False, "masked": True}
    assert screen.accepted_texts == ["oh ****"]
    await h.send(viewer, send("oh darn"))  # the same cid again: stored once, counted once
    assert len(bus.stream.published) == 1 and screen.accepted_texts == ["oh ****"]


async def test_a_rejected_send_is_never_published() -> None:
    h, bus, screen = sending_hall()
    with pytest.raises(RateLimited) as err:
        await h.send(FakeViewer("u" * 16), send("spam spam", cid="c2"))
    assert (err.value.code, err.value.details["ref"], err.value.details["retry_after_ms"]) == ("flooding", "c2", 1501)
    assert bus.stream.published == [] and screen.accepted_texts == []


async def test_a_closed_room_refuses_before_any_screen() -> None:
    h, bus, screen = sending_hall(state="closed")
    with pytest.raises(Forbidden) as err:
        await h.send(FakeViewer("u" * 16), send("hello"))
    assert (err.value.code, err.value.details["state"]) == ("room_closed", "closed")
    assert bus.stream.published == []
