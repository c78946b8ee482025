"""The bare baseline over picows: ``loadtest.baseline``'s relay (same frames, same orjson, same behaviour the
lean load device relies on) with picows' own HTTP upgrade and frame parser in place of aiohttp's — what the
socket layer alone would give (``loadtest.efficiency --systems baseline,picows``; docs/adr/0057).

The protocol part is ``loadtest.baseline``'s: ``hello`` (the token is the user id) → ``welcome`` and
``synced``; ``send`` → a ``msg`` to every other connected member of the conversation, then an ``ack`` to
the sender; ``ping`` → ``pong``. picows serves only GET requests without a body, so conversations are
registered with ``GET /rooms?<the JSON object, URL-quoted>`` (``register_path``) rather than a POST.
A fragmented frame (not FIN) or a binary one ends the connection, as the aiohttp relay does with
anything but a text message; a close frame is answered with a close frame.

    python -m parley.loadtest.baseline_picows --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from typing import Any
from urllib.parse import quote, unquote_to_bytes

import orjson
import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, WSUpgradeResponse, ws_create_server
from picows import WSUpgradeResponseWithListener as WithListener

ROOMS_PATH = b"/rooms?"
IDS = itertools.count(1)
READ_BUFFER = 1024  # per connection, grown as needed: picows' default (16 KiB) alone doubles an idle connection's RSS


def register_path(rooms: dict[str, list[str]]) -> str:
    """The request path that registers ``rooms`` (conversation -> members)."""
    return "/rooms?" + quote(orjson.dumps(rooms).decode(), safe="")


class Relay:
    """The conversations and the connected users' transports, shared by every connection."""

    def __init__(self) -> None:
        self.rooms: dict[str, list[str]] = {}
        self.sockets: dict[str, WSTransport] = {}

    def route(self, request: WSUpgradeRequest) -> WSListener | WithListener | None:
        if request.path == b"/ws":
            return Connection(self)
        if request.path.startswith(ROOMS_PATH):
            self.rooms.update(orjson.loads(unquote_to_bytes(request.path[len(ROOMS_PATH):])))
            body = orjson.dumps({"rooms": len(self.rooms)})
            ok = WSUpgradeResponse.create_ok_response(body, {"Content-Type": "application/json"})
            return WithListener(ok, None)
        return None  # 404


class Connection(WSListener):
    def __init__(self, relay: Relay) -> None:
        self.relay, self.user = relay, ""

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
            return
        if frame.msg_type != WSMsgType.TEXT or not frame.fin:
            transport.send_close()
            transport.disconnect()
            return
        f: dict[str, Any] = orjson.loads(frame.get_payload_as_memoryview())
        kind = f.get("type")
        if kind == "send":
            conv, mid, user, sockets = f["conv"], next(IDS), self.user, self.relay.sockets
            out = orjson.dumps({"type": "msg", "id": mid, "conv": conv, "from": user, "body": f["body"]})
            for member in self.relay.rooms.get(conv, ()):
                if member != user and (peer := sockets.get(member)) is not None:
                    peer.send(WSMsgType.TEXT, out)
            transport.send(WSMsgType.TEXT, orjson.dumps({"type": "ack", "cid": f["cid"], "id": mid, "conv": conv}))
        elif kind == "hello":
            self.user = str(f["token"])
            self.relay.sockets[self.user] = transport
            transport.send(WSMsgType.TEXT, orjson.dumps({"type": "welcome", "user": self.user, "cursor": ""}))
            transport.send(WSMsgType.TEXT, b'{"type":"synced","cursor":""}')
        elif kind == "ping":
            transport.send(WSMsgType.TEXT, b'{"type":"pong"}')

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.user and self.relay.sockets.get(self.user) is transport:
            del self.relay.sockets[self.user]


async def serve(port: int, host: str = "127.0.0.1") -> asyncio.Server:
    """The relay listening on ``host:port`` (0: a free port, ``server.sockets[0]`` says which)."""
    return await ws_create_server(Relay().route, host, port, max_frame_size=2**31 - 1,
                                  read_buffer_init_size=READ_BUFFER)


async def _run(port: int) -> None:
    server = await serve(port)
    await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.baseline_picows", description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    uvloop.run(_run(args.port))


if __name__ == "__main__":
    main()
