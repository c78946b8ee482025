"""``FloodScreen``: the flood rules, time-outs and bans as one ``Screen`` of a live room's send path.

``screen`` reads only memory: the user's standing and the room's slow mode from the board's mirror of the
``live_mod`` bucket, the rules from this node's ``FloodTracker``. A ban or a running time-out refuses
everyone (``banned``, ``timed_out``); moderators skip the flood rules. A broken rule is an offence: the
standing escalates in the bucket (warning → time-out → ban, compare-and-set), the decision goes to the
audit log and the metrics, and the sender is refused with the rule's code. Only an offence writes to the
bus; an accepted message costs no I/O. If the bus cannot take the write, the message is still refused
by its rule within ``ESCALATION_WAIT_S`` (the escalation step is lost, and logged).
"""

from __future__ import annotations

import asyncio
import logging

from parley.bus import BusClient, buckets, ensure
from parley.live import audit
from parley.live.board import Board
from parley.live.flood import FloodRules, FloodTracker, Offence
from parley.live.screening import ACCEPT, Attempt, Screen, Verdict
from parley.live.standing import Standing, Step, offend
from parley.metrics import FloodMetrics
from parley.settings import Settings

log = logging.getLogger("parley.live")
ESCALATION_WAIT_S = 2.0  # a send waits at most this long for its escalation write (then it is refused without)


class FloodScreen:
    def __init__(self, settings: Settings, nc: BusClient, metrics: FloodMetrics | None = None) -> None:
        self.settings, self.rules = settings, FloodRules.from_settings(settings)
        self.metrics = metrics or FloodMetrics()
        self._nc = nc
        self.tracker = FloodTracker(self.rules)
        self.board: Board | None = None
        self.audit = audit.AuditLog(nc.jetstream())

    async def start(self) -> None:
        """Ensure the bucket and the audit stream, load the bucket and follow it."""
        js = self._nc.jetstream()
        kv = await ensure.open_bucket(js, buckets.live_mod(self.settings))
        await ensure.ensure_stream(js, audit.stream_config(self.settings))
        self.board = Board(js, kv, self.rules.escalation)
        await self.board.start()

    async def stop(self) -> None:
        if self.board is not None:
            await self.board.stop()

    async def screen(self, attempt: Attempt) -> Verdict:
        assert self.board is not None, "FloodScreen.start() first"
        standing = self.board.standing(attempt.room, attempt.user)
        if standing.banned:
            self.metrics.decided("banned", "refused")
            return Verdict("reject", code="banned", reason="you are banned from this room")
        if standing.timed_out(attempt.now):
            self.metrics.decided("timed_out", "refused")
            return Verdict("reject", code="timed_out", retry_after_s=standing.until - attempt.now,
                           reason="you are timed out in this room")
        if attempt.moderator:
            return ACCEPT
        offence = self.tracker.check(attempt, self.board.slow_mode(attempt.room))
        if offence is None:
            return ACCEPT
        if not offence.escalates:
            self.metrics.decided(offence.code, "refused")
            return Verdict("reject", code=offence.code, retry_after_s=offence.retry_after_s, reason=offence.reason)
        return await self._escalate(attempt, offence)

    def accepted(self, attempt: Attempt, text: str) -> None:
        if not attempt.moderator:
            self.tracker.count(attempt, text)

    async def _escalate(self, attempt: Attempt, offence: Offence) -> Verdict:
        assert self.board is not None
        steps: list[tuple[Standing, Step]] = []

        def step(current: Standing) -> Standing:
            steps.append(offend(current, attempt.now, self.rules.escalation))
            return steps[-1][0]

        try:
            after = await asyncio.wait_for(self.board.change(attempt.room, attempt.user, attempt.now, step),
                                           ESCALATION_WAIT_S)
        except Exception as err:  # the bus is away: the rule still refuses; the escalation step is lost
            log.warning("flood escalation of %s in %s not stored: %s", attempt.user, attempt.room, err)
            self.metrics.decided(offence.code, "warning")
            return self._warning(offence, 0)
        what = steps[-1][1]
        self.metrics.decided(offence.code, what)
        try:
            await self.audit.record(audit.Decision(attempt.now, attempt.room, attempt.user, "auto", what,
                                                   offence.code, after.until - attempt.now if after.until else 0.0))
        except Exception as err:  # stored and in force; only its audit line is missing
            log.warning("flood decision on %s in %s not audited: %s", attempt.user, attempt.room, err)
        return self._verdict(offence, after, what, attempt.now)

    def _verdict(self, offence: Offence, after: Standing, what: Step, now: float) -> Verdict:
        if what == "ban":
            return Verdict("reject", code="banned", reason=f"banned from this room for flooding ({offence.reason})")
        if what == "timeout":
            return Verdict("reject", code="timed_out", retry_after_s=after.until - now,
                           reason=f"timed out for flooding ({offence.reason})")
        return self._warning(offence, len(after.warnings))

    def _warning(self, offence: Offence, count: int) -> Verdict:
        of = self.rules.escalation.warnings
        warned = f"; warning {count} of {of - 1} before a time-out" if count else ""
        return Verdict("reject", code=offence.code, retry_after_s=offence.retry_after_s,
                       reason=offence.reason + warned)


def _is_a_screen(screen: FloodScreen) -> Screen:
    return screen  # mypy holds FloodScreen to the contract (parley.live.screening.Screen)
