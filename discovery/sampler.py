"""Discovery's sampler, the one place the cluster page's data is gathered: every ``interval_s`` it scrapes
every node's ``/metrics`` (beside its ``/ws``) and the API's and workers' (``discovery/health.py`` says
which) into a ``traffic.History``, asks the JetStream API for the streams (``discovery/probes.py``) and,
when ``PARLEY_PROMETHEUS_URL`` is set, Prometheus for its alerts. ``GET /v1/cluster`` reads the cache; no
browser request fans out.

Lazy: it samples only while someone asked for ``/v1/cluster`` in the last ``idle_after_s``, so a discovery
nobody watches costs the cluster nothing. Each request has its own timeout and all run at once, so a slow
or dead process leaves a gap in its own series and delays no other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

import aiohttp
from parley.discovery.health import Watched, watched
from parley.discovery.probes import AlertsAnswer, BusAnswer, prometheus_alerts
from parley.discovery.traffic import History, Reading, parse
from parley.tools import runfile
from parley.tools.status import metrics_url

from parley import tls
from parley.errors import ParleyError
from parley.registry import NodeRecord
from parley.settings import Settings

log = logging.getLogger("parley.discovery")


class TrafficSampler:
    def __init__(self, settings: Settings, nodes: Callable[[], Iterable[NodeRecord]], *, interval_s: float = 2.0,
                 window_s: float = 600.0, idle_after_s: float = 60.0, timeout_s: float = 1.5,
                 keep: Callable[[], Iterable[str]] = tuple,
                 bus: Callable[[float], Awaitable[BusAnswer]] | None = None) -> None:
        """``nodes``: the registry's entries (the live ones are scraped); ``keep``: nodes no longer scraped
        whose series stay (gone nodes the page still shows); ``bus``: asks the JetStream API."""
        self.settings, self.nodes, self.keep, self.bus_probe = settings, nodes, keep, bus
        self.interval_s, self.window_s = interval_s, window_s
        self.idle_after_s, self.timeout_s = idle_after_s, timeout_s
        self.history = History(keep=int(window_s / interval_s) + 1)
        self.wanted_at = -float("inf")
        self._wake = asyncio.Event()
        self.processes: list[Watched] = watched(settings, None)
        self.bus = BusAnswer()
        self.alerts = AlertsAnswer()
        self._run_error = ""

    def want(self) -> None:
        """Someone is watching: sample (at once, if the sampler was idle)."""
        self.wanted_at = time.monotonic()
        self._wake.set()

    def targets(self, now: float) -> dict[str, tuple[str, float | None]]:
        """target → (its /metrics URL, its start time when known); nodes not heard of for a window are left out.
        The processes besides the nodes come from ``run.json`` when ``parley up`` wrote one, else the settings
        (kept in ``processes`` for the health panel)."""
        self.processes = watched(self.settings, self.run_info())
        out: dict[str, tuple[str, float | None]] = {
            n.id: (metrics_url(n.url), n.started_at) for n in self.nodes() if now - n.updated_at < self.window_s}
        for w in self.processes:
            out.setdefault(w.name, (w.metrics_url, None))
        return out

    def run_info(self) -> runfile.RunInfo | None:
        try:
            return runfile.read(self.settings.run_dir)
        except (ParleyError, OSError) as err:  # edited by hand, unreadable: the settings' ports then
            if str(err) != self._run_error:  # once, not every sample
                log.warning("%s; watching the configured ports", err)
            self._run_error = str(err)
            return None

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        connector = aiohttp.TCPConnector(ssl=tls.client_ssl(self.settings))
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
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
        readings, (self.bus, self.alerts) = await asyncio.gather(
            asyncio.gather(*(self.scrape(session, url, epoch) for url, epoch in targets.values())),
            asyncio.gather(self.ask_bus(), self.ask_prometheus(session)))
        self.history.forget_all_but({*targets, *self.keep()})
        for target, reading in zip(targets, readings, strict=True):
            self.history.record(target, reading)

    async def ask_bus(self) -> BusAnswer:
        if self.bus_probe is None:
            return BusAnswer(error="discovery has no NATS connection")
        return await self.bus_probe(self.timeout_s)

    async def ask_prometheus(self, session: aiohttp.ClientSession) -> AlertsAnswer:
        url = self.settings.prometheus_url
        return await prometheus_alerts(session, url, self.timeout_s) if url else AlertsAnswer()

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
