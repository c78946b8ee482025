"""A small asyncio client for Parley's HTTP API and WebSocket protocol (used by tests and benchmarks).

It follows docs/protocol.md (v2): hello with the token (and a cursor), then a background reader sorts
server frames into ``messages`` (deduplicated by id), ``acks`` by client message id, ``errors`` and the
latest ``synced``; ``cursor`` holds the newest cursor the server offered (acked when ``auto_ack``).
``on_frame``, when set, is called with every frame after ``welcome`` as it is read (``parley chat``).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import ssl
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson


def connector(ca: str = "") -> aiohttp.TCPConnector:
    """An aiohttp connector (no connection limit) whose TLS connections check the server against ``ca`` (a
    PEM file: ``parley up --tls`` prints it), or the system's CAs without one: pass it to the
    ``ClientSession`` that ``Api`` and ``Device`` use, for ``https://`` and ``wss://`` URLs."""
    context: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca) if ca else True
    return aiohttp.TCPConnector(limit=0, ssl=context)


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.code = body.get("code")
        self.body = body


class Api:
    def __init__(self, base_url: str, http: aiohttp.ClientSession) -> None:
        self.base = base_url.rstrip("/")
        self.http = http

    async def call(self, method: str, path: str, token: str | None = None, body: Any = None,
                   params: dict[str, Any] | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = orjson.dumps(body) if body is not None else None
        async with self.http.request(method, self.base + path, headers=headers, data=data, params=params) as r:
            raw = await r.read()
            out = orjson.loads(raw) if raw else {}
            if r.status >= 400:
                raise ApiError(r.status, out)
            return out

    async def upload(self, token: str, conv: str, data: bytes, name: str | None = None,
                     content_type: str = "application/octet-stream") -> dict[str, Any]:
        """``POST /v1/conversations/{conv}/attachments``: the new attachment's record (docs/adr/0024)."""
        headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
        params = {"name": name} if name is not None else {}
        async with self.http.post(f"{self.base}/v1/conversations/{conv}/attachments", data=data, headers=headers,
                                  params=params) as r:
            out = orjson.loads(await r.read() or b"{}")
            if r.status >= 400:
                raise ApiError(r.status, out)
            return dict(out["attachment"])

    async def download(self, token: str, path: str) -> tuple[bytes, dict[str, str]]:
        """A file the API serves (an attachment, its thumbnail): its bytes and headers."""
        async with self.http.get(self.base + path, headers={"Authorization": f"Bearer {token}"}) as r:
            raw = await r.read()
            if r.status >= 400:
                raise ApiError(r.status, orjson.loads(raw) if raw else {})
            return raw, dict(r.headers)

    async def signup(self, username: str, password: str) -> dict[str, Any]:
        out: dict[str, Any] = await self.call("POST", "/v1/signup", body={"username": username, "password": password})
        return out

    async def login(self, username: str, password: str, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = await self.call(
            "POST", "/v1/login", body={"username": username, "password": password, **extra})
        return out


class Device:
    """One WebSocket connection of one device."""

    _cids = itertools.count(1)

    def __init__(self, http: aiohttp.ClientSession, url: str, token: str, compress: int = 0) -> None:
        """``compress``: offer permessage-deflate with this window (browsers do; 0: no compression)."""
        self.http, self.url, self.token, self.compress = http, url, token, compress
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.welcome: dict[str, Any] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.order: list[int] = []
        self.duplicates = 0
        self.acks: dict[str, dict[str, Any]] = {}
        self.errors: list[dict[str, Any]] = []
        self.pongs: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []  # other server frames: group, friend, user, typing, …
        self.moved: dict[str, Any] | None = None  # the node's ``moved`` frame, when it drains
        self.synced = asyncio.Event()
        self.closed: asyncio.Future[tuple[int | None, str]] = asyncio.get_running_loop().create_future()
        self._waiters: list[tuple[Any, asyncio.Future[None]]] = []
        self._reader: asyncio.Task[None] | None = None
        self.auto_ack = True
        self.cursor: str | None = None  # the newest cursor offered (welcome, cursor, synced frames)
        self.offers: list[tuple[int, str]] = []  # (messages received by then, cursor) per cursor offered
        self.acked_cursor: str | None = None
        self._cid_prefix = secrets.token_hex(4) + "-"
        self.on_frame: Callable[[dict[str, Any]], None] | None = None  # sees every frame after welcome, in order

    async def connect(self, cursor: str | None = None, **hello: Any) -> dict[str, Any]:
        self.ws = await self.http.ws_connect(self.url, max_msg_size=0, compress=self.compress)
        frame = {"type": "hello", "v": 2, "token": self.token, **hello}
        if cursor is not None:
            frame["cursor"] = cursor
        await self.ws.send_str(orjson.dumps(frame).decode())
        first = await self.ws.receive(timeout=10)
        if first.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"closed during hello: {self.ws.close_code} {first.extra}")
        data: dict[str, Any] = orjson.loads(first.data)
        if data.get("type") != "welcome":
            await self.ws.receive(timeout=5)
            raise ConnectionError(f"hello refused: {data} (close {self.ws.close_code})")
        self.welcome = data
        self.cursor = data.get("cursor")
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return data

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            self._on_frame(orjson.loads(msg.data))
        if not self.closed.done():
            self.closed.set_result((self.ws.close_code, str(self.ws.exception() or "")))
        self._notify()

    def _on_frame(self, f: dict[str, Any]) -> None:
        kind = f.get("type")
        if kind == "msg":
            if f["id"] in self.messages:
                self.duplicates += 1
            else:
                self.messages[f["id"]] = f
                self.order.append(f["id"])
        elif kind == "cursor":
            self._offered(f["cursor"])
        elif kind == "ack":
            self.acks[f["cid"]] = f
        elif kind == "error":
            self.errors.append(f)
        elif kind == "pong":
            self.pongs.append(f)
        elif kind == "synced":
            self.synced.set()
            self._offered(f["cursor"])
        elif kind == "moved":
            self.moved = f
        elif kind != "welcome":
            self.events.append(f)
        if self.on_frame is not None:
            self.on_frame(f)
        self._notify()

    def _offered(self, cursor: str) -> None:
        self.cursor = cursor
        self.offers.append((len(self.order), cursor))
        if self.auto_ack:
            asyncio.get_running_loop().create_task(self.ack(cursor))

    async def ack(self, cursor: str | None = None) -> None:
        """Ack ``cursor`` (default: the newest offered): every message before it was processed."""
        cursor = cursor or self.cursor
        if cursor is None:
            return
        try:
            await self.send_frame({"type": "ack", "cursor": cursor})
            self.acked_cursor = cursor
        except (ConnectionError, RuntimeError):
            pass

    async def cursor_after(self, id: int, timeout: float = 10) -> str:
        """The first cursor offered after message ``id`` arrived (it covers ``id``)."""
        await self.wait_for(lambda: id in self.messages, timeout)
        index = self.order.index(id)
        await self.wait_for(lambda: any(n > index for n, _ in self.offers), timeout)
        return next(c for n, c in self.offers if n > index)

    def _notify(self) -> None:
        for check, fut in list(self._waiters):
            if not fut.done() and (check() or self.closed.done()):
                fut.set_result(None)

    async def wait_for(self, check: Any, timeout: float = 10) -> None:
        if check():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (check, fut)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            self._waiters.remove(entry)
        if not check():
            raise ConnectionError(f"connection closed: {self.closed.result() if self.closed.done() else ''}")

    async def send_frame(self, frame: dict[str, Any] | str) -> None:
        assert self.ws is not None
        await self.ws.send_str(frame if isinstance(frame, str) else orjson.dumps(frame).decode())

    async def send(self, conv: str, body: str, cid: str | None = None, wait: bool = True,
                   attachments: list[str] | None = None, **fields: Any) -> dict[str, Any]:
        """``fields``: more of the send's fields: ``reply_to``, or ``kind`` and ``target`` (+ ``emoji``) for an
        edit, delete or reaction (protocol.md §19 and §20); ``attachments``: uploaded files' ids."""
        cid = cid or f"{self._cid_prefix}{next(self._cids)}"
        self.acks.pop(cid, None)
        seen = len(self.errors)

        def failed() -> dict[str, Any] | None:
            return next((e for e in self.errors[seen:] if e.get("ref") == cid), None)

        frame: dict[str, Any] = {"type": "send", "cid": cid, "conv": conv, "body": body, **fields}
        if attachments is not None:
            frame["attachments"] = attachments
        await self.send_frame(frame)
        if not wait:
            return {"cid": cid}
        await self.wait_for(lambda: cid in self.acks or failed() is not None)
        if cid in self.acks:
            return self.acks[cid]
        raise ApiError(0, failed() or {})

    def bodies(self, conv: str | None = None) -> list[str]:
        """Bodies of one conversation in id order (its chain), or of all in the order they arrived."""
        if conv is None:
            return [self.messages[i]["body"] for i in self.order]
        return [self.messages[i]["body"] for i in sorted(self.messages) if self.messages[i]["conv"] == conv]

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
