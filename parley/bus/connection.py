"""Connecting a process to NATS and leaving it cleanly.

A process is given every server of the cluster (``PARLEY_NATS_URL``, comma-separated), so it starts
while some of them are down and fails over between them; credentials (user/password, token or a
``.creds`` file) and TLS (a CA, optionally a client certificate) come from the settings too.
``connect_options`` is the pure part: settings in, nats-py keyword arguments out. A process connecting as a
user takes replies on that user's own inbox prefix (``_INBOX.<user>``, ``permissions.inbox_prefix``): the bus
lets each role subscribe only to its own (ADR 0013).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from nats.aio.client import Client

from parley.bus.ordered import BusClient
from parley.bus.permissions import inbox_prefix
from parley.settings import Settings

log = logging.getLogger("parley.bus")


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """A client TLS context when a CA or a client certificate is configured (servers are checked against
    the CA, or the system's CAs without one). None: nats-py's own for ``tls://`` URLs, plain otherwise."""
    if not (settings.nats_tls_ca or settings.nats_tls_cert):
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=settings.nats_tls_ca or None)
    if settings.nats_tls_cert:
        context.load_cert_chain(settings.nats_tls_cert, settings.nats_tls_key or None)
    return context


def connect_options(settings: Settings) -> dict[str, Any]:
    """nats-py's ``connect`` arguments for these settings: the server list, credentials (and the user's
    inbox prefix) and TLS."""
    options: dict[str, Any] = {"servers": settings.nats_servers(), "dont_randomize": False}
    if settings.nats_user:
        options.update(user=settings.nats_user, password=settings.nats_password.reveal(),
                       inbox_prefix=inbox_prefix(settings.nats_user))
    if settings.nats_token:
        options["token"] = settings.nats_token.reveal()
    if settings.nats_creds:
        options["user_credentials"] = settings.nats_creds
    context = tls_context(settings)
    if context is not None:
        options["tls"] = context
    return options


async def connect(settings: Settings, name: str, **callbacks: Any) -> BusClient:
    nc = BusClient()

    async def error_cb(err: Exception) -> None:
        log.warning("nats: %s", err)

    callbacks.setdefault("error_cb", error_cb)
    await nc.connect(
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,  # type: ignore[arg-type]  # nats-py accepts seconds as float
        connect_timeout=5,
        **connect_options(settings),
        **callbacks,
    )
    return nc


DRAIN_LIMIT_S = 10.0  # a stopping process waits at most this long for its NATS connection to drain


async def close_quietly(nc: Client) -> None:
    """Flush what we published and close; NATS may already be gone when a process stops."""
    try:
        if nc.is_connected:
            await asyncio.wait_for(nc.drain(), DRAIN_LIMIT_S)
            return
    except (Exception, TimeoutError) as err:
        log.info("drain failed: %r", err)
    if not nc.is_closed:
        try:
            await asyncio.wait_for(nc.close(), DRAIN_LIMIT_S)
        except TimeoutError:
            log.warning("closing the NATS connection took over %.0fs; leaving it", DRAIN_LIMIT_S)
