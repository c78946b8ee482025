"""Cassandra groups: conversations whose members, roles and name change, under a member cap.

``conversations.member_count`` is the cap's source of truth, moved only by compare-and-set: slots
are reserved before member rows are claimed (IF NOT EXISTS), and a claim lost to a concurrent add
gives its slot back; a row is removed (IF EXISTS) before its slot is freed. A crash between the two
steps leaves the count above the rows (a slot lost), never below (the cap is never passed).
"""

from __future__ import annotations

from collections.abc import Callable

from parley.errors import Conflict, NotFound, Unavailable
from parley.ids import ConversationId, UserId
from parley.store.cassandra.cql import Cql
from parley.store.cassandra.membership import add_member_rows, conversations_of
from parley.store.protocols import group_full
from parley.store.records import Conversation, Role

CAS_ATTEMPTS = 20

QUERIES = {
    "group_claim": "INSERT INTO conversations (id, kind, created_at, name, member_count, shard) VALUES (?,?,?,?,?,?) "
                   "IF NOT EXISTS",
    "group_count": "UPDATE conversations SET member_count = ? WHERE id = ? IF member_count = ?",
    "group_rename": "UPDATE conversations SET name = ? WHERE id = ?",
    "member_claim": "INSERT INTO conversation_members (conv, user_id, role) VALUES (?,?,?) IF NOT EXISTS",
    "member_del": "DELETE FROM conversation_members WHERE conv = ? AND user_id = ? IF EXISTS",
    "member_role": "UPDATE conversation_members SET role = ? WHERE conv = ? AND user_id = ? IF EXISTS",
    "user_conv_del": "DELETE FROM user_conversations WHERE user_id = ? AND conv = ?",
}


class CassandraGroups:
    _cql: Cql

    async def create_group(self, conv: Conversation) -> None:
        applied, _ = await self._cql.applied("group_claim", conv.id, conv.kind, conv.created_at, conv.name,
                                             len(conv.members), conv.shard)
        if not applied:
            raise Conflict(f"conversation {conv.id} exists", code="conflict")
        roles = dict(conv.roles)
        await add_member_rows(self._cql, conv.id, [(m, roles.get(m, "member")) for m in conv.members])

    async def _move_count(self, conv: ConversationId, change: Callable[[int], int]) -> int:
        """Compare-and-set member_count to ``change(count)`` (which may raise); return the old count."""
        for _ in range(CAS_ATTEMPTS):
            row = await self._cql.one("conv_get", conv)  # conversations.py's statement
            if row is None:
                raise NotFound("no such conversation", code="unknown_conversation")
            count = row.member_count or 0
            applied, _ = await self._cql.applied("group_count", change(count), conv, row.member_count)
            if applied:
                return count
        raise Unavailable("the group is changing too fast; try again", code="store_unavailable")

    async def add_members(self, conv: ConversationId, users: list[UserId], *, cap: int) -> list[UserId]:
        present = {r.user_id for r in await self._cql.rows("members_of", conv)}
        new = [u for u in dict.fromkeys(users) if u not in present]
        if not new:
            return []

        def grow(count: int) -> int:
            if count + len(new) > cap:
                raise group_full(cap, count, len(new))
            return count + len(new)

        await self._move_count(conv, grow)
        claims = await self._cql.gather(self._cql.applied("member_claim", conv, u, "member") for u in new)
        added = [u for u, (applied, _) in zip(new, claims, strict=True) if applied]
        if len(added) < len(new):  # someone else added them meanwhile: their slots are not ours
            await self._move_count(conv, lambda count: max(0, count - (len(new) - len(added))))
        await self._cql.gather(self._cql.write("user_conv_add", u, conv) for u in added)
        return added

    async def remove_member(self, conv: ConversationId, user: UserId) -> bool:
        removed, _ = await self._cql.applied("member_del", conv, user)
        if not removed:
            return False
        await self._cql.write("user_conv_del", user, conv)
        await self._move_count(conv, lambda count: max(0, count - 1))
        return True

    async def set_role(self, conv: ConversationId, user: UserId, role: Role) -> None:
        await self._cql.applied("member_role", role, conv, user)  # IF EXISTS: never makes a member

    async def rename_group(self, conv: ConversationId, name: str) -> None:
        await self._cql.write("group_rename", name, conv)

    async def groups_of(self, user: UserId) -> list[ConversationId]:
        return sorted(c for c in await conversations_of(self._cql, user) if c.startswith("g."))
