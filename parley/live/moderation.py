"""Moderators' actions on a live room, over the shared board and the audit log (the API calls these,
``api/moderation.py``): time out, ban, lift, slow mode, and what is in force.

Each action is written to the ``live_mod`` bucket (every node's mirror has it within about a second) and
appended to the audit log with the moderator's id. ``is_moderator`` is the one question of who may:
operators (``PARLEY_ADMINS``) and the room's owner and moderators (its meta, ADR 0018).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from parley.auth import Claims
from parley.bus import BusClient, buckets, ensure
from parley.errors import BadRequest
from parley.live import audit
from parley.live.audit import AuditLog, Decision
from parley.live.board import Board
from parley.live.flood import FloodRules
from parley.live.standing import banned_by, timed_out_by
from parley.metrics import FloodMetrics
from parley.settings import Settings

MAX_TIMEOUT_S = 30 * 86400.0


async def open_moderation(nc: BusClient, settings: Settings, metrics: FloodMetrics | None = None) -> Moderation:
    """The API's handle: the bucket and the audit stream ensured; no watch (it reads the bucket itself)."""
    js = nc.jetstream()
    kv = await ensure.open_bucket(js, buckets.live_mod(settings))
    await ensure.ensure_stream(js, audit.stream_config(settings))
    return Moderation(Board(js, kv, FloodRules.from_settings(settings).escalation), AuditLog(js), settings, metrics)


def is_moderator(claims: Claims, room: str, settings: Settings, room_moderators: Collection[str] = ()) -> bool:
    """Whether the caller may moderate ``room``: an operator, or one of the room's owner and moderators
    (``room_moderators``: the owner and moderators its meta names)."""
    return claims.user in settings.admin_ids() or claims.user in room_moderators


@dataclass
class Moderation:
    board: Board
    audit: AuditLog
    settings: Settings
    metrics: FloodMetrics | None = None

    async def _record(self, decision: Decision) -> None:
        await self.audit.record(decision)
        if self.metrics is not None:
            self.metrics.decided("moderator", decision.action)

    async def time_out(self, room: str, user: str, by: str, duration_s: float, now: float) -> float:
        if not 0 < duration_s <= MAX_TIMEOUT_S:
            raise BadRequest(f"duration_s must be above 0 and at most {MAX_TIMEOUT_S:g}", code="bad_field",
                             field="duration_s")
        after = await self.board.change(room, user, now, lambda s: timed_out_by(s, now, duration_s))
        await self._record(Decision(now, room, user, by, "timeout", duration_s=duration_s))
        return after.until

    async def ban(self, room: str, user: str, by: str, now: float) -> None:
        await self.board.change(room, user, now, banned_by)
        await self._record(Decision(now, room, user, by, "ban"))

    async def lift(self, room: str, user: str, by: str, now: float) -> None:
        """Unban, end a time-out and forget warnings: the user starts afresh in the room."""
        await self.board.lift(room, user)
        await self._record(Decision(now, room, user, by, "unban"))

    async def slow_mode(self, room: str, seconds: float, by: str, now: float) -> None:
        if not 0 <= seconds <= self.settings.flood_slow_mode_max_s:
            raise BadRequest(f"seconds must be from 0 (off) to {self.settings.flood_slow_mode_max_s:g}",
                             code="bad_field", field="seconds")
        await self.board.set_slow_mode(room, seconds)
        await self._record(Decision(now, room, "", by, "slow_mode", duration_s=seconds))

    async def in_force(self, room: str, now: float) -> dict[str, Any]:
        standings = await self.board.room_standings(room)
        return {
            "slow_mode_s": await self.board.read_slow_mode(room),
            "timeouts": [{"user_id": u, "until": s.until} for u, s in sorted(standings.items()) if s.timed_out(now)],
            "bans": [{"user_id": u} for u, s in sorted(standings.items()) if s.banned],
        }
