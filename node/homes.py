"""Which shard each conversation lives in, as this node has learnt it.

A conversation's home is stored with it when it is opened (``Conversation.shard``); a node asks the
store once and remembers (bounded), and learns homes for free from every message it delivers (the id
names the shard). A conversation stored before shards existed has no recorded home: ``home_for`` over
today's shard count, which is what the API records for new ones.
"""

from __future__ import annotations

from collections import OrderedDict

from parley.node.ports import Memberships

from parley.errors import NotFound
from parley.ids import ConversationId
from parley.shards import home_for

KNOWN_MAX = 200_000


class Homes:
    def __init__(self, store: Memberships, shards: int) -> None:
        self._store, self._shards = store, shards
        self._known: OrderedDict[str, int] = OrderedDict()

    def known(self, conv: str) -> int | None:
        return self._known.get(conv)

    def learn(self, conv: str, shard: int) -> None:
        if self._known.get(conv) != shard:
            self._known[conv] = shard
            if len(self._known) > KNOWN_MAX:
                self._known.popitem(last=False)

    async def of(self, conv: ConversationId) -> int:
        shard = self._known.get(conv)
        if shard is not None:
            return shard
        found = await self._store.get_conversation(conv)
        if found is None:
            raise NotFound("no such conversation", code="unknown_conversation", conv=conv)
        shard = found.shard if found.shard is not None else home_for(conv, self._shards)
        self.learn(conv, shard)
        return shard
