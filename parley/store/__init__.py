"""The store: what every backend (SQLite embedded, Cassandra for clusters) must provide.

Records are frozen dataclasses. Every method is async; a backend that talks to a blocking driver
runs it off the event loop. Message writes are idempotent (same id → same row), so the archiver may
redeliver freely. ``messages_for_user`` costs O(missed + conversations of the user), never a scan.
Backends raise ``Unavailable(code="store_unavailable")`` when they cannot reach their database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from parley.ids import ConversationId, DeviceId, MessageId, SessionId, UserId

if TYPE_CHECKING:
    from parley.settings import Settings

FriendState = Literal["none", "outgoing", "incoming", "friends"]
Role = Literal["owner", "admin", "member"]


@dataclass(frozen=True, slots=True)
class User:
    id: UserId
    username: str
    display_name: str
    created_at: int  # unix ms
    bio: str = ""


@dataclass(frozen=True, slots=True)
class Session:
    id: SessionId
    user: UserId
    device: DeviceId
    created_at: int
    expires_at: int  # unix s
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class Device:
    id: DeviceId
    user: UserId
    name: str
    created_at: int
    cursor: int = 0


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


@dataclass(frozen=True, slots=True)
class Receipt:
    """How far a member of a conversation has got: every message up to ``delivered`` reached one of
    their devices; they have read up to ``read``. Both only move forward."""

    conv: ConversationId
    user: UserId
    delivered: int = 0
    read: int = 0


Platform = Literal["android", "ios", "web"]


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

    def role_of(self, user: UserId) -> Role | None:
        if user not in self.members:
            return None
        return dict(self.roles).get(user, "member")


class Store(Protocol):
    async def migrate(self) -> None:
        """Connect and bring the schema up to date; every process calls it at start-up."""

    async def close(self) -> None: ...

    # users and credentials
    async def create_user(self, user: User, password_hash: str) -> None: ...
    async def user_by_name(self, username: str) -> tuple[User, str] | None: ...
    async def get_user(self, user: UserId) -> User | None: ...
    async def get_users(self, users: list[UserId]) -> dict[UserId, User]: ...
    async def update_user(self, user: UserId, *, display_name: str | None, bio: str | None) -> User: ...

    # sessions and devices
    async def create_session(self, session: Session) -> None: ...
    async def get_session(self, session: SessionId) -> Session | None: ...
    async def revoke_session(self, session: SessionId) -> None: ...
    async def upsert_device(self, device: Device) -> Device: ...
    async def get_device(self, device: DeviceId) -> Device | None: ...
    async def list_devices(self, user: UserId) -> list[Device]: ...
    async def save_cursors(self, cursors: dict[DeviceId, int]) -> None: ...

    # friends: a request from a to b; b's request to a (or accept) makes them friends
    async def add_friend(self, a: UserId, b: UserId) -> FriendState: ...
    async def remove_friend(self, a: UserId, b: UserId) -> None: ...
    async def friend_state(self, a: UserId, b: UserId) -> FriendState: ...
    async def list_friends(self, user: UserId) -> list[tuple[UserId, FriendState]]: ...

    # conversations and messages
    async def open_conversation(self, conv: Conversation) -> None: ...
    async def get_conversation(self, conv: ConversationId) -> Conversation | None: ...
    async def list_conversations(self, user: UserId) -> list[Conversation]: ...
    async def put_messages(self, messages: list[StoredMessage]) -> None: ...

    # groups: conversations of kind "group" (members and roles change; DMs never do)
    async def create_group(self, conv: Conversation) -> None: ...
    async def add_members(self, conv: ConversationId, users: list[UserId], *, cap: int) -> list[UserId]:
        """Add the users not yet members and return them; all or none: ``Conflict(group_full)`` if the
        group would pass ``cap`` members."""
    async def remove_member(self, conv: ConversationId, user: UserId) -> bool: ...
    async def set_role(self, conv: ConversationId, user: UserId, role: Role) -> None: ...
    async def rename_group(self, conv: ConversationId, name: str) -> None: ...
    async def groups_of(self, user: UserId) -> list[ConversationId]: ...

    # receipts: marks only move forward (a lower value than stored changes nothing)
    async def save_receipts(self, receipts: list[Receipt]) -> None: ...
    async def receipts(self, conv: ConversationId) -> list[Receipt]:
        """Every member's marks that were ever saved, sorted by user."""

    # push
    async def put_push_token(self, token: PushToken) -> None: ...
    async def delete_push_token(self, user: UserId, device: DeviceId, *, only: str | None = None) -> bool:
        """Remove the device's token (``only``: if it is still that token, not a newer one)."""
    async def push_tokens(self, users: list[UserId]) -> list[PushToken]: ...
    async def push_prefs(self, user: UserId) -> PushPrefs: ...
    async def set_push_prefs(self, user: UserId, *, muted: bool | None, hide_text: bool | None) -> PushPrefs: ...
    async def mute_conversation(self, user: UserId, conv: ConversationId, muted: bool) -> None: ...
    async def messages_for_user(
        self, user: UserId, *, after: int, upto: int, limit: int
    ) -> list[StoredMessage]: ...
    async def history(
        self,
        conv: ConversationId,
        *,
        before: int | None,
        after: int | None,
        limit: int,
        newest_first: bool,
    ) -> list[StoredMessage]: ...


def group_full(cap: int, present: int, adding: int) -> Exception:
    from parley.errors import Conflict

    return Conflict(f"a group has at most {cap} members; it has {present} and {adding} would join",
                    code="group_full", limit=cap, members=present)


def open_store(settings: Settings) -> Store:
    if settings.store == "sqlite":
        from parley.store.sqlite import SQLiteStore

        return SQLiteStore(settings.sqlite_path)
    if settings.store == "cassandra":
        from parley.store.cassandra import CassandraStore

        return CassandraStore(settings)
    from parley.errors import ParleyError

    raise ParleyError(f"unknown store backend {settings.store!r} (PARLEY_STORE)", code="bad_setting")
