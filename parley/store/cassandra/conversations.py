"""Cassandra conversations: the ``conversations`` row, claimed with a lightweight transaction, its
members (``membership``) and its newest message (``messages.newest_message``)."""

from __future__ import annotations

from parley.ids import ConversationId, UserId
from parley.store.cassandra.cql import Cql
from parley.store.cassandra.membership import add_member_rows, conversations_of
from parley.store.cassandra.messages import newest_message
from parley.store.records import Conversation, Role

QUERIES = {
    "conv_claim": "INSERT INTO conversations (id, kind, created_at, shard) VALUES (?,?,?,?) IF NOT EXISTS",
    "conv_get": "SELECT id, kind, created_at, name, member_count, shard FROM conversations WHERE id = ?",
}


class CassandraConversations:
    _cql: Cql

    async def open_conversation(self, conv: Conversation) -> None:
        await self._cql.applied("conv_claim", conv.id, conv.kind, conv.created_at, conv.shard)
        await add_member_rows(self._cql, conv.id, [(m, "member") for m in conv.members])

    async def get_conversation(self, conv: ConversationId) -> Conversation | None:
        row, members, last = await self._cql.gather([self._cql.one("conv_get", conv),
                                                     self._cql.rows("members_of", conv),
                                                     newest_message(self._cql, conv)])
        if row is None or row.kind is None:
            return None
        ordered: list[tuple[UserId, Role]] = sorted((r.user_id, r.role or "member") for r in members)
        return Conversation(row.id, row.kind, tuple(u for u, _ in ordered), row.created_at, last, row.name or "",
                            tuple((u, r) for u, r in ordered if r != "member"), row.shard)

    async def list_conversations(self, user: UserId) -> list[Conversation]:
        ids = await conversations_of(self._cql, user)
        found = [c for c in await self._cql.gather(self.get_conversation(i) for i in ids) if c is not None]
        return sorted(found, key=lambda c: c.last_message.ts if c.last_message else 0, reverse=True)
