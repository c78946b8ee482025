"""Whether a user may send, type or read in a conversation, answered mostly without the store.

A DM's members are in its id, but it must have been opened (over HTTP) before anyone sends into it:
the store says so once, and the node remembers the conversations it has seen opened (a bounded set,
cleared when full; a DM is never closed again). A group's membership is what this node last heard:
the hub's groups of a user with a device here, kept current by the API's control events; the store
answers for a group the node has not heard about (e.g. a send right after the join).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from parley.node.ports import Memberships

from parley.errors import Forbidden, NotFound
from parley.ids import ConversationId, UserId, dm_members, is_group

KNOWN_MAX = 100_000  # opened DMs remembered per node


class MembershipCheck:
    def __init__(self, store: Memberships, groups_of: Callable[[UserId], Sequence[str]]) -> None:
        self._store, self._groups_of = store, groups_of
        self._opened: set[str] = set()

    async def check(self, user: UserId, conv: ConversationId) -> None:
        """Raise ``not_member`` or ``unknown_conversation`` unless ``user`` may use ``conv``."""
        if is_group(conv):
            await self._check_group(user, conv)
        else:
            await self._check_dm(user, conv)

    async def _check_dm(self, user: UserId, conv: ConversationId) -> None:
        members = dm_members(conv)
        if members is None or user not in members:
            raise Forbidden("you are not a member of this conversation", code="not_member", conv=conv)
        if conv in self._opened:
            return
        if await self._store.get_conversation(conv) is None:
            raise NotFound("no such conversation; open it through the API first", code="unknown_conversation",
                           conv=conv)
        if len(self._opened) > KNOWN_MAX:
            self._opened.clear()
        self._opened.add(conv)

    async def _check_group(self, user: UserId, conv: ConversationId) -> None:
        if conv in self._groups_of(user):
            return
        found = await self._store.get_conversation(conv)
        if found is None:
            raise NotFound("no such conversation", code="unknown_conversation", conv=conv)
        if user not in found.members:
            raise Forbidden("you are not a member of this group", code="not_member", conv=conv)
