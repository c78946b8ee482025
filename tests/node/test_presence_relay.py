"""The presence relay's friend sets (``friends_of``, what a DM send is checked against): a user here without
friends shares one empty set with every other such user (ADR 0039), and gets a set of its own with a friend."""

from __future__ import annotations

from parley.node.hub import Hub
from parley.node.presence import PresenceRelay

from parley.ids import UserId


class Bus:
    """What the relay needs of the bus to follow friends: subscriptions counted."""

    def __init__(self) -> None:
        self.subjects: list[str] = []

    async def subscribe_ordered(self, subject: str, handler: object) -> str:
        self.subjects.append(subject)
        return subject

    async def unsubscribe_ordered(self, *subs: object) -> None:
        for sub in subs:
            self.subjects.remove(str(sub))


def relay() -> tuple[PresenceRelay, Bus]:
    bus = Bus()
    return PresenceRelay(bus, Hub(), "n1", 4), bus  # type: ignore[arg-type]


async def test_users_without_friends_share_one_empty_set_and_a_friend_gets_a_set_of_its_own():
    r, bus = relay()
    a, b, c = UserId("a"), UserId("b"), UserId("c")
    await r.follow(a, [])
    await r.follow(b, [])
    await r.follow(c, ["a"])
    assert r.friends_of(a) is r.friends_of(b) and r.friends_of(a) == set()
    assert r.friends_of(c) == {"a"} and r.friends_of(UserId("nobody")) is None
    r.note_friendship(a, "x", True)  # an event, at once: b's set is not touched
    assert r.friends_of(a) == {"x"} and r.friends_of(b) == set()
    await r.friendship(a, "x", True)
    assert bus.subjects.count("presence.x") == 1
    await r.friendship(a, "x", False)
    assert r.friends_of(a) is r.friends_of(b) == set() and "presence.x" not in bus.subjects
    r.note_friendship(b, "y", False)  # an unfriend of someone not a friend changes nothing
    assert r.friends_of(b) == set()
    await r.unfollow(c)
    assert r.friends_of(c) is None and bus.subjects == []

