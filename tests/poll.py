"""Waiting in tests: poll a condition until it holds, instead of sleeping a fixed time and hoping.

``eventually`` (async) and ``eventually_sync`` call ``check`` until it returns something truthy, which
they return. A check may also raise ``AssertionError`` to say why it does not hold yet, and the
exceptions listed in ``ignoring`` count as "not yet" too (a server still restarting). Any other
exception fails at once: a broken check is not a slow one. When ``timeout`` passes, an
``AssertionError`` says what never happened and where the check last stood.

``check`` runs at least once, and once more at the deadline. The pause between tries (``every``) is
only the polling rate; nothing is decided by it. For ``eventually``, ``check`` may be a coroutine
function.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
Pending = tuple[type[BaseException], ...]


def _not_yet(ignoring: Pending) -> Pending:
    return (AssertionError, *ignoring)


def _outcome(value: object) -> str:
    return f"it returned {value!r}"


def _give_up(what: str, timeout: float, last: str) -> AssertionError:
    return AssertionError(f"{what}: did not happen within {timeout:g}s ({last})")


async def eventually(check: Callable[[], T | Awaitable[T]], *, what: str, timeout: float = 10.0,
                     every: float = 0.1, ignoring: Pending = ()) -> T:
    deadline, not_yet = time.monotonic() + timeout, _not_yet(ignoring)
    while True:
        try:
            got = check()
            value = await got if inspect.isawaitable(got) else got
            if value:
                return value
            last = _outcome(value)
        except not_yet as err:
            last = f"{type(err).__name__}: {err}"
        if time.monotonic() >= deadline:
            raise _give_up(what, timeout, last)
        await asyncio.sleep(min(every, max(0.0, deadline - time.monotonic())))


def eventually_sync(check: Callable[[], T], *, what: str, timeout: float = 10.0, every: float = 0.1,
                    ignoring: Pending = ()) -> T:
    deadline, not_yet = time.monotonic() + timeout, _not_yet(ignoring)
    while True:
        try:
            value = check()
            if value:
                return value
            last = _outcome(value)
        except not_yet as err:
            last = f"{type(err).__name__}: {err}"
        if time.monotonic() >= deadline:
            raise _give_up(what, timeout, last)
        time.sleep(min(every, max(0.0, deadline - time.monotonic())))
