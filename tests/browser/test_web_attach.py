"""Attachments in the browser client (protocol §20, ADR 0032), headless Chromium against the real two-node
cluster, at desktop and at phone size: two people on two nodes exchange photos (picked with the file input,
dropped, pasted), the other sees thumbnails in boxes of their final size, opens the viewer and moves through
it by keyboard, replies to a photo (the quote says "Photo"), edits, deletes and reacts; the receiver's second
device and the history after a reload show the same state. Refused files are said in words by the composer."""

from __future__ import annotations

import base64
import io
import json
import secrets
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.chromium import close_chromium, open_chromium, screenshot
from tests.browser.conftest import Account, Socket
from tests.browser.test_web_client import Page, index_of, wait_busier
from tests.integration.cluster import Cluster

pytestmark = pytest.mark.integration
DOCS = Path(__file__).resolve().parents[2] / "docs"
SIZES = {"desktop": (1280, 860), "phone": (390, 844)}
ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4

STATE = """
return [...document.querySelectorAll('#messages li')].map(li => ({
  id: li.dataset.id ? Number(li.dataset.id) : null,
  body: li.querySelector('.body').textContent,
  edited: !li.querySelector('.edited').hidden,
  deleted: li.classList.contains('deleted'),
  quote: li.querySelector('.quote').hidden ? null : li.querySelector('.quote-body').textContent,
  reactions: [...li.querySelectorAll('.reactions .reaction')].map(b =>
    b.dataset.emoji + b.querySelector('.count').textContent + (b.classList.contains('mine') ? '*' : '')),
  files: [...li.querySelectorAll('.files > *')].map(f => f.classList.contains('thumb')
    ? {thumb: f.dataset.att, box: [Number(f.querySelector('img').getAttribute('width')),
                                   Number(f.querySelector('img').getAttribute('height'))],
       loaded: f.querySelector('img').complete && f.querySelector('img').naturalWidth > 0}
    : {file: f.querySelector('.file-name').textContent, size: f.querySelector('.file-size').textContent,
       att: f.dataset.att}),
}));"""


def png(width: int, height: int, seed: int) -> bytes:
    """A real PNG with some detail (a gradient and a stripe), so it decodes to a picture of its own."""
    image = Image.new("RGB", (width, height))
    image.putdata([((x * 255 // width + seed * 40) % 256, (y * 255 // height) % 256, (seed * 90) % 256)
                   for y in range(height) for x in range(width)])
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def window() -> Iterator[Callable[[str], webdriver.Chrome]]:
    """Chromium windows of a named size (desktop or phone), closed at the end."""
    drivers: list[webdriver.Chrome] = []

    def open_one(size: str) -> webdriver.Chrome:
        driver = open_chromium(*SIZES[size])
        drivers.append(driver)
        return driver

    yield open_one
    for driver in drivers:
        close_chromium(driver)


def state(page: Page) -> list[dict[str, Any]]:
    return list(page.js(STATE))


def wait_state(page: Page, expected: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Until the open conversation shows exactly ``expected`` (each a subset of a shown item's fields)."""
    def matches() -> bool:
        now = state(page)
        return len(now) == len(expected) and all(
            all(item.get(k) == v for k, v in want.items()) for item, want in zip(now, expected, strict=True))
    try:
        page.until(matches, what=f"messages {expected}")
    except Exception as err:
        raise AssertionError(f"expected {expected}; the page showed {state(page)}") from err
    return state(page)


def tray(page: Page) -> list[dict[str, Any]]:
    return list(page.js("""return [...document.querySelectorAll('#attach-tray li')].map(li => ({
        state: li.dataset.state, name: li.querySelector('.attach-name').textContent,
        size: li.querySelector('.attach-size').textContent,
        preview: li.querySelector('img.attach-preview') !== null}));"""))


def wait_tray(page: Page, names: list[str]) -> list[dict[str, Any]]:
    page.until(lambda: [t["name"] for t in tray(page)] == names and all(t["state"] == "ready" for t in tray(page)),
               what=f"{names} uploaded")
    return tray(page)


def record_progress(page: Page) -> None:
    """Notes every state of the tray's progress bars (shown, value) as the page changes them."""
    page.js("""window.progressSeen = [];
      new MutationObserver(() => {
        for (const bar of document.querySelectorAll('#attach-tray progress'))
          window.progressSeen.push({shown: !bar.hidden, value: bar.value});
      }).observe(document.getElementById('attach-tray'), {subtree: true, childList: true, attributes: true});""")


DROP = """
const [files, kind] = [arguments[0], arguments[1]];
const dt = new DataTransfer();
for (const [name, b64, type] of files) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  dt.items.add(new File([bytes], name, {type}));
}
if (kind === 'drop') {
  const zone = document.getElementById('conversation');
  zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
  zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
} else {
  document.getElementById('composer-body').dispatchEvent(
    new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true}));
}"""


def give(page: Page, kind: str, files: list[tuple[str, bytes, str]]) -> None:
    """Files dropped on the conversation (kind ``drop``) or pasted into the text box (``paste``)."""
    page.js(DROP, [[name, base64.b64encode(data).decode(), type] for name, data, type in files], kind)


def send_button(page: Page) -> None:
    page.driver.find_element(By.ID, "send-button").click()


def menu(page: Page, id: int, button: str) -> None:
    li = page.driver.find_element(By.CSS_SELECTOR, f'#messages li[data-id="{id}"]')
    li.find_element(By.CSS_SELECTOR, ".msg-menu summary").click()
    found = li.find_element(By.CSS_SELECTOR, button)
    page.until(found.is_displayed, what=f"{button} of {id}")
    found.click()


def viewer(page: Page) -> dict[str, Any]:
    return dict(page.js("""const d = document.getElementById('viewer');
      const img = document.getElementById('viewer-image');
      return {open: Boolean(d && d.open), att: img ? img.dataset.att : null, full: img ? img.dataset.full : null,
              natural: img ? [img.naturalWidth, img.naturalHeight] : null,
              count: d ? document.getElementById('viewer-count').textContent : '',
              focusInside: Boolean(d && d.contains(document.activeElement))};"""))


def key(page: Page, *keys: str) -> None:
    page.driver.switch_to.active_element.send_keys(*keys)


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_two_people_exchange_photos_reply_edit_delete_and_react_and_every_device_agrees(
    size: str, cluster: Cluster, window: Callable[[str], webdriver.Chrome], account: Callable[..., Account],
    socket_for: Callable[[Account, int], Socket], tmp_path: Path,
) -> None:
    alice, bob = account("alice"), account("bob")
    conv = alice.befriend(bob)
    a = Page(window(size), cluster.api_url + "/")
    node_a = a.sign_in(alice.username)
    wait_busier(cluster, node_a)
    b = Page(window(size), cluster.api_url + "/")
    assert b.sign_in(bob.username) != node_a  # two nodes
    bob_phone = socket_for(bob, index_of(cluster, node_a))  # the receiver's second device
    a.open(conv)
    b.open(conv)

    # a photo picked with the file input: previewed, its progress shown, sent without text
    wide = tmp_path / "sunset.png"
    wide.write_bytes(png(640, 480, 1))
    record_progress(a)
    a.driver.find_element(By.ID, "attach-input").send_keys(str(wide))
    [item] = wait_tray(a, ["sunset.png"])
    assert item["preview"] and item["size"].endswith("· ready")
    assert any(p["shown"] for p in a.js("return window.progressSeen")), "no progress bar was shown"
    assert a.js("return document.getElementById('attach-tray').querySelector('progress').value") == 1
    send_button(a)
    a.until(lambda: a.js("return document.getElementById('attach-tray').hidden"), what="the tray empty once sent")

    # a photo and a text file dropped on the conversation, with a caption; then a pasted image
    give(a, "drop", [("tall.png", png(300, 500, 2), "image/png"), ("notes.txt", b"hello", "text/plain")])
    wait_tray(a, ["tall.png", "notes.txt"])
    if size == "desktop":  # the tray's previews under the first photo
        a.driver.find_element(By.ID, "composer-body").send_keys("two more")
        screenshot(a.driver, DOCS / "web-attachments.png")
        a.driver.find_element(By.ID, "composer-body").send_keys(Keys.ENTER)
    else:
        a.send("two more")
    give(a, "paste", [("image.png", png(200, 200, 3), "image/png")])
    wait_tray(a, ["image.png"])
    a.driver.find_element(By.ID, "composer-body").send_keys(Keys.ENTER)

    shown = wait_state(b, [{"body": ""}, {"body": "two more"}, {"body": ""}])
    photo, tall, pasted = (int(m["id"]) for m in shown)
    thumbs = [f for m in shown for f in m["files"] if "thumb" in f]
    files = [f for m in shown for f in m["files"] if "file" in f]
    assert [f["box"] for f in thumbs] == [[240, 180], [144, 240], [200, 200]]  # boxes drawn before the pictures
    assert [(f["file"], f["size"]) for f in files] == [("notes.txt", "5 B")]
    b.until(lambda: all(f.get("loaded", True) for m in state(b) for f in m["files"]), what="thumbnails loaded")
    assert b.js(f"return document.querySelector('#messages li[data-id=\"{photo}\"] .thumb img').naturalWidth") == 320
    photo_att, tall_att, pasted_att = (f["thumb"] for f in thumbs)

    # the viewer: full size, arrows move through the conversation's photos, Tab stays inside, Escape closes
    b.driver.find_element(By.CSS_SELECTOR, f'#messages li[data-id="{photo}"] .thumb').click()
    b.until(lambda: viewer(b)["full"] == "1", what="the full picture")
    assert viewer(b) | {"count": ""} == {"open": True, "att": photo_att, "full": "1", "natural": [640, 480],
                                         "count": "", "focusInside": True}
    assert viewer(b)["count"].startswith("1 of 3 · 640×480")
    key(b, Keys.ARROW_RIGHT)
    b.until(lambda: viewer(b)["att"] == tall_att and viewer(b)["full"] == "1", what="the next photo")
    assert viewer(b)["natural"] == [300, 500] and viewer(b)["count"].startswith("2 of 3")
    key(b, Keys.ARROW_RIGHT)
    b.until(lambda: viewer(b)["att"] == pasted_att, what="the third photo")
    key(b, Keys.ARROW_LEFT)
    key(b, Keys.ARROW_LEFT)
    b.until(lambda: viewer(b)["att"] == photo_att and viewer(b)["full"] == "1", what="back to the first")
    if size == "phone":
        screenshot(b.driver, DOCS / "web-viewer-phone.png")
    for _ in range(6):
        key(b, Keys.TAB)
        assert viewer(b)["focusInside"], "focus left the viewer"
    key(b, Keys.ESCAPE)
    b.until(lambda: not viewer(b)["open"], what="the viewer closed")
    assert b.js("return document.activeElement.dataset.att") == photo_att  # focus back on the thumbnail

    # a reply to the photo quotes "Photo"; a reaction; an edit; the sender deletes the pasted photo
    menu(b, photo, ".act-reply")
    assert b.driver.find_element(By.ID, "composing-text").text.endswith(": Photo")
    b.send("nice shot")
    menu(b, photo, '.act-react[aria-label="React ❤️"]')
    b.send("teh sky")
    typo = int(b.until(lambda: next((m["id"] for m in state(b) if m["body"] == "teh sky" and m["id"]), None),
                       what="the typo stored"))
    menu(b, typo, ".act-edit")
    box = b.driver.find_element(By.ID, "composer-body")
    box.clear()
    box.send_keys("the sky", Keys.ENTER)
    wait_state(a, [{"id": photo}, {"id": tall}, {"id": pasted}, {"body": "nice shot"}, {"body": "the sky"}])
    menu(a, pasted, ".act-delete")

    expected = [
        {"id": photo, "body": "", "reactions": ["❤️1*"], "files": [{"thumb": photo_att, "box": [240, 180],
                                                                    "loaded": True}]},
        {"id": tall, "body": "two more", "reactions": []},
        {"id": pasted, "body": "message deleted", "deleted": True, "files": []},
        {"body": "nice shot", "quote": "Photo", "edited": False},
        {"body": "the sky", "edited": True},
    ]
    mine = [dict(e, reactions=["❤️1"]) if e.get("reactions") == ["❤️1*"] else e for e in expected]
    wait_state(b, expected)
    wait_state(a, mine)
    assert len(state(b)[1]["files"]) == 2
    b.until(lambda: all(f.get("loaded", True) for m in state(b) for f in m["files"]), what="thumbnails loaded")
    if size == "phone":  # the photos in view
        b.js(f"document.querySelector('#messages li[data-id=\"{tall}\"]').scrollIntoView({{block: 'end'}});")
        screenshot(b.driver, DOCS / "web-attachments-phone.png")

    # the receiver's second device got the same entries: the files' references, the actions
    bob_phone.wait(lambda f: f.get("type") == "msg" and f.get("kind") == "delete" and f.get("target") == pasted)
    got = {f["id"]: f for f in bob_phone.messages(conv)}
    assert [a["id"] for a in got[photo]["attachments"]] == [photo_att]
    assert [(x["name"], x["type"]) for x in got[tall]["attachments"]] == [("tall.png", "image/png"),
                                                                           ("notes.txt", "text/plain")]
    kinds = sorted(str(f.get("kind")) for f in got.values() if f["id"] > pasted)
    assert kinds == ["None", "None", "delete", "edit", "react"]
    reply = next(f for f in got.values() if f.get("body") == "nice shot")
    assert reply["reply_to"] == photo and reply["quote"]["body"] == ""  # the words are the client's

    # history after a reload: the same state, thumbnails fetched again
    b.driver.refresh()
    b.wait_online()
    b.open(conv)
    wait_state(b, expected)
    b.until(lambda: all(f.get("loaded", True) for m in state(b) for f in m["files"]), what="thumbnails reloaded")
    assert a.errors() == [] and b.errors() == []


def test_refused_files_are_said_by_the_composer_and_an_upload_can_be_cancelled(
    cluster: Cluster, window: Callable[[str], webdriver.Chrome], account: Callable[..., Account], tmp_path: Path,
) -> None:
    url = cluster.start_extra_api("attach-web-small", attachment_max_bytes=4096)
    try:
        alice, bob = account("alice"), account("bob")
        conv = alice.befriend(bob)
        page = Page(window("phone"), url + "/")
        page.sign_in(alice.username)
        page.open(conv)
        error = page.driver.find_element(By.ID, "attach-error")
        big = tmp_path / "big.png"
        big.write_bytes(png(200, 200, 4) + secrets.token_bytes(8000))
        page.driver.find_element(By.ID, "attach-input").send_keys(str(big))
        page.until(lambda: error.text, what="the refusal")
        assert error.text == "“big.png” is too large: a file can be at most 4 KB."
        assert page.js("return document.getElementById('attach-tray').hidden")

        fake = tmp_path / "cat.png"
        fake.write_bytes(ELF)
        page.driver.find_element(By.ID, "attach-input").send_keys(str(fake))
        page.until(lambda: "cat.png" in error.text, what="the disguised file refused")
        assert error.text == "“cat.png” was refused: it is presented as an image, but it is not one."
        assert page.js("return document.getElementById('attach-tray').hidden")

        # cancelled at once: the tray empties, nothing is said, nothing is sent
        give(page, "drop", [("notes.txt", b"hello", "text/plain")])
        page.js("document.querySelector('#attach-tray .attach-remove').click();")
        assert page.js("return document.getElementById('attach-tray').hidden")
        assert error.text == ""
        # a file that fits still goes up and out
        give(page, "drop", [("notes.txt", b"hello", "text/plain")])
        wait_tray(page, ["notes.txt"])
        send_button(page)
        page.until(lambda: [m["id"] is not None and len(m["files"]) for m in state(page)] == [1], what="sent")
        [sent] = state(page)
        assert sent["body"] == "" and sent["files"][0] | {"att": ""} == {"file": "notes.txt", "size": "5 B", "att": ""}
        # its Download fetches the bytes with the token and saves them under the file's name
        page.js(CATCH_SAVES)
        page.driver.find_element(By.CSS_SELECTOR, f'#messages li[data-id="{sent["id"]}"] .file-download').click()
        page.until(lambda: page.js("return window.saved.length") == 1, what="the download")
        assert page.driver.execute_async_script(SAVED) == ["notes.txt", "hello"]

        # the server out of reach: said as such
        cluster.stop("attach-web-small")
        give(page, "drop", [("late.txt", b"late", "text/plain")])
        page.until(lambda: "late.txt" in error.text, what="the network failure")
        assert error.text == ("“late.txt” could not be uploaded: the server cannot be reached. "
                              "Check the connection and try again.")
        assert page.js("return document.getElementById('attach-tray').hidden")
        refused = ("status of 413", "status of 415", "ERR_CONNECTION_REFUSED")
        assert page.errors(lambda m: any(r in m for r in refused)) == []
    finally:
        if "attach-web-small" in cluster.roles:
            cluster.stop("attach-web-small")


# the page's blobs and its download links' clicks, noted instead of saving a file
CATCH_SAVES = """
window.blobs = new Map(); window.saved = [];
const make = URL.createObjectURL;
URL.createObjectURL = (blob) => { const url = make.call(URL, blob); window.blobs.set(url, blob); return url; };
HTMLAnchorElement.prototype.click = function () { window.saved.push([this.download, this.href]); };"""
SAVED = """
const done = arguments[arguments.length - 1];
const [name, url] = window.saved[0];
window.blobs.get(url).text().then((text) => done([name, text]), (err) => done(String(err)));"""


def upload(cluster: Cluster, acct: Account, conv: str, name: str, data: bytes) -> dict[str, Any]:
    req = urllib.request.Request(f"{cluster.api_url}/v1/conversations/{conv}/attachments?name={name}", data=data,
                                 method="POST", headers={"Authorization": f"Bearer {acct.token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return dict(json.loads(resp.read())["attachment"])


def send_with(sock: Socket, conv: str, body: str, **fields: Any) -> int:
    """A send with more fields (attachments, a reply, an action); its id once acked."""
    cid = f"w{secrets.token_hex(4)}"
    sock.frame({"type": "send", "cid": cid, "conv": conv, "body": body, **fields})
    ack = sock.wait(lambda f: f.get("ref") == cid or (f.get("type") == "ack" and f.get("cid") == cid))
    assert ack.get("type") == "ack", ack
    return int(ack["id"])


def test_a_reply_quotes_photo_even_when_the_photo_is_older_than_the_pages_held(
    cluster: Cluster, window: Callable[[str], webdriver.Chrome], account: Callable[..., Account],
    socket_for: Callable[[Account, int], Socket],
) -> None:
    alice, bob = account("alice"), account("bob")
    conv = alice.befriend(bob)
    alice_ws, bob_ws = socket_for(alice, 0), socket_for(bob, 1)
    att = upload(cluster, alice, conv, "old.png", png(64, 48, 5))
    photo = send_with(alice_ws, conv, "", attachments=[att["id"]])
    gone = send_with(alice_ws, conv, "soon gone")
    for i in range(55):  # the newest page (50) will hold neither
        alice_ws.send(conv, f"filler {i}")
    send_with(bob_ws, conv, "what a view", reply_to=photo)
    send_with(bob_ws, conv, "what was that", reply_to=gone)
    send_with(alice_ws, conv, "", kind="delete", target=gone)  # blanks the second reply's quote
    page = Page(window("desktop"), cluster.api_url + "/")
    page.sign_in(bob.username)
    page.open(conv)
    page.until(lambda: [m["quote"] for m in state(page) if m["quote"] is not None] == ["Photo", "message deleted"],
               what="the quotes")
    assert photo not in [m["id"] for m in state(page)]  # not held: looked up
    assert page.errors() == []


def test_a_slow_upload_shows_its_progress_can_be_cancelled_and_holds_the_send_back(
    cluster: Cluster, window: Callable[[str], webdriver.Chrome], account: Callable[..., Account],
) -> None:
    alice, bob = account("alice"), account("bob")
    conv = alice.befriend(bob)
    page = Page(window("desktop"), cluster.api_url + "/")
    page.sign_in(alice.username)
    page.open(conv)
    record_progress(page)
    page.driver.execute_cdp_cmd("Network.enable", {})
    page.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 32 * 1024})
    give(page, "drop", [("big.txt", b"x" * (512 * 1024), "text/plain")])
    page.until(lambda: any(0 < p["value"] < 1 and p["shown"] for p in page.js("return window.progressSeen")),
               what="progress part way")
    page.send("hold on")
    error = page.driver.find_element(By.ID, "attach-error")
    assert error.text == "Wait for the files to finish uploading, then send."
    page.driver.find_element(By.CSS_SELECTOR, "#attach-tray .attach-remove").click()
    page.until(lambda: page.js("return document.getElementById('attach-tray').hidden"), what="cancelled")
    assert page.driver.find_element(By.ID, "composer-body").get_attribute("value") == "hold on"  # kept
    page.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    page.driver.find_element(By.ID, "composer-body").send_keys(Keys.ENTER)  # the text alone now
    wait_state(page, [{"body": "hold on", "files": []}])
    assert error.text == ""
    assert page.errors() == []


MODEL_CHECKS = """
const done = arguments[arguments.length - 1];
import('/static/attachmodel.js').then((m) => {
  const photo = {id: 'p', thumb: true, width: 4000, height: 3000, name: 'a.jpg', size: 2500000};
  const file = {id: 'f', type: 'application/pdf', name: 'r.pdf', size: 52011};
  done({
    sizes: [0, 1023, 1536, 52011, 2500000, 25 * 1024 * 1024].map(m.sizeWords),
    boxes: [m.thumbSize(4000, 3000), m.thumbSize(100, 50), m.thumbSize(300, 500), m.thumbSize(0, 0)],
    words: [m.filesWords([photo]), m.filesWords([photo, photo]), m.filesWords([file]), m.filesWords([photo, file]),
            m.filesWords([])],
    quotes: [m.quoteText({quote: {body: 'hi'}}, null), m.quoteText({quote: {body: ''}}, {attachments: [photo]}),
             m.quoteText({quote: {body: ''}}, {deleted: true, attachments: [photo]}),
             m.quoteText({quote: {body: ''}}, null)],
    refusals: ['attachment_too_large', 'disguised_file', 'bad_image', 'not_member', 'network', 'unknown_attachment',
               'uploading'].map((code) => m.refusalWords({code, limit: 25 * 1024 * 1024}, 'x.png')),
    badges: ['r.pdf', 'notes.txt', 'tool', 'x.toolong'].map(m.badgeOf),
    images: m.imagesOf([{attachments: [photo, file]}, {deleted: true, attachments: [photo]}]).map((i) => i.att.id),
  });
}).catch((err) => done(String(err)));"""


def test_the_attachment_model_in_words_and_boxes(cluster: Cluster, window: Callable[[str], webdriver.Chrome]) -> None:
    page = Page(window("desktop"), cluster.api_url + "/")
    out = page.driver.execute_async_script(MODEL_CHECKS)
    assert out == {
        "sizes": ["0 B", "1023 B", "1.5 KB", "51 KB", "2.4 MB", "25 MB"],
        "boxes": [{"width": 240, "height": 180}, {"width": 100, "height": 50}, {"width": 144, "height": 240},
                  {"width": 240, "height": 240}],
        "words": ["Photo", "2 photos", "File", "2 files", ""],
        "quotes": ["hi", "Photo", "message deleted", "message deleted"],
        "refusals": [
            "“x.png” is too large: a file can be at most 25 MB.",
            "“x.png” was refused: it is presented as an image, but it is not one.",
            "“x.png” could not be read as an image.",
            "You are not a member of this conversation any more, so nothing can be sent here.",
            "“x.png” could not be uploaded: the server cannot be reached. Check the connection and try again.",
            "A file of this message is no longer available; attach it again.",
            "Wait for the files to finish uploading, then send.",
        ],
        "images": ["p"],
        "badges": ["PDF", "TXT", "FILE", "FILE"],
    }
    assert page.errors() == []


def test_the_page_may_show_blob_images_and_nothing_else_new(cluster: Cluster) -> None:
    with urllib.request.urlopen(cluster.api_url + "/", timeout=5) as resp:
        policy = resp.headers["Content-Security-Policy"]
    assert "img-src 'self' blob:;" in policy and "script-src 'self';" in policy and "unsafe-inline" not in policy
