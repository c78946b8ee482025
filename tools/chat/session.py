"""A chat session: runs the user's commands over the HTTP API and feeds server frames to the chat state.

It wires the pure parts (``commands``, ``state``, ``render``) to the I/O (``account`` over HTTP, ``link``
for the WebSocket, a ``terminal`` screen). Frames are queued by the link as they are read and taken one
at a time here, so lines print in the order the node sent them; a frame that names a conversation not
loaded yet waits until the conversation list is read again. A new device starts "from now": its first
``hello`` carries the cursor of the conversation list it just read (protocol §8), older messages come
over HTTP when a conversation is opened.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from parley.tools.chat import commands as c
from parley.tools.chat import held, render
from parley.tools.chat.account import Account
from parley.tools.chat.link import CONNECT_ERRORS, Link
from parley.tools.chat.reconnect import urls_of
from parley.tools.chat.state import ChatState
from parley.tools.chat.terminal import Screen
from parley.tools.client import Api, ApiError

PAGE = 20
FLUSH_S = 10.0


class ChatSession:
    def __init__(self, http: aiohttp.ClientSession, api: Api, password_env: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.http, self.account, self.clock = http, Account(api), clock
        self.password_env = password_env
        self.state = ChatState()
        self.screen: Screen | None = None
        self.link: Link | None = None
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()

    def show(self, lines: list[str]) -> None:
        assert self.screen is not None
        self.screen.show(lines)
        self.screen.refresh()

    def note(self, text: str) -> None:
        self.state.connection = self.link.node if self.link and self.link.live else "offline"
        self.show([f"* {text}"])

    def prompt(self) -> str:
        return f"{self.state.title(self.state.open)}> " if self.state.open else "> "

    def typed(self, text: str) -> None:
        frame = self.state.typed(text, self.clock())
        if frame is not None and self.link is not None:
            self._spawn(self.link.send(frame))

    def _spawn(self, work: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- logging in ------------------------------------------------------------------------------------

    async def password(self) -> str | None:
        if self.password_env:
            return self.password_env
        assert self.screen is not None
        return await self.screen.read_secret("password: ")

    async def log_in(self, username: str, signup: bool = False) -> bool:
        password = await self.password()
        if not password:
            self.show(["! no password given"])
            return False
        try:
            if signup:
                await self._signup(username, password)
            await self._start(await self.account.login(username, password))
        except ApiError as err:
            self.show([f"! {err.code}: {err.body.get('message', '')}"])
            return False
        except CONNECT_ERRORS as err:
            self.show([f"! the API at {self.account.api.base} did not answer: {err}"])
            return False
        return True

    async def _signup(self, username: str, password: str) -> None:
        try:
            await self.account.signup(username, password)
            self.show([f"* signed up as {username}"])
        except ApiError as err:
            if err.code != "username_taken":
                raise
            self.show([f"* {username} exists; logging in"])

    async def _start(self, login: dict[str, Any]) -> None:
        if self.link is not None:
            await self.link.stop()
        while not self.frames.empty():  # the last user's
            self.frames.get_nowait()
        me = login["user"]
        self.state = ChatState()
        self.state.me, self.state.device = me["id"], login["device_id"]
        self.state.names[me["id"]] = me["username"]
        listing = await self.account.call("GET", "/v1/conversations")
        self.state.load_listing(listing)
        friends = await self._friends()
        unread = sum(conv.unread for conv in self.state.convs.values())
        self.show([f"* logged in as {me['username']}: {_count(len(friends), 'friend')}, "
                   f"{_count(len(self.state.listed), 'conversation')}, {unread} unread (/help lists the commands)"])
        self.link = Link(self.http, self.account, self.frames.put_nowait, self.note, on_live=self._on_live)
        self.link.cursor = listing["cursor"]  # a new device starts from now
        self._spawn(self.link.run(urls_of(login))).add_done_callback(self._link_ended)

    def _link_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.show([f"! the connection loop failed: {task.exception()!r}; /login again"])

    async def _friends(self) -> list[dict[str, Any]]:
        lists = await self.account.call("GET", "/v1/friends")
        self.state.learn_users(lists["friends"] + lists["incoming"] + lists["outgoing"])
        return list(lists["friends"])

    async def _learn_user(self, user: str) -> None:
        try:
            self.state.learn_users([(await self.account.call("GET", f"/v1/users/{user}"))["user"]])
        except (ApiError, *CONNECT_ERRORS) as err:
            self.show([f"! could not read a user: {err}"])

    async def _on_live(self) -> None:
        """After each (re)connect: where friends stand now (changes arrive as frames from here on)."""
        self.state.connection = self.link.node if self.link else ""
        try:
            friends = [u["id"] for u in await self._friends()]
            if friends:
                got = await self.account.call("GET", "/v1/presence", params={"user_ids": ",".join(friends[:100])})
                self.state.learn_presence(got["presence"])
        except (ApiError, *CONNECT_ERRORS):
            pass  # the next /who or /friends asks again

    # -- frames ----------------------------------------------------------------------------------------

    async def consume(self) -> None:
        while True:
            frame = await self.frames.get()
            if frame.get("type") == "friend" and frame.get("user") not in self.state.names:
                await self._learn_user(frame["user"])  # a stranger's request: their username first
            if not self.state.knows(frame):
                try:
                    self.state.load_listing(await self.account.call("GET", "/v1/conversations"))
                except (ApiError, *CONNECT_ERRORS) as err:
                    self.show([f"! could not read the conversations: {err}"])
            try:
                out = self.state.on_frame(frame, self.clock())
            except (KeyError, TypeError, ValueError) as err:  # a frame not as docs/protocol.md says: go on
                self.show([f"! could not show a {frame.get('type')} frame: {err!r}"])
                continue
            self.show(out.lines)
            for f in out.frames:
                if self.link is not None:
                    await self.link.send(f)

    async def tick(self) -> None:
        """Typing indicators run out by themselves: look again every second."""
        while True:
            await asyncio.sleep(1.0)
            if self.screen is not None:
                self.screen.refresh()

    # -- commands --------------------------------------------------------------------------------------

    async def run(self, command: c.Command) -> bool:
        """Run one command; False when the session should end."""
        if isinstance(command, c.Quit):
            return False
        if isinstance(command, c.Help):
            self.show(c.help_lines())
        elif isinstance(command, c.Invalid):
            self.show([f"! {command.message}"])
        elif isinstance(command, c.Signup | c.Login):
            await self.log_in(command.username, signup=isinstance(command, c.Signup))
        elif not self.state.me:
            self.show(["! log in first: /login NAME (or /signup NAME)"])
        else:
            try:
                await self._logged_in(command)
            except ApiError as err:
                self.show([f"! {err.code}: {err.body.get('message', '')}"])
            except CONNECT_ERRORS as err:
                self.show([f"! the API did not answer: {err}"])
        return True

    async def _logged_in(self, command: c.Command) -> None:
        match command:
            case c.Say(text):
                await self.say(text)
            case c.Friends():
                await self.friends()
            case c.Add(name):
                await self.befriend(name)
            case c.Accept(name):
                await self.accept(name)
            case c.Conversations():
                self.state.load_listing(await self.account.call("GET", "/v1/conversations"))
                self.show(render.conversation_lines(self.state))
            case c.Open(target):
                await self.open(target)
            case c.NewGroup(name, members):
                await self.new_group(name, members)
            case c.History():
                await self.history()
            case c.Who():
                await self.who()
            case c.Reply() | c.Edit() | c.Delete() | c.React():
                await self.act(command)

    async def say(self, text: str) -> None:
        conv = self.state.open
        if conv is None or self.link is None:
            self.show(["! open a conversation first: /open NAME (/list shows them)"])
            return
        self.state.sending(await self.link.say(conv, text), conv)
        self.screen.refresh() if self.screen else None

    async def act(self, command: c.Reply | c.Edit | c.Delete | c.React) -> None:
        """A reply, edit, delete or reaction (protocol §19) on the message shown as (N)."""
        target = self.state.held.get(command.n)
        if target is None or self.link is None:
            self.show([f"! no message ({command.n}) shown here" if target is None else "! not connected"])
            return
        fields: dict[str, Any] = {"target": target["id"]}
        match command:
            case c.Reply(_, text):
                body, fields = text, {"reply_to": target["id"]}
            case c.Edit(_, text):
                body, fields["kind"] = text, "edit"
            case c.Delete():
                body, fields["kind"] = "", "delete"
            case c.React(_, emoji):
                body, fields["emoji"] = "", emoji
                fields["kind"] = "unreact" if held.mine(target, self.state.me, emoji) else "react"
        self.state.sending(await self.link.say(target["conv"], body, **fields), target["conv"])

    async def user(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = (await self.account.call("GET", "/v1/users", params={"username": name}))["user"]
        self.state.learn_users([found])
        return found

    async def friends(self) -> None:
        lists = await self.account.call("GET", "/v1/friends")
        self.state.learn_users(lists["friends"] + lists["incoming"] + lists["outgoing"])
        ids = [u["id"] for u in lists["friends"]][:100]
        presence = await self.account.call("GET", "/v1/presence", params={"user_ids": ",".join(ids)}) if ids else {}
        by_user = {e["user"]: e for e in presence.get("presence", [])}
        self.show(render.friend_lines(self.state, lists, by_user, self.clock()))

    async def befriend(self, name: str) -> None:
        user = await self.user(name)
        out = await self.account.call("POST", "/v1/friends", {"user_id": user["id"]})
        if out["state"] == "friends":
            self.show([f"* you and {user['username']} are friends: /open {user['username']}"])
        else:
            self.show([f"* asked {user['username']} to be your friend (they /accept {self.account.username})"])

    async def accept(self, name: str) -> None:
        lists = await self.account.call("GET", "/v1/friends")
        asking = {u["username"] for u in lists["incoming"]} | {u["username"] for u in lists["friends"]}
        if name.strip().lower() not in asking:
            self.show([f"! {name} has not asked to be your friend (/add {name} asks them)"])
            return
        await self.befriend(name)

    async def open(self, target: str) -> None:
        conv = self.state.find(target)
        if conv is None:
            self.state.load_listing(await self.account.call("GET", "/v1/conversations"))
            conv = self.state.find(target)
        if conv is None and target.startswith("#"):
            self.show([f"! no group {target} (/list shows yours)"])
            return
        if conv is None:
            user = await self.user(target.lstrip("@"))
            got = await self.account.call("POST", "/v1/conversations", {"user_id": user["id"]})
            conv = self.state.learn_conversation(got["conversation"]).id
        page = await self.account.call("GET", f"/v1/conversations/{conv}/messages", params={"limit": PAGE})
        receipts = await self.account.call("GET", f"/v1/conversations/{conv}/receipts")
        self.state.load_receipts(conv, receipts["receipts"])
        out = self.state.open_conversation(conv, page["messages"], page["more"])
        self.show(out.lines)
        for f in out.frames:
            if self.link is not None:
                await self.link.send(f)

    async def history(self) -> None:
        conv = self.state.open
        if conv is None:
            self.show(["! open a conversation first"])
            return
        before = self.state.older_than(conv)
        if before is None:
            self.show(["   (no older messages)"])
            return
        page = await self.account.call("GET", f"/v1/conversations/{conv}/messages",
                                       params={"before": before, "limit": PAGE})
        lines = self.state.history_lines(conv, page["messages"], page["more"])
        more = "   (older: /history)" if page["more"] else "   (the beginning)"
        self.show([f"── older in {self.state.title(conv)} ──", *([more] if lines else []), *lines,
                   "── (newer below) ──" if lines else "   (no older messages)"])

    async def new_group(self, name: str, members: tuple[str, ...]) -> None:
        ids = [(await self.user(m))["id"] for m in members]
        got = await self.account.call("POST", "/v1/groups", {"name": name, "members": ids})
        conv = self.state.learn_conversation(got["conversation"]).id
        self.show([f"* made {self.state.title(conv)} with {', '.join(members)}"])
        await self.open(conv)

    async def who(self) -> None:
        conv = self.state.convs.get(self.state.open or "")
        if conv is not None and conv.kind == "group":
            ids = [m for m in conv.members if m != self.state.me]
        else:
            ids = [u["id"] for u in await self._friends()]
        if not ids:
            self.show(render.who_lines(self.state, [], self.clock()))
            return
        got = await self.account.call("GET", "/v1/presence", params={"user_ids": ",".join(ids[:100])})
        self.state.learn_presence(got["presence"])
        self.show(render.who_lines(self.state, got["presence"], self.clock()))

    # -- the whole session -----------------------------------------------------------------------------

    async def serve(self, screen: Screen, user: str | None, signup: bool) -> int:
        self.screen = screen
        self._spawn(self.consume())
        self._spawn(self.tick())
        try:
            if user is not None and not await self.log_in(user, signup):
                return 1
            if user is None:
                self.show(["* /login NAME or /signup NAME to start (/help lists the commands)"])
            while True:
                line = await screen.read_line()
                command = c.parse(line) if line is not None else c.Quit()
                if command is not None and not await self.run(command):
                    break
            if self.link is not None and not await self.link.flush(FLUSH_S):
                self.show([f"! {len(self.link.pending)} messages were not acknowledged"])
                return 1
            return 0
        finally:
            await self.close()

    async def close(self) -> None:
        if self.link is not None:
            await self.link.stop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def password_from_env(environ: dict[str, str] | os._Environ[str]) -> str | None:
    return environ.get("PARLEY_PASSWORD") or None


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"
