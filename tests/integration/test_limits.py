"""Limits on every frame and endpoint trip with their documented codes, on real servers.

The session's cluster runs with its limits raised (``limits_scale``); these tests start a node and two APIs
of their own at the production figures. The node's budgets refill at 0.01 a second, so exactly the burst
passes and the next frame is refused whatever the machine's speed; strikes there fade as slowly. The two
APIs trust 127.0.0.1 as a proxy, so each test gives its requests addresses of their own
(``X-Forwarded-For``) and counts from other tests do not reach it; they share the NATS KV counters.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import aiohttp
import nats
import orjson
import pytest
from parley.api.limits import KvCounters
from parley.tools.client import Device

from parley.bus import buckets, ensure
from parley.ids import new_user_id
from parley.settings import Settings
from tests.integration.conftest import PASSWORD, Person, World

pytestmark = pytest.mark.integration
SLOW = 0.01  # tokens a second: nothing comes back during a test
BURSTS = {"sync": 5, "presence": 500, "read": 20, "typing": 10}
# the limit figures are the defaults; the account and address windows are stretched to the signup window's
# hour (same bucket configuration), so a test does not straddle a window's end
WINDOWS = {"login_account_window_s": 3600.0, "auth_address_window_s": 3600.0}


@pytest.fixture(scope="module")
def strict(cluster) -> Iterator[dict[str, str]]:
    names = {"node": "strict-node", "api1": "strict-api1", "api2": "strict-api2", "hash": "hash-api"}
    urls = {"node": cluster.start_extra_node(
        names["node"], limits_scale=1.0, strike_decay_per_s=SLOW,
        **{f"{kind}_rate_per_s": SLOW for kind in ("sync", "presence", "read", "typing", "cheap")})}
    for api in ("api1", "api2"):
        urls[api] = cluster.start_extra_api(names[api], limits_scale=1.0, trusted_proxies="127.0.0.1",
                                            presence_rate_per_s=SLOW, **WINDOWS)
    urls["hash"] = cluster.start_extra_api(names["hash"], hash_concurrency=1, hash_wait_s=0.01,
                                           argon2_time_cost=3, argon2_memory_kib=65536)
    try:
        yield urls
    finally:
        for name in names.values():
            if name in cluster.roles:
                cluster.stop(name)


def address() -> str:
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


async def post(http: aiohttp.ClientSession, url: str, path: str, body: dict[str, Any], source: str,
               token: str | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {"X-Forwarded-For": source, **({"Authorization": f"Bearer {token}"} if token else {})}
    async with http.post(url + path, data=orjson.dumps(body), headers=headers) as r:
        raw = await r.read()
        return r.status, orjson.loads(raw) if raw else {}, dict(r.headers)


def assert_limited(status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
    assert (status, body["code"], body.get("retryable")) == (429, "rate_limited", True), body
    assert body["retry_after_ms"] > 0 and int(headers["Retry-After"]) >= 1


async def on_node(person: Person, url: str) -> Device:
    login = await person.login()
    dev = Device(person.world.http, url, login["token"])
    await dev.connect()
    await dev.synced.wait()
    person.devices.append(dev)
    return dev


def limited(dev: Device) -> list[dict[str, Any]]:
    return [e for e in dev.errors if e["code"] == "rate_limited"]


# ---- frame budgets ---------------------------------------------------------------------------------------

async def test_welcome_reports_the_frame_budgets(world: World, strict):
    a = await on_node(await world.person("w"), strict["node"])
    limits = a.welcome["limits"]
    assert limits["frames"]["sync"] == {"per_s": SLOW, "burst": 5}
    assert (limits["max_strikes"], limits["strike_decay_per_s"]) == (50, SLOW)


async def test_sync_over_budget_is_refused_and_other_connections_are_not(world: World, strict):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a, a2 = await on_node(alice, strict["node"]), await on_node(alice, strict["node"])
    for _ in range(BURSTS["sync"] + 1):
        await a.send_frame({"type": "sync"})
    await a.wait_for(lambda: limited(a))
    assert len(limited(a)) == 1 and limited(a)[0]["retry_after_ms"] > 0
    a2.synced.clear()  # the same user's other connection has its own budget
    await a2.send_frame({"type": "sync"})
    await a2.wait_for(a2.synced.is_set)
    assert not a2.errors
    assert (await a.send(conv, "sends have their own budget"))["status"] == "sent"


async def test_presence_is_budgeted_by_users_asked(world: World, strict):
    a = await on_node(await world.person("p"), strict["node"])
    many = [new_user_id() for _ in range(100)]
    for _ in range(BURSTS["presence"] // len(many)):  # the burst, 100 users a frame
        count = len([e for e in a.events if e["type"] == "presence"])
        await a.send_frame({"type": "presence", "users": many})
        await a.wait_for(lambda c=count: len([e for e in a.events if e["type"] == "presence"]) > c or a.errors)
    assert not a.errors
    await a.send_frame({"type": "presence", "users": many[:1]})
    await a.wait_for(lambda: a.errors)
    assert limited(a) == a.errors


async def test_read_and_typing_floods_are_refused_with_their_conversation(world: World, strict):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await on_node(alice, strict["node"])
    sent = await a.send(conv, "read me")
    for _ in range(BURSTS["read"] + 1):
        await a.send_frame({"type": "read", "conv": conv, "upto": sent["id"]})
    for _ in range(BURSTS["typing"] + 1):
        await a.send_frame({"type": "typing", "conv": conv})
    await a.wait_for(lambda: len(limited(a)) == 2)
    assert [e["conv"] for e in limited(a)] == [conv, conv]
    assert limited(a) == a.errors  # exactly the frame past each burst


async def refusals(http: aiohttp.ClientSession, url: str, name: str, **labels: str) -> float:
    """A counter's value on a process's /metrics page (``url``: its HTTP or WebSocket URL)."""
    base = url.replace("ws://", "http://").removesuffix("/ws")
    async with http.get(base + "/metrics") as r:
        page = await r.text()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in page.splitlines():
        if line.startswith(f"{name}{{{want}}} "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name}{{{want}}} on {base}/metrics")


async def test_refused_frames_are_counted_by_kind(world: World, strict):
    before = await refusals(world.http, strict["node"], "parley_node_limit_refusals_total", kind="typing")
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    a = await on_node(alice, strict["node"])
    for _ in range(BURSTS["typing"] + 1):
        await a.send_frame({"type": "typing", "conv": conv})
    await a.wait_for(lambda: limited(a))
    assert await refusals(world.http, strict["node"], "parley_node_limit_refusals_total", kind="typing") == before + 1


async def test_presence_over_http_is_budgeted_per_account_whatever_the_address(world: World, strict):
    reader, other = await world.person("hp"), await world.person("hq")
    many = ",".join(new_user_id() for _ in range(100))

    async def ask(person: Person, ids: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        headers = {"X-Forwarded-For": address(), "Authorization": f"Bearer {person.token}"}
        async with world.http.get(strict["api1"] + "/v1/presence", params={"user_ids": ids}, headers=headers) as r:
            return r.status, await r.json(), dict(r.headers)

    before = await refusals(world.http, strict["api1"], "parley_api_limit_refusals_total", limit="presence_account")
    for _ in range(BURSTS["presence"] // 100):  # the burst, 100 users a request, each from a new address
        assert (await ask(reader, many))[0] == 200
    assert_limited(*await ask(reader, many.split(",")[0]))
    assert (await ask(other, many))[0] == 200  # another account: its own budget
    after = await refusals(world.http, strict["api1"], "parley_api_limit_refusals_total", limit="presence_account")
    assert after == before + 1


async def test_strikes_are_not_reset_by_valid_frames(world: World, strict):
    a = await on_node(await world.person("s"), strict["node"])
    for _ in range(49):
        await a.send_frame("{oops")
    for i in range(30):  # valid, cheap frames: they used to wipe the count
        await a.send_frame({"type": "ping", "ts": i})
    await a.wait_for(lambda: len(a.pongs) == 30 and len(a.errors) == 49)
    assert not a.closed.done()
    await a.send_frame("{oops")  # the 50th strike outstanding
    code, _ = await asyncio.wait_for(a.closed, 10)
    assert code == 4029


# ---- HTTP ------------------------------------------------------------------------------------------------

async def test_failed_logins_lock_the_account_on_every_api(world: World, strict):
    alice, bob = await world.person("alice"), await world.person("bob")
    for i in range(5):  # each from another address: only the account's count adds up
        status, body, _ = await post(world.http, strict[f"api{i % 2 + 1}"], "/v1/login",
                                     {"username": alice.name, "password": "wrong password!"}, address())
        assert (status, body["code"]) == (401, "bad_credentials")
    source = address()
    for api in ("api1", "api2"):  # the right password too, on either API
        assert_limited(*await post(world.http, strict[api], "/v1/login",
                                   {"username": alice.name, "password": PASSWORD}, source))
    status, body, _ = await post(world.http, strict["api1"], "/v1/login",
                                 {"username": bob.name, "password": PASSWORD}, source)
    assert status == 200 and body["token"]  # another account from the same address


async def test_failed_logins_and_refreshes_from_one_address(world: World, strict):
    bob = await world.person("bob")
    source, other = address(), address()
    for i in range(10):
        status, _, _ = await post(world.http, strict[f"api{i % 2 + 1}"], "/v1/login",
                                  {"username": f"nobody_{secrets.token_hex(4)}", "password": "guess guess"}, source)
        assert status == 401
    for i in range(10):
        status, _, _ = await post(world.http, strict[f"api{i % 2 + 1}"], "/v1/refresh", {}, source,
                                  token="not-a-token")
        assert status == 401
    assert_limited(*await post(world.http, strict["api2"], "/v1/login",
                               {"username": bob.name, "password": PASSWORD}, source))
    assert_limited(*await post(world.http, strict["api1"], "/v1/refresh", {}, source, token=bob.token))
    status, _, _ = await post(world.http, strict["api1"], "/v1/refresh", {}, other, token=bob.token)
    assert status == 200  # the same user from another address


async def test_signups_per_address(world: World, strict):
    source = address()
    for i in range(20):
        status, body, _ = await post(world.http, strict[f"api{i % 2 + 1}"], "/v1/signup",
                                     {"username": f"su{i}_{secrets.token_hex(3)}", "password": PASSWORD}, source)
        assert status == 201, body
    assert_limited(*await post(world.http, strict["api1"], "/v1/signup",
                               {"username": f"su_{secrets.token_hex(3)}", "password": PASSWORD}, source))
    status, _, _ = await post(world.http, strict["api1"], "/v1/signup",
                              {"username": f"su_{secrets.token_hex(3)}", "password": PASSWORD}, address())
    assert status == 201


async def test_requests_past_an_addresss_budget_get_429(world: World, strict):
    source, other = address(), address()
    for _ in range(2000):  # burst 100, 20 a second after that: refused long before the end
        async with world.http.get(strict["api1"] + "/v1/me", headers={"X-Forwarded-For": source}) as r:
            if r.status == 429:
                assert_limited(r.status, await r.json(), dict(r.headers))
                break
            assert r.status == 401
    else:
        pytest.fail("never limited")
    async with world.http.get(strict["api1"] + "/v1/me", headers={"X-Forwarded-For": other}) as r:
        assert r.status == 401  # another address: its own budget


async def test_password_hashing_is_bounded(world: World, strict):
    async def signup() -> tuple[int, dict[str, Any], dict[str, str]]:
        return await post(world.http, strict["hash"], "/v1/signup",
                          {"username": f"h_{secrets.token_hex(4)}", "password": PASSWORD}, address())

    answers = await asyncio.gather(*(signup() for _ in range(6)))
    busy = [a for a in answers if a[0] == 503]
    assert busy and all(b["code"] == "busy" and b["retryable"] and h["Retry-After"] == "1" for _, b, h in busy)
    assert {a[0] for a in answers} == {201, 503}
    assert (await signup())[0] == 201  # the slot is free again


async def test_concurrent_attempts_on_one_counter_are_each_counted_in_a_few_writes(nats_url):
    """32 sign-ups from one address at once: each counted (before: 8 compare-and-set rounds, so only 8 were,
    the rest logged "contended, not counted"), in a few writes rather than one round of retries per attempt."""
    nc = await nats.connect(nats_url)
    try:
        kv = await ensure.open_bucket(nc.jetstream(), buckets.auth_limits(Settings()))
        counters = KvCounters(kv)
        await asyncio.gather(*(counters.add("signup_address.k.1") for _ in range(32)))
        assert await counters.read(["signup_address.k.1"]) == [32]
        assert (await kv.get("signup_address.k.1")).revision <= 4, "a few writes, not one per attempt"
    finally:
        await nc.close()
