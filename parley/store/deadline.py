"""Deadlines on a store's foreground calls: an answer within ``store_deadline_s``, never silence.

Nodes and the API wrap their store in ``with_deadline``: every call someone waits for (a membership check,
a session, history, a sync page, a sign-up) that has no answer after the deadline raises
``Unavailable(store_unavailable)``, which the client gets as an error frame or a 503 (protocol.md §13) and
may retry. A hung store (a stopped process, a partition, a driver whose in-flight slots are all taken)
thus costs a client a few seconds, not a connection that stops answering. The call itself is cancelled;
what the backend had sent on may still land (every write here is idempotent or a claim that is read back).

Background writes (``BACKGROUND``: receipts and cursors, kept and retried by their callers) and the
process's own start and stop are not bounded here: they wait for the backend's own timeouts
(``cassandra_timeout_s``), and in the Cassandra store they run on their own concurrency budget
(``cassandra_background_concurrency``), so they never hold a foreground call's slot.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import Any, cast

from parley.errors import Unavailable
from parley.store.protocols import Store

BACKGROUND = frozenset({"save_receipts", "save_cursors", "put_messages", "put_rows", "migrate", "close"})


class Deadlined:
    """A store whose foreground coroutine methods answer within ``deadline_s`` (see the module)."""

    def __init__(self, store: Store, deadline_s: float) -> None:
        self._store, self._deadline = store, deadline_s
        self._bounded_calls: dict[str, Callable[..., Any]] = {}

    @property
    def inner(self) -> Store:
        return self._store

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name in BACKGROUND or not inspect.iscoroutinefunction(attr):
            return attr
        call = self._bounded_calls.get(name)
        if call is None:
            call = self._bounded_calls[name] = self._bounded(name, attr)
        return call

    def _bounded(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(call)
        async def bounded(*args: Any, **kwargs: Any) -> Any:
            try:
                async with asyncio.timeout(self._deadline):
                    return await call(*args, **kwargs)
            except TimeoutError:
                raise Unavailable(f"the store did not answer ({name}) within {self._deadline:g} s",
                                  code="store_unavailable") from None
        return bounded


def with_deadline(store: Store, deadline_s: float) -> Store:
    """``store`` with a deadline on every foreground call (``Deadlined``)."""
    return cast(Store, Deadlined(store, deadline_s))
