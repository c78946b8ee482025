"""The pusher's CPU per message and per push (part of ``make bench-scale``; appends to scale.jsonl).

    .venv/bin/python -m parley.loadtest.push_cost                 # 10 offline recipients, 600 DMs, 100 group msgs
    .venv/bin/python -m parley.loadtest.push_cost --dms 200 --group-messages 40 --reps 1 --no-save

The pusher reads every stored message, asks the store who is offline with a push token, claims each push
in the ``pushed`` KV bucket and sends it through firebase-admin. Two series separate its cost per message
from its cost per push: DMs to an offline recipient (one push each) and messages to a group of
``recipients`` offline members (``recipients`` pushes each). With c_dm and c_group the pusher CPU per
message of each, a push costs (c_group − c_dm) / (recipients − 1) and a message without pushes
c_dm − that. A scratch cluster (one node, SQLite store, so the store's reads run inside the pusher
process) and the FCM stand-in (``tools/fcm_stub.py``, firebase-admin's real HTTP path) in a thread of
this process; the recipients never connect. CPU per process from /proc over the time from the first send
to the last push delivered, less the pusher's idle CPU (its lag metric and health endpoint) measured
for 3 s before.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from parley.loadtest.harness import accounts, record
from parley.loadtest.harness.device import LeanDevice
from parley.loadtest.harness.meter import CpuMeter, cpu_seconds_between, cpu_share
from parley.loadtest.harness.session import BenchError, run_async, say, scratch_cluster, stop_on_signals, within
from parley.tools.client import Api
from parley.tools.fcm_stub import FcmStub, service_account_file

CLUSTER = dict(rate_per_s=1_000_000.0, rate_burst=1_000_000, push_grace_s=0.2)
PUSH_TIMEOUT_S = 120.0


async def people(api: Api, recipients: int) -> tuple[accounts.Account, list[str], list[str], str]:
    """A sender, DMs and one group with ``recipients`` offline users who each have a push token."""
    users = await accounts.sign_up(api, accounts.names("push", recipients + 1), 8)
    sender, others = users[0], users[1:]
    await accounts.befriend(api, [(sender, o) for o in others], 8)
    dms = [await accounts.open_dm(api, sender, o) for o in others]
    tokens = []
    for o in others:
        login = await accounts.log_in(api, o.name)
        token = f"bench-token-{login['device_id']}-" + "x" * 100
        await api.call("PUT", f"/v1/devices/{login['device_id']}/push-token", login["token"],
                       {"platform": "android", "token": token})
        tokens.append(token)
    group = await api.call("POST", "/v1/groups", sender.token,
                           {"name": "push bench", "members": [o.id for o in others]})
    return sender, dms, tokens, str(group["conversation"]["id"])


async def idle_pusher_cpu_per_s(meter: CpuMeter, seconds: float = 3.0) -> float:
    """The pusher's own background work (lag metric, health), subtracted from each series."""
    a = meter.snapshot()
    await asyncio.sleep(seconds)
    b = meter.snapshot()
    return cpu_seconds_between(a, b)["pusher"] / (b.t - a.t)


async def series(dev: LeanDevice, stub: FcmStub, meter: CpuMeter, convs: list[str], messages: int,
                 pushes_each: int, rate: float, idle: float = 0.0) -> dict[str, Any]:
    before_pushes = len(stub.delivered())
    want = before_pushes + messages * pushes_each
    a = meter.snapshot()
    t0 = time.monotonic()
    for i in range(messages):
        await dev.send_message(f"p{i}-{t0:.0f}", convs[i % len(convs)], f"{time.perf_counter_ns()} push bench")
        await asyncio.sleep(max(0.0, t0 + (i + 1) / rate - time.monotonic()))
    while len(stub.delivered()) < want:
        if time.monotonic() - t0 > PUSH_TIMEOUT_S:
            raise BenchError(f"only {len(stub.delivered()) - before_pushes} of {want - before_pushes} pushes came")
        await asyncio.sleep(0.05)
    b = meter.snapshot()
    used = cpu_seconds_between(a, b)
    busy = max(0.0, used["pusher"] - idle * (b.t - a.t))
    return {"messages": messages, "pushes": messages * pushes_each, "seconds": round(b.t - a.t, 2),
            "pusher_idle_cpu_s": round(idle * (b.t - a.t), 4),
            "pusher_cpu_ms_per_message": round(busy * 1000 / messages, 4),
            "nats_cpu_ms_per_message": round(used["nats-server"] * 1000 / messages, 4), "cpu": cpu_share(a, b)}


async def measure(cluster: Any, stub: FcmStub, args: argparse.Namespace) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        api = Api(cluster.api_url, http)
        sender, dms, _tokens, group = await people(api, args.recipients)
        dev = await LeanDevice.connect(http, cluster.node_url(0), sender.id, sender.token)
        meter = CpuMeter(cluster.pids())
        try:
            await series(dev, stub, meter, dms, 20, 1, args.rate)  # warm-up: firebase's token, caches
            idle = await idle_pusher_cpu_per_s(meter)
            dm = await series(dev, stub, meter, dms, args.dms, 1, args.rate, idle)
            grp = await series(dev, stub, meter, [group], args.group_messages, args.recipients, args.rate / 4, idle)
        finally:
            await dev.ws.close()
    per_push = (grp["pusher_cpu_ms_per_message"] - dm["pusher_cpu_ms_per_message"]) / (args.recipients - 1)
    return {"dm": dm, "group": grp, "pusher_idle_cpu_per_s": round(idle, 4),
            "pusher_cpu_ms_per_push": round(per_push, 4),
            "pusher_cpu_ms_per_message": round(dm["pusher_cpu_ms_per_message"] - per_push, 4)}


def one_rep(args: argparse.Namespace, out: dict[str, Any]) -> dict[str, Any]:
    stub = FcmStub()
    stub.start_in_thread()
    keydir = Path(tempfile.mkdtemp(prefix="parley-push-key-"))
    try:
        key = service_account_file(keydir, stub.token_uri)
        with scratch_cluster(out, "parley-push-cost-", keep=False, nodes=1, fcm_credentials=str(key),
                             fcm_endpoint=stub.url, **CLUSTER) as cluster:
            cluster.start_pusher()
            return run_async(measure(cluster, stub, args))
    finally:
        stub.stop_in_thread()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m parley.loadtest.push_cost", description=__doc__.split("\n")[0])
    p.add_argument("--recipients", type=within(2, 99, int), default=10, help="offline members of the group")
    p.add_argument("--dms", type=within(10, 100_000, int), default=600)
    p.add_argument("--group-messages", type=within(10, 100_000, int), default=100)
    p.add_argument("--rate", type=within(1, 5000), default=200.0, help="DM sends/s (group: a quarter)")
    p.add_argument("--reps", type=within(1, 9, int), default=3)
    record.add_options(p, "scale.jsonl")
    args = p.parse_args(argv)
    rec = record.recorder(p, args)
    stop_on_signals()
    out = rec.new_record(args)
    out["kind"] = "push"
    out["note"] = "the machine is a 2-vCPU VM shared with other developers' builds and tests: figures are noisy"
    reps = []
    for rep in range(args.reps):
        reps.append(one_rep(args, out))
        say(f"rep {rep + 1}: {reps[-1]['pusher_cpu_ms_per_message']} ms per message + "
            f"{reps[-1]['pusher_cpu_ms_per_push']} ms per push (DM series {reps[-1]['dm']['pusher_cpu_ms_per_message']}"
            f" ms/msg, group {reps[-1]['group']['pusher_cpu_ms_per_message']} ms/msg)")
    out["runs"] = reps
    out["summary"] = {f: round(statistics.median(r[f] for r in reps), 4)
                      for f in ("pusher_cpu_ms_per_message", "pusher_cpu_ms_per_push")}
    say(rec.append(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
