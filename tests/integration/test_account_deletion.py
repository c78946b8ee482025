"""Deleting an account on a real cluster (docs/adr/0015): the password again, then nothing personal is
left (profile, devices, push tokens, friendships, blocks, group memberships), every session ends and live
connections close at once, the messages stay under a placeholder, and the username is never free again."""

from __future__ import annotations

import sqlite3

import pytest
from parley.tools.client import ApiError, Device

from parley.ids import UserId
from parley.store.sqlite import SQLiteStore
from tests.integration.conftest import PASSWORD, World
from tests.integration.refusals import expect
from tests.poll import eventually

pytestmark = pytest.mark.integration
PUSH_TOKEN = "fcm-token-of-{}-" + "x" * 40



async def stored(world: World, user: str) -> tuple[list, list]:
    """The user's devices and push tokens, read from the cluster's store itself."""
    store = SQLiteStore(world.cluster.settings.sqlite_path)
    try:
        return await store.list_devices(UserId(user)), await store.push_tokens([UserId(user)])
    finally:
        await store.close()


async def test_deleting_an_account_erases_it_ends_its_sessions_and_keeps_its_messages(world):
    api = world.api
    alice, bob, carol = await world.person("alice"), await world.person("bob"), await world.person("carol")
    dm = await alice.befriend(bob)
    await alice.befriend(carol)
    await api.call("PUT", f"/v1/blocks/{carol.id}", bob.token)  # bob and carol: blocks stay theirs
    await api.call("PUT", f"/v1/blocks/{alice.id}", carol.token)  # carol blocked alice: this one goes
    group = (await api.call("POST", "/v1/groups", alice.token, {"name": "alice's", "members": [bob.id]}))
    group_id = group["conversation"]["id"]
    a, b = await alice.device(node=0), await bob.device(node=1)
    other = await alice.login()  # a second session, without a connection
    await api.call("PUT", f"/v1/devices/{other['device_id']}/push-token", other["token"],
                   {"platform": "android", "token": PUSH_TOKEN.format(other["device_id"])})
    sent = await a.send(dm, "remember me")
    await a.send(group_id, "hello group")
    assert len((await stored(world, alice.id))[1]) == 1

    wrong = await expect("wrong_password", 403,
                         api.call("DELETE", "/v1/account", alice.token, {"password": "nope!!!!"}))
    assert wrong["field"] == "password"
    await expect("bad_field", 400, api.call("DELETE", "/v1/account", alice.token, {}))
    await expect("bad_json", 400, api.call("DELETE", "/v1/account", alice.token))
    await api.call("DELETE", "/v1/account", alice.token, {"password": PASSWORD})

    assert (await a.closed)[0] == 4003  # the live connection, at once
    for token in (alice.token, other["token"]):
        await expect("session_revoked", 401, api.call("GET", "/v1/me", token))
    await expect("bad_credentials", 401, api.login(alice.name, PASSWORD))
    again = Device(world.http, world.cluster.node_url(0), other["token"])
    with pytest.raises(ConnectionError, match=r"session_revoked.*close 4003"):
        await again.connect()
    assert await stored(world, alice.id) == ([], [])  # devices and push tokens
    # the profile is a placeholder; the username is not found, and never free again
    placeholder = (await api.call("GET", f"/v1/users/{alice.id}", bob.token))["user"]
    assert placeholder == {"id": alice.id, "username": "", "display_name": "", "bio": "", "deleted": True,
                           "created_at": placeholder["created_at"]}
    await expect("unknown_user", 404, api.call("GET", "/v1/users", bob.token, params={"username": alice.name}))
    await expect("username_taken", 409, api.signup(alice.name, "another password"))
    # friendships, blocks and memberships are gone; the messages stay, from alice's id
    assert (await api.call("GET", "/v1/friends", bob.token))["friends"] == []
    assert (await api.call("GET", "/v1/blocks", carol.token))["blocks"] == []
    assert [u["id"] for u in (await api.call("GET", "/v1/blocks", bob.token))["blocks"]] == [carol.id]
    shown = (await api.call("GET", f"/v1/groups/{group_id}", bob.token))["conversation"]
    assert [m["id"] for m in shown["members"]] == [bob.id] and shown["roles"] == {bob.id: "owner"}
    page = await api.call("GET", f"/v1/conversations/{dm}/messages", bob.token)
    assert [(m["id"], m["from"], m["body"]) for m in page["messages"]] == [(sent["id"], alice.id, "remember me")]
    await b.wait_for(lambda: any(e["type"] == "group" and e.get("removed") == [alice.id] for e in b.events))
    with pytest.raises(ApiError) as info:  # the DM is read-only, and nobody can befriend the account
        await b.send(dm, "still there?")
    assert info.value.body["code"] == "not_friends"
    await expect("unknown_user", 404, api.call("POST", "/v1/friends", bob.token, {"user_id": alice.id}))
    await expect("unknown_user", 404, api.call("PUT", f"/v1/blocks/{alice.id}", bob.token))


async def test_a_group_whose_owner_leaves_by_deletion_passes_to_an_admin(world):
    api = world.api
    alice, bob, carol = await world.person("alice"), await world.person("bob"), await world.person("carol")
    await alice.befriend(bob)
    await alice.befriend(carol)
    group = (await api.call("POST", "/v1/groups", alice.token,
                            {"name": "g", "members": [bob.id, carol.id]}))["conversation"]["id"]
    await api.call("PUT", f"/v1/groups/{group}/members/{carol.id}/role", alice.token, {"role": "admin"})
    await api.call("DELETE", "/v1/account", alice.token, {"password": PASSWORD})

    async def roles() -> dict:
        return (await api.call("GET", f"/v1/groups/{group}", bob.token))["conversation"]["roles"]

    await eventually(lambda: _is(roles(), {carol.id: "owner"}), what="carol owning the group")


async def _is(got, want) -> bool:
    return await got == want


async def test_a_deletion_cut_short_after_the_profile_was_erased_is_finished_by_calling_again(world):
    """On Cassandra the erasure is several writes, the first of which drops the password: a live session of
    that half-erased account finishes it without one (here the first write is made by hand)."""
    alice, bob = await world.person("alice"), await world.person("bob")
    await alice.befriend(bob)
    db = sqlite3.connect(world.cluster.settings.sqlite_path, timeout=10)
    try:
        with db:
            db.execute("UPDATE users SET display_name = '', bio = '', password_hash = '', deleted_at = 1 WHERE id = ?",
                       (alice.id,))
    finally:
        db.close()
    await expect("bad_credentials", 401, world.api.login(alice.name, PASSWORD))
    await world.api.call("DELETE", "/v1/account", alice.token, {"password": "whatever it was"})
    await expect("session_revoked", 401, world.api.call("GET", "/v1/me", alice.token))
    assert (await world.api.call("GET", "/v1/friends", bob.token))["friends"] == []
    assert await stored(world, alice.id) == ([], [])


async def test_a_deleted_account_reads_as_never_seen(world):
    """Its last activity stays in the presence worker's ``last_seen`` bucket (its devices' last beats can
    write it again after the deletion); the readers, the API and a node's ``presence`` frame, hide it."""
    api = world.api
    alice, bob = await world.person("alice"), await world.person("bob")
    await alice.befriend(bob)
    a, b = await alice.device(node=0), await bob.device(node=1)
    await a.close()

    async def seen_offline() -> bool:
        got = (await api.call("GET", f"/v1/presence?user_ids={alice.id}", bob.token))["presence"][0]
        return got["online"] is False and got["last_active_at"] is not None

    await eventually(seen_offline, timeout=5 * world.cluster.settings.presence_timeout_s,
                     what="alice offline with a last activity")
    await api.call("DELETE", "/v1/account", alice.token, {"password": PASSWORD})
    never = {"user": alice.id, "online": False, "last_active_at": None}
    shown = (await api.call("GET", f"/v1/presence?user_ids={alice.id},{bob.id}", bob.token))["presence"]
    assert shown[0] == never and shown[1]["online"] is True  # the others as before
    await b.send_frame({"type": "presence", "users": [alice.id, bob.id]})
    await b.wait_for(lambda: any(e["type"] == "presence" and len(e["users"]) == 2 for e in b.events))
    asked = next(e for e in b.events if e["type"] == "presence" and len(e["users"]) == 2)
    assert asked["users"][0] == never and asked["users"][1]["online"] is True
