"""Parley: a chat backend. This package is the shared library every process role uses.

Modules: ``errors`` (one exception tree), ``ids`` (typed ids, subjects), ``settings`` (one frozen
object from ``PARLEY_*``), ``protocol`` (WebSocket frames), ``auth`` (passwords, tokens),
``ratelimit``, ``store`` (the store interface and its backends), ``bus`` (NATS JetStream adapter).
"""

__version__ = "0.1.0"
