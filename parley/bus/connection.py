"""Connecting a process to NATS and leaving it cleanly."""

from __future__ import annotations

import logging
from typing import Any

from nats.aio.client import Client

from parley.bus.ordered import BusClient
from parley.settings import Settings

log = logging.getLogger("parley.bus")


async def connect(settings: Settings, name: str, **callbacks: Any) -> BusClient:
    nc = BusClient()

    async def error_cb(err: Exception) -> None:
        log.warning("nats: %s", err)

    callbacks.setdefault("error_cb", error_cb)
    await nc.connect(
        settings.nats_url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,  # type: ignore[arg-type]  # nats-py accepts seconds as float
        connect_timeout=5,
        **callbacks,
    )
    return nc


async def close_quietly(nc: Client) -> None:
    """Flush what we published and close; NATS may already be gone when a process stops."""
    try:
        if nc.is_connected:
            await nc.drain()
            return
    except Exception as err:
        log.info("drain failed: %s", err)
    if not nc.is_closed:
        await nc.close()
