"""What a store provides, one Protocol per concept; ``Store`` is all of them plus start and stop.

A process depends on the concepts it uses (the archiver on ``Archive``, the pusher on the push
facts), so a backend, a test double or a reader knows what each one needs. Every method is async;
a backend that talks to a blocking driver runs it off the event loop. Backends raise
``Unavailable(code="store_unavailable")`` when they cannot reach their database.

Invariants every backend keeps:
- message writes are idempotent (same id → same row), so the archiver may redeliver freely;
- ``messages_for_user`` costs O(missed + conversations of the user), never a scan;
- receipt marks only move forward (a lower value than stored changes nothing); a device's cursor is
  the token last saved;
- a group never passes its member cap (SQLite: one transaction; Cassandra: a compare-and-set count);
- a block ends any friendship or request between the two; a deleted account keeps its id (a placeholder
  its messages stay attributed to) and reserves its username for good, and nothing else of it remains
  (ADR 0015).
``tests/contract/test_store.py`` runs the same contract on every backend.
"""

from __future__ import annotations

from typing import Protocol

from parley.errors import Conflict
from parley.ids import ConversationId, DeviceId, SessionId, UserId
from parley.store.columns import MessageRow
from parley.store.records import (
    ConnectReads,
    Conversation,
    Device,
    FriendState,
    LiveMessage,
    PushPrefs,
    PushToken,
    Receipt,
    Role,
    Session,
    StoredMessage,
    User,
)


class Accounts(Protocol):
    """Users and their credentials; usernames are unique (a deleted account's stays taken).
    ``user_by_name`` finds no deleted account; ``get_user`` returns its placeholder (``deleted``)."""

    async def create_user(self, user: User, password_hash: str) -> None: ...
    async def user_by_name(self, username: str) -> tuple[User, str] | None: ...
    async def get_user(self, user: UserId) -> User | None: ...
    async def get_users(self, users: list[UserId]) -> dict[UserId, User]: ...
    async def update_user(self, user: UserId, *, display_name: str | None, bio: str | None) -> User: ...
    async def set_password_hash(self, user: User, password_hash: str) -> None: ...


class Sessions(Protocol):
    """Login sessions, the devices they run on, and how far each device has synced (its cursor)."""

    async def create_session(self, session: Session) -> None: ...
    async def get_session(self, session: SessionId) -> Session | None: ...
    async def revoke_session(self, session: SessionId) -> None: ...
    async def sessions_of(self, user: UserId) -> list[Session]:
        """The user's sessions that are neither revoked nor past their lifetime."""
    async def upsert_device(self, device: Device) -> Device: ...
    async def get_device(self, device: DeviceId) -> Device | None: ...
    async def list_devices(self, user: UserId) -> list[Device]: ...
    async def save_cursors(self, cursors: dict[DeviceId, str]) -> None: ...
    async def connect_reads(self, session: SessionId, *, device: DeviceId | None = None,
                            user: UserId | None = None) -> ConnectReads:
        """A connect's reads in one call: the session; with ``device``, its stored cursor; with ``user``, the
        user's groups (``groups_of``) and friendships (``list_friends``)."""


class Friends(Protocol):
    """A request from a to b; b's request to a (or accept) makes them friends."""

    async def add_friend(self, a: UserId, b: UserId) -> FriendState: ...
    async def remove_friend(self, a: UserId, b: UserId) -> None: ...
    async def friend_state(self, a: UserId, b: UserId) -> FriendState: ...
    async def list_friends(self, user: UserId) -> list[tuple[UserId, FriendState]]: ...


class Blocks(Protocol):
    """``a`` blocks ``b``: one direction each; blocking ends any friendship or request between them."""

    async def block(self, a: UserId, b: UserId) -> bool:
        """Whether the block is new (blocking again changes nothing)."""
    async def unblock(self, a: UserId, b: UserId) -> bool: ...
    async def blocked_by(self, user: UserId) -> list[UserId]:
        """Whom ``user`` has blocked, sorted."""
    async def blocks_with(self, user: UserId) -> set[UserId]:
        """Everyone ``user`` blocked or is blocked by."""


class Erasure(Protocol):
    async def delete_account(self, user: UserId, *, now: int) -> None:
        """Remove what is personal of the account: its profile (a placeholder stays), password hash,
        devices and cursors, push tokens and preferences, friendships and requests, blocks both ways; every
        session revoked. The username stays reserved. Group memberships are left to the caller (each leave
        is announced). Idempotent: running it again finishes a deletion a failure cut short."""


class Conversations(Protocol):
    """DMs and groups as their members see them, each with its newest message."""

    async def open_conversation(self, conv: Conversation) -> None: ...
    async def get_conversation(self, conv: ConversationId) -> Conversation | None: ...
    async def list_conversations(self, user: UserId) -> list[Conversation]: ...


class Archive(Protocol):
    """Where the archiver writes messages; nothing else writes them."""

    async def put_messages(self, messages: list[StoredMessage]) -> None: ...
    async def put_rows(self, rows: list[MessageRow]) -> None:
        """``put_messages`` of the messages these rows hold (``columns.row_of``): the archiver's way, a plain
        message never built as a ``StoredMessage``; the same rows written, as idempotently."""
    async def apply_actions(self, entries: list[StoredMessage]) -> list[StoredMessage]:
        """Fold actions and replies (already put, in id order) into their targets' stored state
        (``parley.actions.apply``) and blank the entries a delete reaches; idempotent. Returns the entries whose
        target is not stored (yet: a batch written beside this one may hold it)."""


class History(Protocol):
    """Stored messages read back: one conversation's page, or what a user missed across all of theirs."""

    async def messages_for_user(
        self, user: UserId, *, shard: int, after: int, upto: int, limit: int
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


class Messages(Archive, History, Protocol):
    """Everything that touches messages."""


class Groups(Protocol):
    """Conversations of kind "group": members and roles change (a DM's never do)."""

    async def create_group(self, conv: Conversation) -> None: ...
    async def add_members(self, conv: ConversationId, users: list[UserId], *, cap: int) -> list[UserId]:
        """Add the users not yet members and return them; all or none: ``Conflict(group_full)`` if the
        group would pass ``cap`` members."""
    async def remove_member(self, conv: ConversationId, user: UserId) -> bool: ...
    async def set_role(self, conv: ConversationId, user: UserId, role: Role) -> None: ...
    async def rename_group(self, conv: ConversationId, name: str) -> None: ...
    async def groups_of(self, user: UserId) -> list[ConversationId]: ...


class Receipts(Protocol):
    """Delivered and read marks; they only move forward (a lower value than stored changes nothing)."""

    async def save_receipts(self, receipts: list[Receipt]) -> None: ...
    async def receipts(self, conv: ConversationId) -> list[Receipt]:
        """Every member's marks that were ever saved, sorted by user."""


class Push(Protocol):
    """Who can get a push (a token per device) and whether they want one (preferences, muted conversations)."""

    async def put_push_token(self, token: PushToken) -> None: ...
    async def delete_push_token(self, user: UserId, device: DeviceId, *, only: str | None = None) -> bool:
        """Remove the device's token (``only``: if it is still that token, not a newer one)."""
    async def push_tokens(self, users: list[UserId]) -> list[PushToken]: ...
    async def push_prefs(self, user: UserId) -> PushPrefs: ...
    async def set_push_prefs(self, user: UserId, *, muted: bool | None, hide_text: bool | None) -> PushPrefs: ...
    async def mute_conversation(self, user: UserId, conv: ConversationId, muted: bool) -> None: ...


class LiveMessages(Protocol):
    """Live rooms' messages (ADR 0018): every accepted one, written by the archiver (idempotent; a rewrite
    never brings a deleted message back); a deletion leaves a tombstone (``deleted``, empty body)."""

    async def put_live_messages(self, messages: list[LiveMessage]) -> None: ...
    async def live_history(self, room: str, *, before: int | None, limit: int) -> list[LiveMessage]:
        """The room's messages with ids below ``before`` (all: None), newest first, tombstones included."""
    async def delete_live_message(self, room: str, id: int) -> bool:
        """Make the message a tombstone; False if the store has no such message of the room."""


class Store(Accounts, Sessions, Friends, Blocks, Erasure, Conversations, Messages, Groups, Receipts, Push,
            LiveMessages, Protocol):
    """A whole backend, as ``open_store`` returns it."""

    async def migrate(self) -> None:
        """Connect and bring the schema up to date; every process calls it at start-up."""

    async def close(self) -> None: ...


def group_full(cap: int, present: int, adding: int) -> Conflict:
    """The error ``Groups.add_members`` raises when the group would pass its cap."""
    return Conflict(f"a group has at most {cap} members; it has {present} and {adding} would join",
                    code="group_full", limit=cap, members=present)
