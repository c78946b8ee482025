"""Ordered dispatch reaches into nats-py's private ``_process_msg``: fail loudly when an upgrade moves it."""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import PING_PROTO, Client
from parley.tools import natsserver
from parley.tools.cluster import free_port

from parley.bus.ordered import RELIES_ON, BusClient, parse_headers, stream_position
from tests.poll import eventually, eventually_sync


def test_the_private_hooks_we_override_or_call_are_still_there_with_the_same_parameters():
    for name, params in RELIES_ON.items():
        method = getattr(Client, name, None)
        assert method is not None, f"nats-py {nats.__version__} has no Client.{name}: revisit parley/bus/ordered.py"
        assert tuple(inspect.signature(method).parameters)[1:] == params, (
            f"nats-py {nats.__version__} changed Client.{name}{inspect.signature(method)}: "
            "revisit parley/bus/ordered.py")
        assert inspect.iscoroutinefunction(method)


def test_our_override_keeps_the_signature():
    ours = inspect.signature(BusClient._process_msg)
    theirs = inspect.signature(Client._process_msg)
    assert list(ours.parameters) == list(theirs.parameters)


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture
def nats_port(tmp_path: Path) -> Iterator[tuple[int, Callable[[], None]]]:
    """A nats-server on a free port, and a function that restarts it on the same port."""
    port = free_port()
    config = tmp_path / "nats.conf"
    config.write_text(f"host: 127.0.0.1\nport: {port}\n")
    procs = [natsserver.start_with(config, tmp_path / "nats.log")]
    eventually_sync(lambda: accepts(port), what="nats-server accepts clients")

    def restart() -> None:
        procs[-1].terminate()
        procs[-1].wait(10)
        procs.append(natsserver.start_with(config, tmp_path / "nats.log"))

    yield port, restart
    procs[-1].terminate()
    procs[-1].wait(10)


async def test_ordered_subscriptions_deliver_in_order_survive_a_reconnect_and_stop_when_dropped(nats_port):
    port, restart = nats_port
    nc = BusClient()
    await nc.connect(f"nats://127.0.0.1:{port}", max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    got: list[tuple[str, bytes]] = []
    a = await nc.subscribe_ordered("t.a", lambda s, h, d: got.append((s, d)))
    await nc.subscribe_ordered("t.*", lambda s, h, d: got.append(("*", d)))
    assert nc._subs[a._id] is a  # in nats-py's table: replayed after a reconnect
    for i in range(3):
        await nc.publish("t.a", b"%d" % i)
    await nc.flush()
    await eventually(lambda: len(got) == 6, what="both subscriptions' messages")
    assert [d for s, d in got if s == "t.a"] == [b"0", b"1", b"2"]
    restart()
    got.clear()

    async def heard_again() -> bool:
        await nc.publish("t.a", b"again")
        await nc.flush(timeout=1)
        return any(d == b"again" for s, d in got if s == "t.a")

    await eventually(heard_again, what="the replayed subscription hears again", timeout=20, ignoring=(Exception,))
    await nc.unsubscribe_ordered(a)
    got.clear()
    await nc.publish("t.a", b"after")
    await nc.flush()
    await eventually(lambda: ("*", b"after") in got, what="the other subscription still hears")
    assert [d for s, d in got if s == "t.a"] == []
    await nc.close()


DELIVERY_HEADERS = (b"NATS/1.0\r\nNats-Stream: parley-0\r\nNats-Subject: msg.0.dm.alice.bob\r\nNats-Sequence: 42\r\n"
                    b"Nats-Time-Stamp: 2026-12-03T13:00:00.123456789Z\r\nNats-Last-Sequence: 41\r\n"
                    b"Nats-Msg-Id: a:b:c\r\nX-Odd:  spaced  \r\n\r\n")


@pytest.mark.parametrize("raw", [DELIVERY_HEADERS, b"NATS/1.0\r\nA:1\r\nB:\r\n\r\n", b"NATS/1.0\r\n\r\n",
                                 b"NATS/1.0\r\nno colon here\r\nC: 3\r\n\r\n"])
async def test_parse_headers_reads_a_block_without_status_as_nats_py_does(raw):
    theirs = await Client()._process_headers(raw)
    assert parse_headers(raw) == theirs


@pytest.mark.parametrize("raw", [b"NATS/1.0\r\nNats-Sequence: \xff\xfe\r\n\r\n", b"NATS/1.0\r\n\xff: x\r\n",
                                 b"NATS/1.0\r\n:\r\n::\r\n", b"NATS/1.0\r\n"])
def test_parse_headers_never_raises_on_a_malformed_block(raw):
    parse_headers(raw)


@pytest.mark.parametrize("raw", [b"NATS/1.0 503\r\n\r\n", b"NATS/1.0 100 Idle Heartbeat\r\nA: 1\r\n\r\n", b"junk"])
def test_parse_headers_leaves_a_block_with_a_status_to_nats_py(raw):
    assert parse_headers(raw) is None


async def test_ordered_handlers_get_parsed_headers_and_a_malformed_block_does_not_stop_the_read_loop(nats_port, caplog):
    """``NATS/1.0`` alone makes nats-py's parse raise (an index past the end): the message is dropped, logged."""
    port, _ = nats_port
    nc = BusClient()
    await nc.connect(f"nats://127.0.0.1:{port}")
    got: list[tuple[dict[str, str] | None, bytes]] = []
    await nc.subscribe_ordered("t.h", lambda s, h, d: got.append((h, d)))
    await nc.publish("t.h", b"0", headers={"Nats-Sequence": "7", "X": "y"})
    for block in (b"NATS/1.0 \r\n\r\n", b"NATS/1.0\r\nA: \xff\r\nbroken\r\n\r\n", b"NATS/1.0 1\r\n", b"NATS/1.0"):
        await nc._send_command(b"HPUB t.h %d %d\r\n%b\r\n" % (len(block), len(block), block))  # no payload
    await nc.publish("t.h", b"1")
    await nc.flush()
    await eventually(lambda: any(d == b"1" for _, d in got), what="the message after the malformed ones")
    assert got[0] == ({"Nats-Sequence": "7", "X": "y"}, b"0")
    assert got[-1] == (None, b"1")
    assert [d for _, d in got] == [b"0", b"", b"", b"", b"1"]
    assert "malformed header block" in caplog.text
    assert nc.is_connected
    await nc.close()


@pytest.mark.parametrize(("raw", "found"), [
    (DELIVERY_HEADERS, ("parley-0", 42)),
    (b"NATS/1.0\r\nNats-Sequence: 1\r\nNats-Stream:s\r\nNats-Sequence: 7\r\n\r\n", ("s", 7)),  # the last wins
    (b"NATS/1.0\r\nNats-Stream: s\r\nNats-Sequence: 9", ("s", 9)),  # no trailing line end
    (b"NATS/1.0\r\nX-Nats-Sequence: 3\r\nNats-Stream: s\r\n\r\n", None),  # another name ending so
    (b"NATS/1.0\r\nNats-Stream: s\r\nNats-Sequence: 1x\r\n\r\n", None),
    (b"NATS/1.0\r\nNats-Stream: s\r\nNats-Sequence: -1\r\n\r\n", None),
    (b"NATS/1.0\r\nNats-Sequence: 4\r\n\r\n", None),
    (b"NATS/1.0\r\nNats-Stream: \xff\r\nNats-Sequence: \r\n\r\n", None),
    (b"", None),
])
def test_stream_position_reads_the_stream_and_sequence_as_parse_headers_would(raw, found):
    assert stream_position(raw) == found
    parsed = parse_headers(raw) or {}
    if found is not None:
        assert (parsed["Nats-Stream"], int(parsed["Nats-Sequence"])) == found


async def test_a_headed_subscription_hands_the_header_block_over_in_order_with_the_others(nats_port):
    port, _ = nats_port
    nc = BusClient()
    await nc.connect(f"nats://127.0.0.1:{port}")
    got: list[tuple[str, object, bytes]] = []
    headed = await nc.subscribe_headed("t.g", lambda s, h, d: got.append(("headed", h, d)))
    await nc.subscribe_ordered("t.*", lambda s, h, d: got.append(("parsed", h, d)))
    await nc.publish("t.g", b"0", headers={"Nats-Sequence": "7"})
    await nc.publish("t.g", b"1")
    await nc.flush()
    await eventually(lambda: len(got) == 4, what="both subscriptions' messages")
    assert [(h, d) for kind, h, d in got if kind == "headed"] == [(b"NATS/1.0\r\nNats-Sequence: 7\r\n\r\n", b"0"),
                                                                  (None, b"1")]
    assert [(h, d) for kind, h, d in got if kind == "parsed"] == [({"Nats-Sequence": "7"}, b"0"), (None, b"1")]
    await nc.unsubscribe_ordered(headed)
    assert headed._id not in nc._headed and headed._id not in nc._subs
    await nc.close()


async def nats_proxy(port: int, *, seen: bytearray | None = None, gate: asyncio.Event | None = None,
                     up_gate: asyncio.Event | None = None,
                     clients: list[asyncio.StreamWriter] | None = None) -> asyncio.Server:
    """A TCP relay on 127.0.0.1 in front of the nats-server on ``port``: what the client sends is added to ``seen``;
    what the server sends waits while ``gate`` is clear, what the client sends while ``up_gate`` is; each client's
    side of the relay is added to ``clients``. Close it when done."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bytearray | None,
                   held: asyncio.Event | None) -> None:
        while data := await reader.read(65536):
            if record is not None:
                record.extend(data)
            if held is not None:
                await held.wait()
            writer.write(data)
            await writer.drain()
        writer.close()

    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", port)
        if clients is not None:
            clients.append(client_w)
        await asyncio.gather(pipe(client_r, server_w, seen, up_gate), pipe(server_r, client_w, None, gate),
                             return_exceptions=True)

    return await asyncio.start_server(relay, "127.0.0.1", 0)


async def test_a_flush_returns_once_the_server_has_read_the_subscription_made_before_it(nats_port):
    """nats-py's own flush writes its PING ahead of a SUB still queued for its flusher, so the PONG did not say the
    server had the subscription (a sync reading the stream right after could miss a message): the client's bytes,
    seen on their way to a real nats-server, have the SUB first."""
    seen = bytearray()
    proxy = await nats_proxy(nats_port[0], seen=seen)
    nc = BusClient()
    try:
        await nc.connect(f"nats://127.0.0.1:{proxy.sockets[0].getsockname()[1]}")
        await nc.flush()
        seen.clear()
        await nc.subscribe_ordered("order.check", lambda s, h, d: None)
        await nc.flush()
        sent = bytes(seen)
        assert b"SUB order.check" in sent and sent.index(b"SUB order.check") < sent.index(b"PING"), sent
    finally:
        await nc.close()
        proxy.close()


def recorded_writes(nc: BusClient) -> list[bytes]:
    """What ``nc`` writes to its socket from now on, a send at a time."""
    writes: list[bytes] = []
    transport = nc._transport
    assert transport is not None
    write, writelines = transport.write, transport.writelines
    transport.write = lambda data: (writes.append(bytes(data)), write(data))[1]  # type: ignore[method-assign]
    transport.writelines = lambda lines: (writes.append(b"".join(lines)), writelines(lines))[1]  # type: ignore
    return writes


async def test_a_flush_sends_what_is_queued_and_its_ping_in_one_write(nats_port):
    """A connect's set-up subscribes three subjects and flushes: the SUBs and the PING leave in one send (ADR 0041),
    the SUBs first, and the flush still waits for the server's PONG."""
    port, _ = nats_port
    nc = BusClient()
    await nc.connect(f"nats://127.0.0.1:{port}")
    try:
        await nc.flush()
        writes = recorded_writes(nc)
        got: list[bytes] = []
        for subject in ("one.check", "two.check", "three.check"):
            await nc.subscribe_ordered(subject, lambda s, h, d: got.append(d))
        await nc.flush()
        assert len(writes) == 1, writes
        assert writes[0].index(b"SUB three.check") < writes[0].index(b"PING"), writes
        await nc.publish("two.check", b"x")
        await eventually(lambda: got == [b"x"], what="the message on a subscription the flush covered")
    finally:
        await nc.close()


async def test_the_flushes_of_one_loop_turn_share_one_ping_and_each_returns_once_the_server_has_its_subscriptions(
        nats_port):
    """A storm of connects: set-ups that flush in the same loop turn share one write and one PING (ADR 0059), every
    SUB before it; each flush returns only after the PONG, and the server then has every one of the subscriptions:
    another client's message on each reaches it."""
    port, _ = nats_port
    nc, other = BusClient(), await nats.connect(f"nats://127.0.0.1:{port}")
    await nc.connect(f"nats://127.0.0.1:{port}")
    try:
        await nc.flush()
        writes = recorded_writes(nc)
        got: dict[str, list[bytes]] = {}

        async def set_up(user: int) -> None:
            for kind in ("one", "two", "three"):
                got[f"{kind}.{user}"] = box = []
                await nc.subscribe_ordered(f"{kind}.{user}", lambda s, h, d, box=box: box.append(d))
            await nc.flush()
            await other.publish(f"two.{user}", b"x")  # from another client, once this set-up's flush returned
            await other.flush()

        await asyncio.gather(*(set_up(user) for user in range(20)))
        assert len(writes) == 1 and writes[0].count(b"PING") == 1, writes
        assert writes[0].count(b"SUB ") == 60 and writes[0].rindex(b"SUB ") < writes[0].index(b"PING"), writes
        await eventually(lambda: all(box == ([b"x"] if s.startswith("two.") else []) for s, box in got.items()),
                         what="each set-up's message on the subscription its flush covered")
    finally:
        await nc.close()
        await other.close()


async def test_a_ping_still_queued_when_the_connection_drops_answers_no_later_flush(nats_port):
    """The socket backed up (the server reads nothing), a flush's PING queued behind it, then the connection gone:
    nats-py replays what was queued after reconnecting, but the PING's future went with the old connection, so its
    PONG would answer the next PING's future early. The PING is taken out (ADR 0059): it is not sent again, the
    stranded flush times out, and a subscription flushed after the reconnect has the server's interest."""
    reading, clients, seen = asyncio.Event(), [], bytearray()
    reading.set()
    proxy = await nats_proxy(nats_port[0], seen=seen, up_gate=reading, clients=clients)
    url = f"nats://127.0.0.1:{proxy.sockets[0].getsockname()[1]}"
    nc, other = BusClient(), await nats.connect(f"nats://127.0.0.1:{nats_port[0]}")
    try:
        await nc.connect(url, ping_interval=600, reconnect_time_wait=0.1, max_reconnect_attempts=-1,
                         pending_size=64 * 1024 * 1024)
        await nc.flush()
        reading.clear()  # the relay stops reading: the client's socket and then its transport fill up
        for _ in range(32):
            await nc.publish("nobody.listens", b"x" * 512 * 1024)
        await eventually(lambda: nc._transport._io_writer.transport.get_write_buffer_size() > 0,  # type: ignore
                         what="the client's writes backed up")
        stranded = asyncio.create_task(nc.flush(timeout=3))
        await eventually(lambda: PING_PROTO in nc._pending, what="the flush's PING queued behind the backlog")
        clients[-1].transport.abort()  # the connection goes; the next one flows
        mark = len(seen)  # the relay's copy of what the old connection sent has no PING (nor do its payloads)
        reading.set()
        with pytest.raises(nats.errors.FlushTimeoutError):
            await stranded
        await eventually(lambda: nc.is_connected and len(clients) == 2, what="reconnected")
        got: list[bytes] = []
        await nc.subscribe_ordered("after.reconnect", lambda s, h, d: got.append(d))
        await nc.flush(timeout=3)
        await other.publish("after.reconnect", b"z")
        await eventually(lambda: got == [b"z"], what="the message on the subscription flushed after the reconnect")
        # on the new connection: nats-py's handshake PING, the reconnect's flush and this flush; not the stranded one
        assert bytes(seen[mark:]).count(PING_PROTO) == 3 and nc._pongs == [] and PING_PROTO not in nc._pending
    finally:
        await asyncio.wait_for(nc.close(), 5)
        await other.close()
        proxy.close()


async def test_a_flush_that_times_out_leaves_the_connection_working(nats_port):
    """The server's PONG held back past the timeout: the flush raises nats-py's ``FlushTimeoutError``, and the late
    PONG, when it comes, neither breaks the read loop nor answers a later flush early."""
    let_through = asyncio.Event()
    let_through.set()
    proxy = await nats_proxy(nats_port[0], gate=let_through)
    nc = BusClient()
    try:
        await nc.connect(f"nats://127.0.0.1:{proxy.sockets[0].getsockname()[1]}", ping_interval=600)
        await nc.flush()
        let_through.clear()
        with pytest.raises(nats.errors.FlushTimeoutError):
            await nc.flush(timeout=1)
        let_through.set()
        got: list[bytes] = []
        await nc.subscribe_ordered("late.check", lambda s, h, d: got.append(d))
        await nc.flush(timeout=5)
        await nc.publish("late.check", b"y")
        await eventually(lambda: got == [b"y"], what="the message after the late PONG")
        assert nc.is_connected
    finally:
        await nc.close()
        proxy.close()
