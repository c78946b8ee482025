"""The moderation audit log of live rooms: every decision, automatic or a moderator's, one message each on
``audit.live.<room token>`` in the ``LIVE_AUDIT`` stream (kept ``PARLEY_LIVE_AUDIT_MAX_AGE_S``).

An entry: ``{"seq", "at", "room", "user", "by", "action", "rule", "duration_s"}`` — ``by`` is the moderator's
user id or ``"auto"``; ``action`` one of warning, timeout, ban, unban, slow_mode. Moderators read a room's
log oldest first in pages (``page``: after a sequence number, at most ``limit``), each entry a direct
"next message on this subject" read of the stream, so a page costs ``limit`` small requests and nothing
is held on the server.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import orjson
from nats.js.api import Placement, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from parley.layout import placement_tag
from parley.live.board import token
from parley.settings import Settings

STREAM = "LIVE_AUDIT"
SUBJECTS = "audit.live.>"
MAX_PAGE = 100


def stream_config(settings: Settings) -> StreamConfig:
    """With regions, in the control region beside the buckets (``parley.bus.buckets``)."""
    region = settings.layout().control_region
    return StreamConfig(name=STREAM, subjects=[SUBJECTS], storage=StorageType.FILE,
                        placement=Placement(tags=[placement_tag(region)]) if region else None,
                        max_age=float(settings.live_audit_max_age_s), num_replicas=settings.stream_replicas,
                        duplicate_window=120.0)


def subject(room: str) -> str:
    return f"audit.live.{token(room)}"


@dataclass(frozen=True)
class Decision:
    at: float
    room: str
    user: str
    by: str  # a moderator's user id, or "auto"
    action: str  # warning, timeout, ban, unban, slow_mode
    rule: str = ""  # what the automatic decision was for (flooding, duplicate, links)
    duration_s: float = 0.0  # a time-out's length, a slow mode's interval


class AuditLog:
    def __init__(self, js: JetStreamContext) -> None:
        self._js = js

    async def record(self, decision: Decision) -> None:
        await self._js.publish(subject(decision.room), orjson.dumps(asdict(decision)), stream=STREAM)

    async def page(self, room: str, after: int = 0, limit: int = 50) -> list[dict[str, Any]]:
        """Up to ``limit`` entries of ``room`` with a sequence number above ``after``, oldest first."""
        out: list[dict[str, Any]] = []
        seq = after + 1
        for _ in range(min(limit, MAX_PAGE)):
            try:
                msg = await self._js.get_msg(STREAM, seq=seq, subject=subject(room), next=True)
            except NotFoundError:
                break
            assert msg.seq is not None and msg.data is not None
            out.append({"seq": msg.seq, **orjson.loads(msg.data)})
            seq = msg.seq + 1
        return out
