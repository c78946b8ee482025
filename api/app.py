"""The HTTP API process (aiohttp): ``make_app`` wires the handler modules into one application and
``run_api`` runs it with its store, bus and presence buckets.

Stateless: every request carries its token; state lives in the store. Each concept is its own module
with an ``add_routes``: accounts, sessions (password change, sign out other devices), friends, presence,
conversations, groups, push, blocks, deletion (of one's account), live rooms, live-room moderation
(``moderation``), the banned-word lists (``words``), attachments, and the browser client (``web``);
``http`` holds what they share (errors become JSON there, in one middleware).
docs/openapi.yaml describes every route. Nothing but the entry point and tests imports this module.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from parley.api import (
    accounts,
    attachments,
    blocks,
    conversations,
    deletion,
    friends,
    groups,
    live,
    moderation,
    presence,
    push,
    revocations,
    sessions,
    words,
)
from parley.api import web as web_client
from parley.api.http import (
    BUDGET,
    HASHING,
    HTTP,
    LIMITS,
    METRICS,
    NATS,
    PRESENCE,
    SETTINGS,
    STORE,
    budgeted,
    errors,
    measured,
    nosniff,
)
from parley.api.limits import AuthLimits, KvCounters, PasswordHashing, RequestBudget

from parley import bus, tls
from parley.attachments.blobs import NatsBlobs
from parley.attachments.catalog import Catalog
from parley.auth import Passwords
from parley.bus import BusClient, buckets, ensure
from parley.bus.live import Rooms, ensure_live
from parley.live.moderation import open_moderation
from parley.metrics import ApiMetrics, FloodMetrics
from parley.presence_bus import open_buckets
from parley.runtime import StoreProbe, run_until_stopped, serve, serve_health
from parley.settings import Settings
from parley.store import Store, open_store
from parley.store.deadline import with_deadline

log = logging.getLogger("parley.api")


def make_app(settings: Settings, store: Store, nc: BusClient) -> web.Application:
    app = web.Application(middlewares=[measured, errors, budgeted], client_max_size=64 * 1024)
    app[SETTINGS], app[STORE], app[NATS] = settings, store, nc
    app[METRICS] = ApiMetrics()
    app[HASHING] = PasswordHashing(Passwords(settings.argon2_time_cost, settings.argon2_memory_kib),
                                   settings.hash_concurrency, settings.hash_wait_s)
    app[BUDGET] = RequestBudget(settings)
    app[BUDGET].refused = lambda limit: app[METRICS].refusals.labels(limit).inc()
    app.cleanup_ctx.append(_discovery_client)
    app.on_response_prepare.append(nosniff)
    # The order routes were always added in: a path's methods stay on one resource.
    for concept in (accounts, sessions, friends, presence, conversations, groups, push, web_client, blocks, deletion,
                    live, words, moderation, attachments):
        concept.add_routes(app.router)
    app.cleanup_ctx.append(revocations.revocations_ctx)  # pending revocation retries end with the app
    return app


async def _discovery_client(app: web.Application) -> AsyncIterator[None]:
    """The HTTP client a login uses to ask discovery for a node; one per app, closed with it."""
    app[HTTP] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5),
                                      connector=aiohttp.TCPConnector(ssl=tls.client_ssl(app[SETTINGS])))
    yield
    await app[HTTP].close()


async def run_api(settings: Settings) -> None:
    store = with_deadline(open_store(settings), settings.store_deadline_s)
    await store.migrate()
    nc = await bus.connect(settings, "api")
    app = make_app(settings, store, nc)
    app[PRESENCE] = await open_buckets(nc.jetstream(), settings)
    app[live.ROOMS] = Rooms(await ensure_live(nc.jetstream(), settings))
    app[live.VIEWERS] = await ensure.open_bucket(nc.jetstream(), buckets.live_viewers(settings))
    app[LIMITS] = AuthLimits(KvCounters(await ensure.open_bucket(nc.jetstream(), buckets.auth_limits(settings))),
                             settings)
    app[LIMITS].refused = lambda limit: app[METRICS].refusals.labels(limit).inc()
    app[words.BANNED] = await ensure.open_bucket(nc.jetstream(), buckets.banned_words(settings))
    app[moderation.MODERATION] = await open_moderation(nc, settings, FloodMetrics(app[METRICS].registry))
    app[attachments.CATALOG] = await Catalog.open(nc.jetstream(), settings)
    app[attachments.BLOBS] = await NatsBlobs.open(nc.jetstream(), settings)
    app[attachments.DECODING] = asyncio.Semaphore(max(1, os.cpu_count() or 1))
    app.cleanup_ctx.append(attachments.sweeping)
    probe = StoreProbe(store, registry=app[METRICS].registry)
    probe.start()
    serve_health(app, ready=lambda: nc.is_connected and probe.ok, registry=app[METRICS].registry)
    runner = await serve(app, settings.api_host, settings.api_port, ssl_context=tls.server_context(settings))
    log.info("api on %s://%s:%s", settings.http_scheme(), settings.api_host, settings.api_port)
    try:
        await run_until_stopped()
    finally:
        await probe.stop()
        await runner.cleanup()
        await nc.close()
        await store.close()
        app[HASHING].close()
