"""The loop's lateness and the collector's pauses reach the node's page (docs/adr/0040)."""

import asyncio
import gc
import time

from parley.loopwatch import LoopWatch
from parley.metrics import NodeMetrics


async def until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def lag_count(m: NodeMetrics, le: str = "+Inf") -> float:
    return m.registry.get_sample_value("parley_node_loop_lag_seconds_bucket", {"le": le}) or 0.0


def late_count(m: NodeMetrics, over: str) -> float:
    return lag_count(m) - lag_count(m, over)


async def test_a_loop_held_up_shows_as_lateness_of_that_size():
    m = NodeMetrics()
    watch = LoopWatch(m.loop_lag, m.gc_seconds, every_s=0.01)
    watch.start()
    try:
        await until(lambda: lag_count(m) >= 3)  # the timer runs
        assert late_count(m, "0.05") == 0
        time.sleep(0.12)  # the loop held up, as a long run of callbacks would
        await until(lambda: late_count(m, "0.05") >= 1)
        assert late_count(m, "0.1") <= 1  # one late timer, not one per missed tick
    finally:
        await watch.stop()


async def test_each_collection_is_timed_by_generation_until_the_watch_stops():
    m = NodeMetrics()

    def collections(generation: str) -> float:
        return m.registry.get_sample_value("parley_node_gc_seconds_count", {"generation": generation}) or 0.0

    watch = LoopWatch(m.loop_lag, m.gc_seconds)
    watch.start()
    gc.collect()
    gc.collect(0)
    assert collections("2") >= 1 and collections("0") >= 1
    await watch.stop()
    before = collections("2")
    gc.collect()
    assert collections("2") == before and watch._on_gc not in gc.callbacks
