"""What aiohttp keeps of a WebSocket connection that it no longer uses once the upgrade is accepted, let go: the one
place the node reaches into aiohttp's server internals (ADR 0050).

After ``WebSocketResponse.prepare`` the connection's bytes go to the WebSocket reader (the request handler's
``_payload_parser``); the handler's HTTP parser (``_parser``, ~0.76 KB) and its queue of parsed requests
(``_messages``, an empty deque: ~0.76 KB) are read only while no payload parser is set (``data_received``,
``finish_response``'s declined-upgrade branch, both behind ``_payload_parser is None``; ``pause_reading`` behind
``not _upgraded``) and are dropped by aiohttp itself at ``connection_lost``. The server's WebSocket writer never
masks a frame (``use_mask`` is False), so its ``get_random_bits`` partial (~0.26 KB) is one shared partial for
every connection. Together ~2.7 KB of an idle connection's ~16.4 KB in the node (the parser also held parts of the
last request it parsed).

The queue becomes an empty tuple, not a shared deque: were a later aiohttp to append to it on this path, the append
raises at once instead of mixing two connections' requests. What this relies on is checked against the aiohttp
versions named in ``CHECKED`` (pinned in pyproject) by ``tests/node/test_upgraded.py``, which fails when an upgrade
changes it; anything not as expected here leaves the connection as aiohttp made it (``let_go`` returns False).

The parsed upgrade request itself (headers, raw headers, URL: ~3.2 KB) stays: ``RequestHandler.start`` holds the
message in its own frame for the connection's life, out of reach without replacing aiohttp's request loop.
"""

from __future__ import annotations

import random
from collections import deque
from functools import partial
from typing import Any

from aiohttp import web

CHECKED = ("3.14",)  # aiohttp minor versions this was read against (pyproject pins the range)
_NO_MASK_BITS = partial(random.getrandbits, 32)  # never called: the server side does not mask its frames
_NOTHING_QUEUED: tuple[()] = ()


def let_go(request: web.BaseRequest, ws: web.WebSocketResponse) -> bool:
    """After ``ws.prepare(request)`` accepted the upgrade: drop what aiohttp keeps and no longer reads. True if it
    did; False (nothing touched) if the handler or writer is not in the state this was checked against."""
    handler: Any = request.protocol
    writer: Any = getattr(ws, "_writer", None)
    if not (getattr(handler, "_upgraded", False) and getattr(handler, "_payload_parser", None) is not None
            and type(getattr(handler, "_messages", None)) is deque and not handler._messages
            and getattr(writer, "use_mask", True) is False and hasattr(writer, "get_random_bits")):
        return False
    handler._parser = None
    handler._messages = _NOTHING_QUEUED
    writer.get_random_bits = _NO_MASK_BITS
    return True
