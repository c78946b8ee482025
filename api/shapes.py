"""The JSON shapes of users, messages and conversations in API responses (docs/openapi.yaml's ``User``,
``Message`` and ``Conversation`` schemas). Pure: store records in, dicts for ``orjson`` out.

A conversation lists only the members whose user record was found; a group adds its name and roles.
"""

from __future__ import annotations

from typing import Any

from parley.actions import extras_json
from parley.ids import UserId
from parley.messages import attachments_json
from parley.store import Conversation, StoredMessage, User


def user_json(u: User) -> dict[str, Any]:
    """A deleted account adds ``deleted: true`` (its username and profile are empty)."""
    out = {"id": u.id, "username": u.username, "display_name": u.display_name, "bio": u.bio,
           "created_at": u.created_at}
    return out | {"deleted": True} if u.deleted else out


def message_json(m: StoredMessage) -> dict[str, Any]:
    return {"id": m.id, "prev": m.prev, "conv": m.conv, "from": m.sender, "device": m.device, "cid": m.cid,
            "body": m.body, "ts": m.ts} | extras_json(m) | attachments_json(m)


def conversation_json(c: Conversation, users: dict[UserId, User]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": c.id,
        "kind": c.kind,
        "members": [user_json(users[m]) for m in c.members if m in users],
        "created_at": c.created_at,
        "last_message": message_json(c.last_message) if c.last_message else None,
    }
    if c.kind == "group":
        out |= {"name": c.name, "roles": dict(c.roles)}
    return out
