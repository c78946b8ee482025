"""Cassandra membership, both ways: ``conversation_members`` (a conversation's members and their
roles) and ``user_conversations`` (a user's conversations). Conversations, groups and sync all read
it, so it sits below them."""

from __future__ import annotations

from parley.ids import ConversationId, UserId
from parley.store.cassandra.cql import Cql
from parley.store.records import Role

QUERIES = {
    "member_add": "INSERT INTO conversation_members (conv, user_id, role) VALUES (?,?,?)",
    "members_of": "SELECT user_id, role FROM conversation_members WHERE conv = ?",
    "user_conv_add": "INSERT INTO user_conversations (user_id, conv) VALUES (?,?)",
    "convs_of_user": "SELECT conv FROM user_conversations WHERE user_id = ?",
}


async def add_member_rows(cql: Cql, conv: str, members: list[tuple[UserId, Role]]) -> None:
    await cql.gather([cql.write("member_add", conv, m, role) for m, role in members]
                     + [cql.write("user_conv_add", m, conv) for m, _ in members])


async def conversations_of(cql: Cql, user: UserId) -> list[ConversationId]:
    return [r.conv for r in await cql.rows("convs_of_user", user)]
