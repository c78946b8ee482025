"""How late a process's event loop runs, and how long its cyclic collector stops it (docs/adr/0040).

Everything a node does for its devices waits for the loop: a loop that is late by 30 ms delivers every message
that arrived meanwhile 30 ms late, whatever the cause (a long run of callbacks, a collection, the process waiting
for the core). ``LoopWatch`` keeps two histograms for the scrape: the loop's lateness, from a timer every
``every_s`` (``perf_counter``: uvloop's own clock only ticks in milliseconds and is read once per turn), and
each collection's duration by generation (``gc.callbacks``). It costs one timer wakeup per ``every_s`` and two
clock reads per collection.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from prometheus_client import Histogram

from parley.tasks import cancel_and_wait

EVERY_S = 0.1


class LoopWatch:
    __slots__ = ("_lag", "_gc", "_every_s", "_task", "_gc_began")

    def __init__(self, lag: Histogram, gc_seconds: Histogram, every_s: float = EVERY_S) -> None:
        """``gc_seconds``: labelled by ``generation``."""
        self._lag, self._gc, self._every_s = lag, gc_seconds, every_s
        self._task: asyncio.Task[None] | None = None
        self._gc_began = 0.0

    def start(self) -> None:
        if self._task is None:
            gc.callbacks.append(self._on_gc)
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            gc.callbacks.remove(self._on_gc)
            await cancel_and_wait(self._task)
            self._task = None

    async def _watch(self) -> None:
        every, observe = self._every_s, self._lag.observe
        while True:
            began = time.perf_counter()
            await asyncio.sleep(every)
            observe(max(0.0, time.perf_counter() - began - every))

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_began = time.perf_counter()
        else:
            self._gc.labels(str(info["generation"])).observe(time.perf_counter() - self._gc_began)
