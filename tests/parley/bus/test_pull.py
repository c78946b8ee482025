"""The pull loop's pure parts (ack subjects, status lines, which request is open), then ``Puller``
against a real nats-server: every message handed over once, acks in one write move the ack floor,
an idle request expires (408) and the next goes out, a stop waits for the open request to end; lingering
(``linger_s``), the same with what is pending fetched in bursts (``no_wait``) on a shared tick."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from parley import bus
from parley.bus.pull import ACK, MARGIN_S, Puller, PullRequests, next_burst, status_of, stream_sequence
from parley.settings import Settings
from tests.poll import eventually


@pytest.mark.parametrize(("reply", "seq"), [
    ("$JS.ACK.MSG_0.archiver.1.42.7.1700000000000000000.3", 42),  # 9 tokens: no domain
    ("$JS.ACK.hub.ACCHASH.MSG_0.archiver.2.43.8.1700000000000000000.0", 43),  # 11: domain, account hash
    ("$JS.ACK._.ACCHASH.MSG_0.archiver.1.44.9.1700000000000000000.5.r4nd0m", 44),  # 12: and a random token
])
def test_the_stream_sequence_comes_from_either_ack_subject_format(reply, seq):
    assert stream_sequence(reply) == seq


@pytest.mark.parametrize("reply", [
    "", "_INBOX.abc.1", "$JS.ACK.S.c.1.2.3", "$JS.ACK.S.c.1.2.3.4.5.6", "$JS.ACK.a.b.S.c.1.2.3.4.5.6.7",
    "$JS.NAK.MSG_0.archiver.1.42.7.1700000000000000000.3", "$JS.ACK.MSG_0.archiver.1.x.7.1700000000000000000.3",
])
def test_anything_else_is_refused_not_read_as_some_sequence(reply):
    with pytest.raises(ValueError):
        stream_sequence(reply)


@pytest.mark.parametrize(("headers", "code"), [
    (None, None),
    (b"NATS/1.0\r\nNats-Msg-Id: x\r\n\r\n", None),
    (b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 500\r\n\r\n", "408"),
    (b"NATS/1.0 404 No Messages\r\n\r\n", "404"),
    (b"NATS/1.0 100 Idle Heartbeat\r\n\r\n", "100"),
    (b"NATS/1.0 503\r\n\r\n", "503"),
])
def test_a_status_is_told_from_a_message_by_its_header_line(headers, code):
    assert status_of(headers) == code


def test_one_request_is_open_at_a_time_and_asks_for_no_more_than_there_is_room_for():
    r = PullRequests("_INBOX.x", batch=500, expires_s=1.0)
    reply, body = r.next(room=300, now=0.0)
    assert reply == "_INBOX.x.1" and orjson.loads(body) == {"batch": 300, "expires": 1_000_000_000}
    assert r.next(room=300, now=0.1) is None
    assert [r.on_message() for _ in range(300)][-2:] == [False, True]  # used up: closed
    assert r.next(room=0, now=0.2) is None
    assert r.next(room=9999, now=0.2)[0] == "_INBOX.x.2" and r.credit == 500


def test_only_a_status_about_the_open_request_ends_it():
    r = PullRequests("_INBOX.x", batch=10, expires_s=1.0)
    r.next(room=10, now=0.0)
    r.next(room=10, now=0.0)
    assert not r.on_status("_INBOX.x.1", "100")  # a heartbeat ends nothing
    r.on_message()
    assert r.on_status("_INBOX.x.1", "408") and r.open is None
    r.next(room=10, now=0.0)
    assert not r.on_status("_INBOX.x.1", "408")  # late, about the old one
    assert r.on_status("_INBOX.x.2", "503")


def test_a_request_never_answered_is_taken_as_lost_after_its_expiry_and_a_margin():
    r = PullRequests("_INBOX.x", batch=10, expires_s=1.0)
    r.next(room=10, now=0.0)
    assert r.next(room=10, now=1.0 + MARGIN_S - 0.01) is None
    assert r.next(room=10, now=1.0 + MARGIN_S + 0.01) is not None


def test_messages_beyond_any_open_request_are_still_counted_as_nothing_closed():
    r = PullRequests("_INBOX.x", batch=10, expires_s=1.0)
    assert r.on_message() is False and r.open is None


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[bus.BusClient]:
    client = await bus.connect(Settings(nats_url=nats_url), "test")
    yield client
    await client.close()


async def consumer(nc: bus.BusClient, count: int) -> None:
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="S", subjects=["s.>"]))
    await js.add_consumer("S", ConsumerConfig(durable_name="c", ack_policy=AckPolicy.EXPLICIT, ack_wait=30,
                                                max_ack_pending=5000))
    for i in range(count):
        await js.publish(f"s.{i % 7}", str(i).encode())


async def test_every_message_is_handed_over_once_in_order_and_the_acks_move_the_floor(nc):
    await consumer(nc, 1234)
    got: list[tuple[str, str, bytes]] = []
    puller = Puller(nc, "S", "c", batch=100, expires_s=1.0, room=lambda: 250,
                    deliver=lambda s, r, d: got.append((s, r, d)))
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(puller.run(stop))
    await eventually(lambda: len(got) == 1234, what="every message delivered")
    assert [int(d) for _, _, d in got] == list(range(1234))
    assert [stream_sequence(r) for _, r, _ in got] == list(range(1, 1235))
    assert [s for s, _, _ in got[:8]] == [f"s.{i % 7}" for i in range(8)]
    await nc.publish_bare([r for _, r, _ in got], ACK)

    async def floor() -> bool:
        info = await nc.jetstream().consumer_info("S", "c")
        return info.ack_floor.stream_seq == 1234 and info.num_ack_pending == 0

    await eventually(floor, what="the ack floor at the last message")
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_an_idle_request_expires_and_the_next_one_picks_up_a_later_message(nc):
    await consumer(nc, 0)
    got: list[bytes] = []
    puller = Puller(nc, "S", "c", batch=10, expires_s=0.3, room=lambda: 10, deliver=lambda s, r, d: got.append(d))
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(puller.run(stop))
    await eventually(lambda: puller._requests.sent >= 3, what="expired requests renewed")  # 408s ended them
    await nc.jetstream().publish("s.x", b"late")
    await eventually(lambda: got == [b"late"], what="the later message delivered")
    stop.set()
    await asyncio.wait_for(task, 10)
    assert puller._requests.open is None  # stopped only once its request had ended


async def test_no_room_means_no_request(nc):
    await consumer(nc, 5)
    got: list[bytes] = []
    room = [0]
    puller = Puller(nc, "S", "c", batch=10, expires_s=0.3, room=lambda: room[0] - len(got),
                    deliver=lambda s, r, d: got.append(d))
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(puller.run(stop))
    await asyncio.sleep(0.2)  # what no request brings: nothing (not a timing assertion on a result that comes)
    assert got == [] and puller._requests.sent == 0
    room[0] = 3
    puller.wake()
    await eventually(lambda: len(got) == 3, what="three delivered once there was room for three")
    stop.set()
    await asyncio.wait_for(task, 10)


def test_a_no_wait_request_has_no_expiry_so_it_ends_once_what_is_pending_came():
    r = PullRequests("_INBOX.x", batch=500, expires_s=1.0)
    _, body = r.next(room=2000, now=0.0, no_wait=True)
    assert orjson.loads(body) == {"batch": 500, "no_wait": True} and r.asked == 500
    r.on_status("_INBOX.x.1", "404")
    _, body = r.next(room=30, now=0.0)
    assert orjson.loads(body) == {"batch": 30, "expires": 1_000_000_000} and r.asked == 30


@pytest.mark.parametrize(("now", "burst", "asked", "got", "lasted", "then"), [
    (10.03, False, 500, 0, 1.0, None),  # a plain request expired empty: another
    (10.03, False, 500, 4, 1.0, None),  # ... brought a trickle (fewer than one a tick): another
    (10.03, False, 500, 30, 1.0, 10.1),  # ... brought more than one a tick: bursts from the next tick
    (10.03, False, 500, 500, 0.2, 10.03),  # ... came full: a backlog, ask again at once
    (10.03, True, 500, 0, 0.001, None),  # a burst found nothing: traffic stopped, a plain request
    (10.03, True, 500, 7, 0.001, 10.1),  # a burst brought some: the next tick
    (10.03, True, 500, 500, 0.01, 10.03),  # a full burst: a backlog, ask again at once
    (10.1, True, 500, 3, 0.001, 10.2),  # on a tick: the next one, never the same instant again
])
def test_bursts_are_fetched_on_a_shared_tick_unless_a_backlog_or_a_trickle(now, burst, asked, got, lasted, then):
    at = next_burst(now, 0.1, burst=burst, asked=asked, got=got, lasted_s=lasted)
    assert at == then if then is None else at == pytest.approx(then)


async def test_lingering_every_message_is_handed_over_once_in_order_a_backlog_in_full_bursts(nc):
    await consumer(nc, 1234)
    got: list[bytes] = []
    puller = Puller(nc, "S", "c", batch=100, expires_s=1.0, room=lambda: 250, deliver=lambda s, r, d: got.append(d),
                    linger_s=0.05)
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(puller.run(stop))
    await eventually(lambda: len(got) == 1234, what="every message delivered")
    assert [int(d) for d in got] == list(range(1234))
    stop.set()
    await asyncio.wait_for(task, 10)
    assert puller._requests.open is None


def bursts_sent(puller: Puller) -> list[float]:
    """The times of the ``no_wait`` requests (bursts) ``puller`` sends from now on."""
    sent: list[float] = []
    plain_next = puller._requests.next

    def next_request(room: int, now: float, *, no_wait: bool = False) -> tuple[str, bytes] | None:
        request = plain_next(room, now, no_wait=no_wait)
        if request is not None and no_wait:
            sent.append(now)
        return request

    puller._requests.next = next_request  # type: ignore[method-assign]
    return sent


async def test_lingering_a_busy_stream_is_fetched_in_bursts_and_a_quiet_one_waits_again(nc):
    await consumer(nc, 0)
    got: list[bytes] = []
    puller = Puller(nc, "S", "c", batch=1000, expires_s=0.3, room=lambda: 1000,
                    deliver=lambda s, r, d: got.append(d), linger_s=0.05)
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(puller.run(stop))
    await eventually(lambda: puller._requests.sent >= 2, what="a plain request expired and renewed")
    bursts = bursts_sent(puller)
    published = 0
    # more than one a tick: bursts follow. Counted as they are sent: a burst right after a full request may find
    # nothing pending (these publishes wait for their acks) and end before this loop looks again; and the
    # consumer's max_ack_pending (5000, nothing acked here) must not be reached first
    while not bursts and published < 4_000:
        await nc.jetstream().publish("s.x", str(published).encode())
        published += 1
    assert bursts
    for i in range(published, published + 50):
        await nc.jetstream().publish("s.x", str(i).encode())
    published += 50
    await eventually(lambda: len(got) == published, what="every message, through bursts")
    assert [int(d) for d in got] == list(range(published))
    await eventually(lambda: not puller._burst and puller._requests.open is not None,
                     what="back to a plain request once a burst found none")
    stop.set()
    await asyncio.wait_for(task, 10)
