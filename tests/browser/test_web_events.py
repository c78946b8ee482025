"""Live friend and group changes, group management, profile and mute in the browser client, headless
Chromium against the real two-node cluster, at desktop and phone size (390×844).

Friend requests and acceptances come as ``friend`` frames (protocol.md §5): each page counts its own
``GET /v1/friends`` (a fetch wrapper installed before the page's scripts) and, after it has loaded, makes
none, so a page that polled would fail either way: by reading the list, or by not showing the change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.chromium import close_chromium, open_chromium, screenshot
from tests.browser.conftest import Account, call
from tests.browser.test_web_client import Page
from tests.integration.cluster import Cluster

pytestmark = pytest.mark.integration
DOCS = Path(__file__).resolve().parents[2] / "docs"

SIZES = {"desktop": (1280, 860), "phone": (390, 844)}

COUNT_FETCHES = """(() => {
  window.fetched = [];
  const original = window.fetch.bind(window);
  window.fetch = (url, init) => {
    window.fetched.push(`${(init && init.method) || "GET"} ${String(url).split("?")[0]}`);
    return original(url, init);
  };
})();"""

# what the browser logs for a refused request the page shows as an error next to its form
REFUSED = ("the server responded with a status of 400", "the server responded with a status of 403")


@pytest.fixture(params=list(SIZES), ids=list(SIZES))
def window(request: pytest.FixtureRequest, cluster: Cluster) -> Iterator[Callable[[], Page]]:
    """Opens pages at this test's size, each its own browser (a device), counting its fetches."""
    drivers: list[webdriver.Chrome] = []

    def open_page() -> Page:
        driver = open_chromium(*SIZES[request.param])
        drivers.append(driver)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": COUNT_FETCHES})
        return Page(driver, cluster.api_url + "/")

    open_page.size = request.param  # type: ignore[attr-defined]
    yield open_page
    for driver in drivers:
        close_chromium(driver)


def fetched(page: Page, what: str) -> int:
    return sum(1 for f in page.js("return window.fetched") if f == what)


def row(page: Page, list_id: str, user: str) -> str:
    """The text of ``user``'s row in a list of people ("" when not there)."""
    return str(page.js("const r = document.querySelector(`#${arguments[0]} li[data-user='${arguments[1]}']`);"
                       "return r ? r.textContent : '';", list_id, user))


def press(page: Page, css: str, what: str) -> None:
    """Clicks the button ``css`` once it is there (lists re-render on frames: a stale one is looked up again)."""
    def pressed() -> bool:
        try:
            found = page.driver.find_elements(By.CSS_SELECTOR, css)
            if not found or not found[0].is_displayed():
                return False
            page.js("arguments[0].scrollIntoView({block: 'center'})", found[0])
            found[0].click()
            return True
        except StaleElementReferenceException:
            return False
    page.until(pressed, what=what)


def open_settings(page: Page) -> None:
    page.until(lambda: page.driver.find_element(By.ID, "conv-settings").is_displayed(), what="settings shown")
    if not page.js("return document.getElementById('conv-settings').open"):
        press(page, "#conv-settings-summary", "open the settings")


def conv_title(page: Page, conv: str) -> str:
    return str(page.js("const b = document.querySelector(`#conv-list button[data-conv='${arguments[0]}'] .conv-title`);"
                       "return b ? b.textContent : '';", conv))


def members_shown(page: Page) -> dict[str, str]:
    return dict(page.js("return Object.fromEntries([...document.querySelectorAll('#group-member-list li')]"
                        ".map(li => [li.dataset.user, li.dataset.role]))"))


def test_a_request_and_its_acceptance_show_live_on_both_pages_without_reading_the_list_again(
    cluster: Cluster, window: Callable[[], Page], account: Callable[..., Account],
) -> None:
    ann, bob, cat = account("ann", "Ann"), account("bob", "Bob"), account("cat", "Cat")
    ann_page, bob_page = window(), window()
    ann_page.sign_in(ann.username)
    bob_page.sign_in(bob.username)
    loaded = {p: fetched(p, "GET /v1/friends") for p in (ann_page, bob_page)}
    assert loaded == {ann_page: 1, bob_page: 1}

    ann_page.fill("friend-name", bob.username)
    ann_page.driver.find_element(By.ID, "friend-name").send_keys(Keys.ENTER)
    ann_page.until(lambda: "request sent" in row(ann_page, "friend-list", bob.id), what="ann's request shown")
    bob_page.until(lambda: "wants to be friends" in row(bob_page, "friend-list", ann.id), what="bob sees the request")
    press(bob_page, f"#friend-list li[data-user='{ann.id}'] button", "bob accepts")
    for page, other in ((ann_page, bob), (bob_page, ann)):
        page.until(lambda page=page, other=other: "Message" in row(page, "friend-list", other.id), what="friends")
    # a request from a stranger the page has never seen, declined on the page
    call(cluster, "POST", "/v1/friends", cat.token, {"user_id": bob.id})
    bob_page.until(lambda: row(bob_page, "friend-list", cat.id) == "Cat wants to be friendsAcceptDecline")
    press(bob_page, f"#friend-list li[data-user='{cat.id}'] button.secondary", "bob declines")
    bob_page.until(lambda: row(bob_page, "friend-list", cat.id) == "", what="the request gone")
    assert call(cluster, "GET", "/v1/friends", cat.token) == {"friends": [], "incoming": [], "outgoing": []}
    # an unfriend made elsewhere (another device, the API) reaches the page
    call(cluster, "DELETE", f"/v1/friends/{ann.id}", bob.token)
    ann_page.until(lambda: row(ann_page, "friend-list", bob.id) == "", what="bob gone from ann's friends")
    bob_page.until(lambda: row(bob_page, "friend-list", ann.id) == "", what="ann gone from bob's friends")
    assert {p: fetched(p, "GET /v1/friends") for p in (ann_page, bob_page)} == loaded
    assert ann_page.errors() == [] and bob_page.errors() == []


def test_groups_are_managed_on_the_page_and_every_member_sees_each_change(
    cluster: Cluster, window: Callable[[], Page], account: Callable[..., Account],
) -> None:
    ann, bob, cat = account("ann", "Ann"), account("bob", "Bob"), account("cat", "Cat")
    ann.befriend(bob)
    ann.befriend(cat)
    ann_page, bob_page = window(), window()
    ann_page.sign_in(ann.username)
    bob_page.sign_in(bob.username)

    # ann makes a group with bob on her page: it appears in bob's list at once
    ann_page.fill("group-name", "Team")
    press(ann_page, f"#group-members label[data-user='{bob.id}'] input", "tick bob")
    press(ann_page, "#new-group button[type=submit]", "create the group")
    group = ann_page.until(lambda: ann_page.js("const c = document.getElementById('messages').dataset.conv;"
                                               "return c && c.startsWith('g.') ? c : null"), what="group open")
    bob_page.until(lambda: conv_title(bob_page, group) == "Team", what="the group in bob's list")

    # bob, a member, sees no admin controls
    bob_page.open(group)
    open_settings(bob_page)
    bob_page.until(lambda: set(members_shown(bob_page)) == {ann.id, bob.id}, what="bob sees the members")
    assert members_shown(bob_page)[ann.id] == "owner"
    assert bob_page.js("return ['group-rename-form', 'group-add-form'].map(i => document.getElementById(i).hidden)"
                       ) == [True, True]
    assert bob_page.driver.find_elements(By.CSS_SELECTOR, "#group-member-list button") == []

    # the owner renames, adds cat and makes bob an admin: bob sees each
    open_settings(ann_page)
    ann_page.fill("group-rename", "Team Rocket")
    press(ann_page, "#group-rename-form button[type=submit]", "rename")
    bob_page.until(lambda: conv_title(bob_page, group) == "Team Rocket", what="bob sees the new name")
    ann_page.until(lambda: cat.id in ann_page.js("return [...document.getElementById('group-add').options]"
                                                 ".map(o => o.value)"), what="cat can be added")
    ann_page.js("document.getElementById('group-add').value = arguments[0]", cat.id)
    press(ann_page, "#group-add-form button[type=submit]", "add cat")
    bob_page.until(lambda: members_shown(bob_page).get(cat.id) == "member", what="bob sees cat join")
    press(ann_page, f"#group-member-list li[data-user='{bob.id}'] button.set-role", "make bob an admin")
    bob_page.until(lambda: members_shown(bob_page).get(bob.id) == "admin", what="bob sees he is an admin")
    ann_page.until(lambda: members_shown(ann_page).get(bob.id) == "admin")
    suffix = "" if window.size == "desktop" else "-phone"  # type: ignore[attr-defined]
    screenshot(ann_page.driver, DOCS / f"web-group-settings{suffix}.png")

    # bob, an admin now, renames (a blank name is refused next to the form) and removes cat
    bob_page.until(lambda: bob_page.driver.find_element(By.ID, "group-rename-form").is_displayed())
    bob_page.fill("group-rename", "   ")
    press(bob_page, "#group-rename-form button[type=submit]", "rename to blank")
    bob_page.until(lambda: "blank" in bob_page.driver.find_element(By.ID, "group-rename-error").text)
    assert bob_page.driver.find_element(By.ID, "group-rename").get_attribute("aria-invalid") == "true"
    assert bob_page.driver.find_elements(By.CSS_SELECTOR, "#group-member-list button.set-role") == []
    press(bob_page, f"#group-member-list li[data-user='{cat.id}'] button.remove-member", "bob removes cat")
    ann_page.until(lambda: cat.id not in members_shown(ann_page), what="ann sees cat removed")
    assert conv_title(bob_page, group) == "Team Rocket"

    # bob leaves: the group leaves his list, and ann sees him gone
    press(bob_page, "#group-leave", "bob leaves")
    bob_page.until(lambda: conv_title(bob_page, group) == "", what="the group gone from bob's list")
    ann_page.until(lambda: set(members_shown(ann_page)) == {ann.id}, what="ann sees bob leave")
    assert ann_page.errors() == [] and bob_page.errors(lambda m: any(r in m for r in REFUSED)) == []


def test_a_profile_name_shows_live_to_a_friend_and_mute_and_devices_work(
    cluster: Cluster, window: Callable[[], Page], account: Callable[..., Account],
) -> None:
    ann, bob = account("ann", "Ann"), account("bob", "Bob")
    dm = ann.befriend(bob)
    page, bob_page = window(), window()
    page.sign_in(ann.username)
    bob_page.sign_in(bob.username)
    bob_page.until(lambda: conv_title(bob_page, dm) == "Ann", what="bob's list")
    listed = fetched(bob_page, "GET /v1/conversations")

    # a blank name is refused next to the form; a good one is saved and shown
    press(page, "#profile-name", "the name field")
    page.fill("profile-name", " ")
    press(page, "#profile-save", "save a blank name")
    page.until(lambda: page.driver.find_element(By.ID, "profile-error").text != "", what="the refusal shown")
    assert page.driver.find_element(By.ID, "profile-name").get_attribute("aria-invalid") == "true"
    page.fill("profile-name", "Ann Example")
    press(page, "#profile-save", "save the name")
    page.until(lambda: page.driver.find_element(By.ID, "me-name").text == "Ann Example", what="the new name shown")
    assert page.driver.find_element(By.ID, "profile-name").get_attribute("aria-invalid") is None
    assert call(cluster, "GET", "/v1/me", ann.token)["user"]["display_name"] == "Ann Example"
    # bob's page shows it at once (a `user` frame), in his list and among his friends, reading nothing again
    bob_page.until(lambda: conv_title(bob_page, dm) == "Ann Example", what="bob sees the new name")
    bob_page.until(lambda: row(bob_page, "friend-list", ann.id) == "Ann ExampleMessage", what="in his friends")
    assert fetched(bob_page, "GET /v1/conversations") == listed

    # mute the DM: marked in the list, kept by the server, still marked after a reload
    page.open(dm)
    open_settings(page)
    press(page, "#mute-toggle", "mute")
    page.until(lambda: page.conv_button(dm).get_attribute("data-muted") == "true", what="the muted mark")
    assert call(cluster, "GET", "/v1/push/settings", ann.token)["muted_conversations"] == [dm]
    page.driver.refresh()
    page.wait_online()
    page.until(lambda: page.conv_button(dm) and page.conv_button(dm).get_attribute("data-muted") == "true")
    page.open(dm)
    open_settings(page)
    assert page.driver.find_element(By.ID, "mute-toggle").is_selected()
    press(page, "#mute-toggle", "unmute")
    page.until(lambda: page.conv_button(dm).get_attribute("data-muted") == "false", what="unmuted")
    assert call(cluster, "GET", "/v1/push/settings", ann.token)["muted_conversations"] == []

    # the devices: this one among them (on a phone, back to the list first: the sidebar holds the profile)
    if page.js("const b = document.getElementById('back'); return !b.hidden && b.offsetParent !== null"):
        press(page, "#back", "back to the list")
    press(page, "#devices summary", "show the devices")
    page.until(lambda: "(this one)" in page.driver.find_element(By.ID, "device-list").text, what="devices listed")
    assert page.errors(lambda m: any(r in m for r in REFUSED)) == [] and bob_page.errors() == []
