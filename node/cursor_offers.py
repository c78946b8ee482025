"""The node's cursor rounds, ticked (docs/adr/0040), and asleep while there is nothing to offer (ADR 0043).

Every ``cursor_every_s``, each device whose position moved is offered a cursor to ack: with the next frames written
to it, so as not to cost a write of its own (ADR 0027), or alone at its slot's next tick if nothing was written
meanwhile. Frames queued with ``send_later`` (delivered receipts) that no other write took along are written once a
round, at its first tick (ADR 0042). The round is spread over ``slices`` ticks (``CursorRounds``), kept to their
schedule (``next_tick``).

An idle node has nothing to offer: no link moved, none set aside, no frame held. Ticking through empty slots was
``slices / cursor_every_s`` wakeups a second (40) doing nothing; once a whole round finds nothing, the ticker
waits instead until a link moves or a frame is held, and starts its schedule again from then — a link that moved is
still offered its cursor within a round of moving, held frames are written within a round, as before.
"""

from __future__ import annotations

import asyncio
import itertools
from operator import attrgetter

from parley.node.cursor_rounds import CursorRounds, next_tick
from parley.node.link import DeviceLink


class CursorOffers:
    __slots__ = ("_rounds", "_later", "_tick_s", "_wake", "ticks")

    def __init__(self, every_s: float, slices: int) -> None:
        # links sent something since their last cursor offer, in slots ticked in turn (ADR 0040)
        self._rounds: CursorRounds[DeviceLink] = CursorRounds(slices, attrgetter("conn_id"))
        self._later: set[DeviceLink] = set()  # links holding frames for their next write (``send_later``)
        self._tick_s = every_s / slices
        self._wake: asyncio.Future[None] | None = None  # set while asleep: the next ``moved``/``later`` resolves it
        self.ticks = 0  # ticks run (for the tests: an idle node runs none)

    def moved(self, link: DeviceLink) -> None:
        """A link's ``on_moved``: it was sent something since its last offer."""
        self._rounds.moved(link)
        if self._wake is not None:
            self._wake_up()

    def later(self, link: DeviceLink) -> None:
        """A link's ``on_later``: it holds frames for its next write."""
        self._later.add(link)
        if self._wake is not None:
            self._wake_up()

    def _wake_up(self) -> None:
        wake, self._wake = self._wake, None
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def run(self) -> None:
        rounds, loop = self._rounds, asyncio.get_running_loop()
        slices, tick = rounds.slices, self._tick_s
        due, empty = loop.time(), 0  # empty: ticks in a row that found nothing to do
        for n in itertools.count():
            if empty >= slices and not self._later and rounds.idle():  # a whole round of nothing: sleep till woken
                self._wake = loop.create_future()
                await self._wake
                due, empty = loop.time(), 0  # the schedule starts again from here: the link's slot within a round
            due = next_tick(due, loop.time(), tick, slices)
            await asyncio.sleep(max(0.0, due - loop.time()))
            self.ticks += 1
            busy = False
            if n % slices == 0 and self._later:  # held frames no write took along: now
                later = list(self._later)
                self._later.clear()
                busy = True
                for link in later:
                    link.write_held()
            waiting, moved = rounds.tick()  # an idle link costs nothing here
            for link in waiting:
                if link.cursor_due:  # nothing was written to it for a whole round
                    link.cursor_due = False
                    link.offer_cursor()
            for link in moved:
                link.moved = False
                if link.flush_due:
                    link.offer_cursor()
                else:
                    link.cursor_due = True
                    rounds.wait(link)
            empty = 0 if busy or waiting or moved else empty + 1
