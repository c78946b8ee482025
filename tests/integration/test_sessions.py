"""Sessions that end, on real servers: the absolute lifetime (hello, routes, refresh), a password change
and "sign out other devices" (other sessions revoked, their live connections closed with 4003, the
caller's kept), and a revocation announced while NATS is away still closing the live connection.

The lifetime tests write sessions straight into the cluster's SQLite store (the API's 30-day default is
too long to wait for) and sign their tokens with the cluster's secret, as the API does.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from parley.tools.client import Device

from parley.auth import issue_token
from parley.ids import SessionId, UserId, new_session_id
from parley.store import Session
from parley.store.sqlite import SQLiteStore
from tests.integration.cluster import SECRET
from tests.integration.conftest import PASSWORD, Person, World
from tests.integration.refusals import expect
from tests.poll import eventually

pytestmark = pytest.mark.integration



async def session_ending_in(world: World, person: Person, seconds: int) -> str:
    """A token of a new session of ``person``'s last device that ends ``seconds`` from now."""
    now, device = int(time.time()), person.logins[-1]["device_id"]
    session = Session(SessionId(new_session_id()), UserId(person.id), device, now * 1000, now + seconds)
    store = SQLiteStore(world.cluster.settings.sqlite_path)
    try:
        await store.create_session(session)
    finally:
        await store.close()
    token, _ = issue_token(SECRET, user=session.user, device=session.device, session=session.id, now=now,
                           ttl_s=3600)
    return token


async def test_a_login_session_lives_the_configured_lifetime(world):
    alice = await world.person("alice")
    store = SQLiteStore(world.cluster.settings.sqlite_path)
    try:
        [session] = await store.sessions_of(UserId(alice.id))
    finally:
        await store.close()
    lifetime = world.cluster.settings.session_lifetime_s
    assert session.created_at // 1000 + lifetime - 5 <= session.expires_at <= session.created_at // 1000 + lifetime


async def test_refresh_never_outlives_the_session(world):
    alice = await world.person("alice")
    token = await session_ending_in(world, alice, 120)  # a token of 1 h, of a session that ends in 2 min
    fresh = await world.api.call("POST", "/v1/refresh", token)
    assert fresh["expires_at"] <= int(time.time()) + 120
    again = await world.api.call("POST", "/v1/refresh", fresh["token"])
    assert again["expires_at"] <= int(time.time()) + 120  # refreshing again does not extend it either


async def test_an_ended_session_is_refused_at_hello_on_routes_and_on_refresh(world):
    alice = await world.person("alice")
    token = await session_ending_in(world, alice, -1)  # its token is valid for another hour
    await expect("session_expired", 401, world.api.call("GET", "/v1/me", token))
    await expect("session_expired", 401, world.api.call("POST", "/v1/refresh", token))
    refused = Device(world.http, world.cluster.node_url(0), token)
    with pytest.raises(ConnectionError, match=r"session_expired.*close 4003"):
        await refused.connect()


async def test_a_live_connection_is_closed_when_its_session_passes_its_lifetime(world):
    """Not only at its next hello: at ``expires_at`` the node sends ``session_expired`` and closes with 4003."""
    alice = await world.person("alice")
    device = Device(world.http, world.cluster.node_url(0), await session_ending_in(world, alice, 5))
    await device.connect()
    code, _ = await asyncio.wait_for(asyncio.shield(device.closed), timeout=20)
    assert code == 4003 and [e["code"] for e in device.errors] == ["session_expired"]


async def two_devices(world: World) -> tuple[Person, Device, Device, dict, dict]:
    """Alice signed in on two devices, each connected to a different node."""
    alice = await world.person("alice")
    first, second = alice.logins[-1], await alice.login()
    a, b = await alice.device(node=0, login=first), await alice.device(node=1, login=second)
    return alice, a, b, first, second


async def still_live(device: Device) -> bool:
    device.pongs.clear()
    await device.send_frame({"type": "ping", "ts": 1})
    await device.wait_for(lambda: device.pongs)
    return True


async def test_a_password_change_signs_out_every_other_device_and_keeps_this_one(world):
    alice, a, b, first, second = await two_devices(world)
    third = await alice.login()  # a session with no live connection
    body = {"current_password": "not it at all", "new_password": "a new password"}
    wrong = await expect("wrong_password", 403, world.api.call("POST", "/v1/password", second["token"], body))
    assert wrong["field"] == "current_password"
    short = await expect("bad_field", 400, world.api.call(
        "POST", "/v1/password", second["token"], {"current_password": PASSWORD, "new_password": "short"}))
    assert short["field"] == "new_password"
    changed = await world.api.call("POST", "/v1/password", second["token"],
                                   {"current_password": PASSWORD, "new_password": "a new password"})
    assert changed == {"revoked": 2}
    assert (await a.closed)[0] == 4003  # the other device's live connection
    for ended in (first, third):
        await expect("session_revoked", 401, world.api.call("GET", "/v1/me", ended["token"]))
    assert (await world.api.call("GET", "/v1/me", second["token"]))["user"]["id"] == alice.id
    await still_live(b)
    await expect("bad_credentials", 401, world.api.login(alice.name, PASSWORD))
    assert (await world.api.login(alice.name, "a new password"))["user"]["id"] == alice.id


async def test_sign_out_other_devices_closes_their_connections_and_keeps_this_one(world):
    alice, a, b, first, second = await two_devices(world)
    assert await world.api.call("POST", "/v1/sessions/revoke-others", second["token"]) == {"revoked": 1}
    assert (await a.closed)[0] == 4003
    await expect("session_revoked", 401, world.api.call("POST", "/v1/refresh", first["token"]))
    again = Device(world.http, world.cluster.node_url(1), first["token"])
    with pytest.raises(ConnectionError, match=r"session_revoked.*close 4003"):
        await again.connect()
    await still_live(b)
    assert await world.api.call("POST", "/v1/sessions/revoke-others", second["token"]) == {"revoked": 0}
    await world.api.login(alice.name, PASSWORD)  # the password still works


async def test_a_revocation_made_while_nats_is_away_still_closes_the_live_connection(world, cluster):
    alice, a, b, first, second = await two_devices(world)
    cluster.stop_nats()
    try:
        # the store has it at once (SQLite needs no NATS): the answer does not wait for the nodes
        assert await world.api.call("POST", "/v1/sessions/revoke-others", second["token"]) == {"revoked": 1}
        await expect("session_revoked", 401, world.api.call("GET", "/v1/me", first["token"]))
        await asyncio.sleep(1)  # the scenario, not a wait: NATS stays away a moment after the revocation
        assert not a.closed.done()  # nothing could tell the node yet
    finally:
        cluster.start_nats()
    code, _ = await asyncio.wait_for(asyncio.shield(a.closed), timeout=40)
    assert code == 4003  # by the node's check when NATS came back, or the API's retry, whichever came first
    await eventually(lambda: "after a retry" in cluster.log_text("api"), timeout=40, every=0.5,
                     what="the API announcing the revocation once NATS took it")
    await eventually(lambda: still_live(b), timeout=20, every=0.5, ignoring=(TimeoutError,),
                     what="the caller's device answering pings after NATS came back")
