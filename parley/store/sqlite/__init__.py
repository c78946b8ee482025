"""The embedded store: one SQLite file in WAL mode, shared by every process on the machine.

``SQLiteStore`` is the concept classes (one module each: accounts, sessions, friends, blocks, erasure,
conversations, messages, groups, receipts, push, live) over one ``Database`` (db.py: the connection and its thread);
the migrations are in schema.py. Everything that reads or writes the messages table is in
messages.py.
"""

from __future__ import annotations

from parley.store.sqlite.accounts import SQLiteAccounts
from parley.store.sqlite.blocks import SQLiteBlocks
from parley.store.sqlite.connects import SQLiteConnects
from parley.store.sqlite.conversations import SQLiteConversations
from parley.store.sqlite.db import Database
from parley.store.sqlite.erasure import SQLiteErasure
from parley.store.sqlite.friends import SQLiteFriends
from parley.store.sqlite.groups import SQLiteGroups
from parley.store.sqlite.live import SQLiteLive
from parley.store.sqlite.messages import SQLiteMessages
from parley.store.sqlite.push import SQLitePush
from parley.store.sqlite.receipts import SQLiteReceipts
from parley.store.sqlite.sessions import SQLiteSessions

__all__ = ["SQLiteStore"]


class SQLiteStore(SQLiteAccounts, SQLiteSessions, SQLiteFriends, SQLiteBlocks, SQLiteErasure, SQLiteConversations,
                  SQLiteMessages, SQLiteGroups, SQLiteReceipts, SQLitePush, SQLiteLive, SQLiteConnects):
    def __init__(self, path: str) -> None:
        self._db = Database(path)

    async def migrate(self) -> None:
        await self._db.run(lambda db: None)  # connecting brings the schema up to date

    async def close(self) -> None:
        await self._db.close()
