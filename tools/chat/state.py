"""What a terminal chat knows and shows: incoming frames in, lines to print and frames to send out.

``ChatState`` holds the user's conversations (titles, read marks, unread counts), the open conversation,
who is typing, the receipts of the user's own messages and the ids already shown. ``on_frame`` takes one
server frame (docs/protocol.md §5) and returns an ``Out``: lines to print, frames to send (a ``read``
mark for what was shown in the open conversation). Invariants: a message id is shown at most once (ids
are unique, so one set serves every conversation; a reconnect's sync re-sends what the cursor did not
cover and it is dropped here); ids are compared only within one conversation. No I/O and no clock:
``now`` (seconds) is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from parley.tools.chat import held, render

TYPING_INTERVAL_S = 2.0  # a node forwards one typing start per 2 s anyway (protocol §5)


@dataclass
class Conv:
    id: str
    kind: str  # dm | group
    name: str  # a group's name; "" for a DM
    members: tuple[str, ...]  # user ids
    read: int = 0  # my read mark (an id of this conversation)
    unread: int = 0
    last: int = 0  # the newest id seen of this conversation
    last_ts: int = 0
    last_line: str = ""


@dataclass
class Out:
    lines: list[str] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Status:
    me: str
    title: str  # the open conversation's
    connection: str
    typing: str
    receipt: str

    def render(self) -> str:
        parts = [p for p in (self.me and f"{self.me}", self.title and f"in {self.title}", self.connection,
                             self.typing, self.receipt) if p]
        return " · ".join(parts)


class ChatState:
    def __init__(self) -> None:
        self.me = ""  # my user id
        self.device = ""
        self.names: dict[str, str] = {}  # user id → username
        self.convs: dict[str, Conv] = {}
        self.listed: list[str] = []  # conversation ids in the order /list showed them
        self.open: str | None = None
        self.oldest: dict[str, int] = {}  # per conversation: the smallest id shown (for /history)
        self.seen: set[int] = set()
        self.typing: dict[tuple[str, str], float] = {}  # (conv, user) → until
        self.mine: dict[str, int] = {}  # per conversation: my newest message id
        self.marks: dict[str, dict[str, tuple[int, int]]] = {}  # conv → user → (delivered, read)
        self.pending: dict[str, str] = {}  # cid → conv, sends not yet acked
        self.online: dict[str, bool] = {}
        self.connection = "offline"
        self.held = held.Held()  # the messages shown, numbered; actions applied (held.py)
        self._typed: tuple[str, float] | None = None  # (conv, when) of my last typing start

    # -- what the HTTP API told us --------------------------------------------------------------------

    def learn_users(self, users: list[dict[str, Any]]) -> None:
        for u in users:
            self.names[u["id"]] = u["username"]

    def learn_conversation(self, c: dict[str, Any]) -> Conv:
        self.learn_users(c.get("members", []))
        conv = self.convs.get(c["id"]) or Conv(c["id"], c["kind"], "", ())
        conv.kind, conv.name = c["kind"], c.get("name") or ""
        conv.members = tuple(m["id"] for m in c.get("members", []))
        if "read" in c:
            conv.read, conv.unread = max(conv.read, int(c["read"])), int(c["unread"])
        last = c.get("last_message")
        if last and last["id"] >= conv.last:
            conv.last, conv.last_ts = last["id"], last["ts"]
            if not last.get("kind"):  # an edit, delete or reaction is not the list's last message
                conv.last_line = f"{self.name(last['from'])}: {render.clean(last['body'])}"
        self.convs[conv.id] = conv
        return conv

    def load_listing(self, listing: dict[str, Any]) -> None:
        self.listed = [self.learn_conversation(c).id for c in listing["conversations"]]

    def load_receipts(self, conv: str, receipts: list[dict[str, Any]]) -> None:
        self.marks[conv] = {r["user_id"]: (r["delivered"], r["read"]) for r in receipts if r["user_id"] != self.me}

    def learn_presence(self, entries: list[dict[str, Any]]) -> None:
        for e in entries:
            self.online[e["user"]] = bool(e["online"])

    # -- names -----------------------------------------------------------------------------------------

    def name(self, user: str) -> str:
        return self.names.get(user) or user[:8]

    def title(self, conv_id: str) -> str:
        conv = self.convs.get(conv_id)
        if conv is None:
            return "?"
        if conv.kind == "group":
            return f"#{conv.name}"
        others = [m for m in conv.members if m != self.me]
        return self.name(others[0]) if others else "(you)"

    def find(self, target: str) -> str | None:
        """The conversation ``/open target`` means, when it is one we know: a number of the last
        ``/list``, a group's name (with or without ``#``), or a DM partner's username."""
        if target in self.convs:
            return target
        if target.isdigit() and 1 <= int(target) <= len(self.listed):
            return self.listed[int(target) - 1]
        want = target.lower()
        for conv in self.convs.values():
            title = self.title(conv.id).lower()
            if title == want or (conv.kind == "group" and title == f"#{want.lstrip('#')}"):
                return conv.id
        return None

    def knows(self, frame: dict[str, Any]) -> bool:
        """False when the frame names a conversation we have not loaded (the app lists them first)."""
        if frame.get("type") == "group" and frame.get("event") != "left":
            return False  # joined, renamed, members, roles: read the group again
        conv = frame.get("conv")
        return frame.get("type") not in ("msg", "typing", "receipt") or conv in self.convs

    # -- opening and paging ----------------------------------------------------------------------------

    def open_conversation(self, conv_id: str, page: list[dict[str, Any]], more: bool) -> Out:
        """Open ``conv_id`` with its newest history page (newest first, as the API returns it)."""
        self.open = conv_id
        self.oldest.pop(conv_id, None)
        out = Out([f"── {self.title(conv_id)} ──"])
        if more:
            out.lines.append("   (older messages: /history)")
        out.lines += self.history_lines(conv_id, page, more)
        if not page:
            out.lines.append("   (no messages yet: say hello)")
        out.frames += self._mark_read(conv_id)
        return out

    def history_lines(self, conv_id: str, page: list[dict[str, Any]], more: bool = True) -> list[str]:
        """Lines for a page of history (any order); ``more``: older messages exist beyond it."""
        lines = []
        for m in sorted(page, key=lambda m: m["id"]):
            self.seen.add(m["id"])
            self._note_message(m)
            if not m.get("kind"):  # an action: its target, read from the store too, shows it already
                lines.append(self.message_line(m, in_open=True))
        if page:
            low = min(m["id"] for m in page)
            self.oldest[conv_id] = min(self.oldest.get(conv_id, low), low)
        if not more:
            self.oldest[conv_id] = 0  # the beginning: nothing older to ask for
        return lines

    def older_than(self, conv_id: str) -> int | None:
        """The ``before`` of the next older page, None when there is none."""
        return self.oldest.get(conv_id) or None

    def _mark_read(self, conv_id: str) -> list[dict[str, Any]]:
        conv = self.convs.get(conv_id)
        if conv is None or conv.last <= conv.read:
            if conv is not None:
                conv.unread = 0
            return []
        conv.read, conv.unread = conv.last, 0
        return [{"type": "read", "conv": conv_id, "upto": conv.last}]

    # -- frames ----------------------------------------------------------------------------------------

    def on_frame(self, f: dict[str, Any], now: float) -> Out:
        match f.get("type"):
            case "msg":
                return self._on_msg(f)
            case "ack":
                self.pending.pop(f.get("cid", ""), None)
                self.mine[f["conv"]] = max(self.mine.get(f["conv"], 0), f["id"])
            case "typing":
                self._on_typing(f, now)
            case "receipt":
                self._on_receipt(f)
            case "presence":
                return Out(self._on_presence(f["users"]))
            case "group":
                return Out(self._on_group(f))
            case "friend":
                return Out(self._on_friend(f))
            case "error":
                return Out(self._on_error(f))
        return Out()

    def _on_msg(self, m: dict[str, Any]) -> Out:
        if m["from"] == self.me and m.get("device") == self.device:
            self.pending.pop(m.get("cid", ""), None)
        if m["id"] in self.seen:
            return Out()
        self.seen.add(m["id"])
        self.typing.pop((m["conv"], m["from"]), None)
        conv = self._note_message(m)
        in_open = m["conv"] == self.open
        if m.get("kind"):
            line = self.held.apply(m, self.name(m["from"]))
            where = "" if in_open or line is None else f"[{self.title(m['conv'])}] "
            return Out([where + line] if line else [])
        out = Out([self.message_line(m, in_open)])
        if conv is not None and m["from"] != self.me and m["id"] > conv.read:
            if in_open:
                out.frames += self._mark_read(conv.id)
            else:
                conv.unread += 1
        return out

    def _note_message(self, m: dict[str, Any]) -> Conv | None:
        if m["from"] == self.me:
            self.mine[m["conv"]] = max(self.mine.get(m["conv"], 0), m["id"])
        conv = self.convs.get(m["conv"])
        if conv is not None and m["id"] >= conv.last:
            conv.last, conv.last_ts = m["id"], m["ts"]
            if not m.get("kind"):
                conv.last_line = f"{self.name(m['from'])}: {render.clean(m['body'])}"
        return conv

    def message_line(self, m: dict[str, Any], in_open: bool) -> str:
        where = "" if in_open else f"[{self.title(m['conv'])}] "
        n = self.held.number(m)
        quoted = self.name((m.get("quote") or {}).get("from", ""))
        text = held.text(self.held.get(n) or m, quoted)
        return f"{where}{render.clock(m['ts'])} ({n}) {self.name(m['from'])}: {text}"

    def _on_typing(self, f: dict[str, Any], now: float) -> None:
        key = (f["conv"], f["from"])
        if f.get("state", "start") == "stop":
            self.typing.pop(key, None)
        else:
            self.typing[key] = now + f.get("ttl_ms", 6000) / 1000

    def _on_receipt(self, f: dict[str, Any]) -> None:
        conv = self.convs.get(f["conv"])
        if f["user"] == self.me:
            if f["status"] == "read" and conv is not None and f["upto"] > conv.read:
                conv.read = f["upto"]
                conv.unread = 0 if conv.read >= conv.last else conv.unread
            return
        delivered, read = self.marks.setdefault(f["conv"], {}).get(f["user"], (0, 0))
        if f["status"] == "read":
            read = max(read, f["upto"])
        delivered = max(delivered, f["upto"])
        self.marks[f["conv"]][f["user"]] = (delivered, read)

    def _on_presence(self, users: list[dict[str, Any]]) -> list[str]:
        lines = []
        for e in users:
            was = self.online.get(e["user"])
            self.online[e["user"]] = bool(e["online"])
            if was is not None and was != bool(e["online"]):
                lines.append(f"* {self.name(e['user'])} is {'online' if e['online'] else 'offline'}")
        return lines

    def _on_group(self, f: dict[str, Any]) -> list[str]:
        title = self.title(f["conv"])
        match f.get("event"):
            case "joined":
                return [f"* you are in {title} now (/open {title})"]
            case "left":
                self.convs.pop(f["conv"], None)
                if self.open == f["conv"]:
                    self.open = None
                return [f"* you left {title}"]
            case "renamed":
                return [f"* the group is {title} now"]
            case "members":
                added = ", ".join(self.name(u) for u in f.get("added", []))
                removed = ", ".join(self.name(u) for u in f.get("removed", []))
                return [f"* {title}: " + "; ".join(p for p in (added and f"{added} joined",
                                                                removed and f"{removed} left") if p)]
        return []

    def _on_friend(self, f: dict[str, Any]) -> list[str]:
        """A request to you, a friendship begun or ended (``outgoing`` is your own /add: already said)."""
        name = self.name(f["user"])
        return {
            "incoming": [f"* {name} wants to be your friend (/accept {name})"],
            "friends": [f"* you and {name} are friends (/open {name})"],
            "none": [f"* you and {name} are not friends"],
        }.get(f["state"], [])

    def _on_error(self, f: dict[str, Any]) -> list[str]:
        if f.get("ref") in self.pending and f.get("retryable"):
            return []  # the link resends it
        if f.get("ref") in self.pending:
            conv = self.pending.pop(f["ref"])
            return [f"! not sent to {self.title(conv)}: {f.get('message', f.get('code'))}"]
        if f.get("code") in ("bad_cursor", "store_unavailable", "bus_unavailable") and "ref" not in f:
            return []  # during a sync: the node starts over or retries by itself
        return [f"! {f.get('code')}: {f.get('message', '')}"]

    # -- what I do -------------------------------------------------------------------------------------

    def typed(self, text: str, now: float) -> dict[str, Any] | None:
        """The typing frame to send after the input line changed to ``text``, if any: a start at most every
        ``TYPING_INTERVAL_S`` while the user types a message, a stop when the line is cleared."""
        conv = self.open
        if conv is None or text.startswith("/"):
            text = ""
        if text.strip():
            if self._typed and self._typed[0] == conv and now - self._typed[1] < TYPING_INTERVAL_S:
                return None
            self._typed = (str(conv), now)
            return {"type": "typing", "conv": conv, "state": "start"}
        if self._typed is None:
            return None
        was, self._typed = self._typed[0], None
        return {"type": "typing", "conv": was, "state": "stop"}

    def sending(self, cid: str, conv: str) -> None:
        self.pending[cid] = conv
        if self._typed and self._typed[0] == conv:
            self._typed = None  # the message ends the typing (receivers drop it on the msg)

    # -- the status line -------------------------------------------------------------------------------

    def status(self, now: float) -> Status:
        return Status(self.name(self.me) if self.me else "not logged in",
                      self.title(self.open) if self.open else "", self.connection, self.typing_text(now),
                      self.receipt_text())

    def typing_text(self, now: float) -> str:
        who = []
        for (conv, user), until in sorted(self.typing.items()):
            if until > now and user != self.me:
                who.append(self.name(user) + ("" if conv == self.open else f" (in {self.title(conv)})"))
        if not who:
            return ""
        return f"{', '.join(who)} {'is' if len(who) == 1 else 'are'} typing…"

    def receipt_text(self) -> str:
        """How far my last message in the open conversation got: sending, sent ✓, delivered ✓✓, read ✓✓."""
        conv = self.open
        if conv is None:
            return ""
        if any(c == conv for c in self.pending.values()):
            return "sending…"
        mine = self.mine.get(conv, 0)
        if not mine:
            return ""
        marks = self.marks.get(conv, {})
        read = [self.name(u) for u, (_, r) in sorted(marks.items()) if r >= mine]
        delivered = [u for u, (d, _) in marks.items() if d >= mine]
        if read:
            return f"read by {', '.join(read)} ✓✓"
        return "delivered ✓✓" if delivered else "sent ✓"
