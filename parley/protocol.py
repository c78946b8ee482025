"""WebSocket protocol v2: frames as frozen, self-validating dataclasses, JSON (orjson) on the wire.

Client frames are parsed by ``parse_client_frame``; every way a frame can be wrong raises a
``BadRequest`` whose code says which (``bad_json``, ``unknown_type``, ``bad_field``, ``too_large``).
Server frames are built by the ``*_frame`` functions and encoded once per message, not per device.
docs/protocol.md is the contract this module implements.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from parley.actions import KINDS, MAX_EMOJI_BYTES, valid_emoji
from parley.attachments.records import attachment_ids
from parley.errors import BadRequest, ParleyError, PeerError
from parley.ids import ConversationId, is_conversation_id, is_valid_id

VERSION = 2
_CID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_PLAIN_SEND_KEYS = frozenset(("type", "cid", "conv", "body"))  # a plain message: ``_send``'s short way (ADR 0065)
MAX_ID = 2**53 - 1  # ids stay exact in JavaScript numbers
MAX_CURSOR = 1024


def _bad(field: str, why: str) -> BadRequest:
    return BadRequest(f"{field}: {why}", code="bad_field", field=field)


def _int(data: dict[str, Any], name: str, *, required: bool = True, default: int = 0) -> int:
    value = data.get(name)
    if value is None:
        if required:
            raise _bad(name, "required")
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_ID:
        raise _bad(name, f"must be an integer from 0 to {MAX_ID}")
    return value


def _str(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise _bad(name, "required")
        return None
    if not isinstance(value, str):
        raise _bad(name, "must be a string")
    return value


@dataclass(frozen=True, slots=True)
class Hello:
    token: str
    version: int = VERSION
    cursor: str | None = None  # an opaque cursor token the server gave (parley.cursor)
    client: str | None = None


@dataclass(frozen=True, slots=True)
class Send:
    cid: str
    conv: ConversationId
    body: str  # "" for a delete or a reaction
    kind: str = ""  # "": a message; edit | delete | react | unreact (ADR 0025), on the message ``target``
    target: int = 0
    emoji: str = ""  # react, unreact
    reply_to: int = 0  # a message answering this earlier one
    attachments: tuple[str, ...] = ()  # ids of files uploaded to ``conv`` (ADR 0024); then ``body`` may be ""


@dataclass(frozen=True, slots=True)
class Ack:
    cursor: str  # a cursor the server offered: the device has everything it covers


@dataclass(frozen=True, slots=True)
class Sync:
    cursor: str | None  # resend everything after this cursor (None: everything the server has)


@dataclass(frozen=True, slots=True)
class Ping:
    ts: int | None = None


@dataclass(frozen=True, slots=True)
class Typing:
    conv: ConversationId
    state: str = "start"  # start | stop


@dataclass(frozen=True, slots=True)
class Read:
    conv: ConversationId
    upto: int


@dataclass(frozen=True, slots=True)
class Presence:
    users: tuple[str, ...]


MAX_PRESENCE_USERS = 100


def _presence(d: dict[str, Any], max_body: int) -> Presence:
    users = d.get("users")
    if not isinstance(users, list) or not 1 <= len(users) <= MAX_PRESENCE_USERS:
        raise _bad("users", f"a list of 1 to {MAX_PRESENCE_USERS} user ids")
    if not all(is_valid_id(u) for u in users):
        raise _bad("users", "not all user ids")
    return Presence(users=tuple(dict.fromkeys(users)))


@dataclass(frozen=True, slots=True)
class LiveJoin:
    room: str


@dataclass(frozen=True, slots=True)
class LiveLeave:
    room: str


@dataclass(frozen=True, slots=True)
class LiveSend:
    room: str
    cid: str
    body: str


ClientFrame = Hello | Send | Ack | Sync | Ping | Typing | Read | Presence | LiveJoin | LiveLeave | LiveSend


def _room(d: dict[str, Any]) -> str:
    room = _str(d, "room")
    if not is_valid_id(room):
        raise _bad("room", "not a live room id")
    return str(room)


def _live_send(d: dict[str, Any], max_body: int) -> LiveSend:
    cid, body = _str(d, "cid"), _str(d, "body")
    assert cid is not None and body is not None
    if not _CID_RE.match(cid):
        raise _bad("cid", "1 to 64 characters of A-Z a-z 0-9 _ -")
    room = _room(d)
    if not body.strip():
        raise _bad("body", "must not be empty")
    size = len(body.encode("utf-8", "surrogatepass"))
    if size > max_body:
        raise BadRequest(f"body is {size} bytes; the limit is {max_body}", code="too_large", limit=max_body, ref=cid)
    return LiveSend(room=room, cid=cid, body=body)


def _conv(d: dict[str, Any]) -> ConversationId:
    conv = _str(d, "conv")
    if not is_conversation_id(conv):
        raise _bad("conv", "not a conversation id")
    return ConversationId(str(conv))


def _typing(d: dict[str, Any], max_body: int) -> Typing:
    state = _str(d, "state", required=False)
    state = "start" if state is None else state  # absent or null; "" is not a state
    if state not in ("start", "stop"):
        raise _bad("state", "start or stop")
    return Typing(conv=_conv(d), state=state)


def _hello(d: dict[str, Any], max_body: int) -> Hello:
    token = _str(d, "token")
    assert token is not None
    version = _int(d, "v", required=False, default=VERSION)
    cursor = _cursor(d, required=False)
    client = _str(d, "client", required=False)
    return Hello(token=token, version=version, cursor=cursor or None, client=client)


def _cursor(d: dict[str, Any], *, required: bool) -> str | None:
    value = _str(d, "cursor", required=required)
    if value is not None and len(value) > MAX_CURSOR:
        raise _bad("cursor", f"at most {MAX_CURSOR} characters")
    return value


def _send(d: dict[str, Any], max_body: int) -> Send:
    """A message (``reply_to`` optional), or an action on the message ``target`` (ADR 0025)."""
    if d.keys() == _PLAIN_SEND_KEYS:  # a plain message, most sends: its three fields checked, nothing else built
        cid, conv, body = d["cid"], d["conv"], d["body"]
        if (type(cid) is str and type(conv) is str and type(body) is str and _CID_RE.match(cid)
                and is_conversation_id(conv)):
            _check_body(body, cid, max_body)
            return Send(cid=cid, conv=ConversationId(conv), body=body)  # else the checks below name the bad field
    kind = _str(d, "kind", required=False) or ""
    if kind and kind not in KINDS:
        raise _bad("kind", "edit, delete, react or unreact (or absent: a message)")
    cid, _, body = _str(d, "cid"), _str(d, "conv"), _str(d, "body", required=kind in ("", "edit")) or ""
    if not _CID_RE.match(cid or ""):
        raise _bad("cid", "1 to 64 characters of A-Z a-z 0-9 _ -")
    assert cid is not None
    conv = _conv(d)
    try:
        attachments = attachment_ids(d.get("attachments"))
    except ValueError as err:
        raise _bad("attachments", str(err)) from None
    if kind and attachments:
        raise _bad("attachments", "only a message carries attachments, not an action")
    if kind in ("", "edit"):
        _check_body(body, cid, max_body, empty_ok=bool(attachments))
    ids = {f: _int(d, f, required=f == "target" and bool(kind)) for f in ("target", "reply_to")}
    if any(ids[f] == 0 and d.get(f) is not None for f in ids):
        raise _bad("target" if kind else "reply_to", "a message id")
    emoji = (_str(d, "emoji") or "") if kind in ("react", "unreact") else ""
    if kind in ("react", "unreact") and not valid_emoji(emoji):
        raise _bad("emoji", f"1 to {MAX_EMOJI_BYTES} bytes, no spaces or control characters")
    return Send(cid=cid, conv=conv, body=body if kind in ("", "edit") else "", kind=kind,
                target=ids["target"] if kind else 0, emoji=emoji, reply_to=0 if kind else ids["reply_to"],
                attachments=attachments)


def _check_body(body: str, cid: str, max_body: int, empty_ok: bool = False) -> None:
    """``empty_ok``: a message with attachments may have no text (ADR 0024)."""
    if not body.strip() and not empty_ok:
        raise _bad("body", "must not be empty")
    size = len(body.encode("utf-8", "surrogatepass"))
    if size > max_body:
        raise BadRequest(
            f"body is {size} bytes; the limit is {max_body}", code="too_large", limit=max_body, ref=cid
        )


_PARSERS: dict[str, Callable[[dict[str, Any], int], ClientFrame]] = {
    "hello": _hello,
    "send": _send,
    "ack": lambda d, _: Ack(cursor=_cursor(d, required=True) or ""),
    "sync": lambda d, _: Sync(cursor=_cursor(d, required=False) or None),
    "ping": lambda d, _: Ping(ts=_int(d, "ts") if d.get("ts") is not None else None),
    "typing": _typing,
    "read": lambda d, _: Read(conv=_conv(d), upto=_int(d, "upto")),
    "presence": _presence,
    "live_join": lambda d, _: LiveJoin(room=_room(d)),
    "live_leave": lambda d, _: LiveLeave(room=_room(d)),
    "live_send": _live_send,
}


def too_big(raw: str, max_frame: int) -> bool:
    """Whether a text message is over ``max_frame`` bytes of UTF-8. aiohttp enforces its limit on the
    wire (refusing a message of exactly the limit) but lets a compressed one inflate to the limit itself;
    the node gives aiohttp one byte more and checks here, so both kinds are held to protocol.md §11."""
    return 4 * len(raw) > max_frame and len(raw.encode("utf-8", "surrogatepass")) > max_frame


def parse_client_frame(raw: str | bytes, *, max_body: int) -> ClientFrame:
    """A client frame, or ``BadRequest``. A field given as ``null`` is the same as one left out."""
    data = _object(raw)
    kind = data.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise BadRequest(f"unknown frame type {kind!r}", code="unknown_type")
    try:
        return parser(data, max_body)
    except BadRequest as err:
        if kind in ("send", "live_send") and isinstance(data.get("cid"), str) and "ref" not in err.details:
            err.details["ref"] = data["cid"]
        raise


def parse_first_frame(raw: str | bytes, *, max_body: int) -> Hello:
    """The first frame of a connection: a ``hello``. Any other JSON object is ``hello_required``, whatever
    its type and fields (an unknown type included); a ``hello`` with a bad field is that ``bad_field``."""
    if _object(raw).get("type") != "hello":
        raise PeerError("the first frame must be hello", code="hello_required")
    frame = parse_client_frame(raw, max_body=max_body)
    assert isinstance(frame, Hello)
    return frame


def _object(raw: str | bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("frame is not valid JSON", code="bad_json") from None
    if not isinstance(data, dict):
        raise BadRequest("frame must be a JSON object", code="bad_json")
    return data


# ---- server frames ----------------------------------------------------------------------------


def encode(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame).decode()


def frame_bytes(frame: dict[str, Any]) -> bytes:
    """A server frame as the bytes of one text WebSocket message."""
    return orjson.dumps(frame)


def welcome_frame(
    *, user: str, device: str, node: str, cursor: str, limits: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": "welcome",
        "v": VERSION,
        "user": user,
        "device": device,
        "node": node,
        "cursor": cursor,
        "limits": limits,
    }


def message_frame(
    *, id: int, conv: str, prev: int, sender: str, device: str, cid: str, body: str, ts: int
) -> dict[str, Any]:
    return {
        "type": "msg",
        "id": id,
        "prev": prev,
        "conv": conv,
        "from": sender,
        "device": device,
        "cid": cid,
        "body": body,
        "ts": ts,
    }


def sent_frame(*, cid: str, id: int, conv: str, duplicate: bool) -> dict[str, Any]:
    return {"type": "ack", "status": "sent", "cid": cid, "id": id, "conv": conv, "duplicate": duplicate}


def synced_frame(*, cursor: str) -> dict[str, Any]:
    return {"type": "synced", "cursor": cursor}


def cursor_frame(*, cursor: str) -> dict[str, Any]:
    """A new cursor covering every frame sent before it: ack it once those are processed."""
    return {"type": "cursor", "cursor": cursor}


def pong_frame(ts: int | None, now_ms: int) -> dict[str, Any]:
    return {"type": "pong", "ts": ts, "server_ts": now_ms}


def group_frame(event: dict[str, Any]) -> dict[str, Any]:
    """A group you are in changed: ``event`` is joined, left, renamed, members or roles."""
    return {"type": "group", **event}


def typing_frame(*, conv: str, user: str, device: str, state: str, ttl_ms: int) -> dict[str, Any]:
    """Someone in ``conv`` is typing; show it for ``ttl_ms`` unless refreshed (or until ``stop``)."""
    return {"type": "typing", "conv": conv, "from": user, "device": device, "state": state, "ttl_ms": ttl_ms}


def receipt_frame(*, conv: str, user: str, status: str, upto: int) -> dict[str, Any]:
    """``user`` has every message of ``conv`` up to ``upto`` (``delivered``) or has read them (``read``)."""
    return {"type": "receipt", "conv": conv, "user": user, "status": status, "upto": upto}


def presence_frame(users: list[dict[str, Any]]) -> dict[str, Any]:
    """Presence of users: ``{"user", "online", "last_active_at"}`` each (the answer to a ``presence``
    frame, or one friend's change as it happens)."""
    return {"type": "presence", "users": users}


def moved_frame(node: dict[str, Any] | None, fallbacks: list[dict[str, Any]]) -> dict[str, Any]:
    """This node is draining: reconnect to ``node`` (then ``fallbacks``; ``/v1/place`` when null) with
    your cursor. The node closes the connection (4010) right after this frame."""
    return {"type": "moved", "reason": "draining", "node": node, "fallbacks": fallbacks}


def error_frame(details: dict[str, Any]) -> dict[str, Any]:
    return {"type": "error", **details}


# Error frames are made here and nowhere else: from an error (its code, message, ``retryable`` and
# details such as ``ref``), or, for a failure we did not foresee, ``internal`` (with the send's ``ref``
# when the frame was a send, so the client knows which to resend).


def error_bytes(err: ParleyError) -> bytes:
    return orjson.dumps({"type": "error", **err.as_dict()})


def internal_error_bytes(ref: str | None = None) -> bytes:
    details: dict[str, Any] = {"code": "internal", "message": "internal error; resend", "retryable": True}
    if ref is not None:
        details["ref"] = ref
    return orjson.dumps({"type": "error", **details})
