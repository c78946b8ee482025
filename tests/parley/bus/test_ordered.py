"""Ordered dispatch reaches into nats-py's private ``_process_msg``: fail loudly when an upgrade moves it."""

from __future__ import annotations

import asyncio
import inspect
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from parley.tools import natsserver
from parley.tools.cluster import free_port

from parley.bus.ordered import RELIES_ON, BusClient
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


async def test_a_queue_group_hands_a_message_matching_several_subscriptions_over_once_and_loses_none_on_leaving(
        nats_port):
    """An edge node's two DM members' subscriptions (docs/adr/0033): a DM between them comes once; unsubscribing
    one loses nothing the server had already chosen it for."""
    port, _ = nats_port
    nc, other = BusClient(), BusClient()
    await nc.connect(f"nats://127.0.0.1:{port}")
    await other.connect(f"nats://127.0.0.1:{port}")
    got: list[bytes] = []
    elsewhere: list[bytes] = []
    a = await nc.subscribe_ordered("dm.a.*", lambda s, h, d: got.append(d), queue="node1")
    await nc.subscribe_ordered("dm.*.b", lambda s, h, d: got.append(d), queue="node1")
    await other.subscribe_ordered("dm.a.*", lambda s, h, d: elsewhere.append(d), queue="node2")
    await other.flush()
    for i in range(200):
        await nc.publish("dm.a.b", b"%d" % i)
    await nc.publish("dm.a.c", b"only a")
    await nc.unsubscribe_ordered(a)  # while some of those are on their way to it
    for i in range(200, 210):
        await nc.publish("dm.a.b", b"%d" % i)
    await nc.flush()
    await other.flush()
    await eventually(lambda: len(got) >= 211 and len(elsewhere) >= 211, what="every message, once per node")
    assert sorted(got) == sorted([b"%d" % i for i in range(210)] + [b"only a"])  # none twice, none lost
    assert sorted(elsewhere) == sorted(got)  # another node's group is its own
    await nc.close()
    await other.close()


async def test_a_flush_returns_once_the_server_has_read_the_subscription_made_before_it(nats_port):
    """nats-py's own flush writes its PING ahead of a SUB still queued for its flusher, so the PONG did not say the
    server had the subscription (a sync reading the stream right after could miss a message): the client's bytes,
    seen on their way to a real nats-server, have the SUB first."""
    port, _ = nats_port
    seen = bytearray()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bool) -> None:
        while data := await reader.read(65536):
            if record:
                seen.extend(data)
            writer.write(data)
            await writer.drain()
        writer.close()

    async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(pipe(client_r, server_w, True), pipe(server_r, client_w, False), return_exceptions=True)

    proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
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
