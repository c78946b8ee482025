"""Limits on the HTTP API: brute force on the auth endpoints, a request budget per address, and bounded
password hashing.

- ``AuthLimits``: failed logins per username and per source address, failed refreshes per address, and
  signups per address, each a sliding window (``parley.ratelimit.window_verdict``) over counters kept in
  NATS KV (the ``auth_limits`` bucket, ``parley.bus.buckets``): every API process reads and adds to the
  same counts. Checked before any password is hashed; a refused attempt is not counted (waiting the
  ``Retry-After`` it was given is enough). The counters fail open: when NATS cannot answer in
  ``KV_TIMEOUT_S`` the attempt goes on (logged); the per-address request budget still holds.
- ``budgeted`` (middleware): every other request takes a token from its address's bucket in this process
  (``api_rate_per_s``, ``api_rate_burst``); health and metrics are exempt.
- ``RequestBudget.take_presence``: ``GET /v1/presence`` also takes one token per user asked from its
  account's bucket in this process, the WebSocket ``presence`` frame's budget (``presence_rate_per_s``,
  ``presence_rate_burst``): many addresses cannot read presence for one account faster than its devices can.
Every refusal is counted in ``parley_api_limit_refusals{limit}`` (``refused``, set by the app).
- ``PasswordHashing``: Argon2 (64 MiB, ~0.2 s a call) on a pool of ``hash_concurrency`` threads; a call
  waits up to ``hash_wait_s`` for a slot, then 503 ``busy`` with ``Retry-After``.
The client's address is the peer's, or, when the peer is one of ``trusted_proxies``, the rightmost
address of ``X-Forwarded-For`` that is not.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol, TypeVar

from aiohttp import web
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from parley.auth import Passwords
from parley.errors import RateLimited, Unavailable
from parley.ratelimit import Buckets, Rate, Window, window_verdict
from parley.settings import Settings

log = logging.getLogger("parley.api")
T = TypeVar("T")
KV_TIMEOUT_S = 1.0
CAS_TRIES = 8  # concurrent writes of one counter (from other API processes) retry this often
EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})


class Counters(Protocol):
    """Counts by key, shared by every API process (``KvCounters``)."""

    async def read(self, keys: list[str]) -> list[int]: ...
    async def add(self, key: str) -> None: ...


class KvCounters:
    """Counters in a NATS KV bucket whose entries expire (the bucket's ``max_age``); adds are
    compare-and-set, so two API processes counting at once both count. Attempts on one key in this process
    share writes: while one write of the key is under way, the attempts that come meanwhile wait for it and
    are then written together, by one of them, as one compare-and-set (n concurrent sign-ups from one
    address cost about two writes, not up to n rounds of retries that left some uncounted)."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self._pending: dict[str, int] = {}  # key -> attempts counted here and not yet written
        self._writing: dict[str, asyncio.Event] = {}  # key -> set when the write under way here ends

    async def read(self, keys: list[str]) -> list[int]:
        try:
            async with asyncio.timeout(KV_TIMEOUT_S):
                return [n for n, _ in await asyncio.gather(*(self._get(k) for k in keys))]
        except Exception as err:  # fail open: a NATS outage must not lock every user out
            log.warning("auth limits: could not read counters: %r", err)
            return [0] * len(keys)

    async def add(self, key: str) -> None:
        self._pending[key] = self._pending.get(key, 0) + 1
        try:
            async with asyncio.timeout(KV_TIMEOUT_S):  # waiting included: still pending, the next write takes it
                while (under_way := self._writing.get(key)) is not None:
                    await under_way.wait()
                n = self._pending.pop(key, 0)
                if n == 0:
                    return  # a write that began after we came took ours too
                done = self._writing[key] = asyncio.Event()
                try:  # shielded: a caller that gives up (its timeout, a cancel) leaves the others' counts written
                    await asyncio.shield(self._write(key, n))
                finally:
                    del self._writing[key]
                    done.set()
        except Exception as err:
            log.warning("auth limits: could not count: %r", err)

    async def _write(self, key: str, n: int) -> None:
        for _ in range(CAS_TRIES):
            count, revision = await self._get(key)
            try:
                if revision is None:
                    await self._kv.create(key, str(n).encode())
                else:
                    await self._kv.update(key, str(count + n).encode(), last=revision)
                return
            except KeyWrongLastSequenceError:
                continue  # another process counted meanwhile
        log.warning("auth limits: %s contended, %d attempts not counted", key, n)

    async def _get(self, key: str) -> tuple[int, int | None]:
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            return 0, None
        return int(entry.value or b"0"), entry.revision


@dataclass(frozen=True)
class Rule:
    name: str
    window: Window
    message: str


class AuthLimits:
    def __init__(self, counters: Counters, settings: Settings,
                 clock: Callable[[], float] = time.time) -> None:
        s, scale = settings, settings.limits_scale
        self.login_account = Rule("login_account", Window(s.login_account_failures * scale, s.login_account_window_s),
                                  "too many failed logins for this account; try again later")
        self.auth_address = Rule("auth_address", Window(s.auth_address_failures * scale, s.auth_address_window_s),
                                 "too many failed logins or refreshes from your address; try again later")
        self.signup_address = Rule("signup_address",
                                   Window(s.signup_address_limit * scale, s.signup_address_window_s),
                                   "too many signups from your address; try again later")
        self._counters, self._clock = counters, clock
        self.refused: Callable[[str], None] = _ignore  # told the rule's name at every refusal (a metric)

    async def check(self, subjects: Iterable[tuple[Rule, str]]) -> None:
        """Refuse (429 ``rate_limited``, ``retry_after_ms``) when any subject is at its limit."""
        subjects = list(subjects)
        now = self._clock()
        keys = [key for rule, who in subjects for key in _keys(rule, who, now)]
        counts = await self._counters.read(keys)
        waits = []
        for i, (rule, _) in enumerate(subjects):
            verdict = window_verdict(rule.window, now, counts[2 * i], counts[2 * i + 1])
            if not verdict.allowed:
                waits.append((verdict.retry_after_s, rule))
        if waits:
            wait, rule = max(waits, key=lambda w: w[0])
            self.refused(rule.name)
            raise RateLimited(rule.message, retry_after_ms=int(wait * 1000) + 1)

    async def count(self, subjects: Iterable[tuple[Rule, str]]) -> None:
        now = self._clock()
        await asyncio.gather(*(self._counters.add(_keys(rule, who, now)[1]) for rule, who in subjects))


def _keys(rule: Rule, who: str, now: float) -> list[str]:
    """The previous and the current window's counter of ``who`` (hashed: a KV key holds a-z0-9 and
    few others, and the bucket then holds no usernames or addresses)."""
    digest = hashlib.sha256(f"{rule.name}\0{who}".encode()).hexdigest()[:32]
    index = rule.window.index(now)
    return [f"{rule.name}.{digest}.{index - 1}", f"{rule.name}.{digest}.{index}"]


def client_address(request: web.Request, trusted: frozenset[str]) -> str:
    peer = request.remote or ""
    if peer not in trusted:
        return peer
    forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
    for address in reversed(forwarded):
        if address not in trusted:
            return address
    return peer


def _ignore(limit: str) -> None:
    pass


class RequestBudget:
    """Every request takes a token from its address's bucket, a presence read from its account's too (per
    process, in memory; each ``Buckets`` keeps at most ``max_keys`` keys)."""

    def __init__(self, settings: Settings) -> None:
        scale = settings.limits_scale
        self.trusted = frozenset(a.strip() for a in settings.trusted_proxies.split(",") if a.strip())
        self._buckets = Buckets(Rate(settings.api_rate_per_s, settings.api_rate_burst).scaled(scale))
        self._presence = Buckets(Rate(settings.presence_rate_per_s, settings.presence_rate_burst).scaled(scale))
        self.refused: Callable[[str], None] = _ignore  # told the limit's name at every refusal (a metric)

    def address(self, request: web.Request) -> str:
        return client_address(request, self.trusted)

    def take(self, request: web.Request) -> None:
        wait = self._buckets.take(self.address(request), time.monotonic())
        if wait is not None:
            self.refused("address")
            raise RateLimited("too many requests from your address; slow down", retry_after_ms=int(wait * 1000) + 1)

    def take_presence(self, account: str, users: int) -> None:
        """A presence read of ``users`` users by ``account``: 429 ``rate_limited`` past the account's budget."""
        wait = self._presence.take(account, time.monotonic(), users)
        if wait is not None:
            self.refused("presence_account")
            raise RateLimited("too many presence reads for this account; slow down",
                              retry_after_ms=int(wait * 1000) + 1)


class PasswordHashing:
    """Argon2 calls on a bounded pool: at most ``concurrency`` at once, the rest wait ``wait_s`` at most."""

    def __init__(self, passwords: Passwords, concurrency: int, wait_s: float) -> None:
        self.concurrency = concurrency or 2 * (os.cpu_count() or 1)
        self._passwords, self._wait_s = passwords, wait_s
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="argon2")
        self._slots = asyncio.Semaphore(self.concurrency)

    async def hash(self, password: str) -> str:
        return await self._run(self._passwords.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        return await self._run(self._passwords.verify, stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether the hash was made with other Argon2 parameters (cheap: no hashing)."""
        return self._passwords.needs_rehash(stored_hash)

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        try:
            async with asyncio.timeout(self._wait_s):
                await self._slots.acquire()
        except TimeoutError:
            raise Unavailable("password hashing is busy; try again shortly", code="busy",
                              retry_after_ms=1000) from None
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        finally:
            self._slots.release()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
