"""What Parley's processes tell each other over core NATS: small tagged types and one codec.

Every bus message other than a chat message (those live in the stream, ``parley.messages``) is one of
these frozen types, encoded as a JSON object whose ``kind`` names the type:

    subject               kind        type              from → to
    ctl.user.<user>       revoke      Revoke            API → nodes: close the session's connections
                          friend      FriendChange      API → nodes: follow/unfollow a friend's presence; a request,
                                                        acceptance, decline or unfriend for the user's devices
                          group       GroupChange       API → nodes: membership, name, roles of a group
                          user        ProfileChange     API → nodes: a friend's or co-member's new name, for the devices
    rcpt.user.<user>      receipt     ReceiptNotice     node → nodes: a group receipt for one user's devices
                          receipts    ReceiptBatch      node → nodes: group delivered marks for one sender's devices
    evt.<conv>            typing      TypingNotice      node → nodes: someone in the conversation is typing
                          receipt     ReceiptNotice     node → nodes: a DM member's delivered/read mark
    hb.<p>.<node>         beats       Heartbeats        node → presence worker: devices heard from (before ADR 0049;
                                                        a worker still books them: an old node's every 5 s)
                          device      DeviceHeld        node → presence worker: a device of partition p came or went
                          held        StillHeld         node → presence worker: still holds what it said (each beat)
                          report      HeldReport        node → presence worker: every device of p it holds (asked,
                                                        and every few minutes)
    hb.ask.<node>         ask         ReportAsk         presence worker → node: send partition p's report
    presence.<user>       presence    PresenceChange    presence worker → nodes: a user went on/offline

``decode`` checks every field's type, so a malformed or foreign message raises ``WireError`` (the
receiver logs and drops it) instead of failing deep inside a handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Literal

import orjson

from parley.errors import ParleyError

GroupEvent = Literal["joined", "left", "renamed", "members", "roles"]
ReceiptStatus = Literal["delivered", "read"]


class WireError(ParleyError):
    default_code = "bad_bus_message"


@dataclass(frozen=True, slots=True)
class Revoke:
    kind: ClassVar[str] = "revoke"
    session: str


@dataclass(frozen=True, slots=True)
class FriendChange:
    """``friends``: whether the two are friends now (the node follows presence by it). ``state``: the
    relation as the receiving user sees it (``FriendState``: incoming, outgoing, friends, none), sent on to
    their devices as a ``friend`` frame; absent (from an API before it, or a node's own catch-up after a
    reconnect) nothing is sent on, and a pending request (incoming, outgoing) changes nothing on the node."""

    kind: ClassVar[str] = "friend"
    user_id: str
    friends: bool
    state: str | None = None


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """``user`` changed their display name or bio: sent on to the devices as a ``user`` frame."""

    kind: ClassVar[str] = "user"
    user: str
    display_name: str
    bio: str

    def public(self) -> dict[str, Any]:
        return {"id": self.user, "display_name": self.display_name, "bio": self.bio}


@dataclass(frozen=True, slots=True)
class GroupChange:
    """``since``: joined (the group's last id before the join); ``name``: renamed; ``added``/``removed``:
    members; ``user_id``/``role``: roles."""

    kind: ClassVar[str] = "group"
    conv: str
    event: GroupEvent
    since: int | None = None
    name: str | None = None
    added: tuple[str, ...] | None = None
    removed: tuple[str, ...] | None = None
    user_id: str | None = None
    role: str | None = None

    def details(self) -> dict[str, Any]:
        """The fields a client's ``group`` frame carries (those set)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True, slots=True)
class ReceiptNotice:
    """``conv`` is set on a user's control subject; on a conversation's event subject it is the subject."""

    kind: ClassVar[str] = "receipt"
    user: str
    status: ReceiptStatus
    upto: int
    conv: str | None = None


@dataclass(frozen=True, slots=True)
class ReceiptBatch:
    """Group ``delivered`` marks for one sender, gathered on the acking members' node for a short window
    (``node/receipt_tells.py``, ADR 0048): ``(conv, user, upto)`` each, one per (conv, user), the highest mark.
    The subject (``rcpt.user.<sender>``) names whose devices they are for."""

    kind: ClassVar[str] = "receipts"
    delivered: tuple[tuple[str, str, int], ...]


@dataclass(frozen=True, slots=True)
class TypingNotice:
    kind: ClassVar[str] = "typing"
    user: str
    device: str
    state: Literal["start", "stop"]


@dataclass(frozen=True, slots=True)
class Heartbeats:
    """Devices heard from: ``(user, device, at_ms)`` each: what nodes before ADR 0049 sent each beat (workers still
    take it, so old nodes and new workers coexist)."""

    kind: ClassVar[str] = "beats"
    beats: tuple[tuple[str, str, int], ...]


@dataclass(frozen=True, slots=True)
class DeviceHeld:
    """A device of the subject's partition connected to (``here``) or left ``node`` at ``at_ms``: change number
    ``seq`` of the node's incarnation ``inc`` for that partition (numbered from 1, each one more: a gap is a
    change missed). ADR 0049."""

    kind: ClassVar[str] = "device"
    node: str
    inc: int
    seq: int
    user: str
    device: str
    here: bool
    at: int


@dataclass(frozen=True, slots=True)
class StillHeld:
    """``node`` (incarnation ``inc``) still holds the devices of the subject's partition it told of, up to
    change ``seq``: sent each ``presence_beat_s`` instead of the devices themselves."""

    kind: ClassVar[str] = "held"
    node: str
    inc: int
    seq: int
    at: int


@dataclass(frozen=True, slots=True)
class HeldReport:
    """Every ``(user, device)`` of the subject's partition ``node`` holds as of change ``seq``, in ``parts``
    messages sent back to back (this is number ``part``, from 0): the worker takes it in place of what it had."""

    kind: ClassVar[str] = "report"
    node: str
    inc: int
    seq: int
    at: int
    devices: tuple[tuple[str, str], ...]
    part: int = 0
    parts: int = 1


@dataclass(frozen=True, slots=True)
class ReportAsk:
    """A presence worker asks a node for partition ``partition``'s report (it missed a change, or is new to it)."""

    kind: ClassVar[str] = "ask"
    partition: int


@dataclass(frozen=True, slots=True)
class PresenceChange:
    kind: ClassVar[str] = "presence"
    user: str
    online: bool
    last_active_at: int | None

    def public(self) -> dict[str, Any]:
        """One entry of a client's ``presence`` frame."""
        return {"user": self.user, "online": self.online, "last_active_at": self.last_active_at}


BusMessage = (Revoke | FriendChange | ProfileChange | GroupChange | ReceiptNotice | ReceiptBatch | TypingNotice
              | Heartbeats | DeviceHeld | StillHeld | HeldReport | ReportAsk | PresenceChange)
Holdings = DeviceHeld | StillHeld | HeldReport  # what a node says of the devices it holds (ADR 0049)


def encode(message: BusMessage) -> bytes:
    # shallow (no asdict: it deep-copies a heartbeat batch's thousands of tuples); fields are plain values
    values = {f.name: v for f in fields(message) if (v := getattr(message, f.name)) is not None}
    return orjson.dumps({"kind": message.kind, **values})


def decode(data: bytes) -> BusMessage:
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise WireError("not JSON") from None
    if not isinstance(raw, dict):
        raise WireError("not a JSON object")
    kind = raw.get("kind")
    parse = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parse is None:
        raise WireError(f"unknown kind {raw.get('kind')!r}")
    try:
        return parse(_Fields(raw))
    except (KeyError, TypeError, ValueError) as err:
        raise WireError(f"bad {raw.get('kind')} message: {err}") from None


class _Fields:
    """Typed reads of one message's fields; a missing or mistyped one raises."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def text(self, name: str) -> str:
        value = self.raw[name]
        if not isinstance(value, str):
            raise TypeError(f"{name}: not a string")
        return value

    def number(self, name: str) -> int:
        value = self.raw[name]
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name}: not an integer")
        return value

    def flag(self, name: str) -> bool:
        value = self.raw[name]
        if not isinstance(value, bool):
            raise TypeError(f"{name}: not a boolean")
        return value

    def opt(self, name: str, kind: type) -> Any:
        value = self.raw.get(name)
        return None if value is None else _typed(value, kind, name)

    def strs(self, name: str) -> tuple[str, ...] | None:
        value = self.raw.get(name)
        if value is None:
            return None
        return tuple(_typed(v, str, name) for v in _typed(value, list, name))


def _typed(value: Any, kind: type, name: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{name}: not a {kind.__name__}")
    return value


def _group(f: _Fields) -> GroupChange:
    event = f.text("event")
    if event not in ("joined", "left", "renamed", "members", "roles"):
        raise ValueError(f"event {event!r}")
    return GroupChange(f.text("conv"), event, f.opt("since", int), f.opt("name", str), f.strs("added"),  # type: ignore[arg-type]
                       f.strs("removed"), f.opt("user_id", str), f.opt("role", str))


def _friend(f: _Fields) -> FriendChange:
    state = f.opt("state", str)
    if state not in (None, "incoming", "outgoing", "friends", "none"):
        raise ValueError(f"state {state!r}")
    return FriendChange(f.text("user_id"), f.flag("friends"), state)


def _receipt(f: _Fields) -> ReceiptNotice:
    status = f.text("status")
    if status not in ("delivered", "read"):
        raise ValueError(f"status {status!r}")
    return ReceiptNotice(f.text("user"), status, f.number("upto"), f.opt("conv", str))  # type: ignore[arg-type]


def _typing(f: _Fields) -> TypingNotice:
    state = f.text("state")
    if state not in ("start", "stop"):
        raise ValueError(f"state {state!r}")
    return TypingNotice(f.text("user"), f.text("device"), state)  # type: ignore[arg-type]


def _well_formed(row: Any) -> bool:
    return (type(row) is list and len(row) == 3 and type(row[0]) is str and type(row[1]) is str
            and type(row[2]) is int)


def _triples(f: _Fields, name: str, first: str, second: str, third: str) -> tuple[tuple[str, str, int], ...]:
    """A list of ``[str, str, int]`` rows, e.g. heartbeats (user, device, at) or delivered marks (conv, user, upto)."""
    rows = _typed(f.raw[name], list, name)
    if all(map(_well_formed, rows)):  # the common case, checked cheaply: a presence worker reads millions a second
        return tuple(map(tuple, rows))
    out = []  # something is wrong: find it, for the error message
    for row in rows:
        a, b, c = _typed(row, list, name)
        out.append((_typed(a, str, first), _typed(b, str, second), _typed(c, int, third)))
    return tuple(out)


def _beats(f: _Fields) -> Heartbeats:
    return Heartbeats(_triples(f, "beats", "user", "device", "at"))


def _pairs(f: _Fields, name: str) -> tuple[tuple[str, str], ...]:
    rows = _typed(f.raw[name], list, name)
    if all(type(r) is list and len(r) == 2 and type(r[0]) is str and type(r[1]) is str for r in rows):
        return tuple(map(tuple, rows))
    raise TypeError(f"{name}: not a list of [str, str]")


def _device(f: _Fields) -> DeviceHeld:
    return DeviceHeld(f.text("node"), f.number("inc"), f.number("seq"), f.text("user"), f.text("device"),
                      f.flag("here"), f.number("at"))


def _report(f: _Fields) -> HeldReport:
    part, parts = f.number("part"), f.number("parts")
    if not 0 <= part < parts:
        raise ValueError(f"part {part} of {parts}")
    return HeldReport(f.text("node"), f.number("inc"), f.number("seq"), f.number("at"), _pairs(f, "devices"),
                      part, parts)


def _receipts(f: _Fields) -> ReceiptBatch:
    return ReceiptBatch(_triples(f, "delivered", "conv", "user", "upto"))


_PARSERS: dict[str, Callable[[_Fields], BusMessage]] = {
    "revoke": lambda f: Revoke(f.text("session")),
    "friend": _friend,
    "group": _group,
    "user": lambda f: ProfileChange(f.text("user"), f.text("display_name"), f.text("bio")),
    "receipt": _receipt,
    "receipts": _receipts,
    "typing": _typing,
    "beats": _beats,
    "device": _device,
    "held": lambda f: StillHeld(f.text("node"), f.number("inc"), f.number("seq"), f.number("at")),
    "report": _report,
    "ask": lambda f: ReportAsk(f.number("partition")),
    "presence": lambda f: PresenceChange(f.text("user"), f.flag("online"), f.opt("last_active_at", int)),
}
