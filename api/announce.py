"""Telling the edge nodes about a change the API just made (a logout, a friendship, a group change), on
the affected users' control subjects, so the nodes holding their devices act on it at once.

Invariant: the store already has the change before it is announced. An announcement is best effort:
one lost (NATS away) only delays the change until the devices reconnect, so it never fails a request.
Revocations go through ``api/revocations.py`` instead, which retries until NATS takes them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiohttp import web
from parley.api.http import NATS, STORE

from parley import wire
from parley.ids import UserId, control_subject
from parley.store import FriendState, User

log = logging.getLogger("parley.api")


async def announce(request: web.Request, users: Iterable[UserId], event: wire.BusMessage) -> None:
    """Tell the nodes holding these users' devices (their control subjects)."""
    data = wire.encode(event)
    try:
        nc = request.app[NATS]
        for user in users:
            await nc.publish(control_subject(user), data)
        await nc.flush(timeout=2)
    except Exception as err:
        log.warning("could not announce %s: %s", event.kind, err)


async def announce_profile(request: web.Request, user: User) -> None:
    """``user``'s new name and bio, to everyone who shows them: their friends, the members of their
    conversations, and their own other devices."""
    store = request.app[STORE]
    friends = [other for other, state in await store.list_friends(user.id) if state == "friends"]
    members = {m for conv in await store.list_conversations(user.id) for m in conv.members}
    event = wire.ProfileChange(user.id, user.display_name, user.bio)
    await announce(request, sorted({user.id, *friends, *members}), event)


MIRROR: dict[FriendState, FriendState] = {"incoming": "outgoing", "outgoing": "incoming", "friends": "friends",
                                          "none": "none"}


async def announce_friendship(request: web.Request, a: UserId, b: UserId, friends: bool) -> None:
    """A friendship began or ended: both users' nodes follow or stop following the other's presence, and
    (ended) refuse their DM sends to each other."""
    await announce_friend_state(request, a, b, "friends" if friends else "none")


async def announce_friend_state(request: web.Request, a: UserId, b: UserId, state: FriendState) -> None:
    """``a`` and ``b`` are now ``state`` as ``a`` sees it (``b`` sees the mirror): both users' devices get a
    ``friend`` frame; into or out of ``friends``, their nodes also follow or drop each other's presence."""
    await announce(request, [a], wire.FriendChange(b, state == "friends", state))
    await announce(request, [b], wire.FriendChange(a, state == "friends", MIRROR[state]))
