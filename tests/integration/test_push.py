"""Push through the real firebase-admin code path, against a local stand-in for FCM's HTTP API.

A cluster of its own (the pusher needs the service-account file at start): one node, grace 1.5 s.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aiohttp
import pytest
from parley.tools.client import ApiError, Device
from parley.tools.fcm_stub import FcmStub, service_account_file

from tests.integration.cluster import Cluster, free_port
from tests.integration.conftest import Person, World
from tests.poll import eventually

pytestmark = pytest.mark.integration
TOKEN = "fcm-token-{}-" + "x" * 120


@pytest.fixture(scope="module")
def push_cluster(tmp_path_factory: pytest.TempPathFactory, fcm: FcmStub) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("push-cluster")
    key = service_account_file(root, fcm.token_uri)
    c = Cluster(root, nodes=1, fcm_credentials=str(key), fcm_endpoint=fcm.url, push_grace_s=1.5,
                pusher_port=free_port())
    try:
        c.start()
        c.start_pusher()
        yield c
    finally:
        c.shutdown()


@pytest.fixture
async def pworld(push_cluster: Cluster, http: aiohttp.ClientSession, fcm: FcmStub) -> AsyncIterator[World]:
    fcm.unregistered.clear()
    w = World(push_cluster, http)
    yield w
    await w.close()


async def register(world: World, person, n: int = 1, platform: str = "android") -> list[str]:
    """``n`` devices of ``person`` with push tokens; returns the tokens."""
    tokens = []
    for _ in range(n):
        login = await person.login()
        token = TOKEN.format(login["device_id"])
        await world.api.call("PUT", f"/v1/devices/{login['device_id']}/push-token", login["token"],
                             {"platform": platform, "token": token})
        tokens.append(token)
    return tokens


async def until(check, what: str, timeout: float = 15) -> None:
    await eventually(check, timeout=timeout, what=what)


def pushed_ids(fcm: FcmStub, token: str) -> list[str]:
    return [p["message"]["data"]["message_id"] for p in fcm.delivered(token)]


@dataclass
class Witness:
    """Someone offline with a push token, in a DM with the sender: pushes to them mark the pusher's progress."""

    fcm: FcmStub
    sender: Device
    conv: str
    token: str

    @classmethod
    async def of(cls, world: World, fcm: FcmStub, sender: Person, device: Device) -> Witness:
        witness = await world.person("witness")
        conv = await sender.befriend(witness)
        (token,) = await register(world, witness)
        return cls(fcm, device, conv, token)

    async def pusher_caught_up(self) -> None:
        """Until the pusher is done with every message sent before this call: nothing more can come of
        them (short of a redelivery after the consumer's 120 s ack_wait).

        The pusher handles one fetched batch at a time: waits out the grace, pushes, acks, fetches again.
        A first message's push shows its batch was fetched; a second, sent then, is in a later batch, so
        its push shows the first batch, and every message before it, done."""
        for n in range(2):
            sent = await self.sender.send(self.conv, f"witness {n}")
            await until(lambda sent=sent: str(sent["id"]) in pushed_ids(self.fcm, self.token), f"witness push {n}")


async def test_offline_recipient_gets_one_push_per_device_with_payload_and_bearer(pworld, fcm):
    alice, bob = await pworld.person("alice"), await pworld.person("bob")
    conv = await alice.befriend(bob)
    tokens = await register(pworld, bob, n=2)
    a = await alice.device(node=0)
    witness = await Witness.of(pworld, fcm, alice, a)
    sent = [await a.send(conv, f"are you there? {i}") for i in range(3)]
    await until(lambda: all(len(fcm.delivered(t)) == 3 for t in tokens), "three pushes to each of bob's devices")
    await witness.pusher_caught_up()  # nothing more comes
    for t in tokens:
        pushes = fcm.delivered(t)
        assert len(pushes) == 3
        assert sorted(int(p["message"]["data"]["message_id"]) for p in pushes) == [s["id"] for s in sent]
        first = pushes[0]
        assert first["authorization"].startswith("Bearer ")
        assert first["message"]["notification"]["title"] == alice.name  # display name = username here
        assert first["message"]["notification"]["body"].startswith("are you there?")
        assert first["message"]["data"]["conv"] == conv
        assert first["message"]["android"]["collapse_key"] == conv
    assert not fcm.delivered(TOKEN.format(a.welcome["device"]))  # never the sender


async def test_a_reply_is_pushed_edits_reactions_and_deletes_are_not(pworld, fcm):
    """ADR 0025: actions are entries of the conversation, but nobody is woken up for them."""
    alice, bob = await pworld.person("alice"), await pworld.person("bob")
    conv = await alice.befriend(bob)
    (token,) = await register(pworld, bob)
    a = await alice.device(node=0)
    witness = await Witness.of(pworld, fcm, alice, a)
    sent = await a.send(conv, "first")
    reply = await a.send(conv, "and a reply", reply_to=sent["id"])
    await a.send(conv, "first!", kind="edit", target=sent["id"])
    await a.send(conv, "", kind="react", target=reply["id"], emoji="👍")
    await a.send(conv, "", kind="delete", target=sent["id"])
    await witness.pusher_caught_up()
    assert sorted(int(i) for i in pushed_ids(fcm, token)) == [sent["id"], reply["id"]]


async def test_attachments_without_text_are_pushed_as_photo_or_file(pworld, fcm):
    """ADR 0024: the notification says "Photo" for images only, "File" otherwise, the text when there is one."""
    alice, bob = await pworld.person("alice"), await pworld.person("bob")
    conv = await alice.befriend(bob)
    [token] = await register(pworld, bob)
    a = await alice.device(node=0)
    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b550000000a49444154789c63"
                        "6000000002000148afa4710000000049454e44ae426082")  # 1x1 grey, as Pillow writes it
    photo = await pworld.api.upload(alice.token, conv, png, name="p.png")
    pdf = await pworld.api.upload(alice.token, conv, b"%PDF-1.4\n", name="d.pdf")
    text = await pworld.api.upload(alice.token, conv, b"%PDF-1.4\n", name="e.pdf")
    sent = [await a.send(conv, "", attachments=[photo["id"]]), await a.send(conv, "", attachments=[pdf["id"]]),
            await a.send(conv, "see this", attachments=[text["id"]])]
    await until(lambda: len(fcm.delivered(token)) == 3, "three pushes to bob")
    said = {int(p["message"]["data"]["message_id"]): p["message"]["notification"]["body"]
            for p in fcm.delivered(token)}
    assert [said[s["id"]] for s in sent] == ["Photo", "File", "see this"]


async def test_online_recipient_gets_none_and_one_who_comes_online_in_the_grace_gets_none(pworld, fcm):
    alice, bob, carol = await pworld.person("alice"), await pworld.person("bob"), await pworld.person("carol")
    ab, ac = await alice.befriend(bob), await alice.befriend(carol)
    bob_tokens, carol_tokens = await register(pworld, bob), await register(pworld, carol)
    a = await alice.device(node=0)
    witness = await Witness.of(pworld, fcm, alice, a)
    await bob.device(node=0)  # online: takes it and acks
    await a.send(ac, "warming up carol's conversation")
    await until(lambda: len(fcm.delivered(carol_tokens[0])) == 1, "the warm-up pushed to carol")
    await a.send(ab, "bob is here")
    sent = await a.send(ac, "carol is coming")
    await asyncio.sleep(0.3)  # the scenario, not a wait: carol comes a little later, still within the grace
    await carol.device(node=0)  # comes online within the 1.5 s grace, syncs and acks
    await witness.pusher_caught_up()
    assert fcm.delivered(bob_tokens[0]) == []
    assert [p["message"]["data"]["message_id"] for p in fcm.delivered(carol_tokens[0])] != [str(sent["id"])]
    assert len(fcm.delivered(carol_tokens[0])) == 1  # only the warm-up


async def test_unregistered_token_is_removed_and_others_still_get_theirs(pworld, fcm, push_cluster):
    alice, bob = await pworld.person("alice"), await pworld.person("bob")
    conv = await alice.befriend(bob)
    good, bad = await register(pworld, bob, n=2)
    fcm.unregistered.add(bad)
    a = await alice.device(node=0)
    witness = await Witness.of(pworld, fcm, alice, a)
    await a.send(conv, "one")
    await until(lambda: len(fcm.delivered(good)) == 1, "'one' pushed to the good token")
    # no wait: "two" comes in a later batch than "one" (being pushed now), whose FCM answers remove the bad token
    await a.send(conv, "two")
    await until(lambda: len(fcm.delivered(good)) == 2, "'two' pushed to the good token")
    await witness.pusher_caught_up()  # an attempt on the bad token for "two" would have been made by now
    attempts_on_bad = [s for s in fcm.sends if s["message"]["token"] == bad]
    assert len(attempts_on_bad) == 1  # removed after the first answer: never tried again
    metrics = await pworld.http.get(f"http://127.0.0.1:{push_cluster.settings.pusher_port}/metrics")
    text = await metrics.text()
    assert 'parley_pushes_total{outcome="token_rejected"}' in text and "parley_push_tokens_removed_total" in text


async def test_503_is_retried_and_a_restart_sends_no_duplicates(pworld, fcm, push_cluster):
    alice, bob = await pworld.person("alice"), await pworld.person("bob")
    conv = await alice.befriend(bob)
    (token,) = await register(pworld, bob)
    a = await alice.device(node=0)
    witness = await Witness.of(pworld, fcm, alice, a)
    fcm.fail_next(2, status=503)  # firebase-admin retries 503 itself
    await a.send(conv, "through a flaky FCM")
    await until(lambda: len(fcm.delivered(token)) == 1, "a push through two 503s")
    assert [s["status"] for s in fcm.sends if s["message"]["token"] == token] == [503, 503, 200]
    fcm.fail_next(2, status=429)  # quota: the library gives up at once; the pusher backs off and retries
    await a.send(conv, "over quota")
    await until(lambda: len(fcm.delivered(token)) == 2, "a push through two 429s")
    assert [s["status"] for s in fcm.sends if s["message"]["token"] == token][3:] == [429, 429, 200]
    child = push_cluster.roles["pusher"]
    push_cluster.stop("pusher")  # a graceful stop closes firebase-admin's client and exits 0
    assert child.proc.returncode == 0 and "Traceback" not in push_cluster.log_text("pusher")
    # Started off this loop: it serves the FCM stand-in, which a starting pusher with pushes due calls at
    # once (firebase-admin fetches its token synchronously, stalling the pusher's /readyz until answered).
    await asyncio.to_thread(push_cluster.start_pusher)
    sent = [await a.send(conv, f"burst {i}") for i in range(20)]
    await asyncio.sleep(0.2)  # the scenario, not a wait: the pusher has fetched part of the burst
    push_cluster.kill("pusher")  # mid-stream: some pushed, some claimed, some not yet fetched
    await asyncio.to_thread(push_cluster.start_pusher)  # pushes are due at once now: see above
    await until(lambda: len(fcm.delivered(token)) >= 2 + 15, "most of the burst pushed after the restart", timeout=20)
    await witness.pusher_caught_up()  # the new pusher is past the burst
    ids = [p["message"]["data"]["message_id"] for p in fcm.delivered(token)]
    assert len(ids) == len(set(ids))  # at most one push per (message, device)
    assert set(ids[2:]) <= {str(s["id"]) for s in sent}


async def test_muted_conversation_and_muted_user_get_nothing_and_hidden_text_is_neutral(pworld, fcm):
    alice, bob, carol = await pworld.person("alice"), await pworld.person("bob"), await pworld.person("carol")
    ab, ac = await alice.befriend(bob), await alice.befriend(carol)
    (bob_token,), (carol_token,) = await register(pworld, bob), await register(pworld, carol)
    await pworld.api.call("PUT", f"/v1/conversations/{ab}/mute", bob.token, {"muted": True})
    await pworld.api.call("PATCH", "/v1/push/settings", carol.token, {"hide_text": True})
    a = await alice.device(node=0)
    witness = await Witness.of(pworld, fcm, alice, a)
    await a.send(ab, "muted")
    await a.send(ac, "a secret")
    await until(lambda: len(fcm.delivered(carol_token)) == 1, "the secret pushed to carol")
    await witness.pusher_caught_up()  # bob's push, had there been one, is out
    assert fcm.delivered(bob_token) == []
    assert fcm.delivered(carol_token)[0]["message"]["notification"]["body"] == "New message"
    settings = await pworld.api.call("GET", "/v1/push/settings", bob.token)
    assert settings == {"muted": False, "hide_text": False, "muted_conversations": [ab]}


async def test_bad_registrations_and_a_broken_key_file(pworld, tmp_path, push_cluster):
    alice, bob = await pworld.person("alice"), await pworld.person("bob")
    login = await alice.login()
    device = login["device_id"]

    async def refused(body, token=login["token"], path=f"/v1/devices/{device}/push-token"):
        with pytest.raises(ApiError) as info:
            await pworld.api.call("PUT", path, token, body)
        return info.value.status, info.value.code, info.value.body.get("field")

    assert await refused({"platform": "blackberry", "token": TOKEN.format(1)}) == (400, "bad_field", "platform")
    assert await refused({"platform": "web", "token": "short"}) == (400, "bad_field", "token")
    assert await refused({"platform": "web", "token": "has spaces " * 10}) == (400, "bad_field", "token")
    assert await refused({"platform": "web", "token": TOKEN.format(2)}, token=bob.token) == (
        404, "unknown_device", "device_id")  # someone else's device
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "service_account", "private_key": "not a key"}')
    env = {**push_cluster.settings.as_env(), "PARLEY_FCM_CREDENTIALS": str(broken), "PARLEY_PUSHER_PORT": "0"}
    done = subprocess.run([sys.executable, "-m", "parley", "pusher"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and f"PARLEY_FCM_CREDENTIALS={broken}" in done.stderr
