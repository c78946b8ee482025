"""``parley node drain <node>``: ask a running edge node to drain, and follow it until it has exited.

The request goes over NATS (``ctl.node.<id>``), so it needs nothing but the cluster's NATS URL; the
node answers at once with how many connections it is moving, then the command watches the node's
registry entry: its connection count falls as clients move, and the entry disappears when the node
exits. Exit status 0 when the node drained and left, 1 when no such node answered or it did not leave
in time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import nats
import orjson
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import KeyNotFoundError

from parley.bus.connection import connect_options
from parley.ids import node_control_subject
from parley.registry import NodeRecord, open_bucket
from parley.settings import Settings


async def quiet(err: Exception) -> None:
    """Connection errors are the caller's to report (one line, no traceback): ``nats.connect`` raises."""


async def drain(settings: Settings, node_id: str, *, wait: bool = True, say: Callable[[str], None] = print) -> int:
    nc = await nats.connect(**connect_options(settings), name="parley node drain", connect_timeout=5,
                            max_reconnect_attempts=1, error_cb=quiet)  # 0 would mean: forever
    try:
        try:
            reply = await nc.request(node_control_subject(node_id), orjson.dumps({"op": "drain"}), timeout=5)
        except (NoRespondersError, NatsTimeout):
            say(f"no node {node_id!r} answered on {settings.nats_url} (see `parley status` for the nodes)")
            return 1
        answer = orjson.loads(reply.data)
        if "error" in answer:
            say(f"{node_id}: {answer.get('message', answer['error'])}")
            return 1
        timeout = float(answer.get("timeout_s", settings.drain_timeout_s))
        say(f"{node_id} is draining: moving {answer.get('connections', '?')} connections "
            f"(at most {timeout:.0f} s), then it exits")
        if not wait:
            return 0
        kv = await open_bucket(nc.jetstream(), settings)
        deadline = time.monotonic() + timeout + 15  # its own deadline, then closing and leaving the registry
        last = None
        while time.monotonic() < deadline:
            try:
                entry = await kv.get(node_id)
            except KeyNotFoundError:
                say(f"{node_id} drained and left the cluster")
                return 0
            if entry.value:
                record = NodeRecord.from_json(entry.value)
                if time.time() - record.updated_at > settings.node_ttl_s:
                    say(f"{node_id} drained and stopped beating")
                    return 0
                if record.connections != last:
                    last = record.connections
                    say(f"{node_id}: {last} connections left")
            await asyncio.sleep(0.5)
        say(f"{node_id} has not left after {timeout + 15:.0f} s; see its log")
        return 1
    finally:
        await nc.close()
