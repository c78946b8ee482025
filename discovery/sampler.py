"""Discovery's traffic sampler: scrapes every node's ``/metrics`` (beside its ``/ws``), the archiver's and
the pusher's every ``interval_s`` into a ``traffic.History``, for ``GET /v1/cluster`` and the live page.

Lazy: it scrapes only while someone asked for ``/v1/cluster`` in the last ``idle_after_s``, so a discovery
nobody watches costs the nodes nothing. Each scrape has its own timeout and all run at once, so a slow or
dead node leaves a gap in its own series and delays no other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

import aiohttp
from parley.discovery.traffic import History, Reading, parse
from parley.tools.status import metrics_url

from parley.registry import NodeRecord
from parley.settings import Settings

log = logging.getLogger("parley.discovery")
ARCHIVER, PUSHER = "archiver", "pusher"


class TrafficSampler:
    def __init__(self, settings: Settings, nodes: Callable[[], Iterable[NodeRecord]], *, interval_s: float = 2.0,
                 window_s: float = 600.0, idle_after_s: float = 60.0, timeout_s: float = 1.5) -> None:
        self.settings, self.nodes = settings, nodes
        self.interval_s, self.window_s = interval_s, window_s
        self.idle_after_s, self.timeout_s = idle_after_s, timeout_s
        self.history = History(keep=int(window_s / interval_s) + 1)
        self.wanted_at = -float("inf")
        self._wake = asyncio.Event()

    def want(self) -> None:
        """Someone is watching: sample (at once, if the sampler was idle)."""
        self.wanted_at = time.monotonic()
        self._wake.set()

    def targets(self, now: float) -> dict[str, tuple[str, float | None]]:
        """target → (its /metrics URL, its start time when known); nodes not heard of for a window are left out."""
        s = self.settings
        out: dict[str, tuple[str, float | None]] = {
            n.id: (metrics_url(n.url), n.started_at) for n in self.nodes() if now - n.updated_at < self.window_s}
        out[ARCHIVER] = (f"http://{s.archiver_host}:{s.archiver_port}/metrics", None)
        out[PUSHER] = (f"http://{s.pusher_host}:{s.pusher_port}/metrics", None)
        return out

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                if time.monotonic() - self.wanted_at > self.idle_after_s:
                    self._wake.clear()
                    await self._wake.wait()
                started = time.monotonic()
                try:
                    await self.sample(session)
                except Exception as err:  # a bug here must not end sampling for good
                    log.warning("traffic sample: %r", err)
                await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    async def sample(self, session: aiohttp.ClientSession) -> None:
        now = time.time()
        targets = self.targets(now)
        readings = await asyncio.gather(*(self.scrape(session, url, epoch) for url, epoch in targets.values()))
        self.history.forget_all_but(targets)
        for target, reading in zip(targets, readings, strict=True):
            self.history.record(target, reading)

    async def scrape(self, session: aiohttp.ClientSession, url: str, epoch: float | None) -> Reading | None:
        try:
            async with asyncio.timeout(self.timeout_s):
                async with session.get(url) as resp:
                    if resp.status != 200:
                        return None
                    text = await resp.text()
            return parse(text, time.time(), epoch)
        except (OSError, TimeoutError, aiohttp.ClientError, ValueError):
            return None
