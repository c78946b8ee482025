"""The database thread (parley/store/sqlite/thread.py): calls in order, outcomes to their callers, results
back to the loop in batches, cancelled callers, stop with calls queued, and a call after stop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from parley.store.sqlite.thread import DatabaseThread


@pytest.fixture
async def thread():
    t = DatabaseThread("test-sqlite")
    yield t
    await t.stop()


async def test_calls_run_in_order_on_one_thread_not_the_loops(thread: DatabaseThread):
    ran: list[tuple[int, str]] = []
    futures = [thread.submit(lambda i=i: ran.append((i, threading.current_thread().name)) or i) for i in range(200)]
    assert await asyncio.gather(*futures) == list(range(200))
    assert [i for i, _ in ran] == list(range(200))
    assert {name for _, name in ran} == {"test-sqlite"}


async def test_an_error_reaches_its_caller_and_the_next_call_still_runs(thread: DatabaseThread):
    def fail() -> None:
        raise ValueError("bad query")

    with pytest.raises(ValueError, match="bad query"):
        await thread.submit(fail)
    assert await thread.submit(lambda: 7) == 7


async def test_calls_finished_while_the_loop_is_busy_come_back_in_one_wake_up(thread: DatabaseThread):
    loop = asyncio.get_running_loop()
    wakes = 0
    real = loop.call_soon_threadsafe

    def counting(callback, *args, **kwargs):
        nonlocal wakes
        wakes += 1
        return real(callback, *args, **kwargs)

    gate = threading.Event()
    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    try:
        first = thread.submit(gate.wait)
        rest = [thread.submit(lambda i=i: i) for i in range(50)]
        gate.set()
        # the loop does not run while the thread finishes all 51: they wait for one wake-up
        done = threading.Event()
        thread.submit(done.set)
        assert done.wait(5)
        assert await first is True and await asyncio.gather(*rest) == list(range(50))
    finally:
        loop.call_soon_threadsafe = real  # type: ignore[method-assign]
    assert wakes == 1


async def test_a_cancelled_caller_before_its_turn_does_not_run_and_later_calls_do(thread: DatabaseThread):
    gate, ran = threading.Event(), []
    blocker = thread.submit(gate.wait)
    skipped = thread.submit(lambda: ran.append("skipped"))
    later = thread.submit(lambda: ran.append("later") or "later")
    skipped.cancel()
    gate.set()
    assert await blocker is True and await later == "later"
    assert ran == ["later"]


async def test_a_caller_cancelled_while_its_call_runs_leaves_the_thread_working(thread: DatabaseThread):
    started, gate = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        gate.wait()
        return "done"

    waiting = asyncio.ensure_future(thread.submit(slow))
    await asyncio.sleep(0)
    assert await asyncio.to_thread(started.wait, 5)
    waiting.cancel()
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await thread.submit(lambda: 1) == 1


async def test_a_call_after_stop_raises_at_once():
    thread = DatabaseThread()
    assert await thread.submit(lambda: 1) == 1
    await thread.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        thread.submit(lambda: 2)
    never_started = DatabaseThread()
    await never_started.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        never_started.submit(lambda: 2)


async def test_stop_runs_the_calls_already_queued_and_joins_the_thread():
    thread, gate = DatabaseThread("stopping"), threading.Event()
    blocker = thread.submit(gate.wait)
    queued = [thread.submit(lambda i=i: i) for i in range(20)]
    stopping = asyncio.ensure_future(thread.stop())
    await asyncio.sleep(0)
    gate.set()
    await asyncio.wait_for(stopping, 5)
    assert await blocker is True and await asyncio.gather(*queued) == list(range(20))
    assert not any(t.name == "stopping" for t in threading.enumerate())
    await thread.stop()  # a second stop is harmless


async def test_a_call_raising_stop_iteration_fails_alone_and_the_rest_of_its_batch_is_answered(thread: DatabaseThread):
    gate = threading.Event()
    blocker = thread.submit(gate.wait)
    odd = thread.submit(lambda: next(iter(())))
    after = [thread.submit(lambda i=i: i) for i in range(5)]
    gate.set()
    done = threading.Event()
    thread.submit(done.set)
    assert done.wait(5)  # all of them finished while the loop did not run: one batch
    assert await blocker is True
    with pytest.raises(RuntimeError, match="StopIteration"):
        await odd
    assert await asyncio.wait_for(asyncio.gather(*after), 5) == list(range(5))
