"""The Cassandra store: accounts, friends, conversations and history in Apache Cassandra 5.0.

``CassandraStore`` is the concept classes (one module each: accounts, sessions, friends, blocks,
erasure, conversations, messages, groups, receipts, push, live; ``membership`` is the two-way member index they
share) over one ``Cql`` (cql.py: cluster, prepared statements, the asyncio bridge, paging,
consistency). Each concept module owns its statements (``QUERIES``); the names are one namespace
(``join_queries`` refuses a name defined twice), and a module uses another's statement only on a
table they share (groups move ``conversations.member_count``; several read ``membership``). The
schema and its migrations are in schema.py, the reasons for the data model in docs/adr/0004.
Everything that touches the message tables is in messages.py.

Writes sync relies on (``TRUSTED_WRITES``) are made at the archiver's write consistency, claims at
``SERIAL``; cql.py and consistency.py say why, ADR 0007 what it costs.

The data model avoids reads before writes: ranges, newest ids, cursors and receipt marks are
written ``USING TIMESTAMP`` so the highest (or lowest) value wins in any order; usernames, devices
and conversations are claimed with lightweight transactions.
"""

from __future__ import annotations

import asyncio

from parley.settings import Settings
from parley.store.cassandra import (
    accounts,
    blocks,
    conversations,
    erasure,
    friends,
    groups,
    live,
    membership,
    messages,
    push,
    receipts,
    sessions,
)
from parley.store.cassandra.accounts import CassandraAccounts
from parley.store.cassandra.blocks import CassandraBlocks
from parley.store.cassandra.connects import CassandraConnects
from parley.store.cassandra.conversations import CassandraConversations
from parley.store.cassandra.cql import Cql, join_queries
from parley.store.cassandra.erasure import CassandraErasure
from parley.store.cassandra.friends import CassandraFriends
from parley.store.cassandra.groups import CassandraGroups
from parley.store.cassandra.live import CassandraLive
from parley.store.cassandra.messages import CassandraMessages
from parley.store.cassandra.push import CassandraPush
from parley.store.cassandra.receipts import CassandraReceipts
from parley.store.cassandra.schema import migrate
from parley.store.cassandra.sessions import CassandraSessions

__all__ = ["CassandraStore"]

QUERIES = join_queries(accounts.QUERIES, sessions.QUERIES, friends.QUERIES, blocks.QUERIES, erasure.QUERIES,
                       membership.QUERIES, conversations.QUERIES, groups.QUERIES, receipts.QUERIES, push.QUERIES,
                       messages.QUERIES, live.QUERIES)
# What sync trusts below the archiver's ack floor: every write to the message tables, and a user's
# conversation list (a conversation missing from it would be skipped just the same). These go out at
# PARLEY_CASSANDRA_WRITE_CONSISTENCY (EACH_QUORUM across datacenters), so a reader in any DC finds them.
TRUSTED_WRITES = frozenset({name for name, cql in messages.QUERIES.items()
                            if not cql.lstrip().upper().startswith("SELECT")} | {"user_conv_add"}
                           | {name for name, cql in live.QUERIES.items() if not cql.upper().startswith("SELECT")})


class CassandraStore(CassandraAccounts, CassandraSessions, CassandraFriends, CassandraBlocks, CassandraErasure,
                     CassandraConversations, CassandraMessages, CassandraGroups, CassandraReceipts, CassandraPush,
                     CassandraLive, CassandraConnects):
    def __init__(self, settings: Settings) -> None:
        self._cql = Cql(settings, QUERIES, TRUSTED_WRITES)
        self._bucket_ms = settings.cassandra_bucket_s * 1000
        self._folding = asyncio.Lock()  # apply_actions, one call at a time

    async def migrate(self) -> None:
        await self._cql.open(migrate)

    async def close(self) -> None:
        await self._cql.close()
