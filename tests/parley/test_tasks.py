"""``cancel_and_wait`` stops a loop whose cancellation ``asyncio.wait_for`` swallowed.

The race is made deterministic: the loop waits in ``wait_for`` on a future; in one synchronous step that
future gets its result and the task is cancelled. On Python 3.11 ``wait_for`` then returns the result and
the loop carries on (bpo-42130) — what kept an archiver refusing a drifted stream from exiting in CI.
"""

from __future__ import annotations

import asyncio
import sys

from parley.tasks import cancel_and_wait


class Looper:
    def __init__(self) -> None:
        self.inner: asyncio.Future[int] | None = None
        self.waiting = asyncio.Event()
        self.rounds = 0

    async def run(self) -> None:
        while True:
            self.inner = asyncio.get_running_loop().create_future()
            self.waiting.set()
            await asyncio.wait_for(self.inner, timeout=60)
            self.rounds += 1
            await asyncio.sleep(0.05)  # a probe's or a lag watcher's pause between rounds


async def race(looper: Looper, task: asyncio.Task[None]) -> None:
    await looper.waiting.wait()
    await asyncio.sleep(0)  # the task is now parked in wait_for
    assert looper.inner is not None
    looper.inner.set_result(1)
    task.cancel()  # in the same step as the result: the race


async def test_a_cancellation_swallowed_by_wait_for_is_repeated_until_the_task_stops():
    looper = Looper()
    task = asyncio.get_running_loop().create_task(looper.run())
    await race(looper, task)
    await asyncio.wait({task}, timeout=0.2)
    if sys.version_info < (3, 12):
        assert not task.done() and looper.rounds == 1, "the race no longer loses the cancellation on 3.11"
    await asyncio.wait_for(cancel_and_wait(task, every_s=0.01), timeout=10)
    assert task.cancelled()


async def test_finished_and_plain_tasks_are_waited_for():
    done = asyncio.get_running_loop().create_task(asyncio.sleep(0))
    await done
    sleeper = asyncio.get_running_loop().create_task(asyncio.sleep(60))
    await asyncio.wait_for(cancel_and_wait(done, sleeper), timeout=10)
    assert sleeper.cancelled() and not done.cancelled()
    await cancel_and_wait()
