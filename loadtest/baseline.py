"""The bare baseline: an aiohttp + uvloop + orjson WebSocket relay with no bus and no storage — the
Python ceiling Parley's message path is compared with (``loadtest.efficiency``).

It speaks the part of Parley's protocol (docs/protocol.md) the lean load device uses: ``hello``
(the token is the user id; no auth) → ``welcome`` and ``synced``; ``send`` → a ``msg`` to every other
member of the conversation that is connected, then an ``ack`` to the sender; ``ping`` → ``pong``.
Conversations are registered before the load with ``POST /rooms`` ``{conv: [user, ...]}``.

    python -m parley.loadtest.baseline --port 8765
"""

from __future__ import annotations

import argparse
import itertools

import orjson
import uvloop
from aiohttp import WSMsgType, web

ROOMS = web.AppKey("rooms", dict[str, list[str]])
SOCKETS = web.AppKey("sockets", dict[str, web.WebSocketResponse])
IDS = itertools.count(1)


async def register(request: web.Request) -> web.Response:
    request.app[ROOMS].update(orjson.loads(await request.read()))
    return web.json_response({"rooms": len(request.app[ROOMS])})


async def relay(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=0)
    await ws.prepare(request)
    rooms, sockets, user = request.app[ROOMS], request.app[SOCKETS], ""
    async for m in ws:
        if m.type != WSMsgType.TEXT:
            break
        f = orjson.loads(m.data)
        kind = f.get("type")
        if kind == "send":
            conv, mid = f["conv"], next(IDS)
            out = orjson.dumps({"type": "msg", "id": mid, "conv": conv, "from": user, "body": f["body"]}).decode()
            for member in rooms.get(conv, ()):
                if member != user and (peer := sockets.get(member)) is not None:
                    await peer.send_str(out)
            await ws.send_str(orjson.dumps({"type": "ack", "cid": f["cid"], "id": mid, "conv": conv}).decode())
        elif kind == "hello":
            user = str(f["token"])
            sockets[user] = ws
            await ws.send_str(orjson.dumps({"type": "welcome", "user": user, "cursor": ""}).decode())
            await ws.send_str('{"type":"synced","cursor":""}')
        elif kind == "ping":
            await ws.send_str('{"type":"pong"}')
    if user and sockets.get(user) is ws:
        del sockets[user]
    return ws


def app() -> web.Application:
    a = web.Application()
    a[ROOMS], a[SOCKETS] = {}, {}
    a.router.add_post("/rooms", register)
    a.router.add_get("/ws", relay)
    return a


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.baseline", description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    web.run_app(app(), host="127.0.0.1", port=args.port, print=None, loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
