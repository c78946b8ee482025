"""The HTTP API: accounts, sessions, profiles, friends, conversations, history — and its errors."""

from __future__ import annotations

import time

import pytest
from aiohttp.test_utils import TestClient, TestServer
from parley.api.app import make_app
from parley.api.http import LIMITS
from parley.api.limits import AuthLimits, KvCounters
from parley.tools.client import ApiError

from parley import bus
from parley.auth import Passwords, issue_token
from parley.bus import buckets, ensure
from parley.ids import new_device_id, new_session_id, new_user_id
from parley.settings import Settings
from parley.store import open_store
from tests.integration.cluster import SECRET
from tests.integration.conftest import PASSWORD

pytestmark = pytest.mark.integration


async def expect(code: str, status: int, call) -> dict:
    with pytest.raises(ApiError) as info:
        await call
    assert (info.value.status, info.value.code) == (status, code), info.value.body
    assert info.value.body["message"]
    return info.value.body


async def test_signup_and_login_errors(world):
    api = world.api
    alice = await world.person("alice")
    await expect("username_taken", 409, api.signup(alice.name, PASSWORD))
    await expect("bad_credentials", 401, api.login(alice.name, "wrong password"))
    await expect("bad_credentials", 401, api.login("nobody_here", PASSWORD))
    body = await expect("bad_field", 400, api.signup("x", PASSWORD))
    assert body["field"] == "username"
    await expect("bad_field", 400, api.signup("valid_name", "short"))
    await expect("bad_json", 400, api.call("POST", "/v1/signup", body=[1, 2]))
    await expect("not_found", 404, api.call("GET", "/v1/nowhere"))
    await expect("unknown_device", 404, api.login(alice.name, PASSWORD, device_id=new_device_id()))


async def test_login_returns_token_device_and_placement(world):
    alice = await world.person("alice")
    login = alice.logins[-1]
    assert login["user"]["username"] == alice.name and login["expires_at"] > time.time()
    assert login["node"]["url"].startswith("ws://127.0.0.1:") and login["cursor"] == ""
    same_device = await alice.login(device_id=login["device_id"])
    assert same_device["device_id"] == login["device_id"]
    devices = await world.api.call("GET", "/v1/devices", same_device["token"])
    assert [d["id"] for d in devices["devices"]] == [login["device_id"]]


async def test_tokens_bad_expired_and_revoked(world):
    api = world.api
    alice = await world.person("alice")
    await expect("bad_token", 401, api.call("GET", "/v1/me"))
    await expect("bad_token", 401, api.call("GET", "/v1/me", "garbage"))
    expired, _ = issue_token(SECRET, user=new_user_id(), device=new_device_id(), session=new_session_id(),
                             now=int(time.time()) - 100, ttl_s=10)
    await expect("token_expired", 401, api.call("GET", "/v1/me", expired))
    token = alice.token
    assert (await api.call("GET", "/v1/me", token))["user"]["id"] == alice.id
    await api.call("POST", "/v1/logout", token)
    await expect("session_revoked", 401, api.call("GET", "/v1/me", token))


async def test_profile_and_user_lookup(world):
    api = world.api
    alice, bob = await world.person("alice"), await world.person("bob")
    me = await api.call("PATCH", "/v1/me", alice.token, {"display_name": "Alice A.", "bio": "hi"})
    assert (me["user"]["display_name"], me["user"]["bio"]) == ("Alice A.", "hi")
    found = await api.call("GET", "/v1/users", bob.token, params={"username": alice.name})
    assert found["user"]["display_name"] == "Alice A."
    assert (await api.call("GET", f"/v1/users/{alice.id}", bob.token))["user"]["username"] == alice.name
    await expect("unknown_user", 404, api.call("GET", f"/v1/users/{new_user_id()}", bob.token))
    await expect("bad_field", 400, api.call("GET", "/v1/users/not-an-id", bob.token))
    await expect("bad_field", 400, api.call("PATCH", "/v1/me", alice.token, {"display_name": "  "}))


async def test_friend_requests_and_dm_rules(world):
    api = world.api
    alice, bob, eve = await world.person("alice"), await world.person("bob"), await world.person("eve")
    await expect("not_friends", 403, api.call("POST", "/v1/conversations", alice.token, {"user_id": bob.id}))
    assert (await api.call("POST", "/v1/friends", alice.token, {"user_id": bob.id}))["state"] == "outgoing"
    lists = await api.call("GET", "/v1/friends", bob.token)
    assert [u["id"] for u in lists["incoming"]] == [alice.id] and lists["friends"] == []
    await expect("not_friends", 403, api.call("POST", "/v1/conversations", alice.token, {"user_id": bob.id}))
    assert (await api.call("POST", "/v1/friends", bob.token, {"user_id": alice.id}))["state"] == "friends"
    conv = (await api.call("POST", "/v1/conversations", alice.token, {"user_id": bob.id}))["conversation"]
    assert {m["id"] for m in conv["members"]} == {alice.id, bob.id} and conv["last_message"] is None
    again = (await api.call("POST", "/v1/conversations", bob.token, {"user_id": alice.id}))["conversation"]
    assert again["id"] == conv["id"]
    await expect("unknown_user", 404, api.call("POST", "/v1/friends", alice.token, {"user_id": new_user_id()}))
    await expect("bad_field", 400, api.call("POST", "/v1/friends", alice.token, {"user_id": alice.id}))
    await expect("not_member", 403, api.call("GET", f"/v1/conversations/{conv['id']}/messages", eve.token))
    await expect("unknown_conversation", 404, api.call("GET", "/v1/conversations/dm.x.y/messages", eve.token))
    await api.call("DELETE", f"/v1/friends/{alice.id}", bob.token)
    assert (await api.call("GET", "/v1/friends", alice.token))["friends"] == []


async def test_conversation_list_and_history_pages(world):
    api = world.api
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await alice.device(node=0)
    ids = [(await a.send(conv, f"m{i}"))["id"] for i in range(25)]
    listed = await api.call("GET", "/v1/conversations", bob.token)
    assert listed["conversations"][0]["id"] == conv
    assert listed["conversations"][0]["last_message"]["id"] == ids[-1]
    url = f"/v1/conversations/{conv}/messages"
    page1 = await api.call("GET", url, bob.token, params={"limit": 10})
    assert [m["id"] for m in page1["messages"]] == ids[::-1][:10] and page1["more"] is True
    page2 = await api.call("GET", url, bob.token, params={"limit": 10, "before": page1["messages"][-1]["id"]})
    assert [m["id"] for m in page2["messages"]] == ids[::-1][10:20]
    page3 = await api.call("GET", url, bob.token, params={"limit": 10, "before": page2["messages"][-1]["id"]})
    assert [m["id"] for m in page3["messages"]] == ids[::-1][20:] and page3["more"] is False
    forward = await api.call("GET", url, bob.token, params={"after": ids[19]})
    assert [m["id"] for m in forward["messages"]] == ids[20:]
    await expect("bad_field", 400, api.call("GET", url, bob.token, params={"limit": 0}))
    await expect("bad_field", 400, api.call("GET", url, bob.token, params={"limit": 500}))
    await expect("bad_field", 400, api.call("GET", url, bob.token, params={"order": "sideways"}))


async def test_refresh_gives_a_new_token_for_the_same_session(world):
    alice = await world.person("alice")
    fresh = await world.api.call("POST", "/v1/refresh", alice.token)
    assert fresh["token"] != alice.token and fresh["expires_at"] >= alice.logins[-1]["expires_at"]
    assert (await world.api.call("GET", "/v1/me", fresh["token"]))["device_id"] == alice.logins[-1]["device_id"]
    await world.api.call("POST", "/v1/logout", fresh["token"])
    await expect("session_revoked", 401, world.api.call("POST", "/v1/refresh", alice.token))


async def test_oversized_request_bodies_get_a_json_error(world):
    await expect("too_large", 413, world.api.call("POST", "/v1/signup", body={"username": "x" * 100_000}))


async def test_history_takes_ids_up_to_2_53_minus_1(world):
    alice, bob = await world.person("alice"), await world.person("bob")
    url = f"/v1/conversations/{await alice.befriend(bob)}/messages"
    for name in ("before", "after"):
        page = await world.api.call("GET", url, bob.token, params={name: 2**53 - 1})
        assert page["messages"] == []
        body = await expect("bad_field", 400, world.api.call("GET", url, bob.token, params={name: 2**53}))
        assert body["field"] == name


async def test_a_malformed_device_id_in_a_push_token_path_is_bad_field(world):
    alice = await world.person("alice")
    for method, body in (("DELETE", None), ("PUT", {"platform": "web", "token": "t" * 40})):
        got = await expect("bad_field", 400, world.api.call(method, "/v1/devices/not-an-id/push-token",
                                                            alice.token, body))
        assert got["field"] == "device_id"


async def test_opening_a_dm_after_an_unfriend_is_not_friends_and_the_dm_stays_listed(world):
    api = world.api
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    assert (await api.call("POST", "/v1/conversations", alice.token, {"user_id": bob.id}))["conversation"]["id"] == conv
    await api.call("DELETE", f"/v1/friends/{alice.id}", bob.token)
    for me, other in ((alice, bob), (bob, alice)):
        await expect("not_friends", 403, api.call("POST", "/v1/conversations", me.token, {"user_id": other.id}))
        assert [c["id"] for c in (await api.call("GET", "/v1/conversations", me.token))["conversations"]] == [conv]
        await api.call("GET", f"/v1/conversations/{conv}/messages", me.token)


async def test_group_full_is_409_on_create_as_on_add(world):
    alice = await world.person("alice")
    cap = world.cluster.settings.group_max_members
    others = [new_user_id() for _ in range(cap)]  # the cap is checked before friendship
    body = await expect("group_full", 409, world.api.call("POST", "/v1/groups", alice.token,
                                                          {"name": "big", "members": others}))
    assert body["limit"] == cap
    await expect("group_full", 409, world.api.call("POST", "/v1/groups", alice.token,
                                                   {"name": "bigger", "members": [*others, new_user_id()]}))
    assert (await world.api.call("GET", "/v1/conversations", alice.token))["conversations"] == []


async def test_every_api_answer_says_nosniff(world, cluster):
    alice = await world.person("alice")
    auth = {"Authorization": f"Bearer {alice.token}"}
    asks = [("GET", "/v1/me", auth, None, 200), ("GET", "/v1/me", {}, None, 401),
            ("GET", "/v1/nowhere", {}, None, 404), ("DELETE", "/v1/signup", {}, None, 405),
            ("POST", "/v1/signup", {}, b"[1]", 400), ("POST", "/v1/signup", {}, b"x" * 100_000, 413),
            ("GET", "/", {}, None, 200), ("GET", "/healthz", {}, None, 200)]
    for method, path, headers, data, status in asks:
        async with world.http.request(method, cluster.api_url + path, headers=headers, data=data) as resp:
            assert (resp.status, resp.headers.get("X-Content-Type-Options")) == (status, "nosniff"), path


async def test_the_web_pages_test_hooks_are_not_served_by_default(world, cluster):
    assert not cluster.settings.web_test_hooks
    async with world.http.get(cluster.api_url + "/") as resp:
        assert "testhooks" not in await resp.text()
    async with world.http.get(cluster.api_url + "/static/testhooks.js") as resp:
        assert resp.status == 404
    async with world.http.get(cluster.api_url + "/static/main.js") as resp:
        assert resp.status == 200 and "window.parleyTest" not in await resp.text()


async def test_the_web_pages_test_hooks_are_served_when_turned_on():
    app = make_app(Settings(web_test_hooks=True), store=None, nc=None)  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as client:
        page = await (await client.get("/")).text()
        assert '<script type="module" src="/static/testhooks.js"></script>' in page
        hooks = await client.get("/static/testhooks.js")
        assert hooks.status == 200 and "window.parleyTest" in await hooks.text()


async def test_a_login_rehashes_a_password_hashed_with_other_argon2_parameters(world, cluster):
    alice = await world.person("alice")
    store = open_store(cluster.settings)
    await store.migrate()
    dearer = cluster.settings.replace(argon2_time_cost=cluster.settings.argon2_time_cost + 1)
    old = (await store.user_by_name(alice.name))[1]
    assert f"t={cluster.settings.argon2_time_cost}," in old
    nc = await bus.connect(dearer, "test-api")
    try:
        app = make_app(dearer, store=store, nc=nc)
        app[LIMITS] = AuthLimits(KvCounters(await ensure.open_bucket(nc.jetstream(), buckets.auth_limits(dearer))),
                                 dearer)  # what run_api adds: the brute-force counters, shared in NATS KV
        async with TestClient(TestServer(app)) as client:
            resp = await client.post("/v1/login", json={"username": alice.name, "password": PASSWORD})
            assert resp.status == 200
    finally:
        await nc.close()
    new = (await store.user_by_name(alice.name))[1]
    assert f"t={dearer.argon2_time_cost}," in new and Passwords().verify(new, PASSWORD)
    await alice.login()  # the cluster's API (its own parameters) takes the new hash, and rehashes it back
    assert f"t={cluster.settings.argon2_time_cost}," in (await store.user_by_name(alice.name))[1]
    await store.close()
