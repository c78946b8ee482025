"""The first frame of a connection: a ``hello`` with a valid token of a live session, or a close.

What is refused, and how (docs/protocol.md §2, §13): no text frame within ``hello_timeout_s`` → close
4000 without an error frame; a frame that is not a valid ``hello`` of this protocol version, a bad or
expired token, a logged-out session → one ``error`` frame, then the error's close code. The session
check fails open while the store is down (ADR 0003): refusing every connection during a store outage
would take the whole service down for a check that only matters after a logout.
"""

from __future__ import annotations

import logging
import time

from aiohttp import WSMsgType, web
from parley.node.ports import Sessions

from parley import protocol
from parley.auth import Claims, verify_token
from parley.errors import CLOSE_PROTOCOL, CLOSE_TOO_BIG, ParleyError, PeerError, Unauthorized, Unavailable
from parley.settings import Settings

log = logging.getLogger("parley.node")


async def handshake(ws: web.WebSocketResponse, settings: Settings,
                    sessions: Sessions) -> tuple[Claims, protocol.Hello] | None:
    """The verified claims and hello, or None after refusing the connection (it is closed)."""
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
        claims = verify_token(settings.secret.reveal(), hello.token, now=int(time.time()))
        await check_session(sessions, claims)
    except ParleyError as err:
        await ws.send_str(protocol.error_bytes(err).decode())  # a text frame, like every frame
        await ws.close(code=err.ws_close_code, message=err.code.encode())
        return None
    return claims, hello


def parse_hello(raw: str, settings: Settings) -> protocol.Hello:
    frame = protocol.parse_first_frame(raw, max_body=settings.max_body_bytes)
    if frame.version != protocol.VERSION:
        raise PeerError(f"protocol version {frame.version} is not supported; use {protocol.VERSION}",
                        code="bad_version")
    return frame


async def check_session(sessions: Sessions, claims: Claims) -> None:
    try:
        session = await sessions.get_session(claims.session)
    except Unavailable:
        log.warning("store unavailable: admitting %s without its revocation check", claims.session)
        return
    if session is None or session.revoked:
        raise Unauthorized("this session was logged out", code="session_revoked")
