"""The live cluster page (discovery's /cluster) in headless Chromium against the session's real cluster.

Real traffic flows between two WebSocket devices on node1 and node2 while the page polls /v1/cluster;
the page must show both nodes, their msg/s must move above 0 and the charts must get points; the health
panel shows the API and workers and the JetStream streams; a node that drains or is killed stays listed
with that state; at phone width nothing but a table's own scroll box is wider than the screen. Waits are
explicit (WebDriverWait on what the page shows); no sleep decides an outcome.

The one stand-in is Prometheus (an external product, not Parley's infrastructure): a tiny aiohttp server
answering ``/api/v1/alerts`` with the JSON Prometheus documents, so the alert panel is tested end to end.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
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


def lines(driver: webdriver.Chrome, canvas: str) -> set[str]:
    """The series a chart drew points for."""
    return set(driver.execute_script(f"return (document.getElementById('{canvas}').hits || []).map(h => h.label)"))


def processes(driver: webdriver.Chrome) -> dict[str, str]:
    return dict(driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#processes tr[data-process]')]"
        ".map(tr => [tr.dataset.process, tr.dataset.state]))"))


def streams(driver: webdriver.Chrome) -> dict[str, str]:
    """Each stream the NATS panel lists → its leader."""
    return dict(driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#nats tr[data-stream]')]"
        ".map(tr => [tr.dataset.stream, tr.dataset.leader]))"))


def overflow(driver: webdriver.Chrome) -> list[str]:
    """What makes the page wider than the screen: the page's own width, and any element (outside a scroll
    box) whose right edge is past it."""
    return list(driver.execute_script("""
        const out = [], w = window.innerWidth;
        if (document.documentElement.scrollWidth > w) out.push(`page ${document.documentElement.scrollWidth} > ${w}`);
        for (const e of document.querySelectorAll('body *')) {
          if (e.closest('.table-scroll') || e.closest('[hidden]') || e.classList.contains('visually-hidden')) continue;
          const r = e.getBoundingClientRect();
          if (r.width && r.right > w + 0.5) out.push(`${e.tagName}#${e.id}.${e.className} right ${r.right} > ${w}`);
        }
        return out;"""))


def phone(driver: webdriver.Chrome) -> None:
    """An iPhone 12-sized viewport (390×844 CSS px at 3×), as Chromium's device emulation does it."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True})


def full_height(driver: webdriver.Chrome, width: int) -> None:
    """Make the viewport as tall as the page, so a screenshot shows all of it."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})


def axis_labels(driver: webdriver.Chrome, canvas: str) -> tuple[list[str], list[str]]:
    got = driver.execute_script(f"const d = document.getElementById('{canvas}').dataset;"
                                "return [JSON.parse(d.yLabels || '[]'), JSON.parse(d.xLabels || '[]')]")
    return list(got[0]), list(got[1])


def point_at(driver: webdriver.Chrome, canvas: str, series: str) -> str:
    """Moves the pointer onto the newest point of ``series``; the tooltip's text."""
    return str(driver.execute_script(f"""
        const c = document.getElementById('{canvas}');
        const h = c.hits.filter(h => h.label === '{series}').at(-1);
        const box = c.getBoundingClientRect();
        c.dispatchEvent(new PointerEvent('pointermove', {{clientX: box.left + h.x, clientY: box.top + h.y,
                                                          bubbles: true}}));
        const tip = c.parentElement.querySelector('.tooltip');
        return tip.hidden ? '' : tip.textContent;"""))


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


def test_live_page_shows_both_nodes_their_traffic_and_the_health_panel(cluster: Cluster, chromium, traffic) -> None:
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
    assert rows(driver)["node1"]["errors_per_s"] != ""
    legend = driver.execute_script("return [...document.querySelectorAll('#lag-legend li')]"
                                   ".map(li => li.dataset.series + ': ' + li.textContent)")
    assert any(x.startswith("archiver") and "messages" in x for x in legend), legend
    assert any(x.startswith("pusher") and "off" in x for x in legend), legend  # push is off in this cluster

    # health: the API and workers answer (push is off), JetStream lists each shard's stream with a leader
    until(driver, lambda: processes(driver) == {"api": "up", "archiver": "up", "presence": "up", "pusher": "off"},
          "API and workers shown")
    until(driver, lambda: "MSG_0" in streams(driver), "streams shown")
    found = streams(driver)
    assert all(found[f"MSG_{i}"] for i in range(cluster.settings.shards)), found
    assert any(name.startswith("KV_") for name in found), found
    assert driver.find_element("id", "nats").get_attribute("data-state") == "ok"
    alerts = driver.find_element("id", "alerts")
    assert alerts.get_attribute("data-state") == "off" and "Prometheus not configured" in alerts.text

    # axes: one unit each, no label twice; a point's tooltip names its node, time and value with the unit
    for canvas, unit in (("delivered-chart", "msg/s"), ("p99-chart", "ms"), ("errors-chart", "errors/s"),
                         ("lag-chart", "messages")):
        y, x = axis_labels(driver, canvas)
        assert len(y) == len(set(y)) >= 3 and len(x) == len(set(x)) >= 2 and x[0] == "now", (canvas, y, x)
        assert driver.find_element("id", canvas).get_attribute("data-unit") == unit
    tip = point_at(driver, "delivered-chart", "node1")
    assert tip.startswith("node1 · ") and tip.endswith(" msg/s"), tip
    assert driver.find_element("css selector", "#regions th[title]").get_attribute("title")

    body = get_json(f"{cluster.discovery_url}/v1/cluster")
    node1 = next(n for n in body["nodes"] if n["id"] == "node1")
    assert node1["series"] and node1["eligible"] and node1["scraped"] and body["lag"]["pusher"]["state"] == "off"
    health = get_json(f"{cluster.discovery_url}/v1/cluster/health")
    assert {p["name"] for p in health["processes"]} == {"api", "archiver", "presence", "pusher"}
    assert health["nats"]["state"] == "ok" and health["alerts"]["state"] == "off"
    assert severe(driver) == []


def test_a_killed_node_stays_listed_as_silent_and_a_stopped_one_as_left(cluster: Cluster, chromium) -> None:
    cluster.start_extra_node("node9")
    cluster.start_extra_node("node6")
    driver = chromium()
    driver.get(f"{cluster.discovery_url}/cluster")
    until(driver, lambda: {rows(driver).get(n, {}).get("state") for n in ("node9", "node6")} == {"eligible"},
          "node9 and node6 serving")
    cluster.kill("node9")  # SIGKILL: its entry stays until the bucket's TTL, unrefreshed
    cluster.stop("node6")  # SIGINT: it deletes its entry without draining
    until(driver, lambda: rows(driver).get("node9", {}).get("state") == "stale", "node9 silent")
    until(driver, lambda: rows(driver).get("node6", {}).get("state") == "left", "node6 left")
    row = driver.find_element("css selector", "tr[data-node='node9']")
    assert "gone" in row.get_attribute("class") and "last seen" in row.text
    assert "gone" in driver.find_element("css selector", "tr[data-node='node6']").get_attribute("class")
    assert severe(driver) == []


ALERTS = {"status": "success", "data": {"alerts": [
    {"labels": {"alertname": "ParleyArchiverLagGrowing", "severity": "warning", "job": "parley-archiver",
                "instance": "127.0.0.1:8075"},
     "annotations": {"summary": "Archiver lag growing at 127.0.0.1:8075",
                     "description": "The archivers' lag has grown for 10 minutes."}, "state": "firing",
     "activeAt": "2026-12-02T17:00:00.000Z", "value": "1.2e+03"},
    {"labels": {"alertname": "ParleyDeliveryLatencyOverBudget", "severity": "warning"},
     "annotations": {"summary": "End-to-end delivery p99 over its 250 ms budget"}, "state": "pending",
     "activeAt": "2026-12-02T17:05:00.000Z", "value": "3.1e-01"}]}}


@pytest.fixture
def prometheus() -> Iterator[str]:
    """A stand-in for Prometheus' HTTP API (an external product): ``GET /api/v1/alerts`` answers as
    Prometheus documents it. Runs on its own event loop in a thread; its URL."""
    port, loop, started = free_port(), asyncio.new_event_loop(), threading.Event()

    async def alerts(_: web.Request) -> web.Response:
        return web.json_response(ALERTS)

    async def serve() -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/api/v1/alerts", alerts)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    def run() -> None:
        asyncio.set_event_loop(loop)
        holder.append(loop.run_until_complete(serve()))
        started.set()
        loop.run_forever()

    holder: list[web.AppRunner] = []
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10), "the Prometheus stand-in did not start"
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(holder[0].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def test_a_drained_node_stays_listed_alerts_show_and_a_phone_sees_everything(
        cluster: Cluster, chromium, traffic, prometheus: str) -> None:
    """A discovery of its own, pointed at the Prometheus stand-in; node7 is started, then drained (SIGTERM,
    what ``parley node drain`` asks over NATS) and must stay listed as drained with its chart line."""
    port = free_port()
    settings = cluster.settings.replace(discovery_port=port, prometheus_url=prometheus)
    cluster.roles["discovery-ops"] = spawn("discovery-ops", "discovery", settings, cluster.logs)
    wait_ready(f"http://127.0.0.1:{port}/readyz", cluster.roles["discovery-ops"])
    cluster.start_extra_node("node7")
    driver = chromium()
    driver.set_window_size(1280, 1000)
    driver.get(f"http://127.0.0.1:{port}/cluster")
    until(driver, lambda: rows(driver).get("node7", {}).get("state") == "eligible", "node7 serving")
    until(driver, lambda: {"node1", "node7"} <= lines(driver, "delivered-chart"), "node7 drawn")
    cluster.terminate("node7")  # a node drains on SIGTERM, as on `parley node drain node7`
    assert cluster.wait_exit("node7", 60) == 0
    until(driver, lambda: rows(driver).get("node7", {}).get("state") == "drained", "node7 drained")
    row = driver.find_element("css selector", "tr[data-node='node7']")
    assert "gone" in row.get_attribute("class") and "at " in row.text
    assert "node7" in lines(driver, "delivered-chart")  # its line stays (greyed) for the linger window
    legend = driver.find_element("css selector", "#delivered-legend li[data-series='node7']").text
    assert "drained" in legend, legend

    until(driver, lambda: driver.find_element("id", "alerts").get_attribute("data-state") == "firing", "alerts")
    shown = driver.execute_script("return [...document.querySelectorAll('#alerts li[data-alert]')]"
                                  ".map(li => [li.dataset.alert, li.dataset.state])")
    assert shown == [["ParleyArchiverLagGrowing", "firing"], ["ParleyDeliveryLatencyOverBudget", "pending"]]
    assert "Archiver lag growing at 127.0.0.1:8075" in driver.find_element("id", "alerts").text
    item = driver.find_element("css selector", "#alerts li[data-alert='ParleyArchiverLagGrowing']")
    tip = item.get_attribute("title")
    assert "grown for 10 minutes" in tip and "instance=127.0.0.1:8075" in tip, tip

    if UPDATE_SCREENSHOTS:  # more samples (about 12 per node), so the screenshot's lines have some length
        drawn = points(driver, "delivered-chart")
        until(driver, lambda: points(driver, "delivered-chart") >= drawn + 24, "more points for the screenshot",
              timeout=60)
    full_height(driver, 1280)
    until(driver, lambda: overflow(driver) == [], "nothing wider than the desktop window")
    screenshot(driver, DOCS / "cluster-page.png")

    phone(driver)
    driver.refresh()
    until(driver, lambda: "node7" in rows(driver) and "MSG_0" in streams(driver), "phone page loaded")
    until(driver, lambda: points(driver, "delivered-chart") > 0, "charts drawn at phone width")
    assert overflow(driver) == []
    assert int(driver.execute_script("return window.innerWidth")) == 390
    # the node table is wider than the phone: it scrolls inside its own box
    box = driver.execute_script("const b = document.querySelector('#regions .table-scroll');"
                                "return [b.scrollWidth, b.clientWidth, getComputedStyle(b).overflowX]")
    assert box[0] > box[1] and box[2] == "auto", box
    screenshot(driver, DOCS / "cluster-page-phone.png")
    cluster.stop("discovery-ops")
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


def test_axis_ticks_are_round_distinct_and_in_one_unit(cluster: Cluster, chromium) -> None:
    """chart.js' tick choice over many ranges, run in the page's own module (no labels twice, the top at or
    above the highest value, at most 6 ticks; the time axis in seconds or in minutes, never both)."""
    driver = chromium()
    driver.get(f"{cluster.discovery_url}/cluster")
    got = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        import('/cluster/static/chart.js').then(({yTicks, timeTicks}) => done({
          y: [0, 0.003, 0.01, 0.7, 1, 3, 7, 12, 99, 120, 250, 1234, 99999].map(v => [v, yTicks(v)]),
          x: [10, 30, 47, 90, 119, 120, 300, 600].map(s => [s, timeTicks(s)])}));""")
    for value, ticks in got["y"]:
        labels = [t["label"] for t in ticks]
        assert len(labels) == len(set(labels)) and 3 <= len(labels) <= 6, (value, labels)
        assert ticks[0]["value"] == 0 and ticks[-1]["value"] >= value, (value, labels)
    for span, axis in got["x"]:
        labels = [t["label"] for t in axis["ticks"]]
        assert labels[0] == "now" and len(labels) == len(set(labels)) and 2 <= len(labels) <= 7, (span, labels)
        assert axis["unit"] in ("s ago", "min ago"), axis
        assert all(float(label) == int(float(label)) for label in labels[1:]), (span, labels)  # whole numbers
    assert severe(driver) == []
