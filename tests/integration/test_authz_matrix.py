"""The authorization matrix: every operation docs/openapi.yaml lists with bearer auth, tried by callers who
must be refused — no token, a logged-out session, a deleted account's session — and, where the path names
a conversation, a device or a live room, by a stranger (another user's DM or group: ``not_member``; another
user's device: ``unknown_device``; a room they do not moderate: ``not_moderator``). The operations come from
the spec, so a new one is covered the day it is documented (test_openapi.py keeps the spec and the served
routes equal)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from parley.tools.client import ApiError

from tests.integration.conftest import PASSWORD

pytestmark = pytest.mark.integration
SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
METHODS = ("get", "post", "put", "patch", "delete")


def bearer_operations() -> list[tuple[str, str]]:
    spec = yaml.safe_load(SPEC.read_text())
    return [(method.upper(), path) for path, ops in spec["paths"].items() for method, op in ops.items()
            if method in METHODS and path.startswith("/v1/") and op.get("security", spec["security"]) != []]


async def refusal(world, method: str, path: str, token: str | None) -> tuple[int, str]:
    with pytest.raises(ApiError) as info:
        await world.api.call(method, path, token, {} if method in ("POST", "PUT", "PATCH", "DELETE") else None)
    return info.value.status, info.value.code


def test_the_matrix_covers_the_blocking_and_deletion_operations():
    ops = bearer_operations()
    assert len(ops) > 30
    assert {("PUT", "/v1/blocks/{user_id}"), ("DELETE", "/v1/blocks/{user_id}"), ("GET", "/v1/blocks"),
            ("DELETE", "/v1/account")} <= set(ops)


async def test_every_bearer_operation_refuses_callers_without_a_live_session(world):
    alice, bob, gone = await world.person("alice"), await world.person("bob"), await world.person("gone")
    conv = await alice.befriend(bob)
    logged_out = (await alice.login())["token"]
    await world.api.call("POST", "/v1/logout", logged_out)
    deleted = gone.token
    await world.api.call("DELETE", "/v1/account", deleted, {"password": PASSWORD})
    room = (await world.api.call("POST", "/v1/live", bob.token, {"title": "live"}))["id"]
    values = {"user_id": bob.id, "conv": conv, "device_id": alice.logins[0]["device_id"], "room": room, "id": 1}
    for method, template in bearer_operations():
        path = template.format(**values)
        assert await refusal(world, method, path, None) == (401, "bad_token"), (method, template)
        assert await refusal(world, method, path, "not.a.token") == (401, "bad_token"), (method, template)
        assert await refusal(world, method, path, logged_out) == (401, "session_revoked"), (method, template)
        assert await refusal(world, method, path, deleted) == (401, "session_revoked"), (method, template)


READ_BY_ANYONE = {("GET", "/v1/live/{room}"), ("GET", "/v1/live/{room}/messages")}  # any signed-in user


async def test_every_operation_on_a_conversation_or_device_refuses_a_stranger(world):
    alice, bob, eve = await world.person("alice"), await world.person("bob"), await world.person("eve")
    dm = await alice.befriend(bob)
    group = (await world.api.call("POST", "/v1/groups", alice.token, {"name": "g", "members": [bob.id]}))
    room = (await world.api.call("POST", "/v1/live", alice.token, {"title": "live"}))["id"]
    mine = {"user_id": bob.id, "device_id": alice.logins[0]["device_id"], "room": room, "id": 1}
    checked = 0
    for method, template in bearer_operations():
        if "{conv}" in template:
            for conv in (dm, group["conversation"]["id"]):
                got = await refusal(world, method, template.format(conv=conv, **mine), eve.token)
                assert got == (403, "not_member"), (method, template, conv)
                checked += 1
        elif "{device_id}" in template:
            got = await refusal(world, method, template.format(**mine), eve.token)
            assert got == (404, "unknown_device"), (method, template)
            checked += 1
        elif "{room}" in template and (method, template) not in READ_BY_ANYONE:
            # a live room's moderation: its owner and moderators (and operators, PARLEY_ADMINS)
            want = (403, "not_owner") if "/moderators/" in template else (403, "not_moderator")
            got = await refusal(world, method, template.format(**mine), eve.token)
            assert got == want, (method, template)
            checked += 1
    assert checked >= 28  # every conversation, group, push-token and live moderation route, twice for conversations
