"""What a node remembers about conversations stays bounded, and a forgotten entry costs a store read,
never a wrong answer (docs/adr/0016): homes (which shard), opened DMs (membership)."""

from __future__ import annotations

import pytest
from parley.node import homes as homes_module
from parley.node import membership as membership_module
from parley.node.homes import Homes
from parley.node.membership import MembershipCheck

from parley.errors import NotFound
from parley.ids import ConversationId, UserId, dm_conversation, new_user_id
from parley.store.records import Conversation


class Store:
    """The one store call these make, counted; every conversation asked for exists unless named missing."""

    def __init__(self, missing: frozenset[str] = frozenset()) -> None:
        self.reads, self.missing = 0, missing

    async def get_conversation(self, conv: ConversationId) -> Conversation | None:
        self.reads += 1
        if conv in self.missing:
            return None
        return Conversation(conv, "dm", (), 1, shard=len(conv) % 3)


async def test_homes_past_their_bound_forget_the_oldest_and_read_them_again(monkeypatch):
    monkeypatch.setattr(homes_module, "KNOWN_MAX", 10)
    store = Store()
    homes = Homes(store, shards=3)  # type: ignore[arg-type]
    convs = [ConversationId(f"g.c{i:04}" + "x" * (i % 3)) for i in range(50)]
    for conv in convs:
        assert await homes.of(conv) == len(conv) % 3
        assert len(homes._known) <= 10
    reads = store.reads
    assert [await homes.of(c) for c in convs[-10:]] == [len(c) % 3 for c in convs[-10:]] and store.reads == reads
    assert await homes.of(convs[0]) == len(convs[0]) % 3 and store.reads == reads + 1  # forgotten: read again


async def test_opened_dms_past_their_bound_are_forgotten_and_checked_again(monkeypatch):
    monkeypatch.setattr(membership_module, "KNOWN_MAX", 10)
    me = UserId(new_user_id())
    gone = dm_conversation(me, UserId(new_user_id()))
    store = Store(missing=frozenset({gone}))
    check = MembershipCheck(store, lambda user: [])  # type: ignore[arg-type]
    dms = [dm_conversation(me, UserId(new_user_id())) for _ in range(50)]
    for dm in dms:
        await check.check(me, dm)
        assert len(check._opened) <= 11  # cleared once past the bound
    with pytest.raises(NotFound):  # a conversation that was never opened is still refused
        await check.check(me, gone)
