"""Request body validation for the API. Pure; raises BadRequest naming the field."""

from __future__ import annotations

import re
from typing import Any

from parley.errors import BadRequest
from parley.ids import is_valid_id

USERNAME_RE = re.compile(r"^[a-z0-9_.\-]{3,32}$")
REGION_RE = re.compile(r"^[a-z0-9\-]{1,32}$")


def field(body: dict[str, Any], name: str, *, required: bool = True, max_len: int = 256) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequest(f"{name} is required", code="bad_field", field=name)
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string", code="bad_field", field=name)
    if len(value) > max_len:
        raise BadRequest(f"{name} is longer than {max_len} characters", code="bad_field", field=name)
    return value


def username(body: dict[str, Any]) -> str:
    value = field(body, "username", max_len=32)
    assert value is not None
    value = value.strip().lower()
    if not USERNAME_RE.match(value):
        raise BadRequest("username: 3 to 32 of a-z 0-9 _ . -", code="bad_field", field="username")
    return value


def password(body: dict[str, Any], name: str = "password") -> str:
    value = field(body, name, max_len=256)
    assert value is not None
    if len(value) < 8:
        raise BadRequest(f"{name} must be at least 8 characters", code="bad_field", field=name)
    return value


def display_name(body: dict[str, Any], *, required: bool = False) -> str | None:
    value = field(body, "display_name", required=required, max_len=64)
    if value is not None and not value.strip():
        raise BadRequest("display_name must not be blank", code="bad_field", field="display_name")
    return value.strip() if value is not None else None


def user_id(value: object, name: str = "user_id") -> str:
    if not is_valid_id(value):
        raise BadRequest(f"{name} is not a valid id (16 characters of a-z 2-7)", code="bad_field", field=name)
    assert isinstance(value, str)
    return value


def optional_id(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return None if value is None else user_id(value, name)


def int_query(raw: str | None, name: str, *, low: int, high: int, default: int | None) -> int | None:
    """A query parameter that is an integer from ``low`` to ``high``; absent: ``default`` (empty is not absent:
    openapi says integer, and ``after=`` meaning "from the start" would be a guess)."""
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer", code="bad_field", field=name) from None
    if not low <= value <= high:
        raise BadRequest(f"{name} must be from {low} to {high}", code="bad_field", field=name)
    return value
