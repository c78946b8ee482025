"""Who watches which live room on this node. Pure bookkeeping; no I/O.

A node subscribes to a room's subjects while it has at least one viewer there, so ``join`` and ``leave`` say
when the first arrives and the last goes. A viewer joins in two steps: ``expect`` (it is counted and holds the
room's subscription, and frames for the room are kept for it) while its backlog is read, then ``admit`` (it
gets the kept frames newer than its backlog, then every frame as it comes). Viewers of a room are kept in
join order in a dict, so a fan-out walks them without copying and a leave is O(1).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

C = TypeVar("C", bound=Hashable)


class Viewers(Generic[C]):
    def __init__(self) -> None:
        self._rooms: dict[str, dict[C, None]] = {}  # admitted viewers
        self._waiting: dict[str, dict[C, list[tuple[int, bytes]]]] = {}  # joining: (id or 0, frame) kept for them
        self._of: dict[C, set[str]] = {}
        self.total = 0

    def expect(self, room: str, viewer: C) -> bool:
        """``viewer`` is joining ``room``; True if it is the room's first here (subscribe). Joining again
        while in the room changes nothing (False)."""
        if room in self._of.get(viewer, ()):
            return False
        first = not self.has(room)
        self._waiting.setdefault(room, {})[viewer] = []
        self._of.setdefault(viewer, set()).add(room)
        self.total += 1
        return first

    def admit(self, room: str, viewer: C, after: int) -> list[bytes]:
        """The backlog up to id ``after`` is sent: the viewer is in; returns the frames kept for it meanwhile
        (messages up to ``after`` left out: the backlog had them)."""
        waiting = self._waiting.get(room, {})
        kept = waiting.pop(viewer, None)
        if not waiting:
            self._waiting.pop(room, None)
        if kept is None:
            return []
        self._rooms.setdefault(room, {})[viewer] = None
        return [frame for id, frame in kept if id == 0 or id > after]

    def keep(self, room: str, id: int, frame: bytes) -> None:
        """A frame for the room (``id``: the message's, 0 for an event): kept for those still joining."""
        for kept in self._waiting.get(room, {}).values():
            kept.append((id, frame))

    def leave(self, room: str, viewer: C) -> bool:
        """``viewer`` leaves ``room``; True if it was the room's last here (unsubscribe)."""
        rooms = self._of.get(viewer)
        if rooms is None or room not in rooms:
            return False
        rooms.discard(room)
        if not rooms:
            del self._of[viewer]
        self.total -= 1
        for table in (self._rooms, self._waiting):
            here = table.get(room)
            if here is not None and viewer in here:
                del here[viewer]
                if not here:
                    del table[room]
        return not self.has(room)

    def forget(self, viewer: C) -> list[str]:
        """The viewer's connection ended: out of every room; returns the rooms it was the last in."""
        return [room for room in sorted(self._of.get(viewer, ())) if self.leave(room, viewer)]

    def rooms_of(self, viewer: C) -> list[str]:
        return sorted(self._of.get(viewer, ()))

    def of(self, room: str) -> dict[C, None]:
        return self._rooms.get(room, {})

    def count(self, room: str) -> int:
        return len(self._rooms.get(room, ())) + len(self._waiting.get(room, ()))

    def has(self, room: str) -> bool:
        return room in self._rooms or room in self._waiting

    def rooms(self) -> list[str]:
        return sorted(set(self._rooms) | set(self._waiting))
