"""The sampler's requests besides ``/metrics``: the JetStream API over discovery's own NATS connection and
Prometheus' alerts API over HTTP. Thin: each returns the raw JSON (or why there is none) for the pure
models in discovery/jetstream.py and discovery/alerts.py, and never raises.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from nats.aio.client import Client


@dataclass(frozen=True, slots=True)
class BusAnswer:
    streams: list[dict[str, Any]] | None = None  # None: the API did not answer
    account: dict[str, Any] | None = None
    server: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AlertsAnswer:
    body: dict[str, Any] | None = None
    error: str | None = None


async def _js(nc: Client, subject: str, body: dict[str, Any] | None, timeout: float) -> dict[str, Any]:
    msg = await nc.request(subject, orjson.dumps(body) if body is not None else b"", timeout=timeout)
    answer = orjson.loads(msg.data)
    if not isinstance(answer, dict) or "error" in answer:
        raise RuntimeError(str(answer.get("error") if isinstance(answer, dict) else answer))
    return answer


async def jetstream(nc: Client, timeout: float) -> BusAnswer:
    """Every stream's info (STREAM.LIST pages through them) and the account's usage."""
    server = dict(getattr(nc, "_server_info", {}) or {})  # the INFO the connected server sent
    if not nc.is_connected:
        return BusAnswer(server=server, error="discovery is not connected to NATS")
    try:
        async with asyncio.timeout(timeout):
            streams: list[dict[str, Any]] = []
            while True:
                page = await _js(nc, "$JS.API.STREAM.LIST", {"offset": len(streams)}, timeout)
                streams += page.get("streams") or []
                if not page.get("streams") or len(streams) >= int(page.get("total") or 0):
                    break
            account = await _js(nc, "$JS.API.INFO", None, timeout)
    except Exception as err:  # timeouts, no responders, a JetStream error: the panel says which
        return BusAnswer(server=server, error=str(err) or type(err).__name__)
    return BusAnswer(streams, account, server)


async def prometheus_alerts(session: aiohttp.ClientSession, url: str, timeout: float) -> AlertsAnswer:
    try:
        async with asyncio.timeout(timeout):
            async with session.get(url.rstrip("/") + "/api/v1/alerts") as resp:
                if resp.status != 200:
                    return AlertsAnswer(error=f"HTTP {resp.status}")
                body = await resp.json(content_type=None)
    except (OSError, TimeoutError, aiohttp.ClientError, ValueError) as err:
        return AlertsAnswer(error=str(err) or type(err).__name__)
    return AlertsAnswer(body if isinstance(body, dict) else None, None if isinstance(body, dict) else "not JSON")
