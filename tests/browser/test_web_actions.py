"""Replies, edits, deletes and reactions (protocol §19) in the browser client, headless Chromium against
the real two-node cluster: a peer's actions sent over the WebSocket show on the page (applied to their
target, never as messages of their own), the page's own menu sends them, and a reload (history over HTTP)
shows the same state."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.conftest import Account, Socket, call
from tests.browser.test_web_client import Page, hooked_page
from tests.integration.cluster import Cluster

pytestmark = pytest.mark.integration

SHOWN = """
return [...document.querySelectorAll('#messages li')].map(li => ({
  id: li.dataset.id ? Number(li.dataset.id) : null,
  body: li.querySelector('.body').textContent,
  edited: !li.querySelector('.edited').hidden,
  deleted: li.classList.contains('deleted'),
  quote: li.querySelector('.quote').hidden ? null : li.querySelector('.quote-body').textContent,
  reactions: [...li.querySelectorAll('.reactions .reaction')].map(b =>
    b.dataset.emoji + b.querySelector('.count').textContent + (b.classList.contains('mine') ? '*' : '')),
}));"""


def shown(page: Page) -> list[dict[str, Any]]:
    return list(page.js(SHOWN))


def wait_shown(page: Page, expected: list[dict[str, Any]]) -> None:
    """Until the open conversation shows exactly ``expected`` (each a subset of a shown item's fields)."""
    def matches() -> bool:
        now = shown(page)
        return len(now) == len(expected) and all(
            all(item.get(k) == v for k, v in want.items()) for item, want in zip(now, expected, strict=True))
    try:
        page.until(matches, what=f"messages {expected}")
    except Exception as err:
        raise AssertionError(f"expected {expected}; the page showed {shown(page)}") from err


def act(sock: Socket, conv: str, **fields: Any) -> int:
    """Sends a reply or an action over the protocol; its id once acked."""
    cid = f"a{secrets.token_hex(4)}"
    sock.frame({"type": "send", "cid": cid, "conv": conv, "body": "", **fields})
    ack = sock.wait(lambda f: f.get("ref") == cid or (f.get("type") == "ack" and f.get("cid") == cid))
    assert ack.get("type") == "ack", ack
    return int(ack["id"])


def preview(page: Page, conv: str) -> str:
    return str(page.js("return document.querySelector(`#conv-list button[data-conv='${arguments[0]}'] .conv-last`)"
                       ".textContent;", conv))


def test_a_peers_reply_edit_reaction_and_delete_show_on_the_page_and_after_a_reload(
    cluster: Cluster, chromium: Any, account: Callable[..., Account], socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob = account("alice"), account("bob")
    conv = alice.befriend(bob)
    bob_ws = socket_for(bob, 1)
    first = bob_ws.send(conv, "helo alice")
    second = bob_ws.send(conv, "a typo here")
    page = Page(chromium(), cluster.api_url + "/")
    page.sign_in(alice.username)
    page.open(conv)
    wait_shown(page, [{"id": first, "body": "helo alice"}, {"id": second, "body": "a typo here"}])

    act(bob_ws, conv, kind="edit", target=first, body="hello alice")  # a reply quotes the text as it is then
    act(bob_ws, conv, kind="react", target=first, emoji="👍")
    reply = act(bob_ws, conv, body="about that", reply_to=first)
    act(bob_ws, conv, kind="delete", target=second)
    expected = [
        {"id": first, "body": "hello alice", "edited": True, "reactions": ["👍1"], "quote": None},
        {"id": second, "body": "message deleted", "deleted": True, "reactions": []},
        {"id": reply, "body": "about that", "quote": "hello alice", "edited": False},
    ]
    wait_shown(page, expected)
    assert preview(page, conv) == "about that"
    # the unread count never counted the actions (the conversation is open: nothing unread)
    assert page.unread(conv) == ""

    page.driver.refresh()
    page.wait_online()
    # the listing's last entry is the delete: a few words until the conversation's messages are held
    page.until(lambda: preview(page, conv) == "deleted a message", what="the list's line for an action")
    page.open(conv)
    wait_shown(page, expected)
    page.until(lambda: preview(page, conv) == "about that", what="the list's line: the newest message")
    assert page.errors() == []


def test_the_menu_replies_edits_reacts_and_deletes_and_the_peer_gets_the_actions(
    cluster: Cluster, chromium: Any, account: Callable[..., Account], socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob = account("alice"), account("bob")
    conv = alice.befriend(bob)
    bob_ws = socket_for(bob, 0)
    theirs = bob_ws.send(conv, "lunch?")
    page = Page(chromium(), cluster.api_url + "/")
    page.sign_in(alice.username)
    page.open(conv)
    wait_shown(page, [{"id": theirs, "body": "lunch?"}])

    def item(id: int) -> Any:
        return page.driver.find_element(By.CSS_SELECTOR, f'#messages li[data-id="{id}"]')

    def menu(id: int, button: str) -> None:
        li = item(id)
        li.find_element(By.CSS_SELECTOR, ".msg-menu summary").click()
        found = li.find_element(By.CSS_SELECTOR, button)
        try:
            page.until(found.is_displayed, what=f"{button} of {id}")
        except Exception as err:
            raise AssertionError(li.get_attribute("outerHTML")) from err
        found.click()

    # bob's message: no Edit or Delete for alice in a DM; a reaction is hers (highlighted)
    li = item(theirs)
    li.find_element(By.CSS_SELECTOR, ".msg-menu summary").click()
    assert not li.find_element(By.CSS_SELECTOR, ".act-edit").is_displayed()
    assert not li.find_element(By.CSS_SELECTOR, ".act-delete").is_displayed()
    li.find_element(By.CSS_SELECTOR, '.act-react[aria-label="React 🎉"]').click()
    wait_shown(page, [{"id": theirs, "reactions": ["🎉1*"]}])
    react = bob_ws.wait(lambda f: f.get("type") == "msg" and f.get("kind") == "react")
    assert (react["target"], react["emoji"], react["from"]) == (theirs, "🎉", alice.id)

    # a reply: the quote above the body, for both
    menu(theirs, ".act-reply")
    bar = page.driver.find_element(By.ID, "composing")
    assert bar.is_displayed() and bar.text.startswith(f"Replying to {bob.username}: lunch?")
    box = page.driver.find_element(By.ID, "composer-body")
    assert page.js("return document.activeElement.id") == "composer-body"
    box.send_keys("yes please", Keys.ENTER)
    page.until(lambda: not bar.is_displayed(), what="the reply bar gone once sent")
    sent = bob_ws.wait(lambda f: f.get("type") == "msg" and f.get("body") == "yes please")
    assert sent["reply_to"] == theirs and sent["quote"] == {"from": bob.id, "body": "lunch?"}
    mine = int(sent["id"])
    wait_shown(page, [{"id": theirs}, {"id": mine, "body": "yes please", "quote": "lunch?"}])

    # an edit of her own message, then her reaction taken back, then a delete
    menu(mine, ".act-edit")
    box = page.driver.find_element(By.ID, "composer-body")
    assert box.get_attribute("value") == "yes please"
    box.clear()
    box.send_keys("yes, at noon", Keys.ENTER)
    wait_shown(page, [{"id": theirs}, {"id": mine, "body": "yes, at noon", "edited": True}])
    item(theirs).find_element(By.CSS_SELECTOR, ".reactions .reaction").click()
    wait_shown(page, [{"id": theirs, "reactions": []}, {"id": mine}])
    menu(mine, ".act-delete")
    wait_shown(page, [{"id": theirs}, {"id": mine, "body": "message deleted", "deleted": True}])
    bob_ws.wait(lambda f: f.get("type") == "msg" and f.get("kind") == "delete")
    kinds = [f.get("kind") for f in bob_ws.messages(conv) if f.get("from") == alice.id]
    assert kinds == ["react", None, "edit", "unreact", "delete"]
    assert page.errors() == []


MODEL_CHECKS = """
const done = arguments[arguments.length - 1];
Promise.all([import('/static/actions.js'), import('/static/model.js')]).then(([a, m]) => {
  const conv = new m.Conversation({id: 'dm.x', kind: 'dm', members: [],
                                   last_message: {id: 9, kind: 'react', target: 1, from: 'b', emoji: 'x', ts: 9}});
  const out = {listedAction: a.lastShown(conv)};
  // a page from the store: the target as it is now, and the entries already in that state
  const page = [{id: 1, from: 'b', body: 'v3', edited: true, edited_at: 30, ts: 1},
                {id: 2, kind: 'edit', target: 1, from: 'b', body: 'v2', ts: 20},
                {id: 3, kind: 'react', target: 1, from: 'a', emoji: 'x', ts: 25},
                {id: 4, kind: 'unreact', target: 1, from: 'a', emoji: 'x', ts: 26},
                {id: 5, kind: 'edit', target: 1, from: 'b', body: 'v3', ts: 30}];
  a.stampStored(page, 0).sort((p, q) => p.id - q.id).forEach((e) => conv.add(e));
  out.stored = [conv.messages.get(1).body, conv.messages.get(1).reactions || {}, conv.shown().length];
  conv.add({id: 6, kind: 'edit', target: 1, from: 'b', body: 'older', ts: 29});  // an older edit, later
  conv.add({id: 7, kind: 'react', target: 1, from: 'a', emoji: 'x', ts: 31});
  conv.add({id: 8, kind: 'react', target: 1, from: 'a', emoji: 'x', ts: 32});  // a set
  out.live = [conv.messages.get(1).body, conv.messages.get(1).reactions];
  conv.add({id: 10, from: 'a', body: 're', reply_to: 1, quote: {from: 'b', body: 'v3'}, ts: 33});
  conv.add({id: 11, kind: 'delete', target: 1, from: 'b', ts: 34});
  conv.add({id: 12, kind: 'react', target: 1, from: 'a', emoji: 'y', ts: 35});  // deleted: nothing
  const t = conv.messages.get(1);
  out.deleted = [t.deleted, t.body, t.reactions, conv.messages.get(10).quote.body, a.lastShown(conv).id];
  done(out);
}).catch((err) => done(String(err)));"""


def test_the_model_applies_actions_once_in_chain_order_and_never_again_over_state_from_the_store(
    cluster: Cluster, chromium: Any,
) -> None:
    page = Page(chromium(), cluster.api_url + "/")
    out = page.driver.execute_async_script(MODEL_CHECKS)
    assert out == {
        "listedAction": None,
        "stored": ["v3", {}, 1],
        "live": ["v3", {"x": {"count": 1, "users": ["a"]}}],
        "deleted": [True, "", {}, "", 10],
    }
    assert page.errors() == []


def test_a_groups_owner_may_delete_a_members_message_from_the_menu(
    cluster: Cluster, chromium: Any, account: Callable[..., Account], socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob = account("alice"), account("bob")
    alice.befriend(bob)
    group = call(cluster, "POST", "/v1/groups", alice.token, {"name": "crag", "members": [bob.id]})
    conv = str(group["conversation"]["id"])
    bob_ws = socket_for(bob, 1)
    theirs = bob_ws.send(conv, "spam")
    page = Page(chromium(), cluster.api_url + "/")
    page.sign_in(alice.username)
    page.open(conv)
    wait_shown(page, [{"id": theirs, "body": "spam"}])
    li = page.driver.find_element(By.CSS_SELECTOR, f'#messages li[data-id="{theirs}"]')
    li.find_element(By.CSS_SELECTOR, ".msg-menu summary").click()
    assert not li.find_element(By.CSS_SELECTOR, ".act-edit").is_displayed()  # not hers to edit
    li.find_element(By.CSS_SELECTOR, ".act-delete").click()  # the owner's to delete
    wait_shown(page, [{"id": theirs, "body": "message deleted", "deleted": True}])
    gone = bob_ws.wait(lambda f: f.get("type") == "msg" and f.get("kind") == "delete")
    assert (gone["target"], gone["from"]) == (theirs, alice.id)
    assert page.errors() == []


def test_actions_sent_while_the_page_was_away_apply_after_it_syncs(
    cluster: Cluster, chromium: Any, account: Callable[..., Account], socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob = account("alice"), account("bob")
    conv = alice.befriend(bob)
    bob_ws = socket_for(bob, 0)
    first = bob_ws.send(conv, "one")
    second = bob_ws.send(conv, "two")
    page = hooked_page(chromium(), cluster)
    page.sign_in(alice.username)
    page.open(conv)
    wait_shown(page, [{"id": first, "body": "one"}, {"id": second, "body": "two"}])

    page.js("window.parleyTest.conn.stop();")  # away: what comes now, comes in the sync
    act(bob_ws, conv, kind="edit", target=first, body="one, edited")
    act(bob_ws, conv, kind="react", target=first, emoji="🎉")
    act(bob_ws, conv, kind="delete", target=second)
    assert shown(page)[0]["body"] == "one"
    page.js("window.parleyTest.conn.start(null, null);")
    page.wait_online()
    wait_shown(page, [{"id": first, "body": "one, edited", "edited": True, "reactions": ["🎉1"]},
                      {"id": second, "body": "message deleted", "deleted": True}])
    assert page.unread(conv) == ""
    assert page.errors() == []
