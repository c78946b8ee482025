"""LinkSends: the lanes run side by side, each in order, and the reader waits only at the cap."""

from __future__ import annotations

import asyncio

from parley.node.sending import LinkSends

from parley import protocol
from tests.poll import eventually


def send(conv: str, cid: str) -> protocol.Send:
    return protocol.Send(cid=cid, conv=conv, body=cid)


class Publishes:
    """An ``answer`` whose publishes finish when the test says so."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.answered: list[str] = []
        self.admitted: dict[str, float] = {}
        self._gates: dict[str, asyncio.Event] = {}

    async def __call__(self, frame: protocol.Send, admitted: float) -> None:
        self.started.append(frame.cid)
        self.admitted[frame.cid] = admitted
        await self._gate(frame.cid).wait()
        self.answered.append(frame.cid)

    def release(self, cid: str) -> None:
        self._gate(cid).set()

    def _gate(self, cid: str) -> asyncio.Event:
        return self._gates.setdefault(cid, asyncio.Event())


async def test_conversations_publish_side_by_side_and_each_in_order() -> None:
    pubs = Publishes()
    sends = LinkSends(8, pubs)
    for conv, cid in (("a", "a1"), ("a", "a2"), ("b", "b1")):
        await sends.wait_room()
        sends.admit(send(conv, cid))
    await eventually(lambda: pubs.started == ["a1", "b1"], what="a1 and b1 publishing")  # a2 waits for a1
    pubs.release("b1")
    pubs.release("a2")  # released early: it still starts only after a1
    await eventually(lambda: pubs.answered == ["b1"], what="b1 answered")
    assert pubs.started == ["a1", "b1"]
    pubs.release("a1")
    await eventually(lambda: pubs.answered == ["b1", "a1", "a2"], what="a1 then a2 answered")


async def test_the_reader_waits_at_the_cap_until_one_is_answered() -> None:
    pubs = Publishes()
    sends = LinkSends(2, pubs)
    sends.admit(send("a", "a1"))
    sends.admit(send("b", "b1"))
    waiting = asyncio.get_running_loop().create_task(sends.wait_room())
    await eventually(lambda: pubs.started == ["a1", "b1"], what="both publishing")
    assert not waiting.done()
    pubs.release("b1")
    await asyncio.wait_for(waiting, 5)
    await sends.wait_room()


async def test_closing_drops_the_waiting_and_lets_the_started_finish() -> None:
    pubs = Publishes()
    sends = LinkSends(8, pubs)
    for cid in ("a1", "a2", "a3"):
        sends.admit(send("a", cid))
    await eventually(lambda: pubs.started == ["a1"], what="a1 publishing")
    closing = asyncio.get_running_loop().create_task(sends.close())
    pubs.release("a1")
    await asyncio.wait_for(closing, 5)
    assert pubs.answered == ["a1"] and pubs.started == ["a1"]


async def test_a_send_waiting_in_its_lane_keeps_the_time_it_was_admitted() -> None:
    pubs = Publishes()
    sends = LinkSends(8, pubs)
    loop = asyncio.get_running_loop()
    before = loop.time()
    sends.admit(send("a", "a1"))
    sends.admit(send("a", "a2"))
    after = loop.time()
    await eventually(lambda: pubs.started == ["a1"], what="a1 publishing")
    started_at = loop.time()
    pubs.release("a1")
    pubs.release("a2")
    await eventually(lambda: pubs.answered == ["a1", "a2"], what="both answered")
    assert before <= pubs.admitted["a2"] <= after <= started_at


async def test_a_lanes_task_is_gone_when_its_last_send_is_answered_not_a_loop_turn_later() -> None:
    """The task removes itself in its last step (ADR 0065): no done callback scheduled per send."""
    answered: list[str] = []

    async def answer(frame: protocol.Send, admitted: float) -> None:  # answered at once
        answered.append(frame.cid)

    sends = LinkSends(8, answer)
    sends.admit(send("a", "a1"))
    sends.admit(send("b", "b1"))
    await asyncio.sleep(0)  # one loop turn: both lanes' tasks run to their end
    assert answered == ["a1", "b1"]
    assert len(sends._tasks) == 0  # main: still there until their done callbacks run, the turn after
    await sends.close()
