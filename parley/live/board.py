"""The moderation board: who is warned, timed out or banned in which live room, and each room's slow mode,
in the ``live_mod`` KV bucket that every node watches (a change on one node applies on all within about
a second; a restarted node reads it all back).

Keys: ``st.<room>.<user>`` → a ``Standing`` (JSON), written with a per-message TTL of ``keep_s`` (a ban:
none); ``slow.<room>`` → ``{"s": seconds}``. Ids that are not a plain KV token are written as ``=`` +
base64url. A standing changes by compare-and-set on the key's last revision (two nodes warning the same
user at once both count). ``Board`` keeps a local mirror fed by the watch; ``standing``/``slow_mode``
read only the mirror (no I/O on the send path). A watch that fails, or whose consumer disappeared (NATS
restarted), starts again from the whole bucket: the quiet check finds it within ``WATCH_CHECK_S``
(nats-py's ordered consumer alone took about 20 s in a test).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import re
from collections.abc import Callable

import orjson
from nats.errors import TimeoutError as NatsTimeout
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError, KeyDeletedError, KeyNotFoundError
from nats.js.kv import KeyValue

from parley.bus.buckets import LIVE_MOD
from parley.live.standing import CLEAR, Escalation, Standing, keep_s
from parley.tasks import cancel_and_wait

log = logging.getLogger("parley.live")
PLAIN = re.compile(r"[A-Za-z0-9_-]{1,64}")
WATCH_CHECK_S = 5.0  # a quiet watch checks this often that its consumer still exists (a NATS restart drops it)
CAS_TRIES = 20  # concurrent offences of one user on several nodes: each retries after a short random pause
DELETE_MARKER_TTL_S = 60.0  # a lifted ban's delete marker goes after this (the watchers have seen it)


def token(ident: str) -> str:
    if PLAIN.fullmatch(ident):
        return ident
    return "=" + base64.urlsafe_b64encode(ident.encode()).decode().rstrip("=")


def untoken(tok: str) -> str:
    if not tok.startswith("="):
        return tok
    body = tok[1:]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def standing_key(room: str, user: str) -> str:
    return f"st.{token(room)}.{token(user)}"


def slow_key(room: str) -> str:
    return f"slow.{token(room)}"


class Board:
    def __init__(self, js: JetStreamContext, kv: KeyValue, rules: Escalation, check_s: float = WATCH_CHECK_S) -> None:
        self._js, self._kv, self.rules, self.check_s = js, kv, rules, check_s
        self._standings: dict[tuple[str, str], Standing] = {}
        self._slow: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self.loaded = asyncio.Event()

    # the mirror
    def standing(self, room: str, user: str) -> Standing:
        return self._standings.get((room, user), CLEAR)

    def slow_mode(self, room: str) -> float:
        return self._slow.get(room, 0.0)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._follow(), name="live_mod watch")
        await asyncio.wait_for(self.loaded.wait(), 30)

    async def stop(self) -> None:
        if self._task is not None:  # the watch loops around nats-py's wait_for: a plain cancel can be swallowed
            await cancel_and_wait(self._task)

    async def _follow(self) -> None:
        while True:
            watcher = None
            try:
                watcher = await self._kv.watchall()
                seen: set[str] | None = set()  # the keys of the initial load
                while True:
                    try:
                        entry = await watcher.updates(timeout=self.check_s)  # type: ignore[no-untyped-call]
                    except NatsTimeout:  # quiet is normal here; a watch whose consumer is gone is not
                        if watcher._sub is not None:  # its consumer_info raises once NATS restarted
                            await watcher._sub.consumer_info()
                        continue
                    if entry is None:
                        if seen is not None:
                            self._forget_all_but(seen)
                        seen = None
                        self.loaded.set()
                    else:
                        if seen is not None:
                            seen.add(entry.key)
                        self.apply(entry.key, entry.value if entry.operation is None else None)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("live_mod watch: %s; watching again", err or type(err).__name__)
                await asyncio.sleep(0.5)
            finally:
                if watcher is not None:
                    with contextlib.suppress(Exception):
                        await watcher.stop()  # type: ignore[no-untyped-call]

    def _forget_all_but(self, keys: set[str]) -> None:
        """After a (re)load: what the bucket no longer holds (deleted while the watch was down) goes."""
        for room, user in [p for p in self._standings if standing_key(*p) not in keys]:
            del self._standings[(room, user)]
        for room in [r for r in self._slow if slow_key(r) not in keys]:
            del self._slow[room]

    def apply(self, key: str, value: bytes | None) -> None:
        """One key's new value (None: deleted) into the mirror."""
        parts = key.split(".")
        if parts[0] == "st" and len(parts) == 3:
            pair = (untoken(parts[1]), untoken(parts[2]))
            if value:
                self._standings[pair] = Standing.from_json(orjson.loads(value))
            else:
                self._standings.pop(pair, None)
        elif parts[0] == "slow" and len(parts) == 2:
            seconds = float(orjson.loads(value)["s"]) if value else 0.0
            if seconds > 0:
                self._slow[untoken(parts[1])] = seconds
            else:
                self._slow.pop(untoken(parts[1]), None)

    # writes (any process with the bucket: nodes, the API)
    async def change(self, room: str, user: str, now: float, how: Callable[[Standing], Standing]) -> Standing:
        """``how`` applied to the stored standing, by compare-and-set; the result is stored and mirrored."""
        key = standing_key(room, user)
        for attempt in range(CAS_TRIES):
            if attempt:
                await asyncio.sleep(random.uniform(0, 0.005 * attempt))
            current, revision = await self._read(key)
            after = how(current)
            try:
                await self._write(key, after, revision, now)
            except BadRequestError:  # another process changed it meanwhile: again from its value
                continue
            self.apply(key, orjson.dumps(after.to_json()) if after != CLEAR else None)
            return after
        raise RuntimeError(f"{key}: kept changing under us")

    async def lift(self, room: str, user: str) -> None:
        """Unban / end a time-out: the standing is cleared."""
        key = standing_key(room, user)
        await self._kv.purge(key, msg_ttl=DELETE_MARKER_TTL_S)
        self.apply(key, None)

    async def set_slow_mode(self, room: str, seconds: float) -> None:
        key = slow_key(room)
        if seconds > 0:
            await self._kv.put(key, orjson.dumps({"s": seconds}))
        else:
            await self._kv.purge(key, msg_ttl=DELETE_MARKER_TTL_S)
        self.apply(key, orjson.dumps({"s": seconds}) if seconds > 0 else None)

    async def read_slow_mode(self, room: str) -> float:
        try:
            entry = await self._kv.get(slow_key(room))
        except (KeyNotFoundError, KeyDeletedError):
            return 0.0
        return float(orjson.loads(entry.value or b'{"s": 0}')["s"])

    async def room_standings(self, room: str) -> dict[str, Standing]:
        """Every stored standing in ``room``, read from the bucket (the API has no mirror): a watch of the
        room's keys, to the end of what is stored."""
        watcher = await self._kv.watch(f"st.{token(room)}.*", ignore_deletes=True)
        out = {}
        try:
            while (entry := await watcher.updates(timeout=5)) is not None:  # type: ignore[no-untyped-call]
                if entry.value:
                    out[untoken(entry.key.split(".")[2])] = Standing.from_json(orjson.loads(entry.value))
        finally:
            await watcher.stop()  # type: ignore[no-untyped-call]
        return out

    async def _read(self, key: str) -> tuple[Standing, int]:
        try:
            entry = await self._kv.get(key)
        except (KeyDeletedError, KeyNotFoundError) as err:
            # nats-py raises a deleted key as KeyNotFoundError carrying the delete marker: its revision is the
            # one a compare-and-set must name (0 would be refused for ever: the fuzz found a 500 this way)
            marker = err.entry
            return CLEAR, marker.revision if marker is not None and marker.revision else 0
        return Standing.from_json(orjson.loads(entry.value or b"{}")), entry.revision or 0

    async def _write(self, key: str, standing: Standing, revision: int, now: float) -> None:
        ttl = keep_s(standing, now, self.rules)
        headers = {"Nats-Expected-Last-Subject-Sequence": str(revision)}
        if ttl == 0:
            await self._js.publish(f"$KV.{LIVE_MOD}.{key}", b"", headers={**headers, "KV-Operation": "DEL"},
                                   msg_ttl=DELETE_MARKER_TTL_S)
            return
        await self._js.publish(f"$KV.{LIVE_MOD}.{key}", orjson.dumps(standing.to_json()), headers=headers,
                               msg_ttl=ttl)
