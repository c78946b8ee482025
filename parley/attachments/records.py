"""An attachment's record and the rules on it. Pure: no I/O, ``now`` passed in.

An upload is bound to the conversation it was uploaded to and to its uploader. A message may carry it when
it is sent by that uploader on that conversation (``refusal``), and claims it for good: the record keeps the
claim (the message's dedup id), so a resend of the same message passes and another message is refused
(``attachment_in_use``; forward a file by uploading it again). The sweep deletes (``due``) an upload no
message claimed within ``unreferenced_s``, and one released (its message deleted: ``released``) after
``grace_s``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import quote

import orjson

from parley.errors import Conflict, Forbidden, NotFound, ParleyError
from parley.ids import is_valid_id
from parley.store.records import AttachmentRef

MAX_ATTACHMENTS = 10  # per message


def attachment_ids(ids: object) -> tuple[str, ...]:
    """A ``send``'s ``attachments`` (absent: none), or ``ValueError`` saying what is wrong with the list."""
    if ids is None:
        return ()
    if not isinstance(ids, list) or len(ids) > MAX_ATTACHMENTS or not all(is_valid_id(i) for i in ids):
        raise ValueError(f"a list of at most {MAX_ATTACHMENTS} attachment ids")
    if len(set(ids)) != len(ids):
        raise ValueError("an attachment is listed twice")
    return tuple(ids)

MAX_NAME_CHARS = 200
DEFAULT_NAME = "file"


@dataclass(frozen=True, slots=True)
class AttachmentMeta:
    id: str
    conv: str
    uploader: str
    type: str  # sniffed (parley.attachments.sniff)
    name: str  # the client's file name, made safe (``safe_name``)
    size: int  # bytes of what is served (an image: re-encoded)
    created_at: int  # unix ms
    width: int = 0
    height: int = 0
    thumb: bool = False  # an image: a thumbnail is stored beside it
    claim: str = ""  # the dedup id of the message that carries it ("": none yet)
    released_at: int = 0  # unix ms its message was deleted (0: not)

    def ref(self) -> AttachmentRef:
        return AttachmentRef(self.id, self.type, self.name, self.size, self.width, self.height, self.thumb)

    def encode(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def decode(cls, data: bytes) -> AttachmentMeta:
        d: dict[str, Any] = orjson.loads(data)
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def api_json(self) -> dict[str, Any]:
        """The upload's answer and ``GET …/meta``: the reference plus who and when."""
        return self.ref().as_json() | {"conv": self.conv, "uploader": self.uploader, "created_at": self.created_at}


def refusal(meta: AttachmentMeta | None, *, conv: str, sender: str, claim: str) -> ParleyError | None:
    """Why a message by ``sender`` on ``conv`` (dedup id ``claim``) may not carry this attachment, or None."""
    if meta is None or meta.released_at:
        return NotFound("no such attachment", code="unknown_attachment")
    if meta.conv != conv or meta.uploader != sender:
        return Forbidden("an attachment goes only with a message of its uploader in its conversation",
                         code="foreign_attachment", attachment=meta.id)
    if meta.claim and meta.claim != claim:
        return Conflict("that attachment belongs to another message; upload it again", code="attachment_in_use",
                        attachment=meta.id)
    return None


def claimed(meta: AttachmentMeta, claim: str) -> AttachmentMeta:
    return replace(meta, claim=claim)


def released(meta: AttachmentMeta, now_ms: int) -> AttachmentMeta:
    """Its message was deleted: the sweep deletes it ``grace_s`` later (the hook of ADR 0024)."""
    return meta if meta.released_at else replace(meta, released_at=now_ms)


def due(meta: AttachmentMeta, now_ms: int, *, unreferenced_s: float, grace_s: float) -> bool:
    """Whether the sweep deletes it now."""
    if meta.released_at:
        return now_ms >= meta.released_at + grace_s * 1000
    return not meta.claim and now_ms >= meta.created_at + unreferenced_s * 1000


def safe_name(name: str | None) -> str:
    """A file name to show and to offer in a download: its last path segment, no control or quote
    characters, at most ``MAX_NAME_CHARS``; ``file`` when nothing is left."""
    text = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    kept = "".join(c for c in unicodedata.normalize("NFC", text)
                   if unicodedata.category(c)[0] != "C" and c not in '"<>')
    kept = kept.strip(" .")[:MAX_NAME_CHARS]
    return kept or DEFAULT_NAME


def content_disposition(meta: AttachmentMeta, *, inline: bool) -> str:
    """``inline`` for the types a browser shows safely (images, served with nosniff), else ``attachment``;
    the name as RFC 6266's ``filename*`` (UTF-8) with an ASCII fallback."""
    ascii_name = meta.name.encode("ascii", "replace").decode().replace("?", "_")
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(meta.name, safe='')}"
