"""The first frame of a connection: a ``hello`` with a valid token of a live session, or a close.

What is refused, and how (docs/protocol.md §2, §13): no text frame within ``hello_timeout_s`` → close
4000 without an error frame; a frame that is not a valid ``hello`` of this protocol version, a bad or
expired token, a logged-out session or one past its lifetime → one ``error`` frame, then the error's
close code. While the store is down the session cannot be checked: with ``revocation_fail_closed`` (the
default) the hello is refused with a retryable ``store_unavailable`` (close 1013), so a logged-out
session never gets back in; without it the hello is admitted unchecked (ADR 0003's original trade: the
service stays up through a store outage, and a revoked token works until it expires).

For a user's first device on this node the session is not read here but in the set-up's one store call, after the
user's subjects are subscribed (``read_hello``, then ``subscriptions.first_arrival``; ADR 0051), and refused with
the same frames (``refuse``); a later device's hello is checked here (``checked``).
"""

from __future__ import annotations

import logging
import time
from typing import Literal

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
    verified = await read_hello(ws, settings)
    if verified is None:
        return None
    claims, hello = verified
    stored = await checked(ws, settings, sessions, claims, device=hello.cursor is None)
    if stored is False:
        return None
    return claims, hello, hello.cursor if hello.cursor is not None else stored


async def read_hello(ws: web.WebSocketResponse, settings: Settings) -> tuple[Claims, protocol.Hello] | None:
    """The hello and its token's claims, not yet checked against the store, or None after refusing the connection
    (it is closed)."""
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
        return verify_token(settings.secret.reveal(), hello.token, now=int(time.time())), hello
    except ParleyError as err:
        await refuse(ws, err)
        return None


async def checked(ws: web.WebSocketResponse, settings: Settings, sessions: Sessions, claims: Claims, *,
                  device: bool) -> str | None | Literal[False]:
    """``check_session`` for a hello: the device's cursor as it returns it, or False after refusing the connection."""
    try:
        return await check_session(sessions, claims, now=int(time.time()), fail_closed=settings.revocation_fail_closed,
                                   device=device)
    except ParleyError as err:
        await refuse(ws, err)
        return False


async def refuse(ws: web.WebSocketResponse, err: ParleyError) -> None:
    """A hello refused: one ``error`` frame (a text frame, like every frame), then the error's close code."""
    await ws.send_str(protocol.error_bytes(err).decode())
    await ws.close(code=err.ws_close_code, message=err.code.encode())


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
