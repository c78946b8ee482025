"""The messages a terminal chat has shown, numbered, with replies, edits, deletes and reactions applied.

Each message shown gets a short number, ``(1)``, ``(2)``…, counted over the session (not ids: those are
long and per conversation), so ``/reply 2 …``, ``/edit 2 …``, ``/delete 2``, ``/react 2 👍`` name it.
An entry with a ``kind`` is an action (docs/protocol.md §19): never a message of its own, it is applied
to its target if that was shown (in chain order, as frames come) and printed as one line saying what
changed; an action on a message never shown is dropped (its history shows it as it is now). A message
read from the store carries its state (``edited``, ``deleted``, ``reactions``) and is drawn with it. Pure:
no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from parley.tools.chat import render

QUOTE_CHARS = 30


@dataclass
class Shown:
    n: int
    msg: dict[str, Any]  # the message as it is now (body, edited, deleted, reactions)


@dataclass
class Held:
    by_number: dict[int, Shown] = field(default_factory=dict)
    by_id: dict[tuple[str, int], Shown] = field(default_factory=dict)  # (conv, id) → shown
    next: int = 1

    def number(self, m: dict[str, Any]) -> int:
        """The message's number, given when first shown (a message read again keeps its number, and its
        state as read now)."""
        key = (m["conv"], m["id"])
        shown = self.by_id.get(key)
        if shown is None:
            shown = Shown(self.next, dict(m))
            self.next += 1
            self.by_id[key] = shown
            self.by_number[shown.n] = shown
        elif any(k in m for k in ("edited", "deleted", "reactions")):
            shown.msg.update({k: m[k] for k in ("body", "edited", "deleted", "reactions") if k in m})
        return shown.n

    def get(self, n: int) -> dict[str, Any] | None:
        shown = self.by_number.get(n)
        return shown.msg if shown else None

    def apply(self, action: dict[str, Any], name: str) -> str | None:
        """Applies an action entry to its target; the line saying so, None when its target was never
        shown or nothing changed (a repeat, or an edit or reaction of a deleted message)."""
        shown = self.by_id.get((action["conv"], action.get("target", 0)))
        if shown is None:
            return None
        target, who, kind = shown.msg, name, action["kind"]
        if kind == "delete":
            if target.get("deleted"):
                return None
            target.update(deleted=True, body="", reactions={})
            return f"* {who} deleted ({shown.n})"
        if target.get("deleted"):
            return None
        if kind == "edit":
            if action["ts"] < target.get("edited_at", 0):
                return None
            target.update(body=action.get("body", ""), edited=True, edited_at=action["ts"])
            return f"* {who} edited ({shown.n}): {render.clean(target['body'])}"
        if kind in ("react", "unreact"):
            if not react(target, action["from"], action.get("emoji", ""), kind == "react"):
                return None
            verb = "reacted" if kind == "react" else "took back"
            return f"* {who} {verb} {render.clean(action.get('emoji', ''))} on ({shown.n}) {excerpt(target)}"
        return None


def react(target: dict[str, Any], user: str, emoji: str, on: bool) -> bool:
    """Adds or removes ``user`` in ``emoji``'s set; False if that changes nothing."""
    reactions = dict(target.get("reactions") or {})
    now = reactions.get(emoji) or {"count": 0, "users": []}
    users = list(now.get("users", []))
    if (user in users) == on:
        return False
    users = [*users, user] if on else [u for u in users if u != user]
    count = max(len(users), int(now.get("count", 0)) + (1 if on else -1))
    if count > 0:
        reactions[emoji] = {"count": count, "users": users}
    else:
        reactions.pop(emoji, None)
    target["reactions"] = reactions
    return True


def mine(target: dict[str, Any], user: str, emoji: str) -> bool:
    return user in ((target.get("reactions") or {}).get(emoji) or {}).get("users", [])


def excerpt(m: dict[str, Any]) -> str:
    body = render.clean(m.get("body", ""))
    return f'"{body[:QUOTE_CHARS]}…"' if len(body) > QUOTE_CHARS else f'"{body}"'


def text(m: dict[str, Any], name: str) -> str:
    """A message's text as shown: a reply's quote first, the body (or ``message deleted``), ``(edited)``,
    and its reactions; ``name`` is the quoted sender's name."""
    if m.get("deleted"):
        return "(message deleted)"
    parts = []
    quote = m.get("quote")
    if quote:
        parts.append(f"[↪ {name}: {render.clean(quote.get('body', ''))[:QUOTE_CHARS] or '(deleted)'}]")
    parts.append(render.clean(m.get("body", "")))
    if m.get("edited"):
        parts.append("(edited)")
    counts = [f"{render.clean(e)} {r.get('count', 0)}" for e, r in (m.get("reactions") or {}).items()
              if r.get("count", 0) > 0]
    if counts:
        parts.append(f"[{', '.join(counts)}]")
    return " ".join(parts)
