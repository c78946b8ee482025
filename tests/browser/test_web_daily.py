"""The chat page for daily use (issue 19 item 3, docs/adr/0030), in headless Chromium against the real
two-node cluster, at desktop (1280×860) and phone (390×844) size: list ↔ conversation navigation with
the boxes checked, dark mode, the unread divider and its jump, day separators, the title's unread
count, notifications while the tab is hidden, errors in their places, labels, the skip link and focus.

Phone size is Chromium's device emulation (CDP Emulation.setDeviceMetricsOverride); dark mode its media
emulation; a hidden tab is `document.visibilityState` answering "hidden" plus the event, and the
Notification API is the browser's own with a recorder wrapped around its constructor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.chromium import screenshot
from tests.browser.conftest import Account, Socket, call
from tests.browser.test_web_client import Page
from tests.integration.cluster import Cluster

pytestmark = pytest.mark.integration
DOCS = Path(__file__).resolve().parents[2] / "docs"
SIZES = {"desktop": (1280, 860), "phone": (390, 844)}


def sized(driver: Any, size: str) -> Any:
    width, height = SIZES[size]
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": size == "phone"})
    return driver


def open_page(chromium: Any, cluster: Cluster, acct: Account, size: str = "desktop") -> Page:
    page = Page(sized(chromium(), size), cluster.api_url + "/")
    page.sign_in(acct.username)
    return page


def box(page: Page, selector: str) -> dict[str, float] | None:
    """The element's box in the viewport, None if it is not rendered."""
    found = page.js("""const e = document.querySelector(arguments[0]);
        if (!e || !e.getClientRects().length) return null;
        const r = e.getBoundingClientRect();
        return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height, width: r.width};""",
                    selector)
    return dict(found) if found else None


def focused(page: Page) -> str:
    return str(page.js("const a = document.activeElement;"
                       "return a.id || (a.dataset.conv ? 'conv:' + a.dataset.conv : a.tagName);"))


def line_height(page: Page, selector: str) -> float:
    return float(page.js("const s = getComputedStyle(document.querySelector(arguments[0]));"
                         "return parseFloat(s.lineHeight) || parseFloat(s.fontSize) * 1.25;", selector))


# ---- list ↔ conversation ---------------------------------------------------------------------


def test_a_phone_shows_the_list_then_the_conversation_full_height_and_back(
    cluster: Cluster, chromium: Any, account: Callable[..., Account], socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob = account("alice", "Alice Longname-Smith"), account("bob", "Bob")
    conv = alice.befriend(bob)
    bob_ws = socket_for(bob, 0)
    for body in ["Are we still on for lunch?", "12:30 at the usual place", "Bring the tickets!"]:
        bob_ws.send(conv, body)
    page = open_page(chromium, cluster, alice, "phone")
    assert page.js("return [innerWidth, innerHeight]") == [390, 844]

    # the list: the whole screen under a one-line top bar, no conversation pane
    top = box(page, ".topbar")
    assert top and top["height"] < 2 * line_height(page, ".topbar h1") + 20, top
    for part in ["h1", "#conn", ".me", "#logout"]:
        b = box(page, f".topbar {part}")
        assert b and b["top"] >= top["top"] and b["bottom"] <= top["bottom"] and b["right"] <= 390, (part, b)
    assert box(page, "#conversation") is None
    side = box(page, ".sidebar")
    assert side and side["top"] >= top["bottom"] - 1 and side["bottom"] == pytest.approx(844, abs=1)
    assert page.js("return document.getElementById('conn').textContent") == "Online"  # no node name

    # open it: the conversation takes the screen, heading focused, the composer at the bottom
    page.open(conv)
    page.wait_bodies(["Are we still on for lunch?", "12:30 at the usual place", "Bring the tickets!"])
    assert box(page, ".sidebar") is None
    page.until(lambda: focused(page) == "conv-title", what="the heading focused")
    header, scroller, composer = box(page, ".conv-header"), box(page, "#scroller"), box(page, "#composer")
    back = box(page, "#back")
    assert header and scroller and composer and back
    assert header["height"] < 2 * line_height(page, "#conv-title") + line_height(page, "#conv-sub") + 24, header
    assert back["left"] >= 0 and back["right"] < box(page, "#conv-title")["left"]  # type: ignore[index]
    assert scroller["height"] > 0.6 * 844, scroller  # the messages get the height
    assert composer["bottom"] == pytest.approx(844, abs=1) and composer["right"] <= 390
    stack = [top, header, scroller, box(page, "#typing"), composer]
    for upper, lower in zip(stack, stack[1:], strict=False):
        assert upper and lower and upper["bottom"] <= lower["top"] + 0.5, stack  # nothing overlaps
    assert page.js("return document.documentElement.scrollWidth") <= 390  # nothing sideways

    # back: the list again, focus on the conversation's item
    page.driver.find_element(By.ID, "back").click()
    page.until(lambda: box(page, ".sidebar") is not None and box(page, "#conversation") is None, what="list shown")
    page.until(lambda: focused(page) == f"conv:{conv}", what="list item focused")

    # the phone's own back gesture does the same
    page.open(conv)
    page.until(lambda: box(page, "#conversation") is not None)
    page.driver.back()
    page.until(lambda: box(page, ".sidebar") is not None and box(page, "#conversation") is None, what="back")
    page.until(lambda: focused(page) == f"conv:{conv}", what="list item focused after back")
    assert page.errors() == []


def test_a_desktop_window_keeps_both_panes_and_focuses_the_composer(
    cluster: Cluster, chromium: Any, account: Callable[..., Account], socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob = account("alice"), account("bob")
    conv = alice.befriend(bob)
    socket_for(bob, 0).send(conv, "hi")
    page = open_page(chromium, cluster, alice)
    page.open(conv)
    page.wait_bodies(["hi"])
    side, main = box(page, ".sidebar"), box(page, "#conversation")
    assert side and main and side["right"] <= main["left"] + 0.5 and side["top"] == pytest.approx(main["top"])
    assert box(page, "#back") is None
    page.until(lambda: focused(page) == "composer-body", what="composer focused")
    top = box(page, ".topbar")
    assert top and top["height"] < 2 * line_height(page, ".topbar h1") + 20
    assert page.errors() == []


# ---- dark mode -------------------------------------------------------------------------------

CONTRAST = """
function rgb(c) { const m = c.match(/[\\d.]+/g).map(Number); return m.length > 3 && m[3] === 0 ? null : m.slice(0, 3); }
function lum(c) { const [r, g, b] = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
                  return 0.2126 * r + 0.7152 * g + 0.0722 * b; }
function background(e) { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c) return c; }
                         return [255, 255, 255]; }
return arguments[0].map(sel => {
  const e = document.querySelector(sel);
  const fg = lum(rgb(getComputedStyle(e).color)), bg = lum(background(e));
  return [sel, (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05), bg];
});"""
TEXTS = ["#conv-title", "#conv-sub", ".conv-title", ".conv-last", "#messages li:not(.mine) .body",
         "#messages li.mine .body", "#messages li.mine time", "#conn", "#composer-body", "#send-button",
         "#friend-list .person", "label[for=friend-name]"]


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_dark_mode_follows_the_system_with_readable_text(
    size: str, cluster: Cluster, chromium: Any, account: Callable[..., Account],
    socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob = account("alice"), account("bob")
    conv = alice.befriend(bob)
    socket_for(bob, 0).send(conv, "night owl?")
    page = open_page(chromium, cluster, alice, size)
    page.open(conv)
    page.send("always")
    page.until(lambda: page.state_of("always") in ("sent", "delivered", "read"))
    texts = [t for t in TEXTS if size == "desktop" or t not in (".conv-title", ".conv-last", "#friend-list .person",
                                                                   "label[for=friend-name]")]
    light = page.js(CONTRAST, texts)
    page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
        "features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    page.until(lambda: page.js("return matchMedia('(prefers-color-scheme: dark)').matches"))
    dark = page.js(CONTRAST, texts)
    for sel, ratio, bg in light + dark:
        assert ratio >= 4.5, (sel, ratio, bg)  # readable text in both
    panes = [sel for sel in texts if not sel.endswith("button")]
    assert all(bg > 0.5 for sel, _, bg in light if sel in panes), light
    assert all(bg < 0.05 for sel, _, bg in dark if sel in panes), dark  # dark backgrounds
    if size == "desktop":
        screenshot(page.driver, Path("/tmp") / "web-client-dark.png")
    assert page.errors() == []
