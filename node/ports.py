"""What the edge node needs of the store, as the node's own small Protocols.

A node reads sessions (is this token's session still live?), devices and their cursors, the
conversations and groups a user is in, their friends and blocks, messages (sync and a conversation's last
message), a live room's backlog, and saves cursors and delivered/read marks. It never writes accounts,
friends, groups or messages. Every backend's store (``parley.store``) has these methods.
"""

from __future__ import annotations

from typing import Protocol

from parley.ids import ConversationId, DeviceId, SessionId, UserId
from parley.store import ConnectReads, Conversation, Device, FriendState, Receipt, Session, StoredMessage, User
from parley.store.records import LiveMessage


class Sessions(Protocol):
    async def get_session(self, session: SessionId) -> Session | None: ...
    async def connect_reads(self, session: SessionId, *, device: DeviceId | None = None,
                            user: UserId | None = None) -> ConnectReads: ...


class Cursors(Protocol):
    async def get_device(self, device: DeviceId) -> Device | None: ...
    async def save_cursors(self, cursors: dict[DeviceId, str]) -> None: ...


class MessageHistory(Protocol):
    async def messages_for_user(self, user: UserId, *, shard: int, after: int, upto: int,
                                limit: int) -> list[StoredMessage]: ...
    async def history(self, conv: ConversationId, *, before: int | None, after: int | None, limit: int,
                      newest_first: bool) -> list[StoredMessage]: ...


class Memberships(Protocol):
    async def get_conversation(self, conv: ConversationId) -> Conversation | None: ...
    async def groups_of(self, user: UserId) -> list[ConversationId]: ...
    async def list_friends(self, user: UserId) -> list[tuple[UserId, FriendState]]: ...
    async def friend_state(self, a: UserId, b: UserId) -> FriendState: ...
    async def blocks_with(self, user: UserId) -> set[UserId]: ...
    async def get_users(self, users: list[UserId]) -> dict[UserId, User]: ...


class Receipts(Protocol):
    async def save_receipts(self, receipts: list[Receipt]) -> None: ...


class LiveReads(Protocol):
    """A live room's backlog at a join, and a sender's account age (new-account screens)."""

    async def live_history(self, room: str, *, before: int | None, limit: int) -> list[LiveMessage]: ...
    async def get_user(self, user: UserId) -> User | None: ...


class NodeStore(Sessions, Cursors, MessageHistory, Memberships, Receipts, LiveReads, Protocol):
    """Everything a node reads and writes, plus start and stop."""

    async def migrate(self) -> None: ...
    async def close(self) -> None: ...
