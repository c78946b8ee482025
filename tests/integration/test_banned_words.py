"""Banned words live, on real servers: an entry added through the HTTP API is applied within a second by
every watcher of the ``banned_words`` bucket, and a removal likewise.

Two ``WordScreen``s connect as the ``node`` role (stand-ins for two edge nodes); an API process of this
module's own runs as the ``api`` role with one operator in ``PARLEY_ADMINS``, on the session's cluster
(so the bus permissions are the real ones, and the cluster's teardown fails on any violation).
"""

from __future__ import annotations

import io
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import orjson
import pytest

from parley import bus
from parley.ids import new_id
from parley.live.screening import Attempt
from parley.live.word_screen import WordScreen
from tests.integration.conftest import Person, World
from tests.poll import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def operator(world: World) -> Person:
    return await world.person("op")


@pytest.fixture
async def words_api(cluster, operator: Person) -> Iterator[str]:
    name = f"words-api-{secrets.token_hex(3)}"
    url = cluster.start_extra_api(name, admins=operator.id)
    try:
        yield url
    finally:
        cluster.stop(name)


@pytest.fixture
async def screens(cluster) -> AsyncIterator[list[WordScreen]]:
    settings = cluster.settings.replace(**cluster.auth.settings_for("node"))
    connections = [await bus.connect(settings, f"words-node-{i}") for i in range(2)]
    started = [WordScreen(settings, nc.jetstream()) for nc in connections]
    try:
        for screen in started:
            await screen.start()
        yield started
    finally:
        for screen in started:
            await screen.stop()
        for nc in connections:
            await nc.close()


async def call(http: aiohttp.ClientSession, method: str, url: str, token: str,
               body: Any = None) -> tuple[int, dict[str, Any]]:
    data = io.BytesIO(orjson.dumps(body)) if body is not None else None  # bytes over 1 MB warn in aiohttp
    async with http.request(method, url, data=data, headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status, orjson.loads(await r.read())


def attempt(text: str, room: str = "lobby") -> Attempt:
    return Attempt(room=room, user="u", text=text, now=time.time(), account_age_s=1e6, moderator=False)


async def verdicts(screens: list[WordScreen], text: str, room: str = "lobby") -> list[str]:
    return [(await s.screen(attempt(text, room))).action for s in screens]


async def test_an_added_word_applies_on_every_watcher_and_a_removed_one_stops(
        world: World, operator: Person, words_api: str, screens: list[WordScreen]):
    token = (await operator.login())["token"]
    word = "zorb" + secrets.token_hex(3)  # a word of this test's own: the bucket outlives tests
    text = f"you {word[0]}.{word[1:]} you"
    assert await verdicts(screens, text) == ["accept", "accept"]
    status, body = await call(world.http, "POST", words_api + "/v1/banned-words", token,
                              {"entries": [{"word": word}]})
    assert (status, body) == (200, {"added": 1})

    async def blocked() -> bool:
        return await verdicts(screens, text) == ["reject", "reject"]

    await eventually(blocked, what="both watchers reject the new word", timeout=5)
    verdict = await screens[0].screen(attempt(text))
    assert (verdict.code, word in verdict.reason) == ("banned_word", False)
    status, listed = await call(world.http, "GET", words_api + "/v1/banned-words", token)
    assert status == 200 and {"word": word, "action": "reject", "substring": False} in listed["entries"]

    status, body = await call(world.http, "POST", words_api + "/v1/banned-words/remove", token,
                              {"words": [word.upper()]})  # the same word once normalised
    assert (status, body) == (200, {"removed": 1})

    async def allowed() -> bool:
        return await verdicts(screens, text) == ["accept", "accept"]

    await eventually(allowed, what="both watchers accept the removed word", timeout=5)


async def test_a_room_list_masks_in_that_room_only_and_takes_thousands_in_one_call(
        world: World, operator: Person, words_api: str, screens: list[WordScreen]):
    token = (await operator.login())["token"]
    room, tag = new_id(), secrets.token_hex(3)
    entries = [{"word": f"w{tag}n{i}", "action": "mask"} for i in range(3000)]
    status, body = await call(world.http, "POST", f"{words_api}/v1/banned-words/rooms/{room}", token,
                              {"entries": entries})
    assert (status, body) == (200, {"added": 3000})
    text = f"hey w{tag}n2999 there"

    async def masked() -> bool:
        return [(await s.screen(attempt(text, room))).text for s in screens] == [
            "hey " + "*" * (len(text) - 10) + " there"] * 2

    await eventually(masked, what="both watchers mask the room's words", timeout=5)
    assert await verdicts(screens, text, room=new_id()) == ["accept", "accept"]
    status, listed = await call(world.http, "GET", f"{words_api}/v1/banned-words/rooms/{room}", token)
    assert status == 200 and len(listed["entries"]) == 3000 and listed["room"] == room


async def test_only_operators_edit_and_bad_entries_write_nothing(
        world: World, operator: Person, words_api: str):
    someone = await world.person("viewer")
    theirs, ours = (await someone.login())["token"], (await operator.login())["token"]
    cases = [
        ("POST", "/v1/banned-words", theirs, {"entries": [{"word": "x"}]}, 403, "not_operator"),
        ("GET", "/v1/banned-words", theirs, None, 403, "not_operator"),
        ("POST", f"/v1/banned-words/rooms/{new_id()}", theirs, {"entries": [{"word": "x"}]}, 404, "unknown_room"),
        ("POST", "/v1/banned-words", ours, {"entries": [{"word": "ok"}, {"word": "..."}]}, 400, "bad_field"),
        ("POST", "/v1/banned-words", ours, {"entries": [{"word": "ok", "action": "ban"}]}, 400, "bad_field"),
        ("POST", "/v1/banned-words", ours, {"entries": [{"word": "x"}] * 5001}, 400, "bad_field"),
        ("POST", "/v1/banned-words", ours, {"entries": []}, 400, "bad_field"),
        ("POST", "/v1/banned-words/rooms/a b", ours, {"entries": [{"word": "x"}]}, 400, "bad_field"),
        ("POST", "/v1/banned-words", ours, {"entries": [{"word": "x" * 100}] * 20000}, 413, "too_large"),
    ]
    for method, path, token, body, status, code in cases:
        got = await call(world.http, method, words_api + path, token, body)
        assert (got[0], got[1]["code"]) == (status, code), (method, path, got)
    status, listed = await call(world.http, "GET", words_api + "/v1/banned-words", ours)
    assert status == 200 and not any(e["word"] == "ok" for e in listed["entries"])
