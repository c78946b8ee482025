"""What the store keeps: frozen records, the same for every backend.

Times are unix ms unless a field says otherwise. Tuples that hold members, roles or muted
conversations are sorted, so two reads of the same state compare equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import orjson

from parley.ids import ConversationId, DeviceId, MessageId, SessionId, UserId

FriendState = Literal["none", "outgoing", "incoming", "friends"]
Role = Literal["owner", "admin", "member"]
Platform = Literal["android", "ios", "web"]


@dataclass(frozen=True, slots=True)
class User:
    id: UserId
    username: str
    display_name: str
    created_at: int  # unix ms
    bio: str = ""
    deleted: bool = False  # the account was deleted: a placeholder (no username, no profile; ADR 0015)


@dataclass(frozen=True, slots=True)
class Session:
    id: SessionId
    user: UserId
    device: DeviceId
    created_at: int
    expires_at: int  # unix s
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class ConnectReads:
    """What a connection's set-up reads, in one store call (``connect_reads``, ADR 0035): the session, and
    what was asked for besides: the device's stored cursor ("" when it has none; None: not asked or no such
    device), the user's groups and friendships (None: not asked)."""

    session: Session | None
    cursor: str | None = None
    groups: list[ConversationId] | None = None
    friends: list[tuple[UserId, FriendState]] | None = None


@dataclass(frozen=True, slots=True)
class Device:
    id: DeviceId
    user: UserId
    name: str
    created_at: int
    cursor: str = ""  # the last cursor the device acked (an opaque token; "" for none yet)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: MessageId
    conv: ConversationId
    prev: int
    sender: UserId
    device: DeviceId
    cid: str
    body: str
    ts: int  # unix ms, taken by the sending node
    # an action on an earlier message (ADR 0025): kind edit/delete/react/unreact, its target's id and ts, the emoji
    kind: str = ""  # "": a message
    target: int = 0
    target_ts: int = 0
    emoji: str = ""
    # a reply: the message it answers and a quote of it (its sender, its first characters) taken at send time
    reply_to: int = 0
    quote_from: str = ""
    quote: str = ""
    state: MessageState = field(default_factory=lambda: MessageState())  # what later actions made of it
    attachments: tuple[AttachmentRef, ...] = ()  # files it carries (ADR 0024), as they were when it was sent


@dataclass(frozen=True, slots=True)
class MessageState:
    """What the actions archived so far made of a message (ADR 0025; ``parley.actions.apply``). ``reactions``: a
    ledger of (emoji, user, ±action id), + on, − taken back, so a redelivered older action changes nothing;
    ``edits`` and ``quoted_by``: (id, ts) of the edit entries and the replies that carry its text, blanked when
    it is deleted."""

    edit_id: int = 0
    edited_at: int = 0
    deleted: bool = False
    delete_id: int = 0  # the delete entry, its sender and cid (a resend of that delete is answered duplicate)
    delete_from: str = ""
    delete_cid: str = ""
    reactions: tuple[tuple[str, str, int], ...] = ()
    edits: tuple[tuple[int, int], ...] = ()
    quoted_by: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class AttachmentRef:
    """An attachment as a message carries it (ADR 0024): enough to show it without asking for it. ``width``,
    ``height`` and ``thumb`` for images only (0, 0, False otherwise)."""

    id: str
    type: str  # sniffed from the bytes (parley.attachments.sniff)
    name: str
    size: int  # bytes, as served
    width: int = 0
    height: int = 0
    thumb: bool = False

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"id": self.id, "type": self.type, "name": self.name, "size": self.size}
        return out | {"width": self.width, "height": self.height, "thumb": self.thumb} if self.thumb else out

    @classmethod
    def from_json(cls, d: dict[str, object]) -> AttachmentRef:
        return cls(str(d["id"]), str(d["type"]), str(d["name"]), _int(d["size"]), _int(d.get("width", 0)),
                   _int(d.get("height", 0)), bool(d.get("thumb", False)))


def _int(value: object) -> int:
    return value if isinstance(value, int) else int(str(value))


def refs_to_text(refs: tuple[AttachmentRef, ...]) -> str:
    """A message's attachments as the stores keep them: a JSON list, "" for none."""
    return orjson.dumps([r.as_json() for r in refs]).decode() if refs else ""


def refs_from_text(text: str | None) -> tuple[AttachmentRef, ...]:
    return tuple(AttachmentRef.from_json(d) for d in orjson.loads(text)) if text else ()


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """A message of a live room (ADR 0018). ``id``: its ``LIVE`` stream sequence. A deleted one stays as a
    tombstone: ``deleted`` and an empty body."""

    room: str
    id: int
    sender: UserId
    cid: str
    body: str
    ts: int  # unix ms, taken by the sending node
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class Receipt:
    """How far a member of a conversation has got: every message up to ``delivered`` reached one of
    their devices; they have read up to ``read``. Both only move forward."""

    conv: ConversationId
    user: UserId
    delivered: int = 0
    read: int = 0


@dataclass(frozen=True, slots=True)
class PushToken:
    """A device's FCM registration token; one per device (a new one replaces the old)."""

    user: UserId
    device: DeviceId
    platform: Platform
    token: str
    updated_at: int  # unix ms


@dataclass(frozen=True, slots=True)
class PushPrefs:
    muted: bool = False  # no pushes at all
    hide_text: bool = False  # notifications say "New message" instead of the text
    muted_convs: tuple[ConversationId, ...] = ()  # sorted


@dataclass(frozen=True, slots=True)
class Conversation:
    id: ConversationId
    kind: Literal["dm", "group"]
    members: tuple[UserId, ...]  # sorted
    created_at: int
    last_message: StoredMessage | None = field(default=None)
    name: str = ""  # groups
    roles: tuple[tuple[UserId, Role], ...] = ()  # groups: the owner and admins, sorted; the rest are members
    shard: int | None = None  # the stream shard it lives in (parley.shards); None: stored before shards

    def role_of(self, user: UserId) -> Role | None:
        if user not in self.members:
            return None
        return dict(self.roles).get(user, "member")
