"""TLS contexts for Parley's own HTTP and WebSocket ports, from the settings (docs/adr/0014-tls.md).

With ``PARLEY_TLS_CERT`` and ``PARLEY_TLS_KEY`` the edge nodes serve ``wss://`` and the API and discovery
``https://`` (``server_context``); the workers' health ports stay plain HTTP (loopback or a private
network, no user data). The processes that call those ports (the API asking discovery for a node,
discovery scraping nodes' /metrics and probing the API) trust ``PARLEY_TLS_CA`` (``client_context``), or
the system's CAs without one. NATS has its own settings (``PARLEY_NATS_TLS_*``, ``parley.bus.connection``).
"""

from __future__ import annotations

import ssl

from parley.settings import Settings


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """What a TLS port serves; None without a certificate (plain HTTP)."""
    if not settings.tls_on():
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


def client_context(ca: str = "") -> ssl.SSLContext:
    """A client context that checks servers against ``ca`` (a PEM file), or the system's CAs without one."""
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca or None)


def client_ssl(settings: Settings) -> ssl.SSLContext | bool:
    """aiohttp's ``ssl=`` for Parley's own HTTP clients: the configured CA, else aiohttp's default checks."""
    return client_context(settings.tls_ca) if settings.tls_ca else True
