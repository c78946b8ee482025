"""An edge node in the test's process on a real nats-server, serving its WebSocket on a free port of 127.0.0.1."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web
from parley.node.server import EdgeNode

from parley import bus
from parley.auth import issue_token
from parley.ids import UserId, new_device_id, new_session_id
from parley.settings import Secret, Settings
from parley.store import Device, Session, open_store


def node_settings(nats_url: str, db: Path, secret: str, **more: Any) -> Settings:
    """What these tests' node ``n1`` runs with: SQLite at ``db``, tokens signed with ``secret``, a short floor wait."""
    return Settings(nats_url=nats_url, sqlite_path=str(db), secret=Secret(secret), floor_wait_s=0.1, node_id="n1",
                    **more)


@contextlib.asynccontextmanager
async def migrated(settings: Settings) -> AsyncIterator[Any]:
    """The settings' store, migrated; closed after."""
    store = open_store(settings)
    await store.migrate()
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def served(settings: Settings, store: Any) -> AsyncIterator[tuple[EdgeNode, bus.BusClient, str]]:
    """Node ``n1`` on ``store``, started and serving: the node, its bus connection and its WebSocket URL; its
    connections closed, the server stopped and the bus connection closed after."""
    nc = await bus.connect(settings, "node test")
    await bus.ensure_stream(nc.jetstream(), settings)
    node = EdgeNode(settings, store, nc, "n1")
    node.start()
    app = web.Application()
    app.router.add_get("/ws", node.handle_ws)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield node, nc, f"http://127.0.0.1:{runner.addresses[0][1]}/ws"
    finally:
        await node.close_all()
        await runner.cleanup()
        await nc.close()


async def signed_in(store: Any, secret: str, user: UserId) -> str:
    """A token for a new session and device of ``user``, both stored (as a login would), signed with ``secret``."""
    now, sid, device = int(time.time()), new_session_id(), new_device_id()
    await store.create_session(Session(sid, user, device, now * 1000, now + 3600))
    await store.upsert_device(Device(device, user, "phone", now))
    return issue_token(secret, user=user, device=device, session=sid, now=now, ttl_s=600)[0]
