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
from parley.shards import pack, pos_of_id, shard_of_id, vmin

CONVS = ("a", "b", "c")
HOME = {"a": 0, "b": 0, "c": 1}  # two shards: a and b share one, c has the other
SHARDS = (0, 1)
Round = Generator[None, None, SyncFrom | None]


@dataclass
class World:
    messages: dict[int, list[Delivery]] = field(default_factory=lambda: {s: [] for s in SHARDS})
    last_in: dict[str, int] = field(default_factory=dict)
    archived: dict[int, int] = field(default_factory=lambda: {s: 0 for s in SHARDS})

    def publish(self, conv: str) -> Delivery:
        shard = HOME[conv]
        id = pack(shard, len(self.messages[shard]) + 1)
        m = Delivery(id, conv, self.last_in.get(conv, 0), "other", f"{id}".encode())
        self.messages[shard].append(m)
        self.last_in[conv] = id
        return m

    def last(self, shard: int) -> int:
        return len(self.messages[shard])

    def lasts(self) -> dict[int, int]:
        return {s: self.last(s) for s in SHARDS}

    def between(self, shard: int, after: int, upto: int) -> list[Delivery]:
        return self.messages[shard][after:upto]

    def all(self) -> list[Delivery]:
        return [m for s in SHARDS for m in self.messages[s]]


def sync_round(world: World, s: DeviceSession, after: dict[int, int]) -> Round:
    """What node/sync.py does, one step per yield (the stream holds everything: first = 1)."""
    s.begin_round(after)
    yield
    plans = {shard: plan_round(after.get(shard, 0), first=1, last=world.last(shard), archived=world.archived[shard])
             for shard in SHARDS}
    for shard, plan in plans.items():
        cursor = plan.after
        if cursor < plan.store_upto:
            for m in world.between(shard, cursor, plan.store_upto):
                assert not s.synced(m), "the store has no holes here"
                yield
            cursor = plan.store_upto
        for m in world.between(shard, plan.stream_start(cursor) - 1, plan.last):
            s.synced(m)
            yield
    return s.finish_round({shard: p.last for shard, p in plans.items()})


class Driver:
    def __init__(self, world: World, cursor: dict[int, int]) -> None:
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
    st.tuples(st.just("resync"), st.tuples(st.sampled_from(SHARDS), st.integers(0, 10))),
    st.tuples(st.just("ack"), st.tuples(st.integers(0, 60), st.integers(0, 60))),
)


@settings(max_examples=400, deadline=None)
@given(before=st.lists(st.sampled_from(CONVS), max_size=12), had=st.integers(0, 12),
       ops=st.lists(operation, max_size=60))
def test_no_gap_no_duplicate_no_reordering(before, had, ops):
    world = World()
    for conv in before:
        world.publish(conv)
    world.archived = {shard: min(had + 2, world.last(shard)) for shard in SHARDS}
    cursor = {shard: min(had, world.last(shard)) for shard in SHARDS}  # the device has everything up to here
    d = Driver(world, cursor)
    queued_up_to = dict(cursor)  # the highest position the session ever reached: what an ack may confirm
    for op, arg in ops:
        for shard, pos in d.session.position.delivered.items():
            queued_up_to[shard] = max(queued_up_to.get(shard, 0), pos)
        if op == "publish":
            d.publish(arg)
        elif op == "step":
            for _ in range(arg):
                d.step()
        elif op == "archive":
            world.archived = {shard: min(world.last(shard), world.archived[shard] + arg) for shard in SHARDS}
        elif op == "blip":
            d.dropping = max(d.dropping, arg)
        elif op == "resync":  # from a point the device holds (e.g. a join's "since"), never below its cursor
            shard, ahead = arg
            point = dict(d.session.position.delivered)
            point[shard] = min(point.get(shard, 0), cursor[shard] + ahead)
            d.act(d.session.resync(point))
        elif op == "ack":
            d.session.ack({0: arg[0], 1: arg[1]})
            assert all(d.session.acked.get(s, 0) <= queued_up_to.get(s, 0) for s in SHARDS), \
                "an ack never confirms what was not queued"
    d.settle()
    s = d.session
    assert s.state is State.LIVE
    got = [int(f) for f in list(s.out or ())[1:]]  # after the welcome
    newer = [m for m in world.all() if pos_of_id(m.id) > cursor[shard_of_id(m.id)]]
    conv_of = {m.id: m.conv for m in world.all()}
    for conv in CONVS:
        sent = [i for i in got if conv_of[i] == conv]
        wanted = [m.id for m in newer if m.conv == conv]
        assert sent == wanted, f"conversation {conv}: sent {sent}, its messages are {wanted}"
    assert sorted(got) == sorted(m.id for m in newer), "every message after the cursor, once"
    assert vmin(s.position.delivered, world.lasts()) == world.lasts()
