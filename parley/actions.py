"""Replies, edits, deletes and reactions (ADR 0025): the rules, without I/O.

An action is an entry of its conversation's stream like a message (same id, ``prev`` chain, cursor, dedup and
ack), with a ``kind`` and the ``target`` message it acts on. Two places judge it:

- the sending node, before publishing (``check``): the target is a message of the conversation, not deleted;
  only its sender edits it, within the edit window; its sender deletes it, or a group's owner or admin; the
  reactions stay bounded. It reads the target's current state (store row plus the unarchived tail).
- the archiver, in stream order (``apply``): it folds each action into its target's stored state. It is the
  authority: an action a node let through in a race (a reaction just after a delete it had not seen yet)
  changes nothing, and applying an action twice (a redelivery) or an older one after a newer one is harmless:
  edits keep the newest by id, reactions are a ledger of the last action id per (emoji, user).

A delete leaves a tombstone: no body, no reactions; the edit entries and the replies' quotes that carry the
text are blanked too (``Blank``), so the text is gone everywhere history keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from parley.errors import Conflict, Forbidden, NotFound
from parley.store.records import MessageState, Role, StoredMessage

KINDS = ("edit", "delete", "react", "unreact")
QUOTE_CHARS = 100  # a reply's quote: the first characters of the original
MAX_EMOJI_BYTES = 32  # a reaction: 1 to this many bytes of UTF-8, no spaces or control characters
MAX_EMOJIS = 20  # distinct reactions on one message
MAX_LEDGER = 1000  # (emoji, user) entries kept per message, taken back ones included
MAX_EDITS = 50  # edits of one message
MAX_QUOTED_BY = 100  # replies whose quotes a delete blanks
SHOWN_REACTORS = 20  # users listed per reaction (the count counts them all)


@dataclass(frozen=True, slots=True)
class Blank:
    """A stored entry that carries a deleted message's text: an edit's ``body`` or a reply's ``quote``."""

    id: int
    ts: int
    field: str  # body | quote


def valid_emoji(emoji: str) -> bool:
    size = len(emoji.encode("utf-8", "surrogatepass"))
    return 0 < size <= MAX_EMOJI_BYTES and all(c.isprintable() and not c.isspace() for c in emoji)


def check(kind: str, *, actor: str, role: Role | None, target: StoredMessage | None, emoji: str, now_ms: int,
          edit_window_s: float) -> None:
    """Whether ``actor`` may act on ``target`` (its current state); ``kind`` "" is a reply. Raises the
    documented error: ``unknown_message``, ``message_deleted``, ``not_sender``, ``edit_window_closed``,
    ``too_many_edits``, ``too_many_reactions``."""
    if target is None or target.kind:
        raise NotFound("no such message in this conversation", code="unknown_message")
    if target.state.deleted:
        raise Conflict("that message was deleted", code="message_deleted", target=target.id)
    if kind == "edit":
        if target.sender != actor:
            raise Forbidden("only the sender edits a message", code="not_sender", target=target.id)
        if now_ms - target.ts > edit_window_s * 1000:
            raise Forbidden(f"a message can be edited for {edit_window_s:g} s after it was sent",
                            code="edit_window_closed", target=target.id, window_s=edit_window_s)
        if len(target.state.edits) >= MAX_EDITS:
            raise Conflict(f"a message can be edited {MAX_EDITS} times", code="too_many_edits", target=target.id)
    elif kind == "delete":
        if target.sender != actor and role not in ("owner", "admin"):
            raise Forbidden("only the sender (or a group's owner or admin) deletes a message", code="not_sender",
                            target=target.id)
    elif kind == "react":
        emojis = {e for e, _, signed in target.state.reactions if signed > 0}
        full = len(target.state.reactions) >= MAX_LEDGER or len(emojis) >= MAX_EMOJIS
        if emoji not in emojis and full:
            raise Conflict(f"a message has at most {MAX_EMOJIS} different reactions", code="too_many_reactions",
                           target=target.id, limit=MAX_EMOJIS)


def quote_of(target: StoredMessage) -> tuple[str, str]:
    """A reply's quote of ``target``: its sender and its first ``QUOTE_CHARS`` characters."""
    return target.sender, target.body[:QUOTE_CHARS]


def apply(target: StoredMessage, entry: StoredMessage) -> tuple[StoredMessage, list[Blank]]:
    """``target`` after ``entry`` (an action on it, or a reply to it), and the entries to blank."""
    s = target.state
    if not entry.kind:  # a reply: remembered so that a delete can blank its quote
        if s.deleted:
            return target, [Blank(entry.id, entry.ts, "quote")]
        if (entry.id, entry.ts) in s.quoted_by or len(s.quoted_by) >= MAX_QUOTED_BY:
            return target, []
        return _with(target, quoted_by=tuple(sorted((*s.quoted_by, (entry.id, entry.ts))))), []
    if s.deleted:
        return target, ([Blank(entry.id, entry.ts, "body")] if entry.kind == "edit" else [])
    if entry.kind == "edit":
        return _edited(target, entry)
    if entry.kind == "delete":
        blanks = [Blank(i, ts, "body") for i, ts in s.edits] + [Blank(i, ts, "quote") for i, ts in s.quoted_by]
        state = replace(s, deleted=True, reactions=(), delete_id=entry.id, delete_from=entry.sender,
                        delete_cid=entry.cid)
        return replace(target, body="", state=state), blanks
    if entry.kind in ("react", "unreact"):
        return _reacted(target, entry), []
    return target, []


def _with(target: StoredMessage, **changes: Any) -> StoredMessage:
    return replace(target, state=replace(target.state, **changes))


def _edited(target: StoredMessage, entry: StoredMessage) -> tuple[StoredMessage, list[Blank]]:
    s = target.state
    if (entry.id, entry.ts) in s.edits:
        return target, []
    if len(s.edits) >= MAX_EDITS:  # a node let it through in a race: refused here, its text kept nowhere
        return target, [Blank(entry.id, entry.ts, "body")]
    edits = tuple(sorted((*s.edits, (entry.id, entry.ts))))
    if entry.id < s.edit_id:  # an older edit after a newer one (a redelivery): the newer text stays
        return _with(target, edits=edits), []
    return replace(target, body=entry.body,
                   state=replace(s, edit_id=entry.id, edited_at=entry.ts, edits=edits)), []


def _reacted(target: StoredMessage, entry: StoredMessage) -> StoredMessage:
    s = target.state
    ledger = {(e, u): signed for e, u, signed in s.reactions}
    key = (entry.emoji, entry.sender)
    if abs(ledger.get(key, 0)) >= entry.id:
        return target
    if key not in ledger:
        emojis = {e for (e, _), signed in ledger.items() if signed > 0}
        if len(ledger) >= MAX_LEDGER or (entry.emoji not in emojis and len(emojis) >= MAX_EMOJIS):
            return target
    ledger[key] = entry.id if entry.kind == "react" else -entry.id
    return _with(target, reactions=tuple(sorted((e, u, signed) for (e, u), signed in ledger.items())))


def reactions_json(state: MessageState) -> dict[str, dict[str, Any]]:
    """Each reaction's count and (up to ``SHOWN_REACTORS``, first come first) the users who reacted."""
    users: dict[str, list[tuple[int, str]]] = {}
    for emoji, user, signed in state.reactions:
        if signed > 0:
            users.setdefault(emoji, []).append((signed, user))
    return {e: {"count": len(us), "users": [u for _, u in sorted(us)[:SHOWN_REACTORS]]}
            for e, us in sorted(users.items())}


def extras_json(m: StoredMessage) -> dict[str, Any]:
    """The fields a message or action adds to its ``msg`` frame and history entry (only those that apply)."""
    out: dict[str, Any] = {}
    if m.kind:
        out |= {"kind": m.kind, "target": m.target}
        if m.emoji:
            out["emoji"] = m.emoji
    if m.reply_to:
        out |= {"reply_to": m.reply_to, "quote": {"from": m.quote_from, "body": m.quote}}
    s = m.state
    if s.deleted:
        out["deleted"] = True
    if s.edit_id:
        out |= {"edited": True, "edited_at": s.edited_at}
    if any(signed > 0 for _, _, signed in s.reactions):
        out["reactions"] = reactions_json(s)
    return out


def current(rows: list[StoredMessage], entries: list[StoredMessage]) -> list[StoredMessage]:
    """``rows`` (in any order) with ``entries`` (actions and replies, in id order) applied to those of their
    targets that are among them: the state a page shows when some of its actions are not archived yet."""
    by_id: dict[int, StoredMessage] = {m.id: m for m in rows}
    for entry in entries:
        target = by_id.get(entry.target or entry.reply_to)
        if target is None or not (entry.kind or entry.reply_to):
            continue
        by_id[target.id], blanks = apply(target, entry)
        for b in blanks:
            if b.id in by_id:
                by_id[b.id] = blanked(by_id[b.id], b.field)
    return [by_id[m.id] for m in rows]


def blanked(m: StoredMessage, field: str) -> StoredMessage:
    return replace(m, body="") if field == "body" else replace(m, quote="")
