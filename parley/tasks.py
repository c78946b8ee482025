"""Stopping background tasks so that they stop."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any], every_s: float = 0.5) -> None:
    """Cancel ``tasks`` and return once every one has finished, cancelling again until it does.

    Python 3.11's ``asyncio.wait_for`` swallows a cancellation that arrives in the same loop turn as its
    inner future's result (bpo-42130, fixed in 3.12): it returns the result instead. A task looping around
    such a call (a probe, a lag watcher, nats-py's requests use ``wait_for``) then goes on for ever and a
    plain ``cancel(); await gather(...)`` waits with it: a process that would not stop. A second cancel lands
    in the loop's sleep."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every_s)
