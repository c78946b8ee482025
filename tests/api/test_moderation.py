"""Live-room moderation over HTTP (api/moderation.py): the API process's app on a real nats-server
(connected as the ``api`` role) and a real SQLite store; a ``FloodScreen`` connected as a ``node`` honours
what a moderator does."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from parley.api.app import make_app
from parley.api.http import STORE
from parley.api.live import ROOMS
from parley.api.moderation import MODERATION
from parley.tools.cluster import flood_defaults

from parley import bus
from parley.auth import issue_token
from parley.bus import BusClient
from parley.bus.live import Rooms, ensure_live
from parley.ids import UserId, new_device_id, new_session_id, new_user_id
from parley.live.flood_screen import FloodScreen
from parley.live.moderation import open_moderation
from parley.live.screening import Attempt
from parley.settings import Settings
from parley.store import Session, open_store
from tests.integration.cluster import Cluster
from tests.poll import eventually

MOD, VIEWER, TROLL, OWNER = new_user_id(), new_user_id(), new_user_id(), new_user_id()


class Setup:
    def __init__(self, client: TestClient, settings: Settings, cluster: Cluster, opened: list[BusClient]) -> None:
        self.client, self.settings, self.cluster, self.opened = client, settings, cluster, opened
        self.room = ""  # made by OWNER; MOD is an operator (PARLEY_ADMINS), who moderates every room

    async def token(self, user: UserId) -> dict[str, str]:
        store, now = self.client.app[STORE], int(time.time())
        session = Session(new_session_id(), user, new_device_id(), now, now + 3600)
        await store.create_session(session)
        token, _ = issue_token(self.settings.secret.reveal(), user=user, device=session.device, session=session.id,
                               now=now, ttl_s=3600)
        return {"Authorization": f"Bearer {token}"}

    async def node_screen(self) -> FloodScreen:
        settings = self.settings.replace(**self.cluster.auth.settings_for("node"), **flood_defaults())
        nc = await bus.connect(settings, "node under test")
        self.opened.append(nc)
        screen = FloodScreen(settings, nc)
        await screen.start()
        return screen


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    cluster = Cluster(tmp_path, nodes=0)
    cluster.start_nats()
    opened: list[BusClient] = []
    try:
        settings = cluster.settings.replace(**cluster.auth.settings_for("api"), admins=f" {MOD} , other",
                                            secret=cluster.settings.secret, sqlite_path=str(tmp_path / "p.db"),
                                            store="sqlite")
        if not settings.secret:
            settings = settings.replace(secret=type(settings.secret)(secrets.token_urlsafe(48)))
        store = open_store(settings)
        await store.migrate()
        nc = await bus.connect(settings, "api under test")
        opened.append(nc)
        app = make_app(settings, store, nc)
        app[MODERATION] = await open_moderation(nc, settings)
        app[ROOMS] = Rooms(await ensure_live(nc.jetstream(), settings))
        async with TestClient(TestServer(app)) as client:
            s = Setup(client, settings, cluster, opened)
            resp = await client.post("/v1/live", json={"title": "final"}, headers=await s.token(OWNER))
            s.room = (await resp.json())["id"]
            yield s
        await store.close()
    finally:
        for nc in opened:
            await nc.close()
        cluster.shutdown()
    bad = [line for line in cluster.errors_in_logs() if " Violation - " in line]
    assert not bad, bad


async def call(s: Setup, method: str, path: str, user: UserId, body: Any = None) -> tuple[int, Any]:
    resp = await s.client.request(method, f"/v1/live/{s.room}{path}", json=body, headers=await s.token(user))
    return resp.status, (await resp.json() if resp.content_type == "application/json" else None)


async def test_non_moderators_are_refused(setup):
    for method, path, body in [("GET", "/moderation", None), ("PUT", f"/bans/{TROLL}", None),
                               ("PUT", f"/timeouts/{TROLL}", {"duration_s": 60}), ("GET", "/audit", None),
                               ("PUT", "/slow_mode", {"seconds": 5}), ("DELETE", f"/bans/{TROLL}", None)]:
        status, body = await call(setup, method, path, VIEWER, body)
        assert (status, body["code"]) == (403, "not_moderator"), path


async def test_a_moderators_timeout_applies_on_a_node_and_is_audited(setup):
    node = await setup.node_screen()
    status, body = await call(setup, "PUT", f"/timeouts/{TROLL}", MOD, {"duration_s": 120})
    assert status == 200 and body["user_id"] == TROLL

    def refused() -> bool:
        a = Attempt(setup.room, TROLL, "hi", time.time(), 10 * 86400, False)
        return node.board is not None and node.board.standing(a.room, a.user).timed_out(a.now)

    await eventually(refused, what="the node seeing the moderator's time-out")
    verdict = await node.screen(Attempt(setup.room, TROLL, "hi", time.time(), 10 * 86400, False))
    assert verdict.code == "timed_out" and 100 < verdict.retry_after_s <= 120
    status, body = await call(setup, "GET", "/moderation", MOD)
    assert status == 200 and [t["user_id"] for t in body["timeouts"]] == [TROLL] and body["bans"] == []

    assert (await call(setup, "PUT", f"/bans/{TROLL}", MOD))[0] == 204
    assert (await call(setup, "PUT", "/slow_mode", MOD, {"seconds": 10}))[0] == 204
    await eventually(lambda: node.board.standing(setup.room, TROLL).banned and node.board.slow_mode(setup.room) == 10,
                     what="the node seeing the ban and the slow mode")
    status, body = await call(setup, "GET", "/moderation", MOD)
    assert body == {"slow_mode_s": 10, "timeouts": [], "bans": [{"user_id": TROLL}]}

    assert (await call(setup, "DELETE", f"/bans/{TROLL}", MOD))[0] == 204
    await eventually(lambda: not node.board.standing(setup.room, TROLL).banned, what="the node seeing the unban")
    status, body = await call(setup, "GET", "/audit?limit=3", MOD)
    assert [(e["action"], e["by"], e["user"]) for e in body["entries"]] == [
        ("timeout", MOD, TROLL), ("ban", MOD, TROLL), ("slow_mode", MOD, "")]
    status, rest = await call(setup, "GET", f"/audit?after={body['next']}", MOD)
    assert [(e["action"], e["user"]) for e in rest["entries"]] == [("unban", TROLL)] and rest["next"] is None
    await node.stop()


async def test_bad_input(setup):
    assert (await call(setup, "PUT", f"/timeouts/{TROLL}", MOD, {"duration_s": -1}))[1]["code"] == "bad_field"
    assert (await call(setup, "PUT", "/slow_mode", MOD, {"seconds": 10**9}))[1]["code"] == "bad_field"
    assert (await call(setup, "PUT", "/bans/not-an-id", MOD))[1]["code"] == "bad_field"
    assert (await call(setup, "GET", "/audit?limit=0", MOD))[1]["code"] == "bad_field"
    resp = await setup.client.get("/v1/live/final-2026/moderation", headers=await setup.token(MOD))
    assert (resp.status, (await resp.json())["field"]) == (400, "room")
    resp = await setup.client.get(f"/v1/live/{new_user_id()}/moderation", headers=await setup.token(MOD))
    assert (resp.status, (await resp.json())["code"]) == (404, "unknown_room")
