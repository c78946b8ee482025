"""The browser client (web/) in headless Chromium against a real two-node cluster.

Each Chromium window is its own browser profile, so its own sessionStorage: a separate device.
The other side of a conversation is a second window or a plain WebSocket device (conftest.Socket).
Waits are explicit (WebDriverWait on what the page shows); no sleep decides an outcome.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from parley.ids import new_user_id
from parley.shards import pos_of_id, shard_of_id
from tests.browser.chromium import screenshot
from tests.browser.conftest import PASSWORD, Account, Socket, call, severe
from tests.integration.cluster import Cluster
from tests.integration.test_up import clean_env, up_command, wait_banner
from tests.poll import eventually_sync

pytestmark = pytest.mark.integration
DOCS = Path(__file__).resolve().parents[2] / "docs"
WAIT = 15


class Page:
    """One window of the chat page, driven the way a person would: forms, buttons, the Enter key."""

    def __init__(self, driver: webdriver.Chrome, url: str) -> None:
        self.driver = driver
        driver.get(url)

    def until(self, check: Callable[[], Any], timeout: float = WAIT, what: str = "") -> Any:
        return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(
            lambda _: check(), message=what or getattr(check, "__name__", ""))

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def fill(self, element_id: str, text: str) -> None:
        box = self.driver.find_element(By.ID, element_id)
        box.clear()
        box.send_keys(text)

    def sign_in(self, username: str, button: str = "login-button") -> str:
        self.until(lambda: self.driver.find_element(By.ID, "auth-username").is_displayed())
        self.fill("auth-username", username)
        self.fill("auth-password", PASSWORD)
        self.driver.find_element(By.ID, button).click()
        return self.wait_online()

    def connection(self) -> dict[str, str]:
        return dict(self.js("const c = document.getElementById('conn');"
                            "return {state: c.dataset.state, node: c.dataset.node, text: c.textContent};"))

    def wait_online(self, timeout: float = WAIT) -> str:
        """The node the page is connected to, once it is online."""
        return str(self.until(lambda: self.connection()["state"] == "online" and self.connection()["node"],
                              timeout, "page online"))

    def conv_button(self, conv: str) -> Any:
        found = self.driver.find_elements(By.CSS_SELECTOR, f'#conv-list button[data-conv="{conv}"]')
        return found[0] if found else None

    def unread(self, conv: str) -> str | None:
        return self.js("const b = document.querySelector(`#conv-list button[data-conv='${arguments[0]}'] .badge`);"
                       "return b ? (b.hidden ? '' : b.textContent) : null;", conv)

    def open(self, conv: str) -> None:
        self.until(lambda: self.conv_button(conv), what=f"conversation {conv} listed").click()
        self.until(lambda: self.js("return document.getElementById('messages').dataset.conv") == conv)

    def send(self, text: str) -> None:
        box = self.driver.find_element(By.ID, "composer-body")
        box.send_keys(text)
        box.send_keys(Keys.ENTER)

    def shown(self) -> list[dict[str, Any]]:
        """The open conversation's messages as shown: id (None while pending), body text, state."""
        return list(self.js("""
            return [...document.querySelectorAll('#messages li')].map(li => ({
              id: li.dataset.id ? Number(li.dataset.id) : null,
              body: li.querySelector('.body').textContent,
              mine: li.classList.contains('mine'),
              state: li.querySelector('.state').hidden ? null : li.querySelector('.state').dataset.state,
            }));"""))

    def bodies(self) -> list[str]:
        return [m["body"] for m in self.shown()]

    def wait_bodies(self, expected: list[str], timeout: float = WAIT) -> list[dict[str, Any]]:
        """Until the open conversation shows exactly ``expected``; on a timeout the message says what it
        showed instead (ids and states) and how the page's connection stood."""
        try:
            self.until(lambda: self.bodies() == expected, timeout, f"messages {expected}")
        except TimeoutException as err:
            raise TimeoutException(f"messages {expected} not shown in {timeout}s; the page showed {self.shown()}"
                                   f" (connection {self.connection()})") from err
        return self.shown()

    def state_of(self, body: str) -> str | None:
        return next((m["state"] for m in self.shown() if m["body"] == body), None)

    def errors(self, allowed: Callable[[str], bool] = lambda _: False) -> list[str]:
        return severe(self.driver, allowed)


def nodes(cluster: Cluster) -> dict[str, int]:
    with urllib.request.urlopen(cluster.discovery_url + "/v1/nodes", timeout=5) as resp:
        return {n["id"]: n["connections"] for n in json.loads(resp.read())["nodes"] if n["eligible"]}


def wait_busier(cluster: Cluster, node: str) -> None:
    """Until discovery sees ``node`` with more connections than any other, so the next placement goes
    elsewhere (of two nodes placement takes the less loaded, docs/adr/0010)."""
    def busier() -> bool:
        counts = nodes(cluster)
        assert counts.get(node, 0) > max((c for n, c in counts.items() if n != node), default=0), counts
        return True

    eventually_sync(busier, timeout=WAIT, what=f"discovery seeing {node} busier")


def index_of(cluster: Cluster, node: str) -> int:
    return int(node.removeprefix("node")) - 1


# ---- the page itself -------------------------------------------------------------------------


def test_page_and_assets_are_served_with_a_strict_policy(cluster: Cluster) -> None:
    with urllib.request.urlopen(cluster.api_url + "/", timeout=5) as resp:
        policy = resp.headers["Content-Security-Policy"]
        assert resp.headers["Content-Type"].startswith("text/html")
        assert b'<script type="module" src="/static/main.js">' in resp.read()
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "default-src 'none'" in policy
    for name, kind in [("main.js", "text/javascript"), ("app.css", "text/css"), ("icon.svg", "image/svg+xml")]:
        with urllib.request.urlopen(f"{cluster.api_url}/static/{name}", timeout=5) as resp:
            assert resp.headers["Content-Type"].startswith(kind)
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
    for bad in ["nope.js", "..%2Fapi%2Fapp.py", "Main.JS", "x.py"]:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{cluster.api_url}/static/{bad}", timeout=5)
        err.value.close()
        assert err.value.code == 404


def test_the_chat_url_parley_up_prints_opens_a_working_page(tmp_path: Path, chromium: Any) -> None:
    """The README's path: `make run` (= `parley up`), open the printed URL, sign up, be online."""
    cmd, ports, _ = up_command(tmp_path / "run")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=clean_env(), text=True)
    try:
        banner = wait_banner(proc)
        url = re.search(r"^  chat +(\S+)", banner, re.MULTILINE)
        assert url and url.group(1) == f"http://127.0.0.1:{ports['api']}/", banner
        page = Page(chromium(), url.group(1))
        assert page.sign_in("newcomer", button="signup-button").startswith("node")
        assert page.driver.find_element(By.ID, "me-name").text == "newcomer"
        assert page.errors() == []
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


# ---- chatting --------------------------------------------------------------------------------


def test_two_people_sign_up_befriend_and_chat_across_the_two_nodes(cluster: Cluster, chromium: Any) -> None:
    suffix = str(int(time.time() * 1000))[-7:]
    alice, bob = Page(chromium(), cluster.api_url + "/"), Page(chromium(), cluster.api_url + "/")
    alice_node = alice.sign_in(f"alice_{suffix}", button="signup-button")
    wait_busier(cluster, alice_node)
    bob_node = bob.sign_in(f"bob_{suffix}", button="signup-button")
    assert alice_node != bob_node  # the conversation crosses nodes

    # alice asks, bob adds her back: friends; bob opens the DM from his friend list
    alice.fill("friend-name", f"bob_{suffix}")
    alice.driver.find_element(By.ID, "friend-name").send_keys(Keys.ENTER)
    alice.until(lambda: "request sent" in alice.driver.find_element(By.ID, "friend-list").text)
    bob.fill("friend-name", f"alice_{suffix}")
    bob.driver.find_element(By.ID, "friend-name").send_keys(Keys.ENTER)

    def message_alice() -> bool:
        """Click "Message" on alice's row; the list re-renders on presence frames, so a button found
        a moment ago may be gone (stale): then look again."""
        try:
            buttons = bob.driver.find_elements(By.CSS_SELECTOR, "#friend-list button")
            if not buttons or buttons[0].text != "Message":
                return False
            buttons[0].click()
            return True
        except StaleElementReferenceException:
            return False

    bob.until(message_alice, what="bob messages alice from his friend list")
    bob.until(lambda: bob.js("return document.getElementById('composer').hidden") is False)
    conv = bob.js("return document.getElementById('messages').dataset.conv")
    assert conv.startswith("dm.")

    bob.send("Hi Alice! Are we still on for lunch?")
    # alice did not know the DM yet: it appears with one unread message
    alice.until(lambda: alice.unread(conv) == "1", what="unread badge 1")
    assert "Are we still on for lunch?" in alice.conv_button(conv).text
    alice.open(conv)
    alice.wait_bodies(["Hi Alice! Are we still on for lunch?"])
    assert alice.unread(conv) == ""
    bob.until(lambda: bob.state_of("Hi Alice! Are we still on for lunch?") == "read", what="bob sees read")

    alice.send("Yes! 12:30 at the usual place?")
    shown = bob.wait_bodies(["Hi Alice! Are we still on for lunch?", "Yes! 12:30 at the usual place?"])
    assert [m["mine"] for m in shown] == [True, False]
    bob.send("Perfect, see you there!")
    alice.wait_bodies(["Hi Alice! Are we still on for lunch?", "Yes! 12:30 at the usual place?",
                       "Perfect, see you there!"])
    alice.until(lambda: alice.state_of("Yes! 12:30 at the usual place?") == "read")
    # typing: alice types without sending; bob sees it
    # typing: alice keeps typing without sending; bob sees it (a node forwards one "start" per 2 s,
    # and alice's last message cleared the previous one, so the first keystrokes may not show yet)
    box = alice.driver.find_element(By.ID, "composer-body")

    def typing_shown() -> bool:
        box.send_keys("a")
        return "is typing" in bob.driver.find_element(By.ID, "typing").text

    bob.until(typing_shown, what="typing shown")
    assert bob.driver.find_element(By.ID, "typing").text == f"alice_{suffix} is typing…"
    assert bob.driver.find_element(By.ID, "conv-sub").text == "online"
    screenshot(bob.driver, DOCS / "web-client.png")
    assert alice.errors() == [] and bob.errors() == []


def test_a_second_window_of_the_same_user_is_a_second_device_in_sync(
    cluster: Cluster, chromium: Any, account: Callable[..., Account], socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob = account("alice"), account("bob")
    conv = alice.befriend(bob)
    bob_ws = socket_for(bob, 1)
    tab1, tab2 = Page(chromium(), cluster.api_url + "/"), Page(chromium(), cluster.api_url + "/")
    tab1.sign_in(alice.username)
    tab2.sign_in(alice.username)
    devices = {d["id"] for d in call(cluster, "GET", "/v1/devices", alice.token)["devices"]}
    assert len(devices) == 3  # the API login above, and one per window

    first = bob_ws.send(conv, "one")
    for tab in (tab1, tab2):
        tab.until(lambda tab=tab: tab.unread(conv) == "1", what="unread in both windows")
    tab1.open(conv)
    tab1.wait_bodies(["one"])
    tab2.until(lambda: tab2.unread(conv) == "", what="read in window 1 clears window 2")
    bob_ws.wait(lambda f: f.get("type") == "receipt" and f.get("status") == "read" and f.get("upto") == first)

    tab2.open(conv)
    tab2.wait_bodies(["one"])
    tab1.send("from window 1")
    bob_ws.wait(lambda f: f.get("type") == "msg" and f.get("body") == "from window 1")
    for tab in (tab1, tab2):
        shown = tab.wait_bodies(["one", "from window 1"])
        assert shown[1]["mine"]
    mine = bob_ws.messages(conv)[-1]["id"]
    bob_ws.ack_through(mine)
    for tab in (tab1, tab2):
        tab.until(lambda tab=tab: tab.state_of("from window 1") == "delivered", what="delivered")
    bob_ws.frame({"type": "read", "conv": conv, "upto": mine})
    for tab in (tab1, tab2):
        tab.until(lambda tab=tab: tab.state_of("from window 1") == "read", what="read in both windows")
    # a reload keeps the window's device (sessionStorage) and shows the same conversation
    tab2.driver.refresh()
    tab2.wait_online()
    assert {d["id"] for d in call(cluster, "GET", "/v1/devices", alice.token)["devices"]} == devices
    tab2.open(conv)
    tab2.wait_bodies(["one", "from window 1"])
    assert tab1.errors() == [] and tab2.errors() == []


def test_killing_the_pages_node_reconnects_elsewhere_and_shows_every_message_once(
    cluster: Cluster, chromium: Any, account: Callable[..., Account], socket_for: Callable[[Account, int], Socket],
) -> None:
    """The page's own send made during the outage is resent after the reconnect, the messages sent
    meanwhile come by sync, and the page shows each once, in the server's (id) order.

    The outage is held open until the test has sent everything: the page's first reconnect comes
    0.25-0.75 s after the drop (backoff with jitter), and a loaded machine's test process can be slower
    than that, so without the hold the page could be back online before "sent while offline" was typed
    (then it is no offline send at all) or before bob's messages were stored (then it is stored among
    them). ``/v1/place`` is refused meanwhile, which is what a reconnect after a drop asks first."""
    alice, bob = account("alice"), account("bob")
    conv = alice.befriend(bob)
    page = Page(chromium(), cluster.api_url + "/")
    node = page.sign_in(alice.username)
    dead = index_of(cluster, node)
    bob_ws = socket_for(bob, 1 - dead)
    page.open(conv)
    before = [f"before {i}" for i in range(3)]
    before_ids = [bob_ws.send(conv, body) for body in before]
    page.wait_bodies(before)

    page.driver.execute_cdp_cmd("Network.enable", {})
    page.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/v1/place*"]})
    cluster.kill(node)
    try:
        page.until(lambda: page.connection()["state"] != "online", what="page sees the drop")
        page.send("sent while offline")  # pending, resent after the reconnect
        page.until(lambda: page.state_of("sent while offline") == "pending", what="the send shown as pending")
        during = [f"during {i}" for i in range(5)]
        during_ids = [bob_ws.send(conv, body) for body in during]
        assert page.connection()["state"] != "online"  # still held offline: the send is still to be made
        page.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        moved_to = page.wait_online(timeout=30)
        assert moved_to != node
        page.wait_bodies(before + during + ["sent while offline"], timeout=WAIT)
        page.until(lambda: page.state_of("sent while offline") != "pending", what="the resent message acked")
        mine = bob_ws.wait(lambda f: f.get("type") == "msg" and f.get("body") == "sent while offline")["id"]
        assert [m["id"] for m in page.shown()] == before_ids + during_ids + [mine]
        after = bob_ws.send(conv, "after")
        page.wait_bodies(before + during + ["sent while offline", "after"])
        assert [m["body"] for m in bob_ws.messages(conv)].count("sent while offline") == 1
        assert page.shown()[-1]["id"] == after
        # the browser itself logs the failed connections to the dead node; nothing else may appear
        # (the refused placements are not logged)
        dead_url = cluster.node_url(dead)
        assert page.errors(allowed=lambda m: dead_url in m and "WebSocket connection" in m) == []
    finally:
        page.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        cluster.start_node(dead)


def test_html_in_bodies_and_names_is_shown_as_text(
    cluster: Cluster, chromium: Any, account: Callable[..., Account], socket_for: Callable[[Account, int], Socket],
) -> None:
    alice = account("alice")
    name = '<b id="bold">Mallory</b><img src=x onerror="window.pwned=1">'
    mallory = account("mallory", display_name=name)
    conv = alice.befriend(mallory)
    mallory_ws = socket_for(mallory, 0)
    page = Page(chromium(), cluster.api_url + "/")
    page.sign_in(alice.username)
    bodies = ['<img src=x onerror="window.pwned=2;document.title=\'pwned\'">',
              "<script>window.pwned=3</script>", '<a href="javascript:window.pwned=4">click</a>']
    for body in bodies:
        mallory_ws.send(conv, body)
    page.open(conv)
    page.wait_bodies(bodies)
    assert page.driver.find_element(By.ID, "conv-title").text == name
    assert page.js("return document.querySelectorAll('#app img:not(h1 img), #app script, #app a, #bold').length") == 0
    assert page.js("return window.pwned === undefined && document.title === 'Parley'")
    assert page.errors() == []


def test_unread_counts_history_paging_presence_and_groups(
    cluster: Cluster, chromium: Any, account: Callable[..., Account], socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob, carol = account("alice"), account("bob", "Bob"), account("carol", "Carol")
    dm = alice.befriend(bob)
    alice.befriend(carol)
    bob_ws, carol_ws = socket_for(bob, 0), socket_for(carol, 1)
    sent = [f"message {i:03d}" for i in range(120)]
    for body in sent:
        bob_ws.send(dm, body)
    listed = {c["id"]: c for c in call(cluster, "GET", "/v1/conversations", alice.token)["conversations"]}
    assert (listed[dm]["unread"], listed[dm]["read"]) == (100, 0)  # counted up to 100
    page = Page(chromium(), cluster.api_url + "/")
    page.sign_in(alice.username)
    assert page.until(lambda: page.unread(dm)) == "99+"
    assert page.until(lambda: "online" in page.conv_button(dm).get_attribute("aria-label"), what="bob online")

    # the newest page first, older ones as the reader scrolls up, each message once and in order
    page.open(dm)
    page.until(lambda: len(page.bodies()) == 50)
    assert page.bodies() == sent[-50:]

    def scrolled_to_start() -> bool:
        page.js("document.getElementById('scroller').scrollTop = 0;")
        return page.bodies() == sent

    page.until(scrolled_to_start, what="all history loaded")
    assert page.driver.find_element(By.ID, "history-state").text == "Start of the conversation"
    listed = {c["id"]: c for c in call(cluster, "GET", "/v1/conversations", alice.token)["conversations"]}
    assert (listed[dm]["unread"], listed[dm]["read"]) == (0, bob_ws.messages(dm)[-1]["id"])

    # presence: bob leaves; after the presence timeout the page says when he was last seen
    assert page.driver.find_element(By.ID, "conv-sub").text == "online"
    bob_ws.ws.close()
    page.until(lambda: page.driver.find_element(By.ID, "conv-sub").text == "last seen just now", timeout=20)

    # a group made on the page: carol (another node) is told, writes, and reads alice's answer
    page.fill("group-name", "Lunch <club>")
    for box in page.driver.find_elements(By.CSS_SELECTOR, "#group-members input"):
        box.click()
    page.driver.find_element(By.CSS_SELECTOR, "#new-group button[type=submit]").click()
    joined = carol_ws.wait(lambda f: f.get("type") == "group" and f.get("event") == "joined")
    group = joined["conv"]
    page.until(lambda: page.js("return document.getElementById('messages').dataset.conv") == group)
    assert page.driver.find_element(By.ID, "conv-title").text == "Lunch <club>"
    assert "3 members" in page.driver.find_element(By.ID, "conv-sub").text
    carol_ws.send(group, "hello group")
    page.wait_bodies(["hello group"])
    assert page.js("return document.querySelector('#messages li .from').textContent") == "Carol"
    page.send("hi all")
    carol_ws.wait(lambda f: f.get("type") == "msg" and f.get("conv") == group and f.get("body") == "hi all")
    page.until(lambda: page.state_of("hi all") in ("sent", "delivered", "read"))
    assert page.errors() == []


def test_a_draining_node_moves_the_page_at_once_without_losing_a_message(
    cluster: Cluster, chromium: Any, account: Callable[..., Account], socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob = account("alice"), account("bob")
    conv = alice.befriend(bob)
    page = Page(chromium(), cluster.api_url + "/")
    node = page.sign_in(alice.username)
    drained = index_of(cluster, node)
    bob_ws = socket_for(bob, 1 - drained)
    page.open(conv)
    page.js("""window.connStates = [];  // every state the page showed, in order
               new MutationObserver((records) => records.forEach((r) => connStates.push(r.oldValue)))
                 .observe(document.getElementById('conn'),
                          {attributes: true, attributeFilter: ['data-state'], attributeOldValue: true});""")
    bob_ws.send(conv, "before the drain")
    page.wait_bodies(["before the drain"])
    cluster.roles[f"node{drained + 1}"].proc.send_signal(signal.SIGTERM)  # a node drains on SIGTERM
    try:
        assert page.until(lambda: page.connection()["node"] not in ("", node) and page.wait_online()) != node
        bob_ws.send(conv, "after the drain")
        shown = page.wait_bodies(["before the drain", "after the drain"])
        assert len({m["id"] for m in shown}) == 2
        states = page.js("return window.connStates.concat([document.getElementById('conn').dataset.state])")
        assert "moving" in states and "reconnecting" not in states, states  # told where to go: no backoff
        assert page.errors() == []
    finally:
        cluster.roles.pop(f"node{drained + 1}").proc.wait(30)
        cluster.start_node(drained)


# ---- sessions, resends and reconnects (review fixes) -----------------------------------------

RECORD_FRAMES = """
window.sentFrames = [];   // every frame the page sends, parsed
window.dropSends = false; // while true, `send` frames are recorded but never reach the node
const original = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  const frame = JSON.parse(data);
  window.sentFrames.push(frame);
  if (window.dropSends && frame.type === "send") return undefined;
  return original.call(this, data);
};
// while window.ackFirst, incoming msg frames wait until an ack has been handled (protocol §6: while
// syncing, the ack of a resend comes before the backlog's msgs) and, if window.afterReceipts, until
// the page has also re-read a conversation's receipts (a long backlog lets HTTP overtake it)
window.ackFirst = false;
window.afterReceipts = false;
let receiptFetches = 0;
let syncedAt = null;       // receiptFetches when a synced frame was handled
let reReadAfterSync = false;
const fetchOriginal = window.fetch;
window.fetch = (...args) => {
  const receipts = String(args[0]).endsWith("/receipts");
  const seq = receipts ? ++receiptFetches : 0;
  return fetchOriginal(...args).then((r) => {
    if (receipts && syncedAt !== null && seq > syncedAt) r.clone().text().then(() => { reReadAfterSync = true; });
    return r;
  });
};
const held = [];
let releasing = false;
const onmessage = Object.getOwnPropertyDescriptor(WebSocket.prototype, "onmessage");
Object.defineProperty(WebSocket.prototype, "onmessage", {
  configurable: true,
  get() { return onmessage.get.call(this); },
  set(handler) {
    onmessage.set.call(this, (event) => {
      const frame = JSON.parse(event.data);
      if (window.ackFirst && frame.type === "msg") { held.push(event); return; }
      if (window.ackFirst && frame.type === "synced" && syncedAt === null) syncedAt = receiptFetches;
      handler(event);
      if (window.ackFirst && frame.type === "ack" && !releasing) {
        releasing = true;
        const release = () => {
          if (window.afterReceipts && !reReadAfterSync) { setTimeout(release, 20); return; }
          window.ackFirst = releasing = false;
          held.splice(0).forEach(handler);
        };
        release();
      }
    });
  },
});"""


def hooked_page(driver: webdriver.Chrome, cluster: Cluster) -> Page:
    """A page with the test hooks (window.parleyTest) and a recorder of the frames it sends."""
    page = Page(driver, cluster.api_url + "/")
    page.js(RECORD_FRAMES)
    return page


def recorded_page(driver: webdriver.Chrome, cluster: Cluster) -> Page:
    """Like ``hooked_page``, but the recorder is installed before the page's own scripts run, on
    every load: it sees the hello, and a reload keeps recording."""
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": f"(() => {{{RECORD_FRAMES}}})();"})
    return Page(driver, cluster.api_url + "/")


def sent(page: Page, kind: str) -> list[dict[str, Any]]:
    return [f for f in page.js("return window.sentFrames") if f.get("type") == kind]


def pending_cids(page: Page) -> list[str]:
    return list(page.js("return [...window.parleyTest.conn.pending.keys()]"))


def history(cluster: Cluster, acct: Account, conv: str) -> list[dict[str, Any]]:
    return list(call(cluster, "GET", f"/v1/conversations/{conv}/messages?limit=200", acct.token)["messages"])


def test_logging_out_and_in_as_someone_else_in_the_same_tab_sends_nothing_of_the_first_user(
    cluster: Cluster, chromium: Any, account: Callable[..., Account], socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob, carol = account("alice"), account("bob"), account("carol")
    dm = alice.befriend(bob)
    with_carol = alice.befriend(carol)
    socket_for(carol, 0).send(with_carol, "alice's cursor moves past anything bob has")
    page = hooked_page(chromium(), cluster)
    page.sign_in(alice.username)
    page.open(dm)
    page.js("window.dropSends = true;")
    page.send("alice's, still pending")
    page.until(lambda: page.state_of("alice's, still pending") == "pending")
    assert len(pending_cids(page)) == 1
    assert page.js("return window.parleyTest.conn.cursor").startswith("c1.")  # alice's device has one

    page.driver.find_element(By.ID, "logout").click()
    page.until(lambda: page.driver.find_element(By.ID, "auth-username").is_displayed())
    page.js("window.dropSends = false; window.sentFrames = [];")
    page.sign_in(bob.username)  # online = synced: any resend would have gone out before
    assert sent(page, "send") == []
    # bob's window is a new device of his: no cursor of its own yet, so it starts from what his own
    # conversation listing covers ("from now", protocol §8); alice's is not carried over
    listed = call(cluster, "GET", "/v1/conversations", bob.token)["cursor"]
    assert [f.get("cursor") for f in sent(page, "hello")] == [listed]
    assert pending_cids(page) == []
    page.open(dm)
    assert page.bodies() == []
    assert history(cluster, bob, dm) == []
    assert page.errors() == []


def test_a_send_pending_longer_than_the_dedup_window_is_looked_up_before_it_is_resent(
    cluster: Cluster, chromium: Any, account: Callable[..., Account], socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob = account("alice"), account("bob")
    conv = alice.befriend(bob)
    page = hooked_page(chromium(), cluster)
    page.sign_in(alice.username)
    page.open(conv)
    page.js("window.dropSends = true;")
    page.send("stored, but its ack was lost")
    page.send("never stored")
    page.until(lambda: len(sent(page, "send")) == 2)
    stored_frame, lost_frame = sent(page, "send")
    page.js("window.parleyTest.conn.stop();")

    # the first send did reach the node from this device (same token, same device id, same cid)
    token = page.js("return JSON.parse(sessionStorage.getItem('parley.session')).token")
    same_device = socket_for(Account(cluster, alice.username, alice.id, token), 0)
    same_device.frame(stored_frame)
    stored_id = int(same_device.wait(lambda f: f.get("type") == "ack")["id"])
    past_it = same_device.cursor_after(stored_id)
    same_device.ws.close()

    # six minutes later (the page's clock; the node's window is 300 s) the page reconnects with a
    # cursor past the stored message, so only history can tell it that send was stored
    page.js("window.dropSends = false; window.sentFrames = []; window.parleyTest.advanceClock(360000);"
            "window.parleyTest.conn.start(arguments[0], null);", past_it)
    page.wait_online()
    shown = page.until(lambda: (s := page.shown()) and all(m["id"] for m in s) and s, what="both stored")
    assert [m["body"] for m in shown] == ["stored, but its ack was lost", "never stored"]
    assert shown[0]["id"] == stored_id
    assert [f["cid"] for f in sent(page, "send")] == [lost_frame["cid"]]  # the absent one only
    bodies = [m["body"] for m in history(cluster, alice, conv)]
    assert sorted(bodies) == ["never stored", "stored, but its ack was lost"]
    assert pending_cids(page) == []
    assert page.errors() == []


def test_receipts_sent_while_the_page_was_away_show_after_it_reconnects(
    cluster: Cluster, chromium: Any, account: Callable[..., Account], socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob = account("alice"), account("bob")
    conv = alice.befriend(bob)
    bob_ws = socket_for(bob, 0)
    page = hooked_page(chromium(), cluster)
    page.sign_in(alice.username)
    page.open(conv)
    page.send("read me while you are away")
    mine = bob_ws.wait(lambda f: f.get("type") == "msg" and f.get("from") == alice.id)["id"]
    page.until(lambda: page.state_of("read me while you are away") == "sent")

    page.js("window.parleyTest.conn.stop();")  # the link is gone: frames for it are dropped
    bob_ws.frame({"type": "read", "conv": conv, "upto": mine})

    def bob_read() -> bool:
        marks = call(cluster, "GET", f"/v1/conversations/{conv}/receipts", alice.token)["receipts"]
        return any(r["user_id"] == bob.id and r["read"] >= mine for r in marks)

    page.until(bob_read, what="bob's read mark stored")
    assert page.state_of("read me while you are away") == "sent"
    page.js("window.parleyTest.conn.start(null, null);")
    page.wait_online()
    page.until(lambda: page.state_of("read me while you are away") == "read", what="read after reconnect")
    assert page.errors() == []


def test_an_older_message_arriving_after_our_own_ack_still_counts_as_unread(
    cluster: Cluster, chromium: Any, account: Callable[..., Account], socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob, carol = account("alice"), account("bob"), account("carol")
    dm = alice.befriend(bob)
    other = alice.befriend(carol)
    bob_ws = socket_for(bob, 0)
    page = hooked_page(chromium(), cluster)
    page.sign_in(alice.username)
    page.open(dm)
    page.js("window.parleyTest.conn.stop();")
    page.send("mine, sent while offline")  # pending: resent (and acked) before the sync's backlog
    bob_ws.send(dm, "bob's, while alice was away")  # a lower id than alice's resend will get
    page.open(other)
    page.js("window.ackFirst = window.afterReceipts = true; window.parleyTest.conn.start(null, null);")
    page.wait_online()
    bob_ws.wait(lambda f: f.get("type") == "msg" and f.get("body") == "mine, sent while offline")
    page.until(lambda: page.unread(dm) == "1", what="bob's message counted unread")
    page.open(dm)
    page.wait_bodies(["bob's, while alice was away", "mine, sent while offline"])
    page.until(lambda: page.unread(dm) == "")

    def unread_listed() -> int:
        listed = {c["id"]: c for c in call(cluster, "GET", "/v1/conversations", alice.token)["conversations"]}
        return int(listed[dm]["unread"])

    page.until(lambda: unread_listed() == 0, what="the page sent its read mark")
    assert page.errors() == []


def test_re_renders_keep_ticked_group_members_and_keyboard_focus(
    cluster: Cluster, chromium: Any, account: Callable[..., Account], socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob, carol = account("alice"), account("bob"), account("carol")
    with_bob = alice.befriend(bob)
    with_carol = alice.befriend(carol)
    carol_ws = socket_for(carol, 0)
    page = hooked_page(chromium(), cluster)
    page.sign_in(alice.username)
    box = page.until(lambda: page.driver.find_elements(By.CSS_SELECTOR, f'#group-members input[value="{bob.id}"]'))[0]
    box.click()
    assert box.is_selected()

    socket_for(bob, 1)  # bob comes online: a presence frame re-renders the friends and the list
    online_dot = "return !!document.querySelector(`#friend-list li[data-user='${arguments[0]}'] .dot.on`)"
    page.until(lambda: page.js(online_dot, bob.id), what="bob shown online")
    assert page.js("return document.querySelector(`#group-members input[value='${arguments[0]}']`).checked", bob.id)

    page.js("arguments[0].focus();", page.until(lambda: page.conv_button(with_bob)))
    carol_ws.frame({"type": "typing", "conv": with_carol})
    page.until(lambda: "is typing" in page.conv_button(with_carol).text, what="typing shown in the list")
    assert page.js("return document.activeElement.dataset.conv") == with_bob
    assert page.js("return document.querySelector(`#group-members input[value='${arguments[0]}']`).checked", bob.id)
    assert page.errors() == []


# ---- protocol v2: cursors and ids ------------------------------------------------------------


def test_the_page_acks_cursor_frames_and_resumes_from_its_cursor_after_a_reload(
    cluster: Cluster, chromium: Any, account: Callable[..., Account], socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob = account("alice"), account("bob")
    conv = alice.befriend(bob)
    bob_ws = socket_for(bob, 0)
    page = recorded_page(chromium(), cluster)
    page.sign_in(alice.username)
    device = page.js("return JSON.parse(sessionStorage.getItem('parley.session')).device_id")
    listed = call(cluster, "GET", "/v1/conversations", alice.token)["cursor"]
    assert [(f["v"], f.get("cursor")) for f in sent(page, "hello")] == [(2, listed)]  # a new device: "from now"
    page.open(conv)
    first = bob_ws.send(conv, "before the reload")
    page.wait_bodies(["before the reload"])

    stored = "return sessionStorage.getItem(`parley.cursor.${arguments[0]}`)"
    # the page acks the cursors it is offered (strings, as given), and keeps the newest one
    page.until(lambda: (acks := sent(page, "ack")) and acks[-1].get("cursor") == page.js(stored, device),
               what="the newest cursor acked and kept")
    acks = sent(page, "ack")
    assert all(set(f) == {"type", "cursor"} and f["cursor"].startswith("c1.") for f in acks), acks
    bob_ws.wait(lambda f: f.get("type") == "receipt" and f.get("status") == "delivered" and f.get("upto") == first)
    cursor = page.js(stored, device)

    def saved() -> bool:
        devices = {d["id"]: d for d in call(cluster, "GET", "/v1/devices", alice.token)["devices"]}
        return bool(devices[device]["cursor"] == cursor)

    page.until(saved, what="the acked cursor stored on the server")

    page.driver.refresh()  # the same device, from its own cursor: nothing it has is synced again
    page.wait_online()
    assert [f.get("cursor") for f in sent(page, "hello")] == [cursor]
    page.open(conv)
    bob_ws.send(conv, "after the reload")
    page.wait_bodies(["before the reload", "after the reload"])
    assert page.errors() == []


def test_the_conversation_list_is_ordered_by_the_newest_message_not_by_id(
    cluster: Cluster, chromium: Any, account: Callable[..., Account], socket_for: Callable[[Account, int], Socket],
) -> None:
    """Ids of different conversations are not comparable (protocol v2: they carry their shard's
    sequence): the list goes by each conversation's last message time."""
    alice = account("alice")
    by_shard: dict[int, tuple[str, Socket, int]] = {}
    while len(by_shard) < 2:  # two conversations homed in different shards
        friend = account("friend")
        conv = alice.befriend(friend)
        sock = socket_for(friend, len(by_shard) % 2)
        id = sock.send(conv, f"hello from {friend.username}")
        by_shard.setdefault(shard_of_id(id), (conv, sock, id))
    # x: the one whose shard's sequence is ahead; y's next message gets a lower id than x's last
    x, y = sorted(by_shard.values(), key=lambda entry: pos_of_id(entry[2]), reverse=True)
    last_x = x[2]
    while pos_of_id(last_x) <= pos_of_id(y[2]) + 1:
        last_x = x[1].send(x[0], "pushing x's shard ahead")
    newest = y[1].send(y[0], "the newest message, with the lower id")
    assert newest < last_x

    def order() -> list[str]:
        shown = page.js("return [...document.querySelectorAll('#conv-list button')].map(b => b.dataset.conv)")
        return [c for c in shown if c in (x[0], y[0])]

    page = Page(chromium(), cluster.api_url + "/")
    page.sign_in(alice.username)
    page.until(lambda: order() == [y[0], x[0]], what="the newest conversation first")
    x[1].send(x[0], "x again")
    page.until(lambda: order() == [x[0], y[0]], what="x moves to the top")
    y[1].send(y[0], "y again")
    page.until(lambda: order() == [y[0], x[0]], what="y moves to the top")
    assert page.errors() == []


def test_presence_of_many_users_is_asked_in_chunks_paced_to_the_budget_and_never_refused(
    cluster: Cluster, chromium: Any, account: Callable[..., Account],
) -> None:
    """The node's presence budget is 500 users at once, then 20 a second (protocol §11; a node of the default
    limits, not the session cluster's raised ones): the page asks 100 at a time, the first 500 at once and the
    rest as the budget refills, so it gets every answer and no ``rate_limited`` (unpaced, the sixth and
    seventh chunks would be refused, and be strikes)."""
    url = cluster.start_extra_node("pace-node", limits_scale=1.0)
    try:
        alice = account("pace")
        page = hooked_page(chromium(), cluster)
        page.sign_in(alice.username)
        page.js("window.parleyTest.conn.stop(); window.parleyTest.conn.start(null, {node: {url: arguments[0]}});",
                url)
        page.until(lambda: page.connection()["node"] == "pace-node" and page.connection()["state"] == "online")
        page.js("window.refused = [];"
                "window.parleyTest.conn.ws.addEventListener('message', (e) => {"
                "  const f = JSON.parse(e.data); if (f.type === 'error') window.refused.push(f.code); });")
        users = [new_user_id() for _ in range(700)]
        page.js("window.sentFrames.length = 0; window.parleyTest.askPresence(arguments[0]);", users)
        page.until(lambda: page.js("return window.parleyTest.presenceKnown(arguments[0]);", users) == len(users),
                   timeout=60, what="presence of all 700 users")
        asked = [f["users"] for f in page.js("return window.sentFrames;") if f["type"] == "presence"]
        assert [len(a) for a in asked] == [100] * 7 and sorted(u for a in asked for u in a) == sorted(users)
        assert page.js("return window.refused;") == []
        assert page.errors() == []
    finally:
        cluster.stop("pace-node")
