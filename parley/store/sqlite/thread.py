"""The one thread that runs every SQLite call of a process, and how results get back to the event loop.

``DatabaseThread.submit(fn)`` queues ``fn`` and returns an asyncio future of its result; the thread runs the
calls one at a time, in the order they were submitted, so the connection is only ever used from it. Why not
a one-worker ``ThreadPoolExecutor``: ``run_in_executor`` pays, per call, a concurrent future, its chaining to
an asyncio future and one ``call_soon_threadsafe`` (a write to the loop's wake-up pipe and a loop wake-up) —
about half of the loop's CPU per call (ADR 0047). Here a finished call's outcome goes on the loop's list of
finished calls, and the loop is woken once per batch: only when no wake-up for that loop is pending yet, so
calls that finish while the loop has not yet taken the last batch ride on the same wake-up.

Invariants:
- Calls run in submission order; an outcome (result or exception, any ``BaseException``; a ``StopIteration``,
  which a future refuses, as a ``RuntimeError``) reaches the future.
- A call whose future was cancelled before the thread took it does not run (as with an executor); one already
  running completes, and its outcome is dropped.
- ``submit`` after ``stop`` raises ``RuntimeError`` at once (a probe of a closed store fails, never hangs).
- ``stop`` lets the calls already queued run and deliver, then ends and joins the thread.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]
_Outcome = tuple["asyncio.Future[Any]", bool, Any]  # the future, whether it raised, the result or exception
_STOP = None  # the queue's last item: the thread ends after it


class DatabaseThread:
    def __init__(self, name: str = "sqlite") -> None:
        self._name = name
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards _thread, _stopped, _done
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._done: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}  # a loop in here has a wake-up pending

    def submit(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """``fn()`` on the thread; the future resolves on the calling loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._stopped:
                raise RuntimeError("the database thread is stopped")
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                self._thread.start()
            self._calls.put((loop, future, fn))
        return future

    async def stop(self) -> None:
        """No more calls; those queued run and deliver first. Idempotent."""
        with self._lock:
            self._stopped, thread = True, self._thread
            if thread is not None and thread.is_alive():
                self._calls.put(_STOP)
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, thread.join)

    def _serve(self) -> None:
        while (call := self._calls.get()) is not _STOP:
            loop, future, fn = call
            if future.cancelled():  # a racy read, as an executor's: at worst a cancelled call runs
                continue
            try:
                outcome: _Outcome = (future, False, fn())
            except BaseException as err:  # noqa: BLE001 - every outcome belongs to the awaiting caller
                outcome = (future, True, err)
            self._finished(loop, outcome)

    def _finished(self, loop: asyncio.AbstractEventLoop, outcome: _Outcome) -> None:
        with self._lock:
            batch = self._done.get(loop)
            if batch is not None:  # the loop has a wake-up pending: it will take this one too
                batch.append(outcome)
                return
            self._done[loop] = [outcome]
        try:
            loop.call_soon_threadsafe(self._deliver, loop)
        except RuntimeError:  # the loop is closed: nobody is left to await these
            with self._lock:
                self._done.pop(loop, None)

    def _deliver(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            batch = self._done.pop(loop)
        for future, raised, value in batch:
            if future.cancelled():
                continue
            if raised:
                future.set_exception(_settable(value))
            else:
                future.set_result(value)


def _settable(err: BaseException) -> BaseException:
    """An asyncio future refuses ``StopIteration`` (a ``TypeError`` that would strand the rest of the batch)."""
    if isinstance(err, StopIteration):
        wrapped = RuntimeError("the database call raised StopIteration")
        wrapped.__cause__ = err
        return wrapped
    return err
