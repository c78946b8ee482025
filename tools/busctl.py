"""``parley bus``: the explicit operations on the streams and buckets a deployment keeps in JetStream.

``migrate``: applies the configured replicas and limits (``PARLEY_STREAM_REPLICAS``, ``PARLEY_KV_REPLICAS``,
the stream's age and dedup window…) to every stream and bucket, creating what is missing, and prints
what changed. Processes never do this at start: they refuse a mismatch (``parley.bus.ensure``).
``status``: every stream with its replicas, leader, each replica's state and lag, messages, and the
durable consumers' pending counts. ``stepdown <stream>``: the stream's leader hands over to another
replica (before planned maintenance of the server that leads it), and the command waits until another
server leads it; ``stepdown --server <name>`` does it for every stream that server leads.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable

import nats
import orjson
from nats.aio.client import Client
from nats.js.api import StreamConfig, StreamInfo
from nats.js.errors import APIError
from parley.tools.nodectl import quiet

from parley.bus import buckets, ensure, live, stream_config
from parley.bus.connection import connect_options
from parley.live import audit
from parley.settings import Settings


def streams_of(settings: Settings) -> list[StreamConfig]:
    """The message streams this deployment configures: one per shard, and the live rooms' (``LIVE``)."""
    return [stream_config(settings, shard) for shard in range(settings.shards)] + [live.stream_config(settings)]


async def migrate(nc: Client, settings: Settings, say: Callable[[str], None] = print) -> int:
    js = nc.jetstream()
    changed = 0
    for config in [*streams_of(settings), audit.stream_config(settings)]:  # + live rooms' audit log (ADR 0020)
        changed += _report(await ensure.ensure_stream(js, config, migrate=True), f"stream {config.name}", say)
    for bucket in [*buckets.all_buckets(settings), live.rooms_bucket(settings)]:
        changed += _report(await ensure.ensure_bucket(js, bucket, migrate=True), f"bucket {bucket.bucket}", say)
    say(f"{changed} change(s) applied" if changed else "nothing to change: every stream and bucket is as configured")
    return 0


def _report(drift: list[ensure.Drift], what: str, say: Callable[[str], None]) -> int:
    if not drift:
        say(f"{what}: as configured")
    for d in drift:
        say(f"{what}: {d.field} {d.have!r} -> {d.want!r}")
    return len(drift)


def describe(info: StreamInfo) -> list[str]:
    """Lines for one stream: replicas, leader, each replica's state and lag, messages."""
    cluster = info.cluster
    replicas = info.config.num_replicas or 1
    head = f"{info.config.name}: R{replicas}, {info.state.messages} messages (seq {info.state.first_seq}.." \
           f"{info.state.last_seq})"
    if cluster is None:
        return [head + ", single server"]
    where = f", on cluster {cluster.name}" if cluster.name else ""
    lines = [head + f"{where}, leader {cluster.leader or '(none: electing)'}"]
    for peer in cluster.replicas or []:
        state = "current" if peer.current else "catching up"
        state = "offline" if peer.offline else state
        heard = (peer.active or 0) / 1e9  # nanoseconds
        lines.append(f"  replica {peer.name}: {state}, lag {peer.lag or 0}, last heard {heard:.1f}s ago")
    return lines


async def status(nc: Client, say: Callable[[str], None] = print) -> int:
    js = nc.jetstream()
    for info in sorted(await js.streams_info(), key=lambda i: i.config.name or ""):
        for line in describe(info):
            say(line)
        for consumer in await js.consumers_info(info.config.name or ""):
            if consumer.config.durable_name:
                say(f"  consumer {consumer.name}: {consumer.num_pending or 0} pending, "
                    f"{consumer.num_ack_pending or 0} unacked")
    return 0


async def stream_leader(nc: Client, stream: str) -> str | None:
    info = await nc.jetstream().stream_info(stream)
    return info.cluster.leader if info.cluster else None


async def step_down(nc: Client, stream: str) -> dict[str, object]:
    """Ask the stream's leader to step down; the JetStream API's answer."""
    msg = await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}", b"", timeout=10)
    return orjson.loads(msg.data)  # type: ignore[no-any-return]


async def move_leader(nc: Client, stream: str, away_from: str | None, *, timeout: float = 30.0) -> str:
    """Step ``stream``'s leader down and wait until a server other than ``away_from`` leads it; the new leader.
    The election may pick the same server again (it is as current as any): then it steps down again."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        answer = await step_down(nc, stream)
        if "error" in answer:
            raise RuntimeError(f"{stream}: step-down refused: {answer['error']}")
        again = loop.time() + 5.0  # the same leader re-elected for this long: ask again
        while True:
            try:
                leader = await stream_leader(nc, stream)
            except (APIError, nats.errors.Error):  # electing
                leader = None
            if leader not in (None, away_from):
                return leader
            if loop.time() > deadline:
                raise TimeoutError(f"{stream}: no new leader within {timeout:.0f}s")
            if leader == away_from and loop.time() > again:
                break
            await asyncio.sleep(0.1)


async def hand_over(nc: Client, server: str, timeout: float = 30.0) -> list[str]:
    """Before stopping ``server``: every stream it leads steps down, and we wait until another server leads
    each; the streams handed over."""
    js = nc.jetstream()
    led = [i.config.name for i in await js.streams_info() if i.cluster and i.cluster.leader == server]
    await asyncio.gather(*(move_leader(nc, stream, server, timeout=timeout) for stream in led if stream))
    return [s for s in led if s]


async def evacuate(nc: Client, server: str, say: Callable[[str], None] = print) -> int:
    """``parley bus stepdown --server <name>``: every stream it leads gets another leader."""
    handed = await hand_over(nc, server)
    say(f"{server} leads no stream now" + (f" (handed over: {', '.join(handed)})" if handed else "") +
        "; stop it in lame-duck mode: nats-server --signal ldm=<pid>")
    return 0


async def stepdown(nc: Client, stream: str, say: Callable[[str], None] = print) -> int:
    before = await stream_leader(nc, stream)
    try:
        after = await move_leader(nc, stream, before)
    except (RuntimeError, TimeoutError) as err:
        say(str(err))
        return 1
    say(f"{stream}: leader {before} stepped down; {after} leads it now")
    return 0


async def main(settings: Settings, args: argparse.Namespace) -> int:
    nc = await nats.connect(**connect_options(settings), name="parley bus", connect_timeout=5,
                            max_reconnect_attempts=2, error_cb=quiet)
    try:
        if args.action == "migrate":
            return await migrate(nc, settings)
        if args.action == "stepdown" and args.server:
            return await evacuate(nc, args.server)
        if args.action == "stepdown" and args.stream:
            return await stepdown(nc, args.stream)
        if args.action == "stepdown":
            print("parley bus stepdown: name a stream, or --server <name> for every stream it leads")
            return 2
        return await status(nc)
    except APIError as err:
        print(f"parley bus {args.action}: {err.description or err}")
        return 1
    finally:
        await nc.close()
