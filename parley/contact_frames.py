"""Server frames about the people a user knows (docs/protocol.md §5): ``friend`` (a friend request, its
acceptance, a declined or withdrawn request, an unfriend) and ``user`` (someone's new name or bio). Both come
from the API over a user's control subject (``parley.wire`` ``FriendChange`` and ``ProfileChange``); the node
sends them on as they are, and nothing of them is stored or replayed.
"""

from __future__ import annotations

from typing import Any


def friend_frame(user: str, state: str) -> dict[str, Any]:
    """Your relation with ``user`` changed: ``state`` is incoming (they asked you), outgoing (you asked
    them), friends, or none (declined, withdrawn, unfriended or blocked)."""
    return {"type": "friend", "user": user, "state": state}


def user_frame(user: dict[str, Any]) -> dict[str, Any]:
    """Someone you know (a friend, a member of a conversation of yours, yourself) changed their profile:
    ``user`` is ``{"id", "display_name", "bio"}``."""
    return {"type": "user", "user": user}
