"""The devices connected to this node, by user. Pure bookkeeping; no I/O.

A node subscribes to a user's delivery subjects while at least one device of the user is attached,
so ``attach`` and ``detach`` say when the first arrives and the last leaves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from parley.ids import UserId, dm_members


class Attached(Protocol):
    @property
    def user(self) -> UserId: ...


C = TypeVar("C", bound=Attached)


class Hub(Generic[C]):
    def __init__(self) -> None:
        self._by_user: dict[UserId, list[C]] = {}
        self._count = 0

    def attach(self, conn: C) -> bool:
        conns = self._by_user.setdefault(conn.user, [])
        conns.append(conn)
        self._count += 1
        return len(conns) == 1

    def detach(self, conn: C) -> bool:
        conns = self._by_user.get(conn.user)
        if not conns or conn not in conns:
            return False
        conns.remove(conn)
        self._count -= 1
        if conns:
            return False
        del self._by_user[conn.user]
        return True

    def of_user(self, user: UserId) -> list[C]:
        return self._by_user.get(user, [])

    def of_conversation(self, conv: str) -> list[C]:
        members = dm_members(conv)
        if members is None:
            return []
        a, b = members
        return self.of_user(a) + self.of_user(b)

    def users(self) -> list[UserId]:
        return list(self._by_user)

    def __iter__(self) -> Iterator[C]:
        for conns in list(self._by_user.values()):
            yield from conns

    def __len__(self) -> int:
        return self._count
