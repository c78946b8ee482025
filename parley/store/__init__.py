"""The store: records (``records``), what a backend provides (``protocols``), and ``open_store``.

Two backends: ``sqlite`` (embedded, one file per machine) and ``cassandra`` (clusters). Each is a
package with one module per concept and one for its plumbing; ``open_store`` imports only the one
the settings name, so a process never loads the other's driver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parley.store.protocols import (
    Accounts,
    Archive,
    Blocks,
    Conversations,
    Erasure,
    Friends,
    Groups,
    History,
    Messages,
    Push,
    Receipts,
    Sessions,
    Store,
    group_full,
)
from parley.store.records import (
    AttachmentRef,
    ConnectReads,
    Conversation,
    Device,
    FriendState,
    MessageState,
    Platform,
    PushPrefs,
    PushToken,
    Receipt,
    Role,
    Session,
    StoredMessage,
    User,
)

if TYPE_CHECKING:
    from parley.settings import Settings

__all__ = [
    "Accounts", "Archive", "Blocks", "ConnectReads", "Conversation", "Conversations", "Device", "Erasure",
    "FriendState", "Friends",
    "Groups", "History",
    "Messages", "Platform", "Push", "PushPrefs", "PushToken", "Receipt", "Receipts", "Role", "Session", "Sessions",
    "Store", "StoredMessage", "User", "group_full", "open_store",
    "MessageState", "AttachmentRef",
]


def open_store(settings: Settings) -> Store:
    if settings.store == "sqlite":
        from parley.store.sqlite import SQLiteStore

        return SQLiteStore(settings.sqlite_path)
    if settings.store == "cassandra":
        from parley.store.cassandra import CassandraStore

        return CassandraStore(settings)
    from parley.errors import ParleyError

    raise ParleyError(f"unknown store backend {settings.store!r} (PARLEY_STORE)", code="bad_setting")
