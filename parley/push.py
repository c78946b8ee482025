"""Which devices get a push for a message, and what it says. Pure: the caller gathers the facts.

A push goes to each device with a token of each member but the sender, unless the member muted all
pushes or this conversation, or one of their devices already has the message (their delivered
mark is at or past it: they were online, or came online within the grace period). Title: the
sender's name for a DM, the group's name for a group (the body then starts with the sender's name).
Body: the text, cut to ``PREVIEW_CHARS``, or a neutral "New message" if the member hides texts.
"""

from __future__ import annotations

from dataclasses import dataclass

from parley.store import PushPrefs, PushToken, StoredMessage

PREVIEW_CHARS = 200
HIDDEN = "New message"


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


def notices(
    message: StoredMessage, members: tuple[str, ...], *, sender_name: str, group_name: str | None,
    tokens: list[PushToken], prefs: dict[str, PushPrefs], delivered: dict[str, int],
) -> list[Notice]:
    title = group_name if group_name is not None else sender_name
    text = f"{sender_name}: {message.body}" if group_name is not None else message.body
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
