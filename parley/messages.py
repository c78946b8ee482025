"""A chat message on its way: the stream payload, the stored record, and the delivery frame.

The stream holds one JSON payload per message on subject ``msg.<conversation>``; the stream sequence
is the message id. The payload carries ``prev`` (the conversation's previous id), which the sending
node guaranteed by publishing with ``Nats-Expected-Last-Subject-Sequence``. An action or a reply (ADR 0025)
adds its entry fields (``parley.store.columns``); a plain message's payload is as it always was.

Every node decodes each message it delivers and the archiver each one it stores, so a plain message (the
six fields, nothing else: most of them) takes a short way: no entry fields or attachments to look for, the
one shared empty ``MessageState`` (frozen, so sharing is safe), and its frame made without the extras. The
archiver needs no ``StoredMessage`` of a plain message at all, only its row (``decode_row``): building the frozen
record was most of what decoding cost it (ADR 0069).
"""

from __future__ import annotations

from typing import Any

import orjson

from parley.actions import extras_json
from parley.ids import ConversationId, DeviceId, MessageId, UserId
from parley.protocol import message_frame
from parley.store import AttachmentRef, StoredMessage
from parley.store.columns import MessageRow, entry_kwargs
from parley.store.records import MessageState

NO_STATE = MessageState()  # nothing acted on the message (yet): shared, it is frozen
PLAIN_FIELDS = 6  # from, device, cid, body, ts, prev


def encode_payload(*, sender: UserId, device: DeviceId, cid: str, body: str, ts: int, prev: int,
                   attachments: tuple[AttachmentRef, ...] = (), **entry: Any) -> bytes:
    """``entry``: an action's or reply's fields (``columns.entry_fields``), if any; ``attachments`` only when
    there are some (ADR 0024), so a message without stays as it was."""
    d: dict[str, object] = {"from": sender, "device": device, "cid": cid, "body": body, "ts": ts, "prev": prev,
                            **entry}
    if attachments:
        d["attachments"] = [a.as_json() for a in attachments]
    return orjson.dumps(d)


def decode_payload(seq: int, conv: ConversationId, data: bytes) -> StoredMessage:
    return _message(seq, conv, orjson.loads(data))


def _message(seq: int, conv: ConversationId, d: dict[str, Any]) -> StoredMessage:
    if len(d) == PLAIN_FIELDS:
        return StoredMessage(id=MessageId(seq), conv=conv, prev=int(d["prev"]), sender=UserId(d["from"]),
                             device=DeviceId(d["device"]), cid=str(d["cid"]), body=str(d["body"]), ts=int(d["ts"]),
                             state=NO_STATE)
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
        state=NO_STATE,
        attachments=tuple(AttachmentRef.from_json(a) for a in d.get("attachments") or ()),
    )


def decode_row(seq: int, conv: ConversationId, data: bytes) -> MessageRow | StoredMessage:
    """A plain message's row straight from its payload (the same as ``row_of(decode_payload(...))``, the same
    checks), or, for an action, a reply or a message with attachments, its ``StoredMessage`` (``decode_payload``)."""
    d = orjson.loads(data)
    if len(d) != PLAIN_FIELDS:
        return _message(seq, conv, d)
    return (MessageId(seq), conv, int(d["prev"]), UserId(d["from"]), DeviceId(d["device"]), str(d["cid"]),
            str(d["body"]), int(d["ts"]), "", "")


def live_delivery(seq: int, conv: ConversationId, data: bytes) -> tuple[int, UserId, int, bytes]:
    """A message off the delivery subject as its devices need it: (prev, sender, ts, the ``msg`` frame). A plain
    message's frame is made straight from the payload, no ``StoredMessage`` (the same bytes as ``frame_of``)."""
    d = orjson.loads(data)
    if len(d) != PLAIN_FIELDS:
        m = decode_payload(seq, conv, data)
        return m.prev, m.sender, m.ts, frame_of(m)
    prev, sender, ts = int(d["prev"]), UserId(d["from"]), int(d["ts"])
    return prev, sender, ts, orjson.dumps({"type": "msg", "id": seq, "prev": prev, "conv": conv, "from": sender,
                                           "device": str(d["device"]), "cid": str(d["cid"]), "body": str(d["body"]),
                                           "ts": ts})


def frame_of(m: StoredMessage) -> bytes:
    """The ``msg`` frame for a stored message, encoded once and sent to every device as is."""
    frame = message_frame(id=m.id, conv=m.conv, prev=m.prev, sender=m.sender, device=m.device, cid=m.cid,
                          body=m.body, ts=m.ts)
    if m.state is NO_STATE and not (m.kind or m.reply_to or m.attachments):
        return orjson.dumps(frame)  # what ``extras_json`` and ``attachments_json`` add is nothing
    return orjson.dumps(frame | extras_json(m) | attachments_json(m))


def attachments_json(m: StoredMessage) -> dict[str, object]:
    """A message's ``attachments`` field in frames and history: only when it has some (none once deleted)."""
    return {"attachments": [a.as_json() for a in m.attachments]} if m.attachments and not m.state.deleted else {}
