"""Which devices get a push for a message, and what it says. Pure: the caller gathers the facts.

A push goes to each device with a token of each member but the sender, unless the member muted all
pushes or this conversation, or one of their devices already has the message (their delivered
mark is at or past it: they were online, or came online within the grace period). Title: the
sender's name for a DM, the group's name for a group (the body then starts with the sender's name).
Body: the text, cut to ``PREVIEW_CHARS``, or a neutral "New message" if the member hides texts; a message
with attachments and no text says "Photo" (images only) or "File" (ADR 0024).
"""

from __future__ import annotations

from dataclasses import dataclass

from parley.store import PushPrefs, PushToken, StoredMessage

PREVIEW_CHARS = 200
HIDDEN = "New message"
PHOTO, FILE = "Photo", "File"


@dataclass(frozen=True, slots=True)
class Notice:
    message_id: int
    conv: str
    user: str
    device: str
    token: str
    platform: str
    title: str
    body: str

    @property
    def key(self) -> str:
        """At most one push per (message, device): the claim key."""
        return f"{self.message_id}.{self.device}"


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def what_it_says(message: StoredMessage) -> str:
    """The text, or for attachments without text "Photo" (every one an image) or "File"."""
    if message.body.strip() or not message.attachments:
        return message.body
    return PHOTO if all(a.type.startswith("image/") for a in message.attachments) else FILE


def notices(
    message: StoredMessage, members: tuple[str, ...], *, sender_name: str, group_name: str | None,
    tokens: list[PushToken], prefs: dict[str, PushPrefs], delivered: dict[str, int],
) -> list[Notice]:
    title = group_name if group_name is not None else sender_name
    said = what_it_says(message)
    text = f"{sender_name}: {said}" if group_name is not None else said
    out = []
    seen: set[str] = set()
    for token in tokens:
        user = token.user
        if token.token in seen:  # the same app install twice: one push
            continue
        p = prefs.get(user, PushPrefs())
        if user == message.sender or user not in members or p.muted or message.conv in p.muted_convs:
            continue
        if delivered.get(user, 0) >= message.id:
            continue
        body = HIDDEN if p.hide_text else preview(text)
        seen.add(token.token)
        out.append(Notice(message.id, message.conv, user, token.device, token.token, token.platform, title, body))
    return out
