"""Text for the terminal: message bodies made safe to print, times, the conversation and friend lists.

Everything another user chose (names, bodies) goes through ``clean``: control characters (escape
sequences could move the cursor or retitle the terminal) and line breaks become visible stand-ins, so
one message is one line. Pure functions; the local time zone is the only outside input.
"""

from __future__ import annotations

import time
import unicodedata
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parley.tools.chat.state import ChatState

MAX_PREVIEW = 40


def clean(text: str) -> str:
    out = []
    for ch in text:
        if ch in "\r\n":
            out.append(" ⏎ ")
        elif ch == "\t":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf") and ch != "\u200d":
            out.append("�")
        else:
            out.append(ch)
    return "".join(out)


def clock(ts_ms: int) -> str:
    return time.strftime("%H:%M", time.localtime(ts_ms / 1000))


def ago(ts_ms: int | None, now: float) -> str:
    """``last seen`` in words: just now, 5 min ago, 3 h ago, on 2026-12-01."""
    if ts_ms is None:
        return "never seen"
    gone = max(0.0, now - ts_ms / 1000)
    if gone < 60:
        return "last seen just now"
    if gone < 3600:
        return f"last seen {int(gone // 60)} min ago"
    if gone < 86400:
        return f"last seen {int(gone // 3600)} h ago"
    return "last seen on " + time.strftime("%Y-%m-%d", time.localtime(ts_ms / 1000))


def presence_text(entry: dict[str, Any] | None, now: float) -> str:
    if entry is None:
        return "unknown"
    return "online" if entry["online"] else ago(entry.get("last_active_at"), now)


def conversation_lines(state: ChatState) -> list[str]:
    if not state.listed:
        return ["no conversations yet: /open a friend, or /group new NAME a,b"]
    width = max(len(state.title(c)) for c in state.listed)
    lines = []
    for n, conv_id in enumerate(state.listed, start=1):
        conv = state.convs[conv_id]
        unread = "99+" if conv.unread >= 100 else str(conv.unread) if conv.unread else ""
        mark = f"{unread} unread" if unread else ""
        preview = conv.last_line if len(conv.last_line) <= MAX_PREVIEW else conv.last_line[:MAX_PREVIEW - 1] + "…"
        lines.append(f"{n:>3}. {state.title(conv_id).ljust(width)}  {mark:<11} {preview}".rstrip())
    return lines


def friend_lines(state: ChatState, lists: dict[str, Any], presence: dict[str, dict[str, Any]],
                 now: float) -> list[str]:
    friends = sorted(lists["friends"], key=lambda u: u["username"])
    lines = [f"friends: {len(friends)}" if friends else "no friends yet: /add NAME"]
    lines += [f"  {u['username']}  {presence_text(presence.get(u['id']), now)}" for u in friends]
    if lists["incoming"]:
        lines.append("asking to be your friend: " + ", ".join(clean(u["username"]) for u in lists["incoming"])
                     + "  (/accept NAME)")
    if lists["outgoing"]:
        lines.append("you asked: " + ", ".join(clean(u["username"]) for u in lists["outgoing"]))
    return lines


def who_lines(state: ChatState, entries: list[dict[str, Any]], now: float) -> list[str]:
    if not entries:
        return ["nobody to ask about: /add a friend first"]
    ordered = sorted(entries, key=lambda e: (not e["online"], state.name(e["user"])))
    return [f"  {state.name(e['user'])}  {presence_text(e, now)}" for e in ordered]
