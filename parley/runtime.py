"""What every process role shares at run time: logging, signals, health endpoints, the event loop."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, Histogram

from parley.ids import UserId
from parley.metrics import LATENCY, add_metrics_route
from parley.settings import Settings
from parley.store import Accounts
from parley.tasks import cancel_and_wait


class JsonLines(logging.Formatter):
    """One JSON object a line: time, level, role, instance (a node's id), logger, message, and the
    connection id (``conn``) on records about one WebSocket connection (``extra={"conn": id}``)."""

    def __init__(self, role: str, instance: str | None = None) -> None:
        super().__init__()
        self.role, self.instance = role, instance or role

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": record.created, "level": record.levelname, "role": self.role, "instance": self.instance,
               "logger": record.name, "msg": record.getMessage()}
        conn = getattr(record, "conn", None)
        if conn is not None:
            out["conn"] = conn
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()


def setup_logging(settings: Settings, role: str, instance: str | None = None) -> None:
    """Logs to stderr: JSON lines with ``PARLEY_LOG_JSON``, else text; ``instance`` names the process
    among its role's (a node's id)."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_json:
        handler.setFormatter(JsonLines(role, instance))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {instance or role} %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # firebase-admin's client logs every request at INFO


async def run_until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


class StoreProbe:
    """Whether the store answers, checked every ``every_s`` by a cheap read, for ``/readyz``. Given the
    process's registry it is also on ``/metrics`` (Prometheus cannot alert on ``/readyz``):
    ``parley_store_up`` (1 while the last probe answered) and ``parley_store_probe_seconds``."""

    def __init__(self, store: Accounts, every_s: float = 2.0, registry: CollectorRegistry | None = None) -> None:
        self.ok = True
        self._store, self._every = store, every_s
        self._task: asyncio.Task[None] | None = None
        self._up: Gauge | None = None
        self._seconds: Histogram | None = None
        if registry is not None:
            self._up = Gauge("parley_store_up", "1 while the store answered the last probe", registry=registry)
            self._seconds = Histogram("parley_store_probe_seconds", "One answered store probe (a point read)",
                                      buckets=LATENCY, registry=registry)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            began = time.perf_counter()
            try:
                await asyncio.wait_for(self._store.get_user(PROBE_USER), timeout=self._every * 2)
                self.ok = True
                if self._seconds is not None:
                    self._seconds.observe(time.perf_counter() - began)
            except Exception:  # any failure means: do not send me traffic
                self.ok = False
            if self._up is not None:
                self._up.set(1 if self.ok else 0)
            await asyncio.sleep(self._every)


PROBE_USER = UserId("aaaaaaaaaaaaaaaa")  # a well-formed id no user has: the read is a miss


def serve_health(app: web.Application, ready: Callable[[], bool], registry: CollectorRegistry | None = None,
                 before: Callable[[], None] | None = None) -> None:
    """``/healthz`` (alive), ``/readyz`` (ready to serve) and, given a registry, ``/metrics`` (``before``
    refreshes gauges computed at scrape time)."""
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ok = ready()
        return web.json_response({"ready": ok}, status=200 if ok else 503)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if registry is not None:
        add_metrics_route(app, registry, before)


async def serve(app: web.Application, host: str, port: int, *, shutdown_timeout: float = 2.0,
                ssl_context: ssl.SSLContext | None = None) -> web.AppRunner:
    """Start serving ``app`` on host:port (over TLS given a context, ``parley.tls.server_context``); the
    caller cleans the runner up on the way out."""
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True, ssl_context=ssl_context).start()
    return runner


def run(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop

        uvloop.run(main)
    except ImportError:  # pragma: no cover - uvloop is a dependency, but keep the role runnable
        asyncio.run(main)
