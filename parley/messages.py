"""A chat message on its way: the stream payload, the stored record, and the delivery frame.

The stream holds one JSON payload per message on subject ``msg.<conversation>``; the stream sequence
is the message id. The payload carries ``prev`` (the conversation's previous id), which the sending
node guaranteed by publishing with ``Nats-Expected-Last-Subject-Sequence``. An action or a reply (ADR 0025)
adds its entry fields (``parley.store.columns``); a plain message's payload is as it always was.
"""

from __future__ import annotations

from typing import Any

import orjson

from parley.actions import extras_json
from parley.ids import ConversationId, DeviceId, MessageId, UserId
from parley.protocol import message_frame
from parley.store import StoredMessage
from parley.store.columns import entry_kwargs


def encode_payload(*, sender: UserId, device: DeviceId, cid: str, body: str, ts: int, prev: int,
                   **entry: Any) -> bytes:
    """``entry``: an action's or reply's fields (``columns.entry_fields``), if any."""
    return orjson.dumps({"from": sender, "device": device, "cid": cid, "body": body, "ts": ts, "prev": prev,
                         **entry})


def decode_payload(seq: int, conv: ConversationId, data: bytes) -> StoredMessage:
    d = orjson.loads(data)
    return StoredMessage(
        id=MessageId(seq),
        conv=conv,
        prev=int(d["prev"]),
        sender=UserId(d["from"]),
        device=DeviceId(d["device"]),
        cid=str(d["cid"]),
        body=str(d["body"]),
        ts=int(d["ts"]),
        **entry_kwargs(d),
    )


def frame_of(m: StoredMessage) -> bytes:
    """The ``msg`` frame for a stored message, encoded once and sent to every device as is."""
    return orjson.dumps(
        message_frame(id=m.id, conv=m.conv, prev=m.prev, sender=m.sender, device=m.device, cid=m.cid,
                      body=m.body, ts=m.ts) | extras_json(m)
    )
