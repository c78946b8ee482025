from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from parley.tools.client import Api, Device
from parley.tools.fcm_stub import FcmStub

from tests.integration.cluster import Cluster

PASSWORD = "correct horse battery"


def nats_servers() -> int:
    """``PARLEY_TEST_NATS_SERVERS=3``: the session's cluster runs on a 3-server JetStream cluster (R3)."""
    return int(os.environ.get("PARLEY_TEST_NATS_SERVERS", "1"))


def violations(c: Cluster) -> list[str]:
    """What the servers refused a role (``parley.bus.permissions``): none in a normal run."""
    return [line for line in c.errors_in_logs() if " Violation - " in line]


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("cluster"), nats_servers=nats_servers())
    try:
        c.start()
        yield c
    finally:
        c.shutdown()
    assert not violations(c), "a role used a subject it has no permission for:\n" + "\n".join(violations(c))


@pytest.fixture(scope="session")
def cluster3(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Parley on a 3-server JetStream cluster, R3 (the session's ``cluster`` when it is one already)."""
    if nats_servers() >= 3:
        yield request.getfixturevalue("cluster")
        return
    c = Cluster(tmp_path_factory.mktemp("cluster3"), nats_servers=3)
    try:
        c.start()
        yield c
    finally:
        c.shutdown()
    assert not violations(c), "a role used a subject it has no permission for:\n" + "\n".join(violations(c))


@pytest.fixture(scope="module")
async def fcm() -> AsyncIterator[FcmStub]:
    """A local stand-in for FCM's HTTP API (and Google's token endpoint) for the push tests."""
    stub = FcmStub()
    await stub.start()
    yield stub
    await stub.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # no connection limit: aiohttp's default of 100 would make the 101st WebSocket wait for a free slot
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield session


@dataclass
class Person:
    """A user with an account, able to log in any number of devices."""

    world: World
    name: str
    id: str
    logins: list[dict[str, Any]] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)

    async def login(self, **extra: Any) -> dict[str, Any]:
        out = await self.world.api.login(self.name, PASSWORD, **extra)
        self.logins.append(out)
        return out

    @property
    def token(self) -> str:
        return str(self.logins[-1]["token"])

    async def device(self, node: int | None = None, login: dict[str, Any] | None = None,
                     cursor: str | None = None) -> Device:
        login = login or await self.login()
        url = self.world.cluster.node_url(node) if node is not None else login["node"]["url"]
        dev = Device(self.world.http, url, login["token"])
        dev.login = login  # type: ignore[attr-defined]
        await dev.connect(cursor=cursor)
        await dev.synced.wait()
        self.devices.append(dev)
        return dev

    async def befriend(self, other: Person) -> str:
        await self.world.api.call("POST", "/v1/friends", self.token, {"user_id": other.id})
        await self.world.api.call("POST", "/v1/friends", other.token, {"user_id": self.id})
        conv = await self.world.api.call("POST", "/v1/conversations", self.token, {"user_id": other.id})
        return str(conv["conversation"]["id"])


class World:
    _n = itertools.count()

    def __init__(self, cluster: Cluster, http: aiohttp.ClientSession) -> None:
        self.cluster, self.http = cluster, http
        self.api = Api(cluster.api_url, http)
        self.people: list[Person] = []

    async def person(self, prefix: str = "u") -> Person:
        name = f"{prefix}{next(self._n)}_{secrets.token_hex(3)}"
        user = await self.api.signup(name, PASSWORD)
        p = Person(self, name, user["user"]["id"])
        await p.login()
        self.people.append(p)
        return p

    async def close(self) -> None:
        for p in self.people:
            for d in p.devices:
                await d.close()


@pytest.fixture
async def world(cluster: Cluster, http: aiohttp.ClientSession) -> AsyncIterator[World]:
    w = World(cluster, http)
    yield w
    await w.close()
