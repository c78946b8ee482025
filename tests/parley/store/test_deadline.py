"""Deadlined: a foreground store call with no answer becomes store_unavailable; background writes wait."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from parley.errors import Unavailable
from parley.store import Store
from parley.store.deadline import Deadlined, with_deadline


class Hung:
    """A store whose calls never finish until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.saved: list[Any] = []

    async def get_conversation(self, conv: str) -> None:
        await self.release.wait()

    async def save_receipts(self, receipts: list[Any]) -> None:
        await self.release.wait()
        self.saved.extend(receipts)

    async def history(self, conv: str) -> list[int]:
        return [1, 2]


async def test_a_hung_foreground_call_answers_store_unavailable() -> None:
    store = with_deadline(cast(Store, Hung()), 0.05)
    with pytest.raises(Unavailable) as caught:
        await store.get_conversation("c")  # type: ignore[arg-type]
    assert caught.value.code == "store_unavailable"


async def test_an_answer_in_time_passes_through() -> None:
    store = Deadlined(cast(Store, Hung()), 5)
    assert await store.history("c") == [1, 2]


async def test_background_writes_are_not_cut_off() -> None:
    hung = Hung()
    store = with_deadline(cast(Store, hung), 0.01)
    task = asyncio.get_running_loop().create_task(store.save_receipts(["r"]))  # type: ignore[list-item]
    with pytest.raises(Unavailable):
        await store.get_conversation("c")  # type: ignore[arg-type]  # outlives the deadline
    assert not task.done()
    hung.release.set()
    await task
    assert hung.saved == ["r"]
