"""The first frame of a connection: a ``hello`` with a valid token of a live session, or a close.

What is refused, and how (docs/protocol.md §2, §13): no text frame within ``hello_timeout_s`` → close
4000 without an error frame; a frame that is not a valid ``hello`` of this protocol version, a bad or
expired token, a logged-out session or one past its lifetime → one ``error`` frame, then the error's
close code. While the store is down the session cannot be checked: with ``revocation_fail_closed`` (the
default) the hello is refused with a retryable ``store_unavailable`` (close 1013), so a logged-out
session never gets back in; without it the hello is admitted unchecked (ADR 0003's original trade: the
service stays up through a store outage, and a revoked token works until it expires).
"""

from __future__ import annotations

import logging
import time

from aiohttp import WSMsgType, web
from parley.node.ports import Sessions

from parley import protocol
from parley.auth import Claims, live_session, verify_token
from parley.errors import CLOSE_PROTOCOL, CLOSE_TOO_BIG, ParleyError, PeerError, Unavailable
from parley.settings import Settings

log = logging.getLogger("parley.node")


async def handshake(ws: web.WebSocketResponse, settings: Settings,
                    sessions: Sessions) -> tuple[Claims, protocol.Hello, str | None] | None:
    """The verified claims and hello, and the cursor to start from (the hello's, or else the device's stored one,
    read with the session in one store call; None: the store did not answer), or None after refusing the
    connection (it is closed)."""
    try:
        msg = await ws.receive(timeout=settings.hello_timeout_s)
    except TimeoutError:
        msg = None
    if msg is None or msg.type != WSMsgType.TEXT:
        await ws.close(code=CLOSE_PROTOCOL, message=b"hello expected")
        return None
    if protocol.too_big(msg.data, settings.max_frame_bytes):
        await ws.close(code=CLOSE_TOO_BIG, message=b"message too big")
        return None
    try:
        hello = parse_hello(msg.data, settings)
        now = int(time.time())
        claims = verify_token(settings.secret.reveal(), hello.token, now=now)
        stored = await check_session(sessions, claims, now=now, fail_closed=settings.revocation_fail_closed,
                                     device=hello.cursor is None)
    except ParleyError as err:
        await ws.send_str(protocol.error_bytes(err).decode())  # a text frame, like every frame
        await ws.close(code=err.ws_close_code, message=err.code.encode())
        return None
    return claims, hello, hello.cursor if hello.cursor is not None else stored


def parse_hello(raw: str, settings: Settings) -> protocol.Hello:
    frame = protocol.parse_first_frame(raw, max_body=settings.max_body_bytes)
    if frame.version != protocol.VERSION:
        raise PeerError(f"protocol version {frame.version} is not supported; use {protocol.VERSION}",
                        code="bad_version")
    return frame


async def check_session(sessions: Sessions, claims: Claims, *, now: int, fail_closed: bool,
                        device: bool = False) -> str | None:
    """Refuse a session that was logged out or passed its lifetime; while the store is down, refuse
    (``fail_closed``, retryable) or admit unchecked. With ``device``, the device's stored cursor, read in the
    same store call ("" if it has none; None if the store did not answer)."""
    try:
        reads = await sessions.connect_reads(claims.session, device=claims.device if device else None)
    except Unavailable:
        if fail_closed:
            raise  # store_unavailable, retryable: the client reconnects after a pause (close 1013)
        log.warning("store unavailable: admitting %s without its revocation check", claims.session)
        return None
    live_session(reads.session, now=now)
    return (reads.cursor or "") if device else None
