"""The frames every load client sends (docs/protocol.md, v1), built in one place for all of them: the
benchmarks' asyncio devices (``harness.device``) and the Locust users (``loadtest/locustfile.py``).

A protocol change to what a client sends is an edit here; what clients read from the frames they get
is in ``harness.device`` (and the Locust user's reader). Builders return the JSON text of one frame.
"""

from __future__ import annotations

from typing import Any

import orjson

VERSION = 1
# the node writes "type" first: a lean reader can sort frames by prefix without parsing them
MSG_PREFIX = '{"type":"msg"'
ACK_PREFIX = '{"type":"ack"'
PONG_PREFIX = '{"type":"pong"'


def hello(token: str, cursor: int | None = None, **extra: Any) -> str:
    frame: dict[str, Any] = {"type": "hello", "v": VERSION, "token": token, **extra}
    if cursor is not None:
        frame["cursor"] = cursor
    return orjson.dumps(frame).decode()


def send(cid: str, conv: str, body: str) -> str:
    return orjson.dumps({"type": "send", "cid": cid, "conv": conv, "body": body}).decode()


def ack(upto: int) -> str:
    """Everything up to ``upto`` arrived (acks are cumulative)."""
    return orjson.dumps({"type": "ack", "id": upto}).decode()


def ping(ts: int | None = None) -> str:
    return orjson.dumps({"type": "ping"} if ts is None else {"type": "ping", "ts": ts}).decode()
