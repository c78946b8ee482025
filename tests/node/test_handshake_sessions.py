"""The hello's session check (node/handshake.py ``check_session``), the check again after set-up and the
sweep when NATS comes back (node/revocation.py), against a real SQLite store: live, logged out, past its
lifetime, and a store that cannot be opened (down). A link here is a stand-in that keeps its session
and how it was closed: these functions read and call nothing else of it."""

from __future__ import annotations

import asyncio
import time

import pytest
from parley.node.handshake import check_session
from parley.node.revocation import WAVE, check_again, close_ended_sessions

from parley.auth import Claims
from parley.errors import Unauthorized, Unavailable
from parley.ids import new_device_id, new_session_id, new_user_id
from parley.store import Device, Session
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


async def test_the_hellos_check_reads_the_devices_cursor_in_the_same_call(store, down):
    claims = await stored(store, lifetime=3600)
    await store.upsert_device(Device(claims.device, claims.user, "phone", 1))
    assert await check_session(store, claims, now=int(time.time()), fail_closed=True, device=True) == ""
    await store.save_cursors({claims.device: "c1.AAA.x"})
    assert await check_session(store, claims, now=int(time.time()), fail_closed=True, device=True) == "c1.AAA.x"
    assert await check_session(store, claims, now=int(time.time()), fail_closed=True) is None  # not asked
    assert await check_session(down, claims, now=int(time.time()), fail_closed=False, device=True) is None


class Link:
    def __init__(self, session: str) -> None:
        self.session, self.closed_with = session, None
        self.ends: asyncio.TimerHandle | None = None  # the sweep arms it for a live session (its lifetime)

    def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


async def test_check_again_refuses_an_ended_session_and_lets_a_down_store_pass(store, down):
    revoked = await stored(store, lifetime=3600, revoked=True)
    with pytest.raises(Unauthorized) as info:
        await check_again(Link(revoked.session), store, now=int(time.time()))
    assert info.value.code == "session_revoked"
    await check_again(Link((await stored(store, lifetime=3600)).session), store, now=int(time.time()))
    await check_again(Link(revoked.session), down, now=int(time.time()))  # the hello's check passed


async def test_the_sweep_closes_every_link_of_an_ended_session_and_only_those(store, down):
    live, revoked, ended = (await stored(store, lifetime=3600), await stored(store, lifetime=3600, revoked=True),
                            await stored(store, lifetime=-1))
    many = [await stored(store, lifetime=3600, revoked=True) for _ in range(WAVE)]  # more than one wave
    links = [Link(c.session) for c in (live, live, revoked, revoked, ended, *many)]
    assert await close_ended_sessions(links, store, now=int(time.time())) == len(links) - 2
    assert [link.closed_with for link in links[:5]] == [
        None, None, (4003, "session_revoked"), (4003, "session_revoked"), (4003, "session_expired")]
    assert all(link.closed_with == (4003, "session_revoked") for link in links[5:])
    assert all(link.ends is not None for link in links[:2]) and all(link.ends is None for link in links[2:])
    for link in links[:2]:
        link.ends.cancel()
    untouched = [Link(revoked.session)]
    assert await close_ended_sessions(untouched, down, now=int(time.time())) == 0
    assert untouched[0].closed_with is None
