"""The link's writer (docs/adr/0027): the links with frames queued in a loop turn are written from one callback,
each link's frames in one ``writelines``, in order; a cursor due rides with the next frames written, and so does a
frame sent for later (a delivered receipt, ADR 0042) unless the node's round writes it first."""

from __future__ import annotations

import asyncio
from typing import Any

from parley.node.link import DeviceLink, Flushes
from parley.node.session import Delivery
from parley.node.wsframes import text_frames

from parley.auth import Claims
from parley.ids import DeviceId, SessionId, UserId
from parley.shards import pack


class Socket:
    """The asyncio transport a link writes to: every ``writelines`` call kept."""

    def __init__(self) -> None:
        self.writes: list[list[bytes]] = []

    def writelines(self, data: list[bytes]) -> None:
        self.writes.append(list(data))

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False


class WebSocket:
    compress = 0


def live_link(user: str, flushes: Flushes | None, moved: set[DeviceLink] | None = None,
              later: set[DeviceLink] | None = None) -> DeviceLink:
    link = DeviceLink(WebSocket(), Claims(UserId(user), DeviceId(f"{user}-d"), SessionId("s"), 0), 1,  # type: ignore[arg-type]
                      max_queue=100, on_sync=lambda *_: None, transport=Socket(), flushes=flushes,
                      cursor_frame=lambda v: b'{"type":"cursor","at":%d}' % v[0],
                      on_moved=moved.add if moved is not None else None,
                      on_later=later.add if later is not None else None)
    link.core.accept({}, b"welcome")
    link.core.begin_round({})
    link.core.finish_round({0: 0})
    link.core.take_out()  # the welcome
    return link


def msg(n: int) -> Delivery:
    return Delivery(pack(0, n), "g.1", pack(0, n - 1) if n > 1 else 0, "sender", b'{"type":"msg","n":%d}' % n)


def socket(link: DeviceLink) -> Any:
    return link._transport


async def turn() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_the_links_of_a_turn_are_written_from_one_callback_each_in_one_write(monkeypatch):
    flushes = Flushes()
    links = [live_link(u, flushes) for u in ("a", "b", "c")]
    loop = asyncio.get_running_loop()
    scheduled = []
    real = loop.call_soon
    monkeypatch.setattr(loop, "call_soon", lambda cb, *a, **k: (scheduled.append(cb), real(cb, *a, **k))[1])
    for n in (1, 2):
        for link in links:
            link.offer(msg(n))
    assert len(scheduled) == 1  # one callback for three links and two messages
    await turn()
    for link in links:
        assert socket(link).writes == [text_frames([msg(1).frame, msg(2).frame])]
        assert not link.core.out


async def test_with_a_write_gap_what_is_queued_within_it_after_a_write_goes_in_one_write_when_it_ends():
    """ADR 0053: busy, a device gets one write per gap with everything queued meanwhile; the first write after a
    quiet gap goes at once. (A gap long enough that a slow machine's loop turns stay well within it.)"""
    loop = asyncio.get_running_loop()
    gap = 0.2
    flushes = Flushes(gap_s=gap)
    link = live_link("a", flushes)
    link.offer(msg(1))
    await turn()
    assert socket(link).writes == [text_frames([msg(1).frame])]  # nothing written lately: at once
    written = loop.time()
    link.offer(msg(2))
    await turn()
    link.offer(msg(3))
    await turn()
    assert len(socket(link).writes) == 1  # within the gap: held
    while len(socket(link).writes) < 2:
        await asyncio.sleep(0.01)
    assert loop.time() - written >= gap - 0.01
    assert socket(link).writes[1] == text_frames([msg(2).frame, msg(3).frame])  # both, in one write
    quiet_from = loop.time()
    while loop.time() - quiet_from <= gap:  # a quiet gap
        await asyncio.sleep(0.01)
    link.offer(msg(4))
    await turn()
    assert socket(link).writes[2] == text_frames([msg(4).frame])  # at once again


async def test_without_flushes_a_link_writes_on_its_own():
    link = live_link("a", None)
    link.offer(msg(1))
    await turn()
    assert socket(link).writes == [text_frames([msg(1).frame])]


async def test_a_cursor_due_goes_out_after_the_next_frames_in_the_same_write():
    moved: set[DeviceLink] = set()
    link = live_link("a", Flushes(), moved)
    link.offer(msg(1))
    await turn()
    assert moved == {link} and link.moved
    link.moved, link.cursor_due = False, True  # what the node's round of offers does when nothing is being written
    link.offer(msg(2))
    await turn()
    assert socket(link).writes[-1] == text_frames([msg(2).frame, b'{"type":"cursor","at":2}'])
    assert not link.cursor_due and link.moved  # moved again by msg 2: offered a cursor at the next round


async def test_an_idle_link_holds_no_queue_once_written_and_the_next_frame_makes_one():
    link = live_link("a", Flushes())
    assert link.core.out is None and link.waiting() == 0  # the welcome was taken: an idle link keeps nothing
    link.offer(msg(1))
    link.offer(msg(2))
    assert link.waiting() == 2
    await turn()
    assert link.core.out is None and socket(link).writes == [text_frames([msg(1).frame, msg(2).frame])]
    link.offer(msg(3))
    await turn()
    assert socket(link).writes[-1] == text_frames([msg(3).frame]) and link.core.out is None


RECEIPT = b'{"type":"receipt","status":"delivered"}'


async def test_a_frame_sent_for_later_goes_with_the_next_frames_written_in_order():
    later: set[DeviceLink] = set()
    link = live_link("a", Flushes(), later=later)
    link.send_later(RECEIPT)
    await turn()
    assert socket(link).writes == [] and later == {link}  # no write of its own
    link.offer(msg(1))
    await turn()
    assert socket(link).writes == [text_frames([RECEIPT, msg(1).frame])]


async def test_a_frame_sent_for_later_is_written_at_the_nodes_round_without_moving_the_position():
    later: set[DeviceLink] = set()
    moved: set[DeviceLink] = set()
    link = live_link("a", Flushes(), moved, later)
    link.send_later(RECEIPT)
    link.write_held()  # what the node's cursor round does for the links in ``later``
    await turn()
    assert socket(link).writes == [text_frames([RECEIPT])]
    assert not moved and not link.moved  # no cursor is offered for it
    link.write_held()  # nothing held: nothing written
    await turn()
    assert len(socket(link).writes) == 1


async def test_a_frame_sent_for_later_while_a_write_is_due_goes_in_it_and_asks_no_round():
    later: set[DeviceLink] = set()
    link = live_link("a", Flushes(), later=later)
    link.offer(msg(1))
    link.send_later(RECEIPT)
    await turn()
    assert socket(link).writes == [text_frames([msg(1).frame, RECEIPT])] and not later


async def test_without_a_round_a_frame_sent_for_later_is_sent_at_once():
    link = live_link("a", Flushes())
    link.send_later(RECEIPT)
    await turn()
    assert socket(link).writes == [text_frames([RECEIPT])]
