"""The presence worker's announcements against a real nats-server: many transitions share a round of bucket
writes, each event follows its user's write, and one user's transitions keep their order."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.errors import KeyNotFoundError
from parley.workers.presence_writes import Announcements, first_round

from parley import bus, wire
from parley.presence import Transition
from parley.presence_bus import PRESENCE_PREFIX, open_buckets
from parley.settings import Settings
from tests.poll import eventually


@pytest.fixture
def settings(nats_url: str) -> Settings:
    return Settings(nats_url=nats_url)


async def events_of(nc: bus.BusClient, prefix: str) -> tuple[list[str], Subscription]:
    """The subjects of the presence events heard from now on for users whose names start with ``prefix``."""
    heard: list[str] = []

    async def on_event(msg: Msg) -> None:
        if msg.subject.startswith(PRESENCE_PREFIX + prefix):
            heard.append(msg.subject)

    return heard, await nc.subscribe(PRESENCE_PREFIX + ">", cb=on_event)


def test_a_round_ends_before_a_users_second_transition():
    a_on, b_on, a_off = Transition("a", True, 1), Transition("b", True, 1), Transition("a", False, 2)
    assert first_round([a_on, b_on, a_off, b_on]) == 2
    assert first_round([a_on, b_on]) == 2
    assert first_round([]) == 0


async def test_users_coming_online_together_share_a_round_and_each_event_follows_its_write(settings):
    nc = await bus.connect(settings, "test")
    online, seen = await open_buckets(nc.jetstream(), settings)
    users = [f"w{i:03d}" for i in range(200)]
    heard: list[str] = []
    stored_when_heard: list[bool] = []

    async def on_event(msg: Msg) -> None:
        user = msg.subject.removeprefix(PRESENCE_PREFIX)
        if not user.startswith("w"):
            return
        try:
            stored_when_heard.append((await online.get(user)).value is not None)
        except KeyNotFoundError:
            stored_when_heard.append(False)
        heard.append(user)

    watch = await nc.subscribe(PRESENCE_PREFIX + ">", cb=on_event)
    announcements = Announcements(nc)
    try:
        for i, user in enumerate(users):  # in one loop turn, as a storm's arrivals come between two drains
            announcements.announce(Transition(user, True, 1_000 + i))
        await eventually(lambda: len(heard) == len(users), what="every user announced")
        assert announcements.rounds == 1  # one round of writes for all, not a round trip each
        assert all(stored_when_heard)
        for i, user in enumerate(users[:5]):
            assert orjson.loads((await online.get(user)).value) == {"last_active_at": 1_000 + i}
    finally:
        await announcements.close()
        await watch.unsubscribe()
        await bus.close_quietly(nc)


async def test_a_rounds_bucket_writes_are_not_a_request_each(settings, monkeypatch):
    """The writes go out as publishes to one inbox of the worker's, their acks read inline (``parley.bus.acked``),
    not through nats-py's ``request`` (a future, a ``wait_for``, a ``Msg`` and a task hop each; ADR 0061);
    offline changes too: their ``last_seen`` put, then the ``presence`` delete."""
    nc = await bus.connect(settings, "test")
    online, seen = await open_buckets(nc.jetstream(), settings)
    heard, watch = await events_of(nc, "r")
    requests = 0
    request = nc.request

    async def counted(*args: object, **kwargs: object) -> object:
        nonlocal requests
        requests += 1
        return await request(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(nc, "request", counted)
    announcements = Announcements(nc)
    try:
        for i in range(50):
            announcements.announce(Transition(f"r{i:02d}", True, 1))
        for i in range(10):
            announcements.announce(Transition(f"r{i:02d}", False, 2))
        await eventually(lambda: len(heard) == 60, what="every change announced")
        assert requests == 0
        assert orjson.loads((await online.get("r49")).value) == {"last_active_at": 1}
        assert orjson.loads((await seen.get("r00")).value) == {"last_active_at": 2}
        with pytest.raises(KeyNotFoundError):
            await online.get("r00")
    finally:
        await announcements.close()
        await watch.unsubscribe()
        await bus.close_quietly(nc)


async def test_transitions_queued_over_several_loop_turns_share_a_round(settings):
    """A storm's arrivals reach the worker a message at a time, each handled in a turn of its own: the drain
    gathers them for ``GATHER_S`` before a round, so they share its writes (ADR 0052) rather than each
    starting one."""
    nc = await bus.connect(settings, "test")
    online, seen = await open_buckets(nc.jetstream(), settings)
    heard, watch = await events_of(nc, "t")
    announcements = Announcements(nc)
    try:
        for i in range(20):
            announcements.announce(Transition(f"t{i:02d}", True, 1))
            await asyncio.sleep(0)  # the next one a loop turn later, as heartbeat messages come
        await eventually(lambda: len(heard) == 20, what="every user announced")
        assert announcements.rounds == 1
    finally:
        await announcements.close()
        await watch.unsubscribe()
        await bus.close_quietly(nc)


async def test_one_users_transitions_are_written_and_announced_in_the_order_made(settings):
    nc = await bus.connect(settings, "test")
    online, seen = await open_buckets(nc.jetstream(), settings)
    events: list[tuple[str, bool]] = []

    async def on_event(msg: Msg) -> None:
        change = wire.decode(msg.data)
        assert isinstance(change, wire.PresenceChange)
        if change.user.startswith("o"):
            events.append((change.user, change.online))

    watch = await nc.subscribe(PRESENCE_PREFIX + ">", cb=on_event)
    announcements = Announcements(nc)
    try:
        for user in ("o1", "o2"):  # online, offline, online again, queued at once: the last one stands
            announcements.announce(Transition(user, True, 1))
            announcements.announce(Transition(user, False, 2))
        announcements.announce(Transition("o1", True, 3))
        await eventually(lambda: len(events) == 5, what="five events")
        assert [e for e in events if e[0] == "o1"] == [("o1", True), ("o1", False), ("o1", True)]
        assert [e for e in events if e[0] == "o2"] == [("o2", True), ("o2", False)]
        assert announcements.rounds == 3
        assert orjson.loads((await online.get("o1")).value) == {"last_active_at": 3}  # the delete did not overtake
        with pytest.raises(KeyNotFoundError):
            await online.get("o2")
        assert orjson.loads((await seen.get("o2")).value) == {"last_active_at": 2}
    finally:
        await announcements.close()
        await watch.unsubscribe()
        await bus.close_quietly(nc)


async def test_closing_writes_and_announces_what_is_queued(settings):
    nc = await bus.connect(settings, "test")
    online, seen = await open_buckets(nc.jetstream(), settings)
    announcements = Announcements(nc)
    try:
        announcements.announce(Transition("c1", True, 7))
        await announcements.close()
        assert announcements.pending() == 0
        assert orjson.loads((await online.get("c1")).value) == {"last_active_at": 7}
    finally:
        await bus.close_quietly(nc)


async def test_a_failed_write_is_logged_and_the_event_still_goes_out(settings, caplog):
    nc = await bus.connect(settings, "test")
    online, seen = await open_buckets(nc.jetstream(), settings)
    heard, watch = await events_of(nc, "f")
    announcements = Announcements(nc)
    try:
        announcements.announce(Transition("f@bad", True, 1))  # a key the bucket refuses
        announcements.announce(Transition("f1", True, 1))
        await eventually(lambda: len(heard) == 2, what="both announced")
        assert "storing f@bad's change failed" in caplog.text
    finally:
        await announcements.close()
        await watch.unsubscribe()
        await bus.close_quietly(nc)
