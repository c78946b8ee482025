"""A message's ADR 0025 fields as two JSON text columns, the same in every backend.

``extra``: what the entry itself is (an action's kind, target, its ts, emoji; a reply's target and quote),
written once with the row; ``state``: what later actions made of it (``MessageState``), rewritten by the
archiver as it applies them. Both are "" for a plain message that nothing acted on, so old rows read as before.

``MessageRow``: a message as a backend writes it, its columns in order, a plain tuple (``extra`` and
``attachments`` as their text, "" for none; ``state`` is not written with the row). The archiver makes a plain
message's row straight from its payload (``parley.messages.decode_row``): no ``StoredMessage`` on the way (ADR 0069).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from parley.ids import ConversationId, DeviceId, MessageId, UserId
from parley.store.records import MessageState, StoredMessage, refs_from_text, refs_to_text

ENTRY_FIELDS = ("kind", "target", "target_ts", "emoji", "reply_to", "quote_from", "quote")
_EMPTY = StoredMessage(0, "", 0, "", "", "", "", 0)  # type: ignore[arg-type]


# A message as a backend writes it: id, conv, prev, sender, device, cid, body, ts, extra (``extra_of``), attachments
# (``refs_to_text``). A plain tuple, not a NamedTuple: sqlite3 binds an exact tuple's items directly and any other
# sequence item by item (+0.8 µs a row), and a NamedTuple's ``__new__`` costs 0.3 µs more (ADR 0069).
MessageRow = tuple[MessageId, ConversationId, int, UserId, DeviceId, str, str, int, str, str]


def row_of(m: StoredMessage) -> MessageRow:
    return (m.id, m.conv, m.prev, m.sender, m.device, m.cid, m.body, m.ts, extra_of(m), refs_to_text(m.attachments))


def message_of(row: MessageRow) -> StoredMessage:
    """The message a row holds (its ``state`` is not in the row: none)."""
    id, conv, prev, sender, device, cid, body, ts, extra, attachments = row
    return with_columns(StoredMessage(id, conv, prev, sender, device, cid, body, ts,
                                      attachments=refs_from_text(attachments)), extra, None)


def entry_fields(m: StoredMessage) -> dict[str, Any]:
    """The entry fields that differ from a plain message's."""
    return {f: getattr(m, f) for f in ENTRY_FIELDS if getattr(m, f) != getattr(_EMPTY, f)}


def entry_kwargs(d: dict[str, Any]) -> dict[str, Any]:
    """The entry fields found in a decoded payload or ``extra`` column, typed."""
    out: dict[str, Any] = {}
    for f in ENTRY_FIELDS:
        if f in d:
            out[f] = type(getattr(_EMPTY, f))(d[f])
    return out


def extra_of(m: StoredMessage) -> str:
    fields = entry_fields(m)
    return orjson.dumps(fields).decode() if fields else ""


def state_of(m: StoredMessage) -> str:
    s = m.state
    if s == MessageState():
        return ""
    return orjson.dumps({"edit_id": s.edit_id, "edited_at": s.edited_at, "deleted": s.deleted,
                         "delete_id": s.delete_id, "delete_from": s.delete_from, "delete_cid": s.delete_cid,
                         "reactions": s.reactions, "edits": s.edits, "quoted_by": s.quoted_by}).decode()


def with_columns(m: StoredMessage, extra: str | None, state: str | None) -> StoredMessage:
    if not extra and not state:
        return m
    kwargs = entry_kwargs(orjson.loads(extra)) if extra else {}
    if state:
        d = orjson.loads(state)
        kwargs["state"] = MessageState(
            edit_id=int(d["edit_id"]), edited_at=int(d["edited_at"]), deleted=bool(d["deleted"]),
            delete_id=int(d["delete_id"]), delete_from=str(d["delete_from"]), delete_cid=str(d["delete_cid"]),
            reactions=tuple((str(e), str(u), int(n)) for e, u, n in d["reactions"]),
            edits=tuple((int(i), int(t)) for i, t in d["edits"]),
            quoted_by=tuple((int(i), int(t)) for i, t in d["quoted_by"]))
    return replace(m, **kwargs)
