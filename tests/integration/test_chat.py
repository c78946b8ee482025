"""``parley chat`` as people use it: real processes in tmux terminals against a real cluster.

Alice and Bob sign up, become friends, chat both ways, see each other typing and reading, and Alice reads
the history after coming back; then Alice's node dies (frozen while Bob sends, then killed) or drains under
her, and she resumes from her cursor, showing what Bob sent meanwhile exactly once. A pipe (no terminal)
drives it like a script.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from parley.tools.chat.account import Account
from parley.tools.chat.link import Link
from parley.tools.chat.reconnect import urls_of
from parley.tools.client import Device

from tests.integration.conftest import PASSWORD
from tests.poll import eventually, eventually_sync
from tests.tmux import Pane, Tmux

pytestmark = pytest.mark.integration  # tmux: ops/test-deps.sh installs it


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(tmp_path)
    try:
        yield t
    finally:
        t.close()


def chat(tmux: Tmux, cluster, name: str, user: str, *extra: str) -> Pane:
    argv = [sys.executable, "-m", "parley", "chat", "--api", cluster.api_url, "--user", user, *extra]
    return tmux.start(name, argv, {"PARLEY_PASSWORD": PASSWORD})


def said(text: str, who: str, body: str, where: str = "") -> int:
    """How many message lines (``[where] HH:MM (N) who: body``) show this message."""
    return len(re.findall(rf"^{re.escape(where)}\d\d:\d\d \(\d+\) {re.escape(who)}: {re.escape(body)} *$", text, re.M))


async def shows_said(pane: Pane, who: str, body: str, where: str = "") -> str:
    """Until the pane shows that message line (a conversation list's preview does not count); its text."""
    def check() -> str:
        text = pane.text()
        assert said(text, who, body, where), f"{pane.name} shows:\n{text[-3000:]}"
        return text
    return await eventually(check, what=f"{pane.name} showing {who}: {body}", timeout=20)


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


async def test_two_people_chat_in_two_terminals(tmux, cluster, world):
    alice_name, bob_name = unique("alice"), unique("bob")
    alice = chat(tmux, cluster, "alice", alice_name, "--signup")
    bob = chat(tmux, cluster, "bob", bob_name, "--signup")
    await alice.shows(f"logged in as {alice_name}")
    await bob.shows(f"logged in as {bob_name}")

    alice.type(f"/add {bob_name}")
    await alice.shows(f"asked {bob_name} to be your friend")
    await bob.shows(f"* {alice_name} wants to be your friend (/accept {alice_name})")  # as it happens
    bob.type("/friends")
    await bob.shows(f"asking to be your friend: {alice_name}")
    bob.type(f"/accept {alice_name}")
    await bob.shows(f"you and {alice_name} are friends")
    await alice.shows(f"* you and {bob_name} are friends (/open {bob_name})")

    alice.type(f"/open {bob_name}")
    bob.type(f"/open {alice_name}")
    await alice.shows(f"── {bob_name} ──")
    await bob.shows(f"── {alice_name} ──")
    alice.type("hello bob")
    await bob.shows(f"{alice_name}: hello bob")
    await alice.shows(f"{alice_name}: hello bob")
    await alice.shows(f"read by {bob_name} ✓✓")  # Bob has the conversation open: he read it

    bob.type("hi ali", enter=False)  # typing, not sent yet
    await alice.shows(f"{bob_name} is typing…")
    bob.type("ce")
    await alice.shows(f"{bob_name}: hi alice")
    assert f"{bob_name}: hi ali\n" not in alice.text()

    alice.type("half a thought", enter=False)  # what she is typing stays put while a message prints above
    bob.type("while you type")
    await shows_said(alice, bob_name, "while you type")
    assert f"{bob_name}> half a thought" in alice.screen()
    alice.keys("C-u")
    alice.type("/who")
    await alice.shows(f"  {bob_name}  online")

    alice.type(f"/group new crag {bob_name}")
    await alice.shows("── #crag ──")
    await bob.shows("you are in #crag now")
    alice.type("on the wall")
    await shows_said(bob, alice_name, "on the wall", where="[#crag] ")  # not the open conversation: named
    bob.type("/open #crag")
    await bob.shows("── #crag ──")
    bob.type("belay on")
    await shows_said(alice, bob_name, "belay on")
    alice.type(f"/open {bob_name}")
    await alice.shows(f"── {bob_name} ──", times=2)

    # Alice leaves; Bob (another device of his, the reference client) sends 25 more; Alice comes back
    alice.type("/quit")
    await asyncio.to_thread(lambda: _wait_dead(alice))
    bob_api = await world.api.login(bob_name, PASSWORD)
    listing = await world.api.call("GET", "/v1/conversations", bob_api["token"])
    conv = next(c["id"] for c in listing["conversations"] if c["kind"] == "dm")
    device = Device(world.http, bob_api["node"]["url"], bob_api["token"])
    await device.connect()
    try:
        for i in range(25):
            await device.send(conv, f"n-{i:02}")
    finally:
        await device.close()

    again = chat(tmux, cluster, "alice2", alice_name)
    await again.shows(f"logged in as {alice_name}")
    again.type("/list")
    await again.shows("25 unread")
    again.type(f"/open {bob_name}")
    text = await shows_said(again, bob_name, "n-24")
    assert f"{bob_name}: n-04" not in text and f"{bob_name}: n-05" in text  # one page of 20
    again.type("/history")
    text = await shows_said(again, bob_name, "hi alice")
    assert all(said(text, bob_name, f"n-{i:02}") == 1 for i in range(25)), text
    assert text.index(f"{alice_name}: hello bob") < text.index(f"{bob_name}: hi alice") < text.index("n-00")


def _wait_dead(pane: Pane) -> None:
    eventually_sync(pane.dead, what=f"{pane.name} exiting after /quit")


@pytest.mark.parametrize("how", ["kill", "drain"])
async def test_the_chat_resumes_from_its_cursor_when_its_node_goes(tmux, cluster, world, how):
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    pane = chat(tmux, cluster, "alice", alice.name)
    pane.type(f"/open {bob.name}")
    await pane.shows(f"── {bob.name} ──")
    node = re.search(r"connected to (node\d)", await pane.shows("connected to node")).group(1)  # type: ignore
    other = 1 if node == "node1" else 0
    b = await bob.device(node=other)
    for i in range(5):
        await b.send(conv, f"before-{i}")
    await shows_said(pane, bob.name, "before-4")
    index = int(node[-1]) - 1
    try:
        if how == "kill":  # frozen first, so that what Bob sends now can only reach her by the resync
            os.kill(cluster.roles[node].pid, signal.SIGSTOP)
        else:
            cluster.terminate(node)
        for i in range(10):
            await b.send(conv, f"during-{i}")
        if how == "kill":
            assert said(pane.text(), bob.name, "during-0") == 0
            cluster.kill(node)
        await pane.shows(f"connected to node{other + 1}")
        await shows_said(pane, bob.name, "during-9")
        await b.send(conv, "after")
        text = await shows_said(pane, bob.name, "after")
        if how == "drain":
            assert "takes over (the node is draining)" in text
        for body in [f"before-{i}" for i in range(5)] + [f"during-{i}" for i in range(10)] + ["after"]:
            assert said(text, bob.name, body) == 1, f"{body}:\n{text}"
    finally:
        if how == "drain" and node in cluster.roles:
            await asyncio.to_thread(cluster.wait_exit, node, 60)
        cluster.start_node(index)


async def test_in_a_terminal_the_password_is_asked_for_without_echo(tmux, cluster):
    name, secret = unique("dora"), "not-on-screen-" + secrets.token_hex(4)
    pane = tmux.start("dora", [sys.executable, "-m", "parley", "chat", "--api", cluster.api_url], {})
    await pane.shows("/login NAME or /signup NAME")
    pane.type(f"/signup {name}")
    await pane.shows("password:")
    pane.type(secret)
    await pane.shows(f"logged in as {name}")
    pane.type("/open nobody")
    await pane.shows("! unknown_user")
    assert secret not in pane.text()


def test_a_script_drives_it_over_a_pipe(cluster):
    """No terminal: commands on stdin (the password on the first line), plain lines out, exit 0 once every
    message is acknowledged."""
    name = unique("carol")
    script = f"{PASSWORD}\n/friends\n/list\n/open nobody_{name}\n/accept stranger\nhello?\n/quit\n"
    out = subprocess.run([sys.executable, "-m", "parley", "chat", "--api", cluster.api_url, "--user", name,
                          "--signup"], input=script, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"signed up as {name}" in out.stdout and "no friends yet" in out.stdout
    assert "no conversations yet" in out.stdout and "! unknown_user" in out.stdout
    assert "! stranger has not asked to be your friend" in out.stdout
    assert "! open a conversation first" in out.stdout
    assert PASSWORD not in out.stdout


async def test_a_send_older_than_the_dedup_window_is_looked_up_before_it_is_sent_again(world, http):
    """After a long outage a blind resend could store a message twice (the node forgets cids after 300 s):
    the link finds the stored one in history and counts it as acked; only the missing one is sent."""
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    account = Account(world.api)
    login = await account.login(alice.name, PASSWORD)
    first = Device(http, login["node"]["url"], account.token)  # the same device, before the outage
    await first.connect()
    await asyncio.wait_for(first.synced.wait(), 10)  # its cursor is synced's: the welcome may come in the same write
    before = first.cursor
    stored = await first.send(conv, "stored, answer lost", cid="long-ago-1")
    # the cursor the device took past its own message: the link resumes from it, so the node does not send that
    # message again (that alone would settle it) and only the history lookup can tell it was stored
    await eventually(lambda: first.cursor not in (None, before), what="a cursor offered past the message")
    await first.close()
    frames: list[dict] = []
    link = RecordingLink(http, account, frames.append, lambda _: None)
    link.cursor = first.cursor
    long_ago = asyncio.get_running_loop().time() - 1000
    for cid, body in (("long-ago-1", "stored, answer lost"), ("long-ago-2", "never stored")):
        link.pending[cid] = {"type": "send", "cid": cid, "conv": conv, "body": body}
        link.sent_at[cid] = long_ago
    running = asyncio.ensure_future(link.run(urls_of(login)))
    try:
        await eventually(lambda: not link.pending, what="both sends settled")
    finally:
        await link.stop()
        await running
    acks = {f["cid"]: f for f in frames if f["type"] == "ack"}
    assert acks["long-ago-1"]["id"] == stored["id"] and acks["long-ago-1"]["duplicate"]
    assert [f["cid"] for f in link.written if f["type"] == "send"] == ["long-ago-2"]
    assert not acks["long-ago-2"]["duplicate"]
    page = await world.api.call("GET", f"/v1/conversations/{conv}/messages", bob.token)
    assert sorted(m["body"] for m in page["messages"]) == ["never stored", "stored, answer lost"]


class RecordingLink(Link):
    """The link, keeping what it writes to the socket."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.written: list[dict] = []

    async def send(self, frame: dict) -> bool:
        self.written.append(frame)
        return await super().send(frame)


async def test_replies_edits_reactions_and_deletes_in_a_terminal(tmux, cluster, world):
    """Alice in ``parley chat``, Bob a protocol device: Bob's edit, reaction and delete change the messages
    Alice was shown (one line each, never a message of their own); Alice's /reply, /react, /edit and
    /delete reach Bob as protocol §19 entries."""
    alice, bob = await world.person("alice"), await world.person("bob")
    conv = await alice.befriend(bob)
    bob_dev = await bob.device()
    pane = chat(tmux, cluster, "alice", alice.name)
    await pane.shows(f"logged in as {alice.name}")
    pane.type(f"/open {bob.name}")
    await pane.shows(f"── {bob.name} ──")
    first = await bob_dev.send(conv, "helo")
    await pane.shows(f"(1) {bob.name}: helo")
    await bob_dev.send(conv, "hello", kind="edit", target=first["id"])
    await pane.shows(f"* {bob.name} edited (1): hello")
    await bob_dev.send(conv, "", kind="react", target=first["id"], emoji="👍")
    await pane.shows(f'* {bob.name} reacted 👍 on (1) "hello"')

    pane.type("/reply 1 don't say helo")
    await pane.shows(f"(2) {alice.name}: [↪ {bob.name}: hello] don't say helo")
    pane.type("/react 1 🎉")
    await pane.shows(f'* {alice.name} reacted 🎉 on (1) "hello"')
    pane.type("/edit 2 fine, hello")
    await pane.shows(f"* {alice.name} edited (2): fine, hello")
    pane.type("/delete 2")
    await pane.shows(f"* {alice.name} deleted (2)")
    pane.type("/help")
    await pane.shows("/react N EMOJI")

    def mine() -> list[tuple[str | None, str]]:
        return [(m.get("kind"), m["body"]) for m in bob_dev.messages.values() if m["from"] == alice.id]
    await eventually(lambda: len(mine()) == 4, what="Alice's four entries at Bob's")
    assert mine() == [(None, "don't say helo"), ("react", ""), ("edit", "fine, hello"), ("delete", "")]
    reply = next(m for m in bob_dev.messages.values() if m["from"] == alice.id and not m.get("kind"))
    assert reply["reply_to"] == first["id"] and reply["quote"] == {"from": bob.id, "body": "hello"}
