"""Typed ids and the mapping from conversations to NATS subjects.

Invariants:
- User, device and group ids are 16 lowercase base32 characters (80 random bits): safe as one NATS
  subject token, URL segment and SQL/CQL key.
- A message id is its shard stream's sequence and the shard, packed (``parley.shards``): unique, and
  increasing within a conversation. ``prev`` is the id of the previous message of the same conversation
  (0 for the first), so a gap is visible to anyone holding a conversation's tail.
- A DM conversation id is ``dm.<lo>.<hi>`` (the two user ids sorted); a group's is ``g.<id>``; the
  stream subject of either is ``msg.<shard>.`` + id (``parley.shards``), its delivery subject ``dlv.`` + id.
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import NewType

UserId = NewType("UserId", str)
DeviceId = NewType("DeviceId", str)
NodeId = NewType("NodeId", str)
ConversationId = NewType("ConversationId", str)
MessageId = NewType("MessageId", int)
SessionId = NewType("SessionId", str)

_ID_RE = re.compile(r"^[a-z2-7]{16}$")
_DM_RE = re.compile(r"^dm\.([a-z2-7]{16})\.([a-z2-7]{16})$")
_GROUP_RE = re.compile(r"^g\.[a-z2-7]{16}$")

MSG_PREFIX = "msg."  # + shard + "." + conversation: captured by the shard's stream
DELIVERY_PREFIX = "dlv."  # the stream republishes every stored message here, in stream order
EVENT_PREFIX = "evt."  # typing and receipts of a conversation: core NATS, never stored


def new_id() -> str:
    return base64.b32encode(secrets.token_bytes(10)).decode().lower()


def new_user_id() -> UserId:
    return UserId(new_id())


def new_device_id() -> DeviceId:
    return DeviceId(new_id())


def new_session_id() -> SessionId:
    return SessionId(new_id())


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID_RE.match(value))


def dm_conversation(a: UserId, b: UserId) -> ConversationId:
    lo, hi = sorted((a, b))
    return ConversationId(f"dm.{lo}.{hi}")


def dm_members(conv: str) -> tuple[UserId, UserId] | None:
    m = _DM_RE.match(conv)
    if not m or m.group(1) >= m.group(2):
        return None
    return UserId(m.group(1)), UserId(m.group(2))


def new_group_conversation() -> ConversationId:
    return ConversationId(f"g.{new_id()}")


def is_group(conv: object) -> bool:
    return isinstance(conv, str) and bool(_GROUP_RE.match(conv))


def is_conversation_id(value: object) -> bool:
    return isinstance(value, str) and (dm_members(value) is not None or is_group(value))


def conversation_of_delivery(subject: str) -> ConversationId:
    return ConversationId(subject[len(DELIVERY_PREFIX) :])


def user_delivery_subjects(user: UserId) -> tuple[str, ...]:
    """Core subjects a node subscribes to while ``user`` has a device connected to it."""
    return (f"{DELIVERY_PREFIX}dm.{user}.*", f"{DELIVERY_PREFIX}dm.*.{user}", control_subject(user))


def group_delivery_subject(conv: str) -> str:
    return DELIVERY_PREFIX + conv


def event_subject(conv: str) -> str:
    return EVENT_PREFIX + conv


def user_event_subjects(user: UserId) -> tuple[str, ...]:
    """The event subjects of ``user``'s DMs (a group's is ``event_subject(group)``)."""
    return (f"{EVENT_PREFIX}dm.{user}.*", f"{EVENT_PREFIX}dm.*.{user}")


def control_subject(user: UserId) -> str:
    return f"ctl.user.{user}"


def receipt_subject(user: UserId) -> str:
    """Group receipts for ``user``'s devices, between nodes: not the control subject, which only the API
    may publish on (``parley.bus.permissions``)."""
    return f"rcpt.user.{user}"


def node_control_subject(node_id: str) -> str:
    """Requests to one edge node from operators' tools (``parley node drain``)."""
    return f"ctl.node.{node_id}"


def dedup_id(user: UserId, conv: ConversationId, client_message_id: str) -> str:
    """A resend is the same user, conversation and client message id (within the dedup window)."""
    return f"{user}:{conv}:{client_message_id}"
