"""The node's cursor rounds sleep while there is nothing to offer (docs/adr/0043): an idle node runs no ticks, and
a link that moves, or a frame held for later, wakes them; the offer and the held frame still go out within a
round."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from parley.node.cursor_offers import CursorOffers
from parley.node.link import DeviceLink, Flushes

from parley.tasks import cancel_and_wait
from tests.node.test_link import RECEIPT, live_link, msg, socket
from tests.poll import eventually

EVERY_S, SLICES = 0.05, 5  # a round of 50 ms in ticks of 10 ms


def asleep(offers: CursorOffers) -> Callable[[], bool]:
    return lambda: offers._wake is not None


def offered_link(offers: CursorOffers, user: str = "a") -> DeviceLink:
    link = live_link(user, Flushes())
    link._on_moved, link._on_later = offers.moved, offers.later  # as the node's ``_new_link`` wires them
    return link


async def test_an_idle_node_stops_ticking_after_a_round_of_nothing():
    offers = CursorOffers(EVERY_S, SLICES)
    task = asyncio.get_running_loop().create_task(offers.run())
    try:
        await eventually(asleep(offers), what="asleep", every=0.005)
        ran = offers.ticks
        assert SLICES <= ran <= 2 * SLICES  # one round of empty ticks (and no more) before sleeping
        await asyncio.sleep(4 * EVERY_S)  # four rounds' worth of ticks, had it kept ticking
        assert offers.ticks == ran
    finally:
        await cancel_and_wait(task)


async def test_a_link_that_moves_wakes_the_rounds_and_is_offered_its_cursor():
    offers = CursorOffers(EVERY_S, SLICES)
    task = asyncio.get_running_loop().create_task(offers.run())
    try:
        link = offered_link(offers)
        await eventually(asleep(offers), what="asleep", every=0.005)
        link.offer(msg(1))  # moved: written at once, the cursor offered at its slot's tick with nothing else due
        await eventually(lambda: len(socket(link).writes) == 2, what="the cursor offered", every=0.005)
        assert b'"type":"cursor"' in socket(link).writes[1][-1]
        await eventually(asleep(offers), what="asleep again once a round found nothing", every=0.005)
    finally:
        await cancel_and_wait(task)


async def test_a_frame_held_for_later_wakes_the_rounds_and_is_written():
    offers = CursorOffers(EVERY_S, SLICES)
    task = asyncio.get_running_loop().create_task(offers.run())
    try:
        link = offered_link(offers)
        await eventually(asleep(offers), what="asleep", every=0.005)
        link.send_later(RECEIPT)
        await eventually(lambda: len(socket(link).writes) == 1, what="the held frame written", every=0.005)
        assert RECEIPT in socket(link).writes[0][-1]
        assert not link.moved  # a held frame moves no position: no cursor offered for it
    finally:
        await cancel_and_wait(task)
