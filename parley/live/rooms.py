"""A live room: its meta (title, description, state, owner, moderators, pin), its subjects, its messages'
wire form. Pure.

Subjects (ADR 0018): a send is a JetStream publish to ``live.msg.<room>`` (captured by the ``LIVE`` stream,
deduplicated by ``<user>.<cid>``); the stream republishes each stored message to ``live.dlv.<room>`` with its
sequence (the message id); moderation and meta changes go to ``live.evt.<room>`` (core NATS, never stored).
A node subscribes to a room's ``dlv`` and ``evt`` subjects once, while it has viewers there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from parley.errors import BadRequest, Forbidden
from parley.ids import is_valid_id

State = Literal["open", "closed", "archived"]
STATES: tuple[State, ...] = ("open", "closed", "archived")
MAX_TITLE, MAX_DESCRIPTION, MAX_MODERATORS = 200, 2000, 100
MSG, DLV, EVT = "live.msg.", "live.dlv.", "live.evt."
CNT = "live.cnt."  # nodes tell each other their viewers of a room (parley.node.live.audience)


def send_subject(room: str) -> str:
    return MSG + room


def delivery_subject(room: str) -> str:
    return DLV + room


def event_subject(room: str) -> str:
    return EVT + room


def count_subject(room: str) -> str:
    return CNT + room


def room_of(subject: str) -> str:
    return subject.rsplit(".", 1)[-1]


def is_room_id(value: object) -> bool:
    return is_valid_id(value)


@dataclass(frozen=True)
class RoomMeta:
    id: str
    owner: str
    title: str
    description: str = ""
    state: State = "open"
    moderators: tuple[str, ...] = ()
    pinned: int | None = None  # a message id
    created_at: int = 0  # ms
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # kept as read (others' fields)

    def moderates(self, user: str) -> bool:
        return user == self.owner or user in self.moderators

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "owner": self.owner, "title": self.title, "description": self.description,
                "state": self.state, "moderators": list(self.moderators), "pinned": self.pinned,
                "created_at": self.created_at}

    def encode(self) -> bytes:
        return orjson.dumps({**self.extra, **self.as_dict()})

    def must_moderate(self, user: str) -> None:
        if not self.moderates(user):
            raise Forbidden("only the room's owner and moderators may do this", code="not_moderator", room=self.id)

    def must_own(self, user: str) -> None:
        if user != self.owner:
            raise Forbidden("only the room's owner may do this", code="not_owner", room=self.id)


def decode_meta(data: bytes) -> RoomMeta:
    d = orjson.loads(data)
    known = {f.name for f in dataclasses.fields(RoomMeta)} - {"extra"}
    return RoomMeta(id=d["id"], owner=d["owner"], title=d["title"], description=d.get("description", ""),
                    state=d.get("state", "open"), moderators=tuple(d.get("moderators", ())), pinned=d.get("pinned"),
                    created_at=d.get("created_at", 0), extra={k: v for k, v in d.items() if k not in known})


def checked_title(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TITLE:
        raise BadRequest(f"title: 1 to {MAX_TITLE} characters", code="bad_field", field="title")
    return value.strip()


def checked_description(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise BadRequest(f"description: at most {MAX_DESCRIPTION} characters", code="bad_field", field="description")
    return value


def checked_state(value: object) -> State:
    if value not in STATES:
        raise BadRequest("state: open, closed or archived", code="bad_field", field="state")
    return value


def with_moderator(meta: RoomMeta, user: str, *, add: bool) -> RoomMeta:
    mods = [m for m in meta.moderators if m != user] + ([user] if add else [])
    if len(mods) > MAX_MODERATORS:
        raise BadRequest(f"a room has at most {MAX_MODERATORS} moderators", code="bad_field", field="user")
    return dataclasses.replace(meta, moderators=tuple(mods))


# ---- messages -------------------------------------------------------------------------------


def encode_message(*, sender: str, cid: str, body: str, ts: int) -> bytes:
    """The payload published to ``live.msg.<room>`` (the id is the stream's sequence, added on delivery)."""
    return orjson.dumps({"from": sender, "cid": cid, "body": body, "ts": ts})


def message_frame(room: str, id: int, payload: bytes) -> dict[str, Any]:
    d = orjson.loads(payload)
    return {"type": "live_msg", "room": room, "id": id, "from": d["from"], "cid": d["cid"], "body": d["body"],
            "ts": d["ts"]}


def dedup_of(user: str, cid: str) -> str:
    return f"{user}.{cid}"
