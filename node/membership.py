"""Whether a user may send, type or read in a conversation, answered mostly without the store.

A DM's members are in its id, but it must have been opened (over HTTP) before anyone sends into it:
the store says so once, and the node remembers the conversations it has seen opened (a bounded set,
cleared when full; a DM is never closed again). A group's membership is what this node last heard:
the hub's groups of a user with a device here, kept current by the API's control events; the store
answers for a group the node has not heard about (e.g. a send right after the join).

Sending (and typing) in a DM also needs the two to be friends now (docs/adr/0015): after an unfriend or a
block the DM stays readable but refuses sends with ``not_friends`` or ``blocked``. The friendship is the
one this node follows live for a user with a device here (``friends_of``: the presence relay's set, changed
by the API's control events the moment a friendship ends), so a connected sender is refused at its next
send; the store answers for a user the node does not follow yet, and tells a block from an unfriend.

``may_send_now`` answers a send from what the node already holds, without a coroutine or a deadline (most
DM sends: an opened DM between friends the node follows); anything else takes ``check_send``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from collections.abc import Set as AbstractSet
from typing import Any

from parley.node.ports import Memberships

from parley.errors import Forbidden, NotFound
from parley.ids import ConversationId, UserId, dm_members, is_group
from parley.presence_bus import hide_deleted

KNOWN_MAX = 100_000  # opened DMs remembered per node


class MembershipCheck:
    def __init__(self, store: Memberships, groups_of: Callable[[UserId], Collection[str]],
                 friends_of: Callable[[UserId], AbstractSet[str] | None] = lambda _: None) -> None:
        self._store, self._groups_of, self._friends_of = store, groups_of, friends_of
        self._opened: dict[str, tuple[UserId, UserId]] = {}  # opened DMs, with their members

    def may_send_now(self, user: UserId, conv: ConversationId) -> bool:
        """True: ``check_send`` would pass, known without the store (a DM seen opened, whose members are
        friends as this node follows them live). False: ask ``check_send``."""
        members = self._opened.get(conv)
        if members is None:
            return False
        a, b = members
        other = b if a == user else a if b == user else None
        if other is None:
            return False
        friends = self._friends_of(user)
        return friends is not None and other in friends

    async def check_send(self, user: UserId, conv: ConversationId) -> None:
        """``check``, and in a DM: ``blocked`` or ``not_friends`` unless the two are friends now."""
        await self.check(user, conv)
        members = dm_members(conv)
        if members is None:
            return
        other = UserId(members[1] if members[0] == user else members[0])
        friends = self._friends_of(user)
        if friends is not None and other in friends:
            return
        if friends is None and await self._store.friend_state(user, other) == "friends":
            return
        if other in await self._store.blocks_with(user):
            raise Forbidden("one of you blocked the other; the conversation is read-only", code="blocked", conv=conv)
        raise Forbidden("you are no longer friends; the conversation is read-only", code="not_friends", conv=conv)

    async def hidden_from(self, user: UserId) -> set[UserId]:
        """Whose presence ``user`` does not see (and who does not see theirs): a block either way."""
        return await self._store.blocks_with(user)

    async def without_deleted(self, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A presence answer with deleted accounts read as never seen (``presence_bus.hide_deleted``)."""
        return await hide_deleted(found, self._store.get_users)

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
        self._opened[conv] = members

    async def _check_group(self, user: UserId, conv: ConversationId) -> None:
        if conv in self._groups_of(user):
            return
        found = await self._store.get_conversation(conv)
        if found is None:
            raise NotFound("no such conversation", code="unknown_conversation", conv=conv)
        if user not in found.members:
            raise Forbidden("you are not a member of this group", code="not_member", conv=conv)
