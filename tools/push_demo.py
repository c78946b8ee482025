"""The push demo's second terminal: alice sends bob a DM while bob has no device online, so bob's phone
gets a push.

    .venv/bin/python -m parley.tools.fcm_stub --port 8079 --key-dir .parley          # terminal 1: the stand-in
    PARLEY_FCM_CREDENTIALS=.parley/service-account.json PARLEY_FCM_ENDPOINT=http://127.0.0.1:8079 make run
    .venv/bin/python -m parley.tools.push_demo                                         # terminal 3

It finds the API in ``<run dir>/run.json`` (``--run-dir``, default ``PARLEY_RUN_DIR`` or ``.parley``; ``--api``
overrides), signs up two fresh users (``alice-<id>``, ``bob-<id>``), makes them friends, opens their DM,
registers an FCM token for bob's device, and sends "hi bob" from alice over the WebSocket with the reference
client (``parley.tools.client``); after ``PARLEY_PUSH_GRACE_S`` the stand-in prints the push.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from collections.abc import Callable

import aiohttp
from parley.tools import runfile
from parley.tools.client import Api, ApiError, Device
from parley.tools.locate import resolve

PASSWORD = "correct horse battery"


async def demo(api_url: str, say: Callable[[str], None] = print) -> str:
    """Run the steps against ``api_url``; the FCM token bob's device registered."""
    run = secrets.token_hex(2)
    alice, bob = f"alice-{run}", f"bob-{run}"
    async with aiohttp.ClientSession() as http:
        api = Api(api_url, http)
        for name in (alice, bob):
            await api.signup(name, PASSWORD)
        a, b = await api.login(alice, PASSWORD), await api.login(bob, PASSWORD)
        await api.call("POST", "/v1/friends", a["token"], {"user_id": b["user"]["id"]})
        await api.call("POST", "/v1/friends", b["token"], {"user_id": a["user"]["id"]})
        conv = (await api.call("POST", "/v1/conversations", a["token"], {"user_id": b["user"]["id"]}))
        token = f"demo-token-{secrets.token_hex(24)}"
        await api.call("PUT", f"/v1/devices/{b['device_id']}/push-token", b["token"],
                       {"platform": "android", "token": token})
        say(f"{alice} and {bob} are friends; bob's device {b['device_id']} registered FCM token {token[:24]}…")
        device = Device(http, a["node"]["url"], a["token"])
        await device.connect()
        try:
            await device.send(conv["conversation"]["id"], "hi bob")
        finally:
            await device.close()
    say(f"{alice} sent \"hi bob\"; bob has no device online, so within PARLEY_PUSH_GRACE_S (3 s) the stand-in "
        f"prints: push 200 → {token[:24]}…  {alice}: hi bob")
    return token


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m parley.tools.push_demo", description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", default=None, help="the run dir of the `parley up` to use (default: PARLEY_RUN_DIR, "
                                                   "else .parley)")
    p.add_argument("--api", default=None, help="the API's URL (default: from the run dir's run.json)")
    args = p.parse_args(argv)
    run_dir = args.run_dir or os.environ.get("PARLEY_RUN_DIR") or ".parley"
    info = runfile.read(run_dir)
    where = resolve(os.environ, info, run_dir, api=args.api)
    if info is not None and not args.api and not info.of_role("pusher"):
        print(f"the cluster in {run_dir} runs no pusher: start it with PARLEY_FCM_CREDENTIALS and "
              "PARLEY_FCM_ENDPOINT set (the stand-in prints both)", file=sys.stderr)
        return 1
    try:
        asyncio.run(demo(where.api))
    except aiohttp.ClientConnectionError:
        print(where.not_answering("api", "--api"), file=sys.stderr)
        return 1
    except ApiError as err:
        print(f"push_demo: the API said {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
