"""The hello's session check (node/handshake.py ``check_session``) and the reconnect sweep
(node/revocation.py) against a real SQLite store: live, logged out, past its lifetime, and a store
that cannot be opened (down)."""

from __future__ import annotations

import time

import pytest
from parley.node.handshake import check_session

from parley.auth import Claims
from parley.errors import Unauthorized, Unavailable
from parley.ids import new_device_id, new_session_id, new_user_id
from parley.store import Session
from parley.store.sqlite import SQLiteStore


@pytest.fixture
async def store(tmp_path):
    s = SQLiteStore(str(tmp_path / "store.db"))
    await s.migrate()
    yield s
    await s.close()


@pytest.fixture
async def down(tmp_path):
    s = SQLiteStore(str(tmp_path / "no such dir" / "store.db"))  # every statement: "unable to open"
    yield s
    await s.close()


async def stored(store, *, lifetime: int, revoked: bool = False) -> Claims:
    now = int(time.time())
    session = Session(new_session_id(), new_user_id(), new_device_id(), now * 1000, now + lifetime)
    await store.create_session(session)
    if revoked:
        await store.revoke_session(session.id)
    return Claims(session.user, session.device, session.id, now + 60)


async def test_a_live_session_is_admitted(store):
    await check_session(store, await stored(store, lifetime=3600), now=int(time.time()), fail_closed=True)


@pytest.mark.parametrize(("lifetime", "revoked", "code"), [
    (3600, True, "session_revoked"),
    (-1, False, "session_expired"),
])
async def test_an_ended_session_is_refused(store, lifetime, revoked, code):
    claims = await stored(store, lifetime=lifetime, revoked=revoked)
    with pytest.raises(Unauthorized) as info:
        await check_session(store, claims, now=int(time.time()), fail_closed=True)
    assert (info.value.code, info.value.ws_close_code) == (code, 4003)


async def test_store_down_fails_closed_retryable_or_open_as_configured(down):
    claims = Claims(new_user_id(), new_device_id(), new_session_id(), int(time.time()) + 60)
    with pytest.raises(Unavailable) as info:
        await check_session(down, claims, now=int(time.time()), fail_closed=True)
    assert (info.value.code, info.value.retryable, info.value.ws_close_code) == ("store_unavailable", True, 1013)
    await check_session(down, claims, now=int(time.time()), fail_closed=False)  # admitted unchecked
