"""Live rooms' server frames (docs/protocol.md §18), built as dicts like ``parley.protocol``'s and encoded
once per room and node with ``protocol.frame_bytes``."""

from __future__ import annotations

from typing import Any


def live_joined_frame(*, meta: dict[str, Any], viewers: int, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The answer to ``live_join``: the room's meta, its viewers across the cluster (as this node last heard),
    its newest messages (oldest first, tombstones as ``deleted``); ``live_msg`` frames follow."""
    return {"type": "live_joined", "room": meta["id"], "meta": meta, "viewers": viewers, "messages": messages}


def live_sent_frame(*, room: str, cid: str, id: int, duplicate: bool, masked: bool) -> dict[str, Any]:
    return {"type": "live_sent", "room": room, "cid": cid, "id": id, "duplicate": duplicate, "masked": masked}


def live_viewers_frame(room: str, viewers: int) -> dict[str, Any]:
    """The room's viewers across the cluster changed (at most about once a second; docs/adr/0021)."""
    return {"type": "live_viewers", "room": room, "viewers": viewers}


def live_left_frame(room: str, reason: str) -> dict[str, Any]:
    """You are out of the room: ``left`` (you asked), ``slow`` (dropped: you read too slowly; join again)."""
    return {"type": "live_dropped" if reason == "slow" else "live_left", "room": room, "reason": reason}
