"""Live sessions checked against the store (node/revocation.py): ended ones closed with 4003, live ones given a
timer that closes them at their lifetime, with ``session_expired`` (docs/adr/0016). A stand-in for the
connection's socket side: the functions only read ``session``/``closed``/``ends`` and call ``send``/``close``."""

from __future__ import annotations

import asyncio
import time

import orjson
from parley.node.revocation import close_ended_sessions

from parley.ids import DeviceId, SessionId, UserId
from parley.store import Session
from tests.poll import eventually


class Link:
    def __init__(self, session: str) -> None:
        self.session = SessionId(session)
        self.ends: asyncio.TimerHandle | None = None
        self.frames: list[dict[str, object]] = []
        self.close_code: int | None = None
        self.close_reason = ""

    @property
    def closed(self) -> bool:
        return self.close_code is not None

    def send(self, frame: bytes) -> None:
        self.frames.append(orjson.loads(frame))

    def close(self, code: int, reason: str) -> None:
        self.close_code, self.close_reason = code, reason


class Sessions:
    def __init__(self, *sessions: Session) -> None:
        self.by_id = {s.id: s for s in sessions}

    async def get_session(self, session: SessionId) -> Session | None:
        return self.by_id.get(session)


def session(sid: str, ends_in: float, revoked: bool = False) -> Session:
    now = time.time()
    return Session(SessionId(sid), UserId("u"), DeviceId("d"), int(now * 1000), int(now + ends_in), revoked=revoked)


async def test_ended_sessions_close_and_live_ones_get_a_timer_to_their_end():
    short, long_, over = Link("short"), Link("long"), Link("over")
    store = Sessions(session("short", 1.0), session("long", 3600), session("over", -1))
    closed = await close_ended_sessions([short, long_, over], store, now=int(time.time()))  # type: ignore[list-item]
    assert closed == 1 and (over.close_code, over.close_reason) == (4003, "session_expired")
    assert short.ends is not None and long_.ends is not None and not short.closed
    await eventually(lambda: short.closed, what="the short session's connection closed at its end", timeout=10)
    assert (short.close_code, short.close_reason) == (4003, "session_expired")
    assert [f["code"] for f in short.frames] == ["session_expired"]
    assert not long_.closed
    long_.ends.cancel()

