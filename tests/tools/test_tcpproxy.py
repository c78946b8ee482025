"""The loopback TCP proxy against a tiny echo server: it relays, cuts, heals and delays."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest
from parley.tools.tcpproxy import Proxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            pass


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def proxy(echo_port: int) -> Iterator[Proxy]:
    p = Proxy(echo_port)
    p.start()
    try:
        yield p
    finally:
        p.close()


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(5)
    return s


def _round_trip(s: socket.socket, data: bytes) -> bytes:
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def _dead(s: socket.socket) -> bool:
    """The proxy dropped this connection: the peer sees an end or a reset, never an echo."""
    try:
        s.sendall(b"ping")
        return s.recv(16) == b""
    except OSError:
        return True


def test_bytes_pass_both_ways(proxy: Proxy):
    data = bytes(range(256)) * 1000
    with _connect(proxy.port) as s:
        assert _round_trip(s, data) == data


def test_cut_breaks_live_connections_and_refuses_new_ones_until_healed(proxy: Proxy):
    live = _connect(proxy.port)
    assert _round_trip(live, b"hello") == b"hello"
    proxy.cut()
    assert _dead(live)
    live.close()
    with _connect(proxy.port) as new:
        assert _dead(new)
    proxy.heal()
    with _connect(proxy.port) as healed:
        assert _round_trip(healed, b"again") == b"again"


def test_delay_is_added_each_way(echo_port: int):
    p = Proxy(echo_port, delay_s=0.2)
    p.start()
    try:
        with _connect(p.port) as s:
            started = time.monotonic()
            assert _round_trip(s, b"x") == b"x"
            assert time.monotonic() - started >= 0.4
    finally:
        p.close()


def test_close_twice_is_harmless(echo_port: int):
    p = Proxy(echo_port)
    p.start()
    p.close()
    p.close()


def test_a_closed_proxy_starts_again_on_its_port(echo_port: int):
    p = Proxy(echo_port)
    port = p.start()
    p.close()
    try:
        assert p.start() == port
        with _connect(port) as s:
            assert _round_trip(s, b"back") == b"back"
    finally:
        p.close()
