"""The frames every load client sends (docs/protocol.md, v2), built in one place for all of them: the
benchmarks' asyncio devices (``harness.device``) and the Locust users (``loadtest/locustfile.py``).

A protocol change to what a client sends is an edit here; what clients read from the frames they get
is in ``harness.device`` (and the Locust user's reader). Builders return the JSON text of one frame.
Cursors are the server's opaque strings: clients only store them and send them back.
"""

from __future__ import annotations

from typing import Any

import orjson

VERSION = 2
# the node writes "type" first: a lean reader can sort frames by prefix without parsing them
MSG_PREFIX = '{"type":"msg"'
ACK_PREFIX = '{"type":"ack"'
PONG_PREFIX = '{"type":"pong"'
CURSOR_PREFIX = '{"type":"cursor"'
SYNCED_PREFIX = '{"type":"synced"'
ERROR_PREFIX = '{"type":"error"'


def hello(token: str, cursor: str | None = None, **extra: Any) -> str:
    """``cursor``: one the server offered this device (None: the server's stored cursor of the device)."""
    frame: dict[str, Any] = {"type": "hello", "v": VERSION, "token": token, **extra}
    if cursor:
        frame["cursor"] = cursor
    return orjson.dumps(frame).decode()


def send(cid: str, conv: str, body: str) -> str:
    return orjson.dumps({"type": "send", "cid": cid, "conv": conv, "body": body}).decode()


def ack(cursor: str) -> str:
    """Everything before the cursor frame that offered ``cursor`` was processed."""
    return orjson.dumps({"type": "ack", "cursor": cursor}).decode()


def ping(ts: int | None = None) -> str:
    return orjson.dumps({"type": "ping"} if ts is None else {"type": "ping", "ts": ts}).decode()
