"""``parley up`` on a run dir kept from an earlier run: its bus brought to what this version configures.

Processes never change a live stream or bucket: one made with other limits (an earlier version's presence TTL,
other replicas…) makes them refuse to start with ``ConfigDrift`` until ``parley bus migrate`` (ADR 0011's rule,
``parley.bus.ensure``). That rule is for deployments, where someone decides. A run dir is ``parley up``'s own:
the JetStream store in it was made by an earlier ``parley up`` on this machine, so the launcher applies the
configuration itself — the same ``migrate`` as the command, before any role starts — and says what it changed.
A fresh run dir (no JetStream store yet) is left to the processes, which create what they use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import nats
from parley.tools import busctl
from parley.tools.nodectl import quiet

from parley.bus.connection import connect_options
from parley.settings import Settings


def kept(root: Path) -> bool:
    """Whether ``root`` already holds a JetStream store (a run dir kept from an earlier run)."""
    store = root / "nats"
    return store.is_dir() and any(store.iterdir())


async def changes(settings: Settings) -> list[str]:
    """Apply the configured streams and buckets (``parley bus migrate``, as ``settings``' NATS user: the launcher's
    ``system``); the lines of what changed."""
    nc = await nats.connect(**connect_options(settings), name="parley up", connect_timeout=5, max_reconnect_attempts=2,
                            error_cb=quiet)
    said: list[str] = []
    try:
        await busctl.migrate(nc, settings, said.append)
    finally:
        await nc.close()
    return [line for line in said if "->" in line]


def upgrade(settings: Settings, say: Callable[[str], None] = print) -> list[str]:
    """``changes`` from a synchronous launcher, said in one line when there were any."""
    lines = asyncio.run(changes(settings))
    if lines:
        say("parley up: applied to the run dir's bus: " + "; ".join(lines))
    return lines
