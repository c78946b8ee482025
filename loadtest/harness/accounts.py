"""The users a benchmark needs, made through the API exactly as clients make them: sign-ups, logins,
friendships and DM conversations, a bounded number of calls in flight.

The API hashes every password (Argon2) in its worker threads, so sign-up is the slow part of a
benchmark's setup: ``concurrency`` bounds it instead of queueing hundreds of requests at once.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from parley.loadtest.harness.session import BenchError, bounded
from parley.tools.client import Api, ApiError

PASSWORD = "bench-password-0001"
NO_NODE_WAIT_S = 15.0  # discovery may not have seen the nodes' first heartbeat yet


@dataclass(frozen=True)
class Account:
    name: str
    id: str
    token: str


def names(prefix: str, count: int) -> list[str]:
    """``count`` user names no earlier run on the same cluster has taken."""
    tag = f"{prefix}{secrets.token_hex(3)}x"
    return [f"{tag}{i}" for i in range(count)]


async def log_in(api: Api, name: str) -> dict[str, Any]:
    deadline = time.monotonic() + NO_NODE_WAIT_S
    while True:
        try:
            return await api.login(name, PASSWORD, device_name="bench")
        except ApiError as err:
            if err.code != "no_node" or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


async def sign_up(api: Api, users: list[str], concurrency: int,
                  progress: Callable[[int], None] | None = None) -> list[Account]:
    done = 0

    async def one(name: str) -> Account:
        nonlocal done
        await api.signup(name, PASSWORD)
        out = await log_in(api, name)
        done += 1
        if progress:
            progress(done)
        return Account(name, out["user"]["id"], out["token"])

    return await bounded([partial(one, name) for name in users], concurrency)


async def befriend(api: Api, pairs: list[tuple[Account, Account]], concurrency: int) -> None:
    async def one(a: Account, b: Account) -> None:
        await api.call("POST", "/v1/friends", a.token, {"user_id": b.id})
        state = await api.call("POST", "/v1/friends", b.token, {"user_id": a.id})
        if state.get("state") != "friends":
            raise BenchError(f"friendship not established: {state}")

    await bounded([partial(one, a, b) for a, b in pairs], concurrency)


async def open_dm(api: Api, a: Account, b: Account) -> str:
    out = await api.call("POST", "/v1/conversations", a.token, {"user_id": b.id})
    return str(out["conversation"]["id"])
