"""The presence relay's friend sets (``friends_of``, what a DM send is checked against): a user here without
friends shares one empty set with every other such user (ADR 0039), and gets a set of its own with a friend."""

from __future__ import annotations

from dataclasses import dataclass

from parley.node.hub import Hub
from parley.node.presence import PresenceRelay

from parley import wire
from parley.ids import DeviceId, UserId
from parley.presence_bus import heartbeat_subject
from parley.presence_partitions import partition_of
from tests.poll import eventually


class Bus:
    """What the relay needs of the bus to follow friends: subscriptions counted."""

    def __init__(self) -> None:
        self.subjects: list[str] = []
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, subject: str, data: bytes) -> None:
        self.published.append((subject, data))

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


@dataclass
class Device:
    user: UserId
    device: DeviceId


async def test_devices_that_come_and_go_in_one_turn_are_one_heartbeat_message_per_partition_in_order():
    r, bus = relay()
    devices = [Device(UserId(f"u{i}"), DeviceId(f"d{i}")) for i in range(12)]
    for d in devices:
        await r.arrived(d)  # type: ignore[arg-type]
    await r.gone(devices[0])  # type: ignore[arg-type]
    assert bus.published == []  # sent once the turn's others have joined
    subjects = {heartbeat_subject(partition_of(d.user, 4), "n1") for d in devices}
    await eventually(lambda: len(bus.published) == len(subjects), what="one message per partition")
    got = {subject: [(u, d) for u, d, _ in wire.decode(data).beats] for subject, data in bus.published}
    assert set(got) == subjects
    assert sorted(b for beats in got.values() for b in beats) == sorted(
        [(d.user, d.device) for d in devices] + [(devices[0].user, devices[0].device)])
    first = got[heartbeat_subject(partition_of(devices[0].user, 4), "n1")]
    assert first.count((devices[0].user, devices[0].device)) == 2  # come, then gone: in that order, both sent
    await r.arrived(devices[1])  # type: ignore[arg-type]  # a later turn: a message of its own
    await eventually(lambda: len(bus.published) == len(subjects) + 1, what="a later turn's own message")
