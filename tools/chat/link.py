"""One device's WebSocket, kept up across drops, drains and node restarts, on the reference client.

Each connection is a ``parley.tools.client.Device``: it sends ``hello`` with this link's cursor, acks
every cursor the node offers as it arrives (its ``auto_ack``: frames are handed on in order, so what
came before a cursor frame has been taken), and keeps the newest offered in ``Device.cursor``. When the
connection ends, that cursor becomes the link's and the next ``hello`` carries it, so the node re-sends
exactly what it did not cover (the chat state drops the ids it has shown). What to do after a close is
``reconnect.after_close``: the node a draining node named (at once), a fresh ``/v1/place`` with backoff,
or a new login with the same device. Sends stay pending until their ``ack`` (or their own ``msg``) and
are sent again with the same cid after a reconnect; the node de-duplicates them within its 300 s window.
A send first tried longer ago than that (less a margin) is looked up in its conversation's newest history
first, as the web client does: found (same cid, this device), it counts as acked; only if absent is it
sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp
from parley.tools.chat.reconnect import AUTH_CLOSES, Backoff, Plan, after_close, urls_of
from parley.tools.client import ApiError, Device

Frame = dict[str, Any]
CONNECT_ERRORS = (aiohttp.ClientError, ConnectionError, OSError, asyncio.TimeoutError)
BLIND_RESEND_S = 300.0 - 60.0  # the node's default de-duplication window, less a margin
LOOKUP_PAGE = 100


class Account(Protocol):
    token: str
    device_id: str

    async def relogin(self) -> dict[str, Any]: ...

    async def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any: ...


class Link:
    def __init__(self, http: aiohttp.ClientSession, account: Account, on_frame: Callable[[Frame], None],
                 note: Callable[[str], None], on_live: Callable[[], Awaitable[None]] | None = None) -> None:
        self.http, self.account, self.on_frame, self.note, self.on_live = http, account, on_frame, note, on_live
        self.cursor: str | None = None  # newest offered and handed on; sent in every hello
        self.pending: dict[str, Frame] = {}  # cid → send frame, until acked
        self.sent_at: dict[str, float] = {}  # cid → when it was first tried (loop time)
        self.device: Device | None = None
        self.node = ""
        self.stopped = False
        self._wake = asyncio.Event()
        self._avoid: str | None = None
        self._cids = itertools.count(1)
        self._prefix = "t" + secrets.token_hex(6) + "-"
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def live(self) -> bool:
        return self.device is not None and not self.device.closed.done()

    # -- sending ---------------------------------------------------------------------------------------

    async def say(self, conv: str, body: str, **fields: Any) -> str:
        """Sends a message; ``fields``: a reply's ``reply_to``, an action's ``kind``, ``target``, ``emoji``."""
        cid = f"{self._prefix}{next(self._cids)}"
        frame = {"type": "send", "cid": cid, "conv": conv, "body": body, **fields}
        self.pending[cid] = frame
        self.sent_at[cid] = asyncio.get_running_loop().time()
        await self.send(frame)  # not live: sent when the next connection is up
        return cid

    async def send(self, frame: Frame) -> bool:
        device = self.device
        if device is None or device.closed.done():
            return False
        try:
            await device.send_frame(frame)
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def flush(self, timeout: float) -> bool:
        """Wait (up to ``timeout``) until every send is acked; whether they all were."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.pending and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return not self.pending

    # -- frames ----------------------------------------------------------------------------------------

    def _frame(self, f: Frame) -> None:
        if self.stopped:
            return
        kind = f.get("type")
        if kind == "ack" or (kind == "msg" and f.get("device") == self.account.device_id):
            self.pending.pop(f.get("cid", ""), None)
            self.sent_at.pop(f.get("cid", ""), None)
        elif kind == "error":
            self._failed(f)
        self.on_frame(f)

    def _failed(self, f: Frame) -> None:
        ref = f.get("ref")
        if f.get("code") == "internal" and ref is None:
            self._later(1.0, *self.pending)
        elif ref in self.pending and f.get("retryable"):
            self._later(f.get("retry_after_ms", 1000) / 1000, ref)
        elif ref in self.pending:
            self.pending.pop(ref)
            self.sent_at.pop(ref, None)

    def _later(self, delay: float, *cids: str) -> None:
        async def resend() -> None:
            await asyncio.sleep(delay)
            for cid in cids:
                if cid in self.pending:
                    await self._resend(self.pending[cid])
        self._spawn(resend())

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the connection loop ---------------------------------------------------------------------------

    async def run(self, first: tuple[str, ...]) -> None:
        """Connect to ``first`` (the login's node and fallbacks) and keep connected until ``stop``."""
        backoff, nodes = Backoff(), first
        while not self.stopped:
            device = await self._connect(nodes)
            if self.stopped:  # stopped while connecting
                if device is not None:
                    await device.close()
                return
            if device is None:
                plan = Plan("no node answered; trying again")
            else:
                backoff.reset()
                code = await self._serve(device)
                plan = after_close(code, device.moved, random.random())
                self._avoid = device.url
            if self.stopped:
                return
            self.note(plan.note)
            nodes = plan.nodes
            wait = backoff.take(random.random()) if plan.backoff else plan.delay_s
            await self._sleep(max(wait, plan.at_least_s))
            if plan.relogin and not self.stopped:
                await self._relogin()

    async def _connect(self, nodes: tuple[str, ...]) -> Device | None:
        urls = list(nodes) or await self._place()
        for url in urls:
            device = Device(self.http, url, self.account.token)
            device.on_frame = self._frame
            try:
                await device.connect(cursor=self.cursor)
                return device
            except CONNECT_ERRORS:
                code = device.ws.close_code if device.ws is not None else None
                await device.close()
                if code in AUTH_CLOSES:
                    await self._relogin()
                    return None
        return None

    async def _place(self) -> list[str]:
        try:
            urls = list(urls_of(await self.account.call("GET", "/v1/place")))
        except ApiError as err:
            if err.status == 401:
                await self._relogin()
            return []
        except CONNECT_ERRORS:
            return []
        if len(urls) > 1 and urls[0] == self._avoid:  # placement may not know yet that it went away
            urls.append(urls.pop(0))
        return urls

    async def _relogin(self) -> None:
        try:
            await self.account.relogin()
        except (ApiError, *CONNECT_ERRORS) as err:
            self.note(f"could not log in again: {err}")

    async def _serve(self, device: Device) -> int | None:
        self.device, self.cursor = device, device.cursor
        self.node = str(device.welcome.get("node", ""))
        self.note(f"connected to {self.node}")
        for frame in list(self.pending.values()):  # same cids: a stored one is acked as a duplicate
            await self._resend(frame)
        if self.on_live is not None:
            self._spawn(self.on_live())
        beat = max(1.0, float(device.welcome.get("limits", {}).get("heartbeat_s", 25)) * 0.8)
        pinger = asyncio.ensure_future(self._ping(device, beat))
        try:
            code, _ = await asyncio.shield(device.closed)
        finally:
            pinger.cancel()
            self.cursor = device.cursor or self.cursor
            await device.close()
        return code

    async def _resend(self, frame: Frame) -> None:
        age = asyncio.get_running_loop().time() - self.sent_at.get(frame["cid"], 0.0)
        if age < BLIND_RESEND_S:
            await self.send(frame)
            return
        try:
            page = await self.account.call("GET", f"/v1/conversations/{frame['conv']}/messages",
                                           params={"limit": LOOKUP_PAGE})
        except (ApiError, *CONNECT_ERRORS):
            return  # unknown: not resent blindly; the next connection looks again
        stored = next((m for m in page["messages"]
                       if m["cid"] == frame["cid"] and m["device"] == self.account.device_id), None)
        if frame["cid"] not in self.pending:
            return  # its ack came meanwhile
        if stored is not None:
            self._frame({"type": "ack", "status": "sent", "cid": frame["cid"], "id": stored["id"],
                         "conv": frame["conv"], "duplicate": True})
        elif await self.send(frame):
            self.sent_at[frame["cid"]] = asyncio.get_running_loop().time()  # a new first try

    async def _ping(self, device: Device, every: float) -> None:
        while not device.closed.done():
            await asyncio.sleep(every)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await device.send_frame({"type": "ping"})

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def stop(self) -> None:
        self.stopped = True
        self._wake.set()
        if self.device is not None:
            await self.device.close()
        for task in list(self._tasks):
            task.cancel()
