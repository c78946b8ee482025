"""Random interleavings of live messages, sync rounds, NATS blips, resyncs and acks never make a device
miss a message, get one twice, or get a conversation's messages out of order.

A small world stands in for the stream, the store and the node's subscriptions: messages get
increasing ids, each naming its conversation's previous one; the store has what the "archiver" wrote
so far; live messages reach the session unless a blip drops them (after which the node resyncs, as it
does when its NATS connection comes back). Sync rounds run step by step (``syncplan`` decides what
comes from the store and what from the stream), so messages can be published and offered live at
any point inside a round, and a new ``SyncFrom`` cancels the round in progress, as the shell does.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st
from parley.node.session import Delivery, DeviceSession, State, SyncFrom
from parley.node.syncplan import plan_round

from parley.ids import UserId

CONVS = ("a", "b", "c")
Round = Generator[None, None, SyncFrom | None]


@dataclass
class World:
    messages: list[Delivery] = field(default_factory=list)
    last_in: dict[str, int] = field(default_factory=dict)
    archived: int = 0

    def publish(self, conv: str) -> Delivery:
        id = len(self.messages) + 1
        m = Delivery(id, conv, self.last_in.get(conv, 0), "other", f"{id}".encode())
        self.messages.append(m)
        self.last_in[conv] = id
        return m

    @property
    def last(self) -> int:
        return len(self.messages)

    def between(self, after: int, upto: int) -> list[Delivery]:
        return self.messages[after:upto]


def sync_round(world: World, s: DeviceSession, after: int) -> Round:
    """What node/sync.py does, one step per yield (the stream holds everything: first = 1)."""
    s.begin_round(after)
    yield
    plan = plan_round(after, first=1, last=world.last, archived=world.archived)
    cursor = plan.after
    if cursor < plan.store_upto:
        for m in world.between(cursor, plan.store_upto):
            assert not s.synced(m), "the store has no holes here"
            yield
        cursor = plan.store_upto
    for m in world.between(plan.stream_start(cursor) - 1, plan.last):
        s.synced(m)
        yield
    return s.finish_round(plan.last)


class Driver:
    def __init__(self, world: World, cursor: int) -> None:
        self.world, self.session = world, DeviceSession(UserId("me"), max_queue=10**6)
        self.round: Round | None = None
        self.dropping = 0
        self.act(self.session.accept(cursor, b"welcome"))

    def act(self, action: SyncFrom | None) -> None:
        if action is not None:  # the shell cancels the round in progress and starts this one
            self.round = sync_round(self.world, self.session, action.point)

    def step(self) -> None:
        if self.round is None:
            return
        try:
            next(self.round)
        except StopIteration as done:
            self.round = None
            self.act(done.value)

    def publish(self, conv: str) -> None:
        m = self.world.publish(conv)
        if self.dropping:
            self.dropping -= 1  # lost on the way: the node's NATS connection is down
            if not self.dropping:
                self.act(self.session.resync())  # ... and back: the node resyncs every connection
        else:
            self.act(self.session.live(m))

    def settle(self) -> None:
        if self.dropping:
            self.dropping = 0
            self.act(self.session.resync())
        for _ in range(100_000):
            if self.round is None:
                return
            self.step()
        raise AssertionError("sync never finished")


operation = st.one_of(
    st.tuples(st.just("publish"), st.sampled_from(CONVS)),
    st.tuples(st.just("step"), st.integers(1, 4)),
    st.tuples(st.just("archive"), st.integers(0, 5)),
    st.tuples(st.just("blip"), st.integers(1, 3)),
    st.tuples(st.just("resync"), st.integers(0, 10)),
    st.tuples(st.just("ack"), st.integers(0, 60)),
)


@settings(max_examples=400, deadline=None)
@given(before=st.lists(st.sampled_from(CONVS), max_size=12), had=st.integers(0, 12),
       ops=st.lists(operation, max_size=60))
def test_no_gap_no_duplicate_no_reordering(before, had, ops):
    world = World()
    for conv in before:
        world.publish(conv)
    world.archived = min(had + 2, world.last)
    cursor = min(had, world.last)  # the device has every message up to here
    d = Driver(world, cursor)
    queued_up_to = cursor  # the highest position the session ever reached: what an ack may confirm
    for op, arg in ops:
        queued_up_to = max(queued_up_to, d.session.position.delivered)
        if op == "publish":
            d.publish(arg)
        elif op == "step":
            for _ in range(arg):
                d.step()
        elif op == "archive":
            world.archived = min(world.last, world.archived + arg)
        elif op == "blip":
            d.dropping = max(d.dropping, arg)
        elif op == "resync":  # from a point the device holds (e.g. a join's "since"), never below its cursor
            point = min(d.session.position.delivered, cursor + arg)
            d.act(d.session.resync(point))
        elif op == "ack":
            d.session.ack(arg)
            assert d.session.acked <= queued_up_to, "an ack never confirms what was not queued"
    d.settle()
    s = d.session
    assert s.state is State.LIVE
    got = [int(f) for f in list(s.out)[1:]]  # after the welcome
    expected = [m.id for m in world.messages if m.id > cursor]
    by_conv = {c: [i for i in got if world.messages[i - 1].conv == c] for c in CONVS}
    for conv in CONVS:
        wanted = [m.id for m in world.messages if m.conv == conv and m.id > cursor]
        assert by_conv[conv] == wanted, f"conversation {conv}: sent {by_conv[conv]}, its messages are {wanted}"
    assert sorted(got) == expected, "every message after the cursor, once"
    assert s.position.delivered == world.last
