"""Seed a load run: accounts, friendships, DMs and groups, written to a roster file the Locust users read.

    .venv/bin/python -m parley.loadtest.seed --api http://127.0.0.1:8080 --users 100 --out roster.json
    .venv/bin/python -m parley.loadtest.seed --users 100 --out roster.json   # the API from .parley/run.json

Seeded users are named ``lt-<run id>-<n>`` (the roster's ``prefix`` is ``lt-<run id>``; groups ``lt-<run id>
group <n>``): the API has no account deletion, so they stay in the cluster seeded, told apart by that prefix.

Users come in cells (``--cell`` users each). Everything a user talks to is inside its cell: DMs with
its ring neighbours (i+1, i+2), groups whose members are all cell members. A Locust worker takes whole
cells, so every sender's recipients run in the same process and message loss can be counted exactly
there (docs/capacity.md, "Lost messages"). Group sizes follow the traffic model's bands, clipped to
``--group-size`` and the cell. Only the API is used, exactly as a client would; nothing is written to
the store directly.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from parley.loadtest.harness.session import bounded
from parley.loadtest.traffic import MODEL
from parley.tools.client import Api, ApiError
from parley.tools.locate import locate

PASSWORD = "loadtest-password-0001"
CONCURRENCY = 16


@dataclass
class Seeded:
    name: str
    id: str = ""
    token: str = ""
    device_id: str = ""
    dms: dict[str, str] = field(default_factory=dict)  # peer id -> conversation id
    friends: set[str] = field(default_factory=set)


def ring_pairs(cell: list[int]) -> list[tuple[int, int]]:
    """DM partners: each user with the next two in its cell (a ring), no pair twice."""
    n, pairs = len(cell), set()
    for i in range(n):
        for step in (1, 2):
            j = (i + step) % n
            if j != i:
                pairs.add((min(cell[i], cell[j]), max(cell[i], cell[j])))
    return sorted(pairs)


def plan_groups(cell: list[int], largest: int, rng: random.Random) -> list[list[int]]:
    """About one group per 10 users of the cell, sizes drawn from the model's bands; owner first."""
    cap = min(largest, len(cell))
    if cap < 3:
        return []
    groups = []
    for _ in range(max(1, len(cell) // 10)):
        lo, hi, _share = rng.choices(MODEL.group_sizes.bands, [b[2] for b in MODEL.group_sizes.bands])[0]
        size = min(max(rng.randint(lo, hi), 3), cap)
        groups.append(rng.sample(cell, size))
    if largest >= len(cell) >= 3 and all(len(g) < cap for g in groups):
        groups[-1] = list(cell)  # the cell's largest group: the fan-out worst case the run exercises
    return groups


async def make_user(api: Api, u: Seeded) -> None:
    await api.signup(u.name, PASSWORD)
    login = await api.login(u.name, PASSWORD, device_name="loadtest")
    u.id, u.token, u.device_id = login["user"]["id"], login["token"], login["device_id"]


async def befriend(api: Api, a: Seeded, b: Seeded) -> None:
    if b.id in a.friends:
        return
    a.friends.add(b.id)
    b.friends.add(a.id)
    await api.call("POST", "/v1/friends", a.token, {"user_id": b.id})
    await api.call("POST", "/v1/friends", b.token, {"user_id": a.id})


async def open_dm(api: Api, a: Seeded, b: Seeded) -> None:
    out = await api.call("POST", "/v1/conversations", a.token, {"user_id": b.id})
    conv = out["conversation"]["id"]
    a.dms[b.id], b.dms[a.id] = conv, conv


async def seed(api_url: str, users: int, cell: int, largest_group: int, seed_value: int) -> dict[str, Any]:
    rng = random.Random(seed_value)
    prefix = f"lt-{secrets.token_hex(3)}"  # the run's id: its users are lt-<id>-<n> (nothing deletes them)
    people = [Seeded(f"{prefix}-{i}") for i in range(users)]
    cells = [list(range(s, min(s + cell, users))) for s in range(0, users, cell)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        api = Api(api_url, http)
        await bounded([partial(make_user, api, u) for u in people], CONCURRENCY)
        pairs = [p for c in cells for p in ring_pairs(c)]
        group_plan = [g for c in cells for g in plan_groups(c, largest_group, rng)]
        friend_pairs = set(pairs) | {(g[0], m) for g in group_plan for m in g[1:]}
        # one friendship at a time per user would be slow; two users never race on the same pair here
        await bounded([partial(befriend, api, people[a], people[b]) for a, b in sorted(friend_pairs)], CONCURRENCY)
        await bounded([partial(open_dm, api, people[a], people[b]) for a, b in pairs], CONCURRENCY)
        groups = []
        for n, g in enumerate(group_plan):
            owner = people[g[0]]
            out = await api.call("POST", "/v1/groups", owner.token,
                                 {"name": f"{prefix} group {n}", "members": [people[m].id for m in g[1:]]})
            groups.append({"conv": out["conversation"]["id"], "members": [people[m].id for m in g]})
    return {
        "api": api_url, "password": PASSWORD, "prefix": prefix, "cells": cells, "groups": groups,
        "users": [{"name": u.name, "id": u.id, "device_id": u.device_id, "dms": u.dms, "friends": sorted(u.friends)}
                  for u in people],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.seed", description=__doc__.split("\n")[0])
    p.add_argument("--api", default=None, help="the Parley API base URL (default: from --run-dir's run.json)")
    p.add_argument("--run-dir", default=None, help="the run dir of the `parley up` to seed (default: PARLEY_RUN_DIR, "
                                                   "else .parley)")
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--cell", type=int, default=100, help="users per cell (a worker takes whole cells)")
    p.add_argument("--group-size", type=int, default=100, help="largest group (at most 100)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True, help="roster file to write (JSON)")
    a = p.parse_args(argv)
    if not 2 <= a.users <= 100_000 or not 2 <= a.cell or not 0 <= a.group_size <= 100:
        p.error("--users 2..100000, --cell >= 2, --group-size 0..100")
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    where = locate(os.environ, args.run_dir, api=args.api)
    try:
        roster = asyncio.run(seed(where.api, args.users, args.cell, args.group_size, args.seed))
    except aiohttp.ClientConnectionError:
        print(where.not_answering("api", "--api"), file=sys.stderr)
        return 1
    except (ApiError, aiohttp.ClientError) as err:
        print(f"seeding failed: {err}", file=sys.stderr)
        return 1
    Path(args.out).write_text(json.dumps(roster))
    print(f"seeded {len(roster['users'])} users, {len(roster['groups'])} groups in "
          f"{len(roster['cells'])} cells -> {args.out}; the users are {roster['prefix']}-<n> (no account deletion: "
          "they stay)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
