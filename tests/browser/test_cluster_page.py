"""The live cluster page (discovery's /cluster) in headless Chromium against the session's real cluster.

Real traffic flows between two WebSocket devices on node1 and node2 while the page polls /v1/cluster;
the page must show both nodes, their msg/s must move above 0 and the charts must get points. Waits are
explicit (WebDriverWait on what the page shows); no sleep decides an outcome.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from parley.tools.cluster import spawn, wait_ready
from selenium import webdriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.chromium import UPDATE_SCREENSHOTS, screenshot
from tests.browser.conftest import Account, Socket, severe
from tests.integration.cluster import Cluster, free_port

pytestmark = pytest.mark.integration
DOCS = Path(__file__).resolve().parents[2] / "docs"
WAIT = 20


def until(driver: webdriver.Chrome, check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda _: check(), message=what)


def rows(driver: webdriver.Chrome) -> dict[str, dict[str, str]]:
    """Each node row the page shows: its state, region and the numbers it shows (data-value)."""
    return dict(driver.execute_script("""
        const out = {};
        for (const tr of document.querySelectorAll('#regions tr[data-node]')) {
          const row = {state: tr.dataset.state, region: tr.closest('[data-region]').dataset.region};
          for (const td of tr.querySelectorAll('[data-field]')) row[td.dataset.field] = td.dataset.value;
          out[tr.dataset.node] = row;
        }
        return out;"""))


def points(driver: webdriver.Chrome, canvas: str) -> int:
    return int(driver.execute_script(f"return document.getElementById('{canvas}').dataset.points || '0'"))


@pytest.fixture
def traffic(account: Callable[..., Account], socket_for: Callable[[Account, int], Socket]) -> Iterator[None]:
    """Two users chatting back and forth, one on node1 and one on node2, until the test ends."""
    a, b = account("ops_a"), account("ops_b")
    conv = a.befriend(b)
    sa, sb = socket_for(a, 0), socket_for(b, 1)
    stop = threading.Event()
    failed: list[BaseException] = []

    def chat() -> None:
        try:
            i = 0
            while not stop.is_set():
                (sa if i % 2 else sb).send(conv, f"load {i}")
                i += 1
                stop.wait(0.03)  # pacing, not a wait: about 30 messages a second
        except BaseException as err:  # surfaced by the fixture, not lost in the thread
            failed.append(err)

    thread = threading.Thread(target=chat, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(10)
    assert not failed, failed


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert "no-store" in resp.headers["Cache-Control"]
        return json.loads(resp.read())


def test_live_page_shows_both_nodes_and_their_traffic(cluster: Cluster, chromium, traffic) -> None:
    driver = chromium()
    driver.set_window_size(1280, 1100)
    driver.get(f"{cluster.discovery_url}/cluster")
    until(driver, lambda: {"node1", "node2"} <= set(rows(driver)), "node1 and node2 shown")
    shown = rows(driver)
    assert shown["node1"]["region"] == shown["node2"]["region"] == cluster.settings.region
    assert shown["node1"]["state"] == "eligible"
    assert driver.find_element("id", "status").get_attribute("data-state") == "live"

    def moving() -> bool:
        r = rows(driver)
        return all(float(r[n]["delivered_per_s"] or 0) > 0 and float(r[n]["published_per_s"] or 0) > 0
                   for n in ("node1", "node2"))

    until(driver, moving, "delivered and published msg/s above 0 on both nodes")
    until(driver, lambda: points(driver, "delivered-chart") >= 4 and points(driver, "p99-chart") >= 2,
          "charts with points")
    until(driver, lambda: rows(driver)["node1"]["p99_ms"] != "", "a p99 shown")
    legend = driver.execute_script("return [...document.querySelectorAll('#lag-legend li')]"
                                   ".map(li => li.dataset.series + ': ' + li.textContent)")
    assert any(x.startswith("archiver") and "messages" in x for x in legend), legend
    assert any(x.startswith("pusher") and "off" in x for x in legend), legend  # push is off in this cluster
    if UPDATE_SCREENSHOTS:  # a few more samples (8 points: 4 per node), so the screenshot's lines have some length
        drawn = points(driver, "delivered-chart")
        until(driver, lambda: points(driver, "delivered-chart") >= drawn + 8, "more points for the screenshot")
    screenshot(driver, DOCS / "cluster-page.png")

    body = get_json(f"{cluster.discovery_url}/v1/cluster")
    node1 = next(n for n in body["nodes"] if n["id"] == "node1")
    assert node1["series"] and node1["eligible"] and node1["scraped"] and body["lag"]["pusher"]["state"] == "off"
    assert severe(driver) == []


def test_a_killed_node_shows_stale(cluster: Cluster, chromium) -> None:
    cluster.start_extra_node("node9")
    driver = chromium()
    driver.get(f"{cluster.discovery_url}/cluster")
    until(driver, lambda: rows(driver).get("node9", {}).get("state") == "eligible", "node9 serving")
    cluster.kill("node9")
    until(driver, lambda: rows(driver).get("node9", {}).get("state") in ("stale", None), "node9 stale or gone")
    assert severe(driver) == []


def test_the_page_says_when_discovery_is_unreachable_and_recovers(cluster: Cluster, chromium) -> None:
    """A discovery of its own (the session's serves the other tests), stopped and started on the same port."""
    port = free_port()
    settings = cluster.settings.replace(discovery_port=port)
    cluster.roles["discovery-page"] = spawn("discovery-page", "discovery", settings, cluster.logs)
    wait_ready(f"http://127.0.0.1:{port}/readyz", cluster.roles["discovery-page"])
    driver = chromium()
    driver.get(f"http://127.0.0.1:{port}/cluster")
    status = lambda: driver.find_element("id", "status").get_attribute("data-state")  # noqa: E731
    until(driver, lambda: status() == "live" and "node1" in rows(driver), "live")
    cluster.stop("discovery-page")
    until(driver, lambda: status() == "error", "error shown")
    assert "not reachable" in driver.find_element("id", "status").text and "node1" in rows(driver)
    cluster.roles["discovery-page"] = spawn("discovery-page", "discovery", settings, cluster.logs)
    until(driver, lambda: status() == "live", "recovered")
    cluster.stop("discovery-page")
    assert severe(driver, allowed=lambda m: "/v1/cluster" in m and "ERR_CONNECTION_REFUSED" in m) == []


def test_assets_have_the_strict_policy_and_names_cannot_climb_out(cluster: Cluster) -> None:
    with urllib.request.urlopen(f"{cluster.discovery_url}/cluster", timeout=5) as resp:
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    for bad in ("..%2Fapp.py", "cluster_page.py", "x.html"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{cluster.discovery_url}/cluster/static/{bad}", timeout=5)
        with err.value:
            assert err.value.code == 404
