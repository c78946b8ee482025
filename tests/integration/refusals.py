"""Asserting that an API call is refused with a given status and error code."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest
from parley.tools.client import ApiError


async def expect(code: str, status: int, call: Awaitable[Any]) -> dict[str, Any]:
    """``call``'s refusal: it must raise ``ApiError`` with ``status`` and ``code``; its body is returned."""
    with pytest.raises(ApiError) as info:
        await call
    assert (info.value.status, info.value.code) == (status, code), info.value.body
    return info.value.body
