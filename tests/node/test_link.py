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
from tests.poll import eventually


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


async def test_with_a_write_gap_a_groups_messages_queued_within_it_after_a_write_go_in_one_write_when_it_ends():
    """ADRs 0053, 0056: busy, a member's device gets one write per gap with every group message queued meanwhile;
    the first write after a quiet gap goes at once. (A gap long enough that a slow machine's loop turns stay well
    within it.)"""
    loop = asyncio.get_running_loop()
    gap = 0.2
    flushes = Flushes(gap_s=gap)
    link = live_link("a", flushes)
    link.offer(msg(1), group=True)
    await turn()
    assert socket(link).writes == [text_frames([msg(1).frame])]  # nothing written lately: at once
    written = loop.time()
    link.offer(msg(2), group=True)
    await turn()
    link.offer(msg(3), group=True)
    await turn()
    assert len(socket(link).writes) == 1  # within the gap: held
    while len(socket(link).writes) < 2:
        await asyncio.sleep(0.01)
    assert loop.time() - written >= gap - 0.01
    assert socket(link).writes[1] == text_frames([msg(2).frame, msg(3).frame])  # both, in one write
    quiet_from = loop.time()
    while loop.time() - quiet_from <= gap:  # a quiet gap
        await asyncio.sleep(0.01)
    link.offer(msg(4), group=True)
    await turn()
    assert socket(link).writes[2] == text_frames([msg(4).frame])  # at once again


HOUR = 3600.0  # a gap no test outlives: what waits for it is written only when something else is
PONG = b'{"type":"pong"}'


def held_link(flushes: Flushes) -> DeviceLink:
    """A member's link that was just written a group message (so the next ones wait for the gap)."""
    link = live_link("a", flushes, moved=set())  # moved: a frame queued after the first asks no new write
    link.offer(msg(1), group=True)
    return link


async def test_with_a_write_gap_a_frame_that_cannot_wait_goes_at_once_with_the_held_group_messages_before_it():
    """ADR 0056: the gap holds group deliveries only. A pong, a SENT ack, an error (``send``) or a DM (``offer``)
    is written this turn, taking what the gap held along in the order queued."""
    link = held_link(Flushes(gap_s=HOUR))
    await turn()
    link.offer(msg(2), group=True)
    await turn()
    assert socket(link).writes == [text_frames([msg(1).frame])] and link.waiting() == 1  # msg 2 held
    link.send(PONG)
    await turn()
    assert socket(link).writes[1] == text_frames([msg(2).frame, PONG])
    link.offer(msg(3), group=True)
    dm = Delivery(pack(0, 100), "d.1", 0, "friend", b'{"type":"msg","dm":1}')
    link.offer(dm)  # a DM to a device whose position moved already: it still may not wait
    await turn()
    assert socket(link).writes[2] == text_frames([msg(3).frame, dm.frame])
    link.offer(Delivery(pack(0, 101), "g.1", msg(3).id, "sender", b'{"type":"msg","n":101}'), group=True)
    await turn()
    assert len(socket(link).writes) == 3 and link.waiting() == 1  # held again after the write


async def test_a_cursor_offered_to_a_link_holding_group_messages_waits_with_them_and_a_typing_notice_too():
    """A cursor covers what is queued before it, so it waits as they do; so does a group's typing notice."""
    link = held_link(Flushes(gap_s=HOUR))
    await turn()
    link.offer(msg(2), group=True)
    link.offer_cursor()
    link.send_group(b'{"type":"typing"}')
    await turn()
    assert len(socket(link).writes) == 1 and link.waiting() == 3  # all three held
    link.send(PONG)
    await turn()
    assert socket(link).writes[1] == text_frames([msg(2).frame, b'{"type":"cursor","at":2}', b'{"type":"typing"}',
                                                  PONG])


async def test_a_group_message_waits_at_most_one_gap_from_its_arrival_by_the_loops_clock():
    """The bound, on the scheduler's clock: at every group delivery the held write is due within one gap of it,
    and every message is written (polled). Links written meanwhile with a DM are not written twice."""
    loop = asyncio.get_running_loop()
    gap = 0.05
    flushes = Flushes(gap_s=gap)
    links = [live_link(u, flushes) for u in ("a", "b", "c")]
    late: list[float] = []
    for n in range(1, 41):
        arrived = loop.time()
        for link in links:
            link.offer(msg(n), group=True)
        due = flushes.held_until
        assert due is not None
        late.append(due - arrived)
        if n % 7 == 0:
            links[n % 3].send(PONG)
        await asyncio.sleep(gap / 4)
    assert max(late) <= gap
    for link in links:
        await eventually(lambda link=link: link.waiting() == 0, what="every group message written")
        payloads = [f for write in socket(link).writes for f in write[1::2]]  # header, payload, …
        assert [f for f in payloads if f != PONG] == [msg(n).frame for n in range(1, 41)]  # each once, in order


async def test_with_the_gap_off_a_groups_messages_are_written_at_the_next_turn_as_any_frame():
    link = live_link("a", Flushes())
    link.offer(msg(1), group=True)
    await turn()
    link.offer(msg(2), group=True)
    await turn()
    assert socket(link).writes == [text_frames([msg(1).frame]), text_frames([msg(2).frame])]


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
