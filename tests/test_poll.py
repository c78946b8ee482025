"""The test suite's wait helper: it returns what the check found, and fails saying what never happened."""

from __future__ import annotations

import itertools

import pytest

from tests.poll import eventually, eventually_sync


def counter_reaching(n: int):
    calls = itertools.count(1)
    return lambda: (c := next(calls)) >= n and c


async def test_returns_the_first_truthy_value_of_a_plain_or_async_check():
    assert await eventually(counter_reaching(3), what="three calls", every=0) == 3
    reach = counter_reaching(2)

    async def check() -> int:
        return reach()

    assert await eventually(check, what="two calls", every=0) == 2
    assert eventually_sync(counter_reaching(4), what="four calls", every=0) == 4


async def test_an_assertion_or_an_ignored_error_means_not_yet():
    tries = itertools.count()

    def check() -> bool:
        n = next(tries)
        if n == 0:
            raise ConnectionError("still restarting")
        assert n >= 2, f"only {n}"
        return True

    assert await eventually(check, what="recovered", every=0, ignoring=(ConnectionError,))
    tries = itertools.count()
    assert eventually_sync(check, what="recovered", every=0, ignoring=(ConnectionError,))


async def test_a_check_that_never_holds_fails_naming_what_and_where_it_stood():
    with pytest.raises(AssertionError, match=r"the sky falls: did not happen within 0.05s \(it returned \[\]\)"):
        await eventually(lambda: [], what="the sky falls", timeout=0.05, every=0.01)
    with pytest.raises(AssertionError, match=r"pigs fly: .*AssertionError: grounded"):
        eventually_sync(_grounded, what="pigs fly", timeout=0.05, every=0.01)


def _grounded() -> bool:
    raise AssertionError("grounded")


async def test_any_other_error_fails_at_once():
    calls = itertools.count()

    def broken() -> bool:
        next(calls)
        raise KeyError("typo")

    with pytest.raises(KeyError):
        await eventually(broken, what="never", timeout=5)
    with pytest.raises(KeyError):
        eventually_sync(broken, what="never", timeout=5)
    assert next(calls) == 2  # one try each, not five seconds of them
