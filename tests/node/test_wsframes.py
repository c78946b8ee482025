"""Text frames as RFC 6455 §5.2 lays them out, read back by aiohttp's client over a real socket."""

from __future__ import annotations

import pytest
from aiohttp import ClientSession, WSMsgType, web
from parley.node.wsframes import text_frames, text_header


@pytest.mark.parametrize(("length", "header"), [
    (0, b"\x81\x00"),
    (125, b"\x81\x7d"),
    (126, b"\x81\x7e\x00\x7e"),
    (65535, b"\x81\x7e\xff\xff"),
    (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
])
def test_the_header_carries_fin_text_and_the_length_in_the_shortest_form(length, header):
    assert text_header(length) == header


def test_a_header_is_packed_once_per_length_and_shared_by_every_frame_of_that_length():
    """ADR 0053: one ``msg`` frame goes to every member device; its header is looked up, not packed per device."""
    assert text_header(300) is text_header(300) == b"\x81\x7e\x01\x2c"
    parts = text_frames([b"x" * 300, b"y" * 300])
    assert parts[0] is parts[2] is text_header(300)
    assert text_header(70000) == text_header(70000)  # past the kept lengths: packed each time, the same bytes


async def test_frames_written_back_to_back_on_a_server_socket_read_as_the_same_messages():
    payloads = [b'{"type":"msg"}', b"x" * 126, "é".encode() * 40000, b""]

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        assert request.transport is not None
        request.transport.writelines(text_frames(payloads))
        await ws.receive()  # the client's close
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with ClientSession() as http, http.ws_connect(f"http://127.0.0.1:{port}/") as ws:
            got = [await ws.receive(timeout=10) for _ in payloads]
    finally:
        await runner.cleanup()
    assert [m.type for m in got] == [WSMsgType.TEXT] * len(payloads)
    assert [m.data.encode() for m in got] == payloads
