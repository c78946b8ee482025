"""The devices connected to this node, by user, and the groups they are in. Pure bookkeeping; no I/O.

A node subscribes to a user's delivery subjects while at least one device of the user is attached,
so ``attach`` and ``detach`` say when the first arrives and the last leaves. Likewise it subscribes
to a group's delivery subject while at least one member with a device here is in the group:
``join_group`` / ``leave_group`` keep that set, and ``of_conversation`` answers from it at once, so
a member who leaves stops receiving before the unsubscription has even been sent. A group's list of
connections here is made once and kept until a member here comes, goes or adds or drops a device (every
message to the group needs it; making it per message was ~3% of a node's samples in fan-out, ADR 0053).
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from typing import Generic, Protocol, TypeVar

from parley.ids import UserId, dm_members, is_group


class Attached(Protocol):
    @property
    def user(self) -> UserId: ...


C = TypeVar("C", bound=Attached)
_NONE: frozenset[str] = frozenset()


class Hub(Generic[C]):
    def __init__(self) -> None:
        self._by_user: dict[UserId, list[C]] = {}
        self._count = 0
        self._groups_of: dict[UserId, set[str]] = {}
        self._members_here: dict[str, set[UserId]] = {}
        self._group_links: dict[str, list[C]] = {}  # ``of_conversation`` of a group, until its members here change

    def attach(self, conn: C) -> bool:
        conns = self._by_user.setdefault(conn.user, [])
        conns.append(conn)
        self._count += 1
        self._changed(conn.user)
        return len(conns) == 1

    def detach(self, conn: C) -> bool:
        conns = self._by_user.get(conn.user)
        if not conns or conn not in conns:
            return False
        conns.remove(conn)
        self._count -= 1
        self._changed(conn.user)
        if conns:
            return False
        del self._by_user[conn.user]
        return True

    def of_user(self, user: UserId) -> list[C]:
        return self._by_user.get(user, [])

    def _changed(self, user: UserId) -> None:
        """``user``'s devices here changed: the lists of their groups' connections are made again when asked."""
        for conv in self._groups_of.get(user, ()):
            self._group_links.pop(conv, None)

    def of_conversation(self, conv: str) -> list[C]:
        """The connections here to hand a message of ``conv`` to; the caller does not change the list."""
        if is_group(conv):
            links = self._group_links.get(conv)
            if links is None:
                here = self._members_here.get(conv)
                if not here:
                    return []
                links = self._group_links[conv] = [c for user in here for c in self.of_user(user)]
            return links
        members = dm_members(conv)
        if members is None:
            return []
        a, b = members
        return self.of_user(a) + self.of_user(b)

    def join_group(self, user: UserId, conv: str) -> None:
        """``user`` (who has a device here) is in group ``conv``."""
        if user in self._by_user:
            self._groups_of.setdefault(user, set()).add(conv)
            self._members_here.setdefault(conv, set()).add(user)
            self._group_links.pop(conv, None)

    def leave_group(self, user: UserId, conv: str) -> None:
        self._groups_of.get(user, set()).discard(conv)
        self._group_links.pop(conv, None)
        here = self._members_here.get(conv)
        if here is not None:
            here.discard(user)
            if not here:
                del self._members_here[conv]

    def forget_groups(self, user: UserId) -> list[str]:
        """The user's last device left: drop them from every group; return those groups."""
        convs = sorted(self._groups_of.pop(user, set()))
        for conv in convs:
            self.leave_group(user, conv)
        return convs

    def groups_of(self, user: UserId) -> list[str]:
        return sorted(self._groups_of.get(user, ()))

    def group_set(self, user: UserId) -> AbstractSet[str]:
        """``groups_of`` unsorted and not copied (a membership test per group send): not to be changed."""
        return self._groups_of.get(user, _NONE)

    def has_members_of(self, conv: str) -> bool:
        return conv in self._members_here

    def users(self) -> list[UserId]:
        return list(self._by_user)

    def user_count(self) -> int:
        """Users with a device here (the node's gauge, every second: no list of them made for its length)."""
        return len(self._by_user)

    def __iter__(self) -> Iterator[C]:
        for conns in list(self._by_user.values()):
            yield from conns

    def __len__(self) -> int:
        return self._count
