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
from tests.browser.conftest import Account, Socket
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
    screenshot(page.driver, DOCS / "web-client-phone.png")

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
function lum(c) {
  const [r, g, b] = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
                  return 0.2126 * r + 0.7152 * g + 0.0722 * b; }
function background(e) {
  for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c) return c; }
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
        screenshot(page.driver, DOCS / "web-client-dark.png")
    assert page.errors() == []


# ---- unread divider, day separators, ticks ---------------------------------------------------

MARKS = """
return [...document.querySelectorAll('#messages > li')].map(li => ({
  body: li.querySelector('.body').textContent,
  day: li.querySelector(':scope > .day-sep')?.textContent ?? null,
  unread: Boolean(li.querySelector(':scope > .unread-sep')),
}));"""


def marks(page: Page) -> list[dict[str, Any]]:
    return list(page.js(MARKS))


def in_view(page: Page, selector: str) -> bool:
    return bool(page.js("""const e = document.querySelector(arguments[0]), s = document.getElementById('scroller');
        if (!e) return false;
        const r = e.getBoundingClientRect(), v = s.getBoundingClientRect();
        return r.top >= v.top - 1 && r.top < v.bottom;""", selector))


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_unread_divider_sits_above_the_first_unread_and_the_jump_reaches_it(
    size: str, cluster: Cluster, chromium: Any, account: Callable[..., Account],
    socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob = account("alice"), account("bob")
    conv = alice.befriend(bob)
    bob_ws, alice_ws = socket_for(bob, 0), socket_for(alice, 1)
    ids = [bob_ws.send(conv, f"line {i:02d}") for i in range(40)]
    alice_ws.frame({"type": "read", "conv": conv, "upto": ids[9]})  # she read the first ten elsewhere
    alice_ws.wait(lambda f: f.get("type") == "receipt" and f.get("upto") == ids[9] and f.get("status") == "read")
    page = open_page(chromium, cluster, alice, size)
    page.until(lambda: page.unread(conv) == "30")
    page.open(conv)
    page.until(lambda: len(page.bodies()) == 40)
    shown = page.until(lambda: [m for m in marks(page) if m["unread"]] or None, what="the divider")
    assert [m["body"] for m in shown] == ["line 10"]
    assert page.js("return document.querySelector('#messages .unread-sep').textContent") == "New messages"
    # the page shows the newest; the divider is above, so the jump button offers it
    page.until(lambda: page.driver.find_element(By.ID, "jump-unread").is_displayed(), what="jump offered")
    assert not in_view(page, "#messages li.first-unread")
    page.driver.find_element(By.ID, "jump-unread").click()
    page.until(lambda: in_view(page, "#messages li.first-unread"), what="first unread in view")
    assert in_view(page, "#messages .unread-sep")
    assert page.js("return document.activeElement.classList.contains('first-unread')")
    page.until(lambda: not page.driver.find_element(By.ID, "jump-unread").is_displayed())

    # read while watching: no divider moves; what comes while the tab is hidden gets it on return
    page.js("document.getElementById('scroller').scrollTop = 1e9;")
    bob_ws.send(conv, "seen at once")
    page.until(lambda: page.bodies()[-1] == "seen at once")
    assert [m["body"] for m in marks(page) if m["unread"]] == ["line 10"]
    hide(page)
    bob_ws.send(conv, "while away")
    page.until(lambda: page.bodies()[-1] == "while away")
    show(page)
    page.until(lambda: [m["body"] for m in marks(page) if m["unread"]] == ["while away"], what="divider moved")
    assert page.errors() == []


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_day_separators_say_today_yesterday_or_the_date(
    size: str, cluster: Cluster, chromium: Any, account: Callable[..., Account],
    socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob = account("alice"), account("bob")
    conv = alice.befriend(bob)
    bob_ws = socket_for(bob, 0)
    ids = [bob_ws.send(conv, body) for body in ["old news", "older news", "yesterday's", "today's", "and more"]]
    page = open_page(chromium, cluster, alice, size)
    # the labels themselves, at fixed times (local midnight boundaries)
    labels = page.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        import('/static/dividers.js').then(({dayLabel, daySeparators}) => {
          const now = new Date(2026, 11, 3, 0, 5).getTime();
          const at = (d, h, m) => new Date(2026, 11, d, h, m).getTime();
          done({today: dayLabel(at(3, 0, 0), now), yesterday: dayLabel(at(2, 23, 59), now),
                older: dayLabel(at(1, 12, 0), now), lastYear: dayLabel(new Date(2025, 11, 24, 9).getTime(), now),
                seps: [...daySeparators([{key: 'a', ts: at(1, 9, 0)}, {key: 'b', ts: at(1, 22, 0)},
                                         {key: 'c', ts: at(2, 8, 0)}, {key: 'd', ts: at(3, 0, 1)}], now)]});
        });""")
    assert labels["today"] == "Today" and labels["yesterday"] == "Yesterday"
    assert labels["older"] not in ("Today", "Yesterday") and "1" in labels["older"]
    assert "2025" in labels["lastYear"] and "2026" not in labels["older"]
    assert [k for k, _ in labels["seps"]] == ["a", "c", "d"]
    # history from the store, its first three messages dated three days and one day back (the test
    # rewrites the page's history responses): the open conversation shows the three days
    page.js("""const days = arguments[0], real = window.fetch;
        window.fetch = async (...args) => {
          const r = await real(...args);
          if (!String(args[0]).includes('/messages')) return r;
          const data = await r.json();
          for (const m of data.messages || []) if (days[m.id]) m.ts -= days[m.id] * 86400000;
          return new Response(JSON.stringify(data), {status: r.status, headers: r.headers});
        };""", {ids[0]: 3, ids[1]: 3, ids[2]: 1})
    page.open(conv)
    page.until(lambda: len(page.bodies()) == 5)
    got = [(m["body"], m["day"]) for m in marks(page)]
    assert [b for b, d in got if d] == ["old news", "yesterday's", "today's"], got
    assert [d for _, d in got if d][1:] == ["Yesterday", "Today"], got
    assert got[0][1] not in ("Today", "Yesterday")
    # separators stand above their message, across the list, not over any bubble
    for sep in page.driver.find_elements(By.CSS_SELECTOR, "#messages .day-sep"):
        li = sep.find_element(By.XPATH, "..")
        assert sep.rect["y"] + sep.rect["height"] <= li.rect["y"] + 0.5
    assert page.errors() == []


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_ticks_differ_for_sent_delivered_and_read_and_say_so(
    size: str, cluster: Cluster, chromium: Any, account: Callable[..., Account],
    socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob = account("alice"), account("bob")
    conv = alice.befriend(bob)
    page = open_page(chromium, cluster, alice, size)
    page.until(lambda: page.conv_button(conv))
    page.open(conv)
    page.send("first")
    page.until(lambda: page.state_of("first") == "sent")

    def tick(body: str) -> dict[str, Any]:
        return dict(page.js("""const li = [...document.querySelectorAll('#messages li')]
              .find(l => l.querySelector('.body').textContent === arguments[0]);
            const s = li.querySelector('.state'), st = getComputedStyle(s);
            return {text: s.textContent, label: s.getAttribute('aria-label'), role: s.getAttribute('role'),
                    bg: st.backgroundColor, color: st.color,
                    word: getComputedStyle(s, '::after').content};""", body))

    sent = tick("first")
    assert (sent["text"], sent["label"], sent["role"]) == ("✓", "sent", "img")
    assert sent["word"] == '" sent"'  # the newest of ours says it in words
    bob_ws = socket_for(bob, 0)
    bob_ws.ack_through(bob_ws.messages(conv)[-1]["id"] if bob_ws.messages(conv) else
                       bob_ws.wait(lambda f: f.get("type") == "msg" and f.get("body") == "first")["id"])
    page.until(lambda: page.state_of("first") == "delivered")
    delivered = tick("first")
    assert (delivered["text"], delivered["label"]) == ("✓✓", "delivered")
    bob_ws.frame({"type": "read", "conv": conv, "upto": bob_ws.messages(conv)[-1]["id"]})
    page.until(lambda: page.state_of("first") == "read")
    read = tick("first")
    assert read["label"] == "read" and read["bg"] != delivered["bg"] and read["color"] != delivered["color"]
    page.send("second")
    page.until(lambda: page.state_of("second") in ("sent", "delivered"))
    assert tick("first")["word"] == "none" and tick("second")["word"] != "none"
    assert page.errors() == []


# ---- title, notifications, read-out ----------------------------------------------------------

RECORD_NOTES = """
const Real = window.Notification;
window.notes = [];
window.Notification = class extends Real {
  constructor(title, options) { super(title, options); window.notes.push({title, options, note: this}); }
};"""


def hide(page: Page) -> None:
    page.js("Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});"
            "Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});"
            "document.dispatchEvent(new Event('visibilitychange'));")


def show(page: Page) -> None:
    page.js("delete document.visibilityState; delete document.hidden;"
            "document.dispatchEvent(new Event('visibilitychange'));")


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_a_hidden_tab_notifies_and_counts_unread_in_its_title_and_a_click_opens_the_conversation(
    size: str, cluster: Cluster, chromium: Any, account: Callable[..., Account],
    socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob = account("alice"), account("bob", "Bob")
    conv = alice.befriend(bob)
    bob_ws = socket_for(bob, 0)
    page = open_page(chromium, cluster, alice, size)
    # nothing is asked on load: the browser would still ask, so the page offers to turn them on
    assert page.js("return Notification.permission") == "default"
    page.until(lambda: page.driver.find_element(By.ID, "notify-on").is_displayed(), what="offer shown")
    page.driver.execute_cdp_cmd("Browser.grantPermissions",
                                {"origin": cluster.api_url, "permissions": ["notifications"]})
    page.js(RECORD_NOTES)
    page.until(lambda: page.conv_button(conv))
    assert page.driver.title == "Parley"

    bob_ws.send(conv, "visible tab: no notification")
    page.until(lambda: page.driver.title == "(1) Parley", what="title count")
    hide(page)
    bob_ws.send(conv, "are you there?")
    page.until(lambda: page.driver.title == "(2) Parley", what="title count 2")
    notes = page.until(lambda: page.js("return notes.map(n => [n.title, n.options.body, n.options.tag])") or None)
    assert notes == [["Bob", "are you there?", conv]]

    # the reader clicks it: the tab comes back and the conversation opens, read
    show(page)
    page.js("window.notes[0].note.dispatchEvent(new Event('click'))")
    page.until(lambda: page.js("return document.getElementById('messages').dataset.conv") == conv)
    page.wait_bodies(["visible tab: no notification", "are you there?"])
    page.until(lambda: page.driver.title == "Parley", what="title cleared")
    assert box(page, "#composer") is not None

    # in the open conversation a new message is read out (a polite live region), not notified
    bob_ws.send(conv, "lunch at one")
    page.until(lambda: page.js("return document.getElementById('announce').textContent") == "Bob: lunch at one")
    assert page.js("return document.getElementById('announce').getAttribute('aria-live')") == "polite"
    assert len(page.js("return window.notes")) == 1
    assert page.errors() == []


# ---- errors in their places, aria ------------------------------------------------------------


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_errors_show_at_their_form_and_connection_trouble_in_the_top_bar(
    size: str, cluster: Cluster, chromium: Any, account: Callable[..., Account],
) -> None:
    alice = account("alice")
    page = Page(sized(chromium(), size), cluster.api_url + "/")
    # a wrong password: both fields invalid, the message read out with them
    page.until(lambda: page.driver.find_element(By.ID, "auth-username").is_displayed())
    page.fill("auth-username", alice.username)
    page.fill("auth-password", "not the password")
    page.driver.find_element(By.ID, "login-button").click()
    page.until(lambda: page.driver.find_element(By.ID, "auth-error").text != "" and
               page.driver.find_element(By.ID, "auth-password").get_attribute("aria-invalid") == "true")
    assert "auth-error" in (page.driver.find_element(By.ID, "auth-password").get_attribute("aria-describedby") or "")
    page.sign_in(alice.username)
    assert page.driver.find_element(By.ID, "auth-password").get_attribute("aria-invalid") is None

    # an unknown name: under the add-friend form, the field invalid, until it is edited
    field = page.driver.find_element(By.ID, "friend-name")
    field.send_keys("nobody_by_that_name", Keys.ENTER)
    error = page.driver.find_element(By.ID, "friend-error")
    page.until(error.is_displayed, what="friend error")
    assert error.text == "No user called nobody_by_that_name."
    assert field.get_attribute("aria-invalid") == "true"
    assert field.get_attribute("aria-describedby") == "friend-error"
    form, err = box(page, "#add-friend"), box(page, "#friend-error")
    assert form and err and form["top"] <= err["top"] <= form["bottom"]
    field.send_keys("x")
    page.until(lambda: not error.is_displayed() and field.get_attribute("aria-invalid") is None)

    # a blank group name (spaces pass the browser's own check): under the group form, not the friend form
    name = page.driver.find_element(By.ID, "group-name")
    name.send_keys("   ", Keys.ENTER)
    group_error = page.driver.find_element(By.ID, "group-error")
    page.until(group_error.is_displayed, what="group error")
    assert "blank" in group_error.text and name.get_attribute("aria-invalid") == "true"
    assert not error.is_displayed() and not page.driver.find_element(By.ID, "trouble").is_displayed()
    form, err = box(page, "#new-group"), box(page, "#group-error")
    assert form and err and form["top"] <= err["top"] <= form["bottom"]

    # offline: the same form's request fails, but that is the connection's trouble: the top bar says so
    page.driver.execute_cdp_cmd("Network.enable", {})
    page.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    field.clear()
    field.send_keys("someone", Keys.ENTER)
    trouble = page.driver.find_element(By.ID, "trouble")
    page.until(trouble.is_displayed, what="trouble shown")
    assert "cannot be reached" in trouble.text
    assert not error.is_displayed() and field.get_attribute("aria-invalid") is None
    top, shown = box(page, ".topbar"), box(page, "#trouble")
    assert top and shown and top["top"] <= shown["top"] and shown["bottom"] <= top["bottom"]
    page.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    page.until(lambda: not trouble.is_displayed(), timeout=30, what="trouble cleared once online")
    page.wait_online()
    expected = ["/v1/login - Failed to load resource: the server responded with a status of 401",
                "/v1/users?username=nobody_by_that_name - Failed to load resource: "
                "the server responded with a status of 404",
                "/v1/groups - Failed to load resource: the server responded with a status of 400",
                "ERR_INTERNET_DISCONNECTED"]
    assert page.errors(lambda m: any(e in m for e in expected)) == []


NAMELESS = """
const visible = e => e.getClientRects().length > 0;
return [...document.querySelectorAll('button, input, textarea, select, summary, a[href], [tabindex="0"]')]
  .filter(visible).filter(e => {
    const label = e.getAttribute('aria-label') || (e.labels && [...e.labels].map(l => l.textContent).join(''))
      || (e.getAttribute('aria-labelledby') || '').split(' ')
           .map(id => document.getElementById(id)?.textContent || '').join('')
      || (['BUTTON', 'SUMMARY', 'A'].includes(e.tagName) ? e.textContent : '');
    return !label.trim();
  }).map(e => e.outerHTML.slice(0, 120));"""


def in_viewport(page: Page, selector: str) -> bool:
    b = box(page, selector)
    return bool(b and b["bottom"] > 0 and b["top"] < page.js("return innerHeight"))


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_every_control_is_labelled_and_the_skip_link_and_focus_lead_somewhere(
    size: str, cluster: Cluster, chromium: Any, account: Callable[..., Account],
    socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob = account("alice"), account("bob")
    conv = alice.befriend(bob)
    bob_ws = socket_for(bob, 0)
    bob_ws.send(conv, "hello")
    page = Page(sized(chromium(), size), cluster.api_url + "/")
    page.until(lambda: page.driver.find_element(By.ID, "auth-username").is_displayed())
    assert page.js(NAMELESS) == []
    page.sign_in(alice.username)
    page.until(lambda: page.conv_button(conv))
    assert page.js(NAMELESS) == []
    # the skip link comes first in the tab order, shows when focused, and leads to the chats while
    # no conversation is open
    first = page.js("return [...document.querySelectorAll('a[href], button, input, textarea, [tabindex=\"0\"]')]"
                    ".find(e => e.tabIndex >= 0).id")
    assert first == "skip-link"
    assert not in_viewport(page, "#skip-link")
    page.js("document.getElementById('skip-link').focus()")
    assert in_viewport(page, "#skip-link")
    page.driver.switch_to.active_element.send_keys(Keys.ENTER)
    page.until(lambda: focused(page) == f"conv:{conv}", what="skip to the list")
    page.open(conv)
    page.wait_bodies(["hello"])
    assert page.js(NAMELESS) == []
    page.js("document.getElementById('skip-link').focus()")
    page.driver.switch_to.active_element.send_keys(Keys.ENTER)
    page.until(lambda: focused(page) == "composer-body", what="skip to the composer")
    assert page.errors() == []
