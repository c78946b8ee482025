"""Ending sessions: the store first, then the edge nodes, until NATS has taken the announcement.

Invariant: a session is revoked in the store before anyone is told, so from then on every hello and
every route refuses it (nodes fail closed while the store is down, ``revocation_fail_closed``). The
announcement (``wire.Revoke`` on the user's control subject) only closes live connections (4003); the
nodes holding them are subscribed there. One that fails (NATS away, a reconnect under way) is not just
logged: it is tried again in the background, with pauses doubling from ``FIRST_PAUSE_S`` to
``LONGEST_PAUSE_S``, until NATS takes it or ``GIVE_UP_S`` has passed (``retry_pauses``, pure).

Why a retry and not a JetStream subject: the store already holds the truth, so a revocation needs no
replay, only to reach the nodes subscribed at the time; a stream would add a consumer per node, its
retention and its permissions for a message that matters for a few seconds. What a retry cannot
cover — a node that was itself cut off from NATS when the announcement passed — the node covers: when
its NATS connection comes back it checks every live session against the store (node/revocation.py).
An API process that dies with a retry pending leaves the same gap until the node's next reconnect or
the device's next hello. At most ``RETRIES_MAX`` retries are pending (a long NATS outage with many logouts):
past it a failed announcement is logged and left to that same check (docs/adr/0016).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

from aiohttp import web
from parley.api.http import NATS, STORE

from parley import wire
from parley.bus import BusClient
from parley.ids import SessionId, UserId, control_subject
from parley.tasks import cancel_and_wait

log = logging.getLogger("parley.api")

FIRST_PAUSE_S = 0.5
LONGEST_PAUSE_S = 30.0
GIVE_UP_S = 600.0  # a node that missed it for longer checks its sessions when NATS comes back anyway
RETRIES_MAX = 10_000


def retry_pauses(first: float = FIRST_PAUSE_S, longest: float = LONGEST_PAUSE_S,
                 give_up: float = GIVE_UP_S) -> Iterator[float]:
    """The pauses before each retry: doubling up to ``longest``, ending once they add up to ``give_up``."""
    pause, waited = first, 0.0
    while waited + pause <= give_up:
        yield pause
        waited += pause
        pause = min(pause * 2, longest)


class Revocations:
    """Announces revocations and keeps retrying the ones NATS did not take (one task per announcement)."""

    def __init__(self, nc: BusClient, *, max_retries: int = RETRIES_MAX) -> None:
        self._nc, self._max_retries = nc, max_retries
        self._retries: set[asyncio.Task[None]] = set()

    async def announce(self, user: UserId, sessions: list[SessionId]) -> bool:
        """Whether NATS took it now; if not, it is retried in the background."""
        if not sessions or await self._publish(user, sessions):
            return True
        if len(self._retries) >= self._max_retries:
            log.error("not retrying the revocation of %d session(s) of %s: %d retries pending; nodes check their "
                      "sessions when NATS comes back", len(sessions), user, len(self._retries))
            return False
        task = asyncio.get_running_loop().create_task(self._retry(user, sessions))
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)
        return False

    @property
    def pending(self) -> int:
        return len(self._retries)

    async def _publish(self, user: UserId, sessions: list[SessionId]) -> bool:
        try:
            # while nats-py reconnects, publish only buffers and flush returns without a round trip
            if not self._nc.is_connected:
                raise ConnectionError("not connected to NATS")
            for session in sessions:
                await self._nc.publish(control_subject(user), wire.encode(wire.Revoke(session)))
            await self._nc.flush(timeout=2)
            if not self._nc.is_connected:
                raise ConnectionError("NATS connection lost during the flush")
            return True
        except Exception as err:
            log.warning("could not announce the revocation of %d session(s) of %s (will retry): %s",
                        len(sessions), user, err)
            return False

    async def _retry(self, user: UserId, sessions: list[SessionId]) -> None:
        for pause in retry_pauses():
            await asyncio.sleep(pause)
            if await self._publish(user, sessions):
                log.info("announced the revocation of %d session(s) of %s after a retry", len(sessions), user)
                return
        log.error("gave up announcing the revocation of %d session(s) of %s; nodes check their sessions when "
                  "NATS comes back, and every new hello is refused", len(sessions), user)

    async def close(self) -> None:
        await cancel_and_wait(*self._retries)


REVOCATIONS: web.AppKey[Revocations] = web.AppKey("revocations", Revocations)


async def revocations_ctx(app: web.Application) -> AsyncIterator[None]:
    """The app's ``Revocations``, its pending retries cancelled when the app stops."""
    app[REVOCATIONS] = Revocations(app[NATS])
    yield
    await app[REVOCATIONS].close()


async def revoke(request: web.Request, user: UserId, sessions: list[SessionId]) -> None:
    """End these sessions of ``user``: in the store (each refused from now on), then on the nodes."""
    store = request.app[STORE]
    for session in sessions:
        await store.revoke_session(session)
    await request.app[REVOCATIONS].announce(user, sessions)
