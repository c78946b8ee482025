"""The live cluster page's live rooms table (docs/adr/0021) in headless Chromium against the session's real
cluster: a room with a viewer on each node, messages flowing and a banned word refused over and over shows
its viewers, in and out msg/s, blocked/s and a p99, added up over both nodes."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from selenium import webdriver

from tests.browser.conftest import Account, Socket, call, severe
from tests.browser.test_cluster_page import get_json, until
from tests.integration.cluster import Cluster

pytestmark = pytest.mark.integration

BANNED_EVERY_S = 2.5  # slower than strikes fade (0.5/s): refusals never add up to a close


def live_rows(driver: webdriver.Chrome) -> dict[str, dict[str, str]]:
    return dict(driver.execute_script("""
        const out = {};
        for (const tr of document.querySelectorAll('#live-rooms tr[data-room]')) {
          const row = {};
          for (const td of tr.querySelectorAll('[data-field]')) row[td.dataset.field] = td.dataset.value;
          out[tr.dataset.room] = row;
        }
        return out;"""))


def live_send(sock: Socket, room: str, body: str) -> dict[str, Any]:
    """The answer: ``live_sent``, or the ``error`` that refused it."""
    cid = f"c{secrets.token_hex(4)}"
    sock.frame({"type": "live_send", "room": room, "cid": cid, "body": body})
    return sock.wait(lambda f: (f.get("type") == "live_sent" and f.get("cid") == cid) or f.get("ref") == cid)


@pytest.fixture
def live_room(account: Callable[..., Account], socket_for: Callable[[Account, int], Socket]) -> Iterator[str]:
    """A room with a viewer on node1 and one on node2; node1's sends about 20 messages a second and a banned word
    every 2.5 s — slower than refused frames' strikes fade (one per 2 s, ``FrameRates``), or the node would rightly
    close it for abuse (4029) after 50 strikes, as it did in CI when the page was slow to show the row."""
    owner, fan = account("live_own"), account("live_fan")
    room = str(call(owner.cluster, "POST", "/v1/live", owner.token, {"title": "the final"})["id"])
    call(owner.cluster, "POST", f"/v1/banned-words/rooms/{room}", owner.token,
         {"entries": [{"word": "gronk", "action": "reject"}]})
    sa, sb = socket_for(owner, 0), socket_for(fan, 1)
    for sock in (sa, sb):
        sock.frame({"type": "live_join", "room": room})
        sock.wait(lambda f: f.get("type") == "live_joined")
    stop, failed = threading.Event(), []

    def chat() -> None:
        try:
            i, banned_at = 0, -BANNED_EVERY_S
            while not stop.is_set():
                banned = time.monotonic() - banned_at >= BANNED_EVERY_S
                if banned:
                    banned_at = time.monotonic()
                live_send(sa, room, f"gronk {i}" if banned else f"goal {i}")  # the word list reaches the node soon
                i += 1
                stop.wait(0.05)  # pacing, not a wait: about 20 sends a second
        except BaseException as err:  # surfaced by the fixture, not lost in the thread
            failed.append(err)

    thread = threading.Thread(target=chat, daemon=True)
    thread.start()
    yield room
    stop.set()
    thread.join(10)
    assert not failed, failed


def test_the_page_shows_a_live_rooms_viewers_traffic_blocks_and_p99(cluster: Cluster, chromium,
                                                                     live_room: str) -> None:
    driver = chromium()
    driver.set_window_size(1280, 1100)
    driver.get(f"{cluster.discovery_url}/cluster")

    def moving() -> bool:
        row = live_rows(driver).get(live_room)
        return bool(row) and row["viewers"] == "2" and all(
            float(row[f] or 0) > 0 for f in ("in_per_s", "out_per_s", "blocked_per_s")) and row["p99_ms"] != ""

    until(driver, moving, "the room with 2 viewers, messages in and out, blocks and a p99")
    row = live_rows(driver)[live_room]
    assert float(row["out_per_s"]) >= float(row["in_per_s"])  # two viewers get each message
    assert driver.find_element("id", "no-live").get_attribute("hidden") is not None
    body = get_json(f"{cluster.discovery_url}/v1/cluster")
    assert live_room in [r["room"] for r in body["live"]["rooms"]]
    assert severe(driver) == []
