"""Deleting attachments: the sweep the API runs every ``attachment_sweep_s`` (an upload no message claimed
within ``attachment_unreferenced_s``; one released ``attachment_grace_s`` ago), and ``release``, the hook
a message's deletion calls with the message's attachment ids (ADR 0024).

The bytes go first, the record last: a sweep interrupted half-way leaves a record, found and finished by the
next one (deleting bytes twice is harmless). Several APIs may sweep at once: every step is idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from parley.attachments.blobs import Blobs
from parley.attachments.catalog import Catalog
from parley.attachments.records import AttachmentMeta, due, released
from parley.errors import Conflict
from parley.settings import Settings

log = logging.getLogger("parley.attachments")


def thumb_name(id: str) -> str:
    return f"{id}.thumb"


async def remove(catalog: Catalog, blobs: Blobs, meta: AttachmentMeta) -> None:
    """An attachment gone: its bytes, its thumbnail, then its record."""
    if meta.thumb:
        await blobs.delete(thumb_name(meta.id))
    await blobs.delete(meta.id)
    await catalog.delete(meta.id)


async def sweep(catalog: Catalog, blobs: Blobs, settings: Settings, now_ms: int) -> int:
    """Delete every attachment that is due; how many were."""
    gone = 0
    async for id in catalog.ids():
        found = await catalog.get(id)
        if found is None:
            continue
        meta = found[0]
        if due(meta, now_ms, unreferenced_s=settings.attachment_unreferenced_s, grace_s=settings.attachment_grace_s):
            await remove(catalog, blobs, meta)
            gone += 1
    if gone:
        log.info("attachments: %d deleted", gone)
    return gone


async def release(catalog: Catalog, ids: Iterable[str], now_ms: int) -> None:
    """The message carrying ``ids`` was deleted: each is deleted by the sweep ``attachment_grace_s`` from now."""
    for id in ids:
        for _ in range(3):
            found = await catalog.get(id)
            if found is None:
                break
            try:
                await catalog.replace(released(found[0], now_ms), found[1])
                break
            except Conflict:
                continue
