"""Fixtures for the browser tests: one real two-node cluster for the module's tests, headless
Chromium windows (each its own profile, so its own sessionStorage: a separate device), accounts made
over the HTTP API, and a plain WebSocket client for the other side of a conversation."""

from __future__ import annotations

import itertools
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import websocket
from selenium import webdriver

from tests.browser.chromium import close_chromium, console_errors, open_chromium
from tests.integration.cluster import Cluster

PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("web-cluster"), nodes=2, web_test_hooks=True)
    try:
        c.start()
        yield c
    finally:
        c.shutdown()


def call(cluster: Cluster, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(cluster.api_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as err:
        with err:
            raise AssertionError(f"{method} {path}: {err.code} {err.read()!r}") from None
    return json.loads(raw) if raw else {}


@dataclass
class Account:
    cluster: Cluster
    username: str
    id: str
    token: str = ""

    def login(self) -> dict[str, Any]:
        out: dict[str, Any] = call(self.cluster, "POST", "/v1/login", body={"username": self.username,
                                                                           "password": PASSWORD})
        self.token = out["token"]
        return out

    def befriend(self, other: Account) -> str:
        """Mutual friends with a DM opened; the DM's id."""
        call(self.cluster, "POST", "/v1/friends", self.token, {"user_id": other.id})
        call(self.cluster, "POST", "/v1/friends", other.token, {"user_id": self.id})
        conv = call(self.cluster, "POST", "/v1/conversations", self.token, {"user_id": other.id})
        return str(conv["conversation"]["id"])


_n = itertools.count()


@pytest.fixture
def account(cluster: Cluster) -> Callable[..., Account]:
    def make(prefix: str, display_name: str | None = None) -> Account:
        name = f"{prefix}{next(_n)}_{secrets.token_hex(2)}"
        body = {"username": name, "password": PASSWORD} | ({"display_name": display_name} if display_name else {})
        user = call(cluster, "POST", "/v1/signup", body=body)["user"]
        acct = Account(cluster, name, user["id"])
        acct.login()
        return acct
    return make


@dataclass
class Socket:
    """The far side of a conversation: one device speaking the WebSocket protocol directly."""

    ws: websocket.WebSocket
    frames: list[dict[str, Any]] = field(default_factory=list)
    _cids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def send(self, conv: str, body: str) -> int:
        cid = f"t{secrets.token_hex(4)}-{next(self._cids)}"
        self.ws.send(json.dumps({"type": "send", "cid": cid, "conv": conv, "body": body}))
        return int(self.wait(lambda f: f.get("type") == "ack" and f.get("cid") == cid)["id"])

    def frame(self, frame: dict[str, Any]) -> None:
        self.ws.send(json.dumps(frame))

    def cursor_after(self, id: int) -> str:
        """The first cursor the node offered after the ``msg`` with ``id``: it covers that message."""
        at = self.frames.index(self.wait(lambda f: f.get("type") == "msg" and f.get("id") == id))
        found = self.wait(lambda f: f.get("type") in ("cursor", "synced"), start=at + 1)
        return str(found["cursor"])

    def ack_through(self, id: int) -> str:
        """Acks (protocol v2) a cursor covering the ``msg`` with ``id``, so its sender sees "delivered"."""
        cursor = self.cursor_after(id)
        self.frame({"type": "ack", "cursor": cursor})
        return cursor

    def wait(self, match: Callable[[dict[str, Any]], bool], timeout: float = 10, start: int = 0) -> dict[str, Any]:
        """The first frame from ``start`` on (an index in ``frames``) that matches, reading more as needed."""
        seen = next((f for f in self.frames[start:] if match(f)), None)
        deadline = time.monotonic() + timeout
        while seen is None:
            left = deadline - time.monotonic()
            assert left > 0, f"no matching frame in {timeout}s; got {self.frames[-5:]}"
            self.ws.settimeout(left)
            opcode, data = self.ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_CLOSE:  # say why, not a JSON error on an empty string
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                raise AssertionError(f"the node closed the socket: {code} {data[2:].decode(errors='replace')!r}; "
                                     f"last frames {self.frames[-5:]}")
            frame = json.loads(data)
            self.frames.append(frame)
            seen = frame if match(frame) else None
        return seen

    def messages(self, conv: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("type") == "msg" and f.get("conv") == conv]


@pytest.fixture
def socket_for(cluster: Cluster) -> Iterator[Callable[[Account, int], Socket]]:
    opened: list[Socket] = []

    def connect(acct: Account, node: int) -> Socket:
        ws = websocket.create_connection(cluster.node_url(node), timeout=10)
        sock = Socket(ws)
        ws.send(json.dumps({"type": "hello", "v": 2, "token": acct.token}))
        sock.wait(lambda f: f.get("type") == "synced")
        opened.append(sock)
        return sock

    yield connect
    for sock in opened:
        sock.ws.close()
        sock.ws.shutdown()  # the socket too when the node closed first (``close`` then skips it and leaks it)


@pytest.fixture
def chromium() -> Iterator[Callable[[], webdriver.Chrome]]:
    """Opens Chromium windows (separate browsers and profiles); every one must end the test without
    a console error."""
    drivers: list[webdriver.Chrome] = []

    def open_one() -> webdriver.Chrome:
        driver = open_chromium()
        drivers.append(driver)
        return driver

    yield open_one
    for driver in drivers:
        close_chromium(driver)


def severe(driver: webdriver.Chrome, allowed: Callable[[str], bool] = lambda _: False) -> list[str]:
    return [e["message"] for e in console_errors(driver) if not allowed(e["message"])]
