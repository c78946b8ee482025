"""Attachments over HTTP (ADR 0024): upload into a conversation, download and thumbnail for its members, and
the sweep that deletes what no message kept.

Invariants:
- Only members of the conversation upload or read (``member_conversation``: 403 ``not_member``); an
  attachment of another conversation is ``unknown_attachment`` here, as an id nobody has.
- The type is sniffed from the bytes (``parley.attachments.sniff``), never taken from the client; a client
  that presents as an image what is none is refused (415 ``disguised_file``). An image is re-encoded
  without its metadata and thumbnailed (``parley.attachments.images``) before anything is stored.
- Nothing is stored half-way: the body is read (at most ``attachment_max_bytes``, else 413 before anything is
  stored) and checked first; the thumbnail, the bytes and then the record are written, and a failure deletes
  what was written.
- Served with its sniffed type and ``nosniff``; only images ``inline``, everything else as a download
  (``Content-Disposition: attachment``), under a CSP that runs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace

from aiohttp import web
from parley.api.conversations import member_conversation
from parley.api.http import SETTINGS, authed, json, now_ms

from parley.attachments import images
from parley.attachments.blobs import Blobs
from parley.attachments.catalog import Catalog
from parley.attachments.records import AttachmentMeta, content_disposition, safe_name
from parley.attachments.sniff import disguised, is_image, sniff
from parley.attachments.sweep import sweep, thumb_name
from parley.auth import Claims
from parley.errors import BadRequest, NotFound, TooLarge, UnsupportedMedia
from parley.ids import is_valid_id, new_id
from parley.settings import Settings
from parley.tasks import cancel_and_wait

log = logging.getLogger("parley.api")
CATALOG: web.AppKey[Catalog] = web.AppKey("attachment_catalog", Catalog)
BLOBS: web.AppKey[Blobs] = web.AppKey("attachment_blobs")
# images decoded at once per API process: each may take max_pixels × 4 bytes while it is cleaned
DECODING: web.AppKey[asyncio.Semaphore] = web.AppKey("attachment_decoding", asyncio.Semaphore)
MAX_NAME_PARAM = 200  # characters of ``name`` (parley.attachments.records.MAX_NAME_CHARS; a URL line stays < 8 KiB)
SANDBOX = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


async def upload(request: web.Request) -> web.Response:
    claims = await authed(request)
    conv = await member_conversation(request, claims)
    settings = request.app[SETTINGS]
    name = safe_name(_name(request))
    data = await _body(request, settings.attachment_max_bytes)
    kind = sniff(data)
    if disguised(data, kind, request.headers.get("Content-Type"), name):
        raise UnsupportedMedia("the file is presented as an image but its bytes are not one", code="disguised_file",
                               type=kind)
    meta = AttachmentMeta(new_id(), conv.id, claims.user, kind, name, len(data), now_ms())
    thumb = b""
    if is_image(kind):
        async with request.app[DECODING]:
            done = await asyncio.to_thread(images.process, data, kind, max_pixels=settings.attachment_max_pixels,
                                           thumb_px=settings.attachment_thumb_px)
        data, thumb = done.data, done.thumb
        meta = replace(meta, size=len(data), width=done.width, height=done.height, thumb=True)
    await _store(request.app[CATALOG], request.app[BLOBS], meta, data, thumb)
    return json({"attachment": meta.api_json()}, status=201)


def _name(request: web.Request) -> str | None:
    given = request.query.get("name")
    if given is not None and len(given) > MAX_NAME_PARAM:
        raise BadRequest(f"name: at most {MAX_NAME_PARAM} characters", code="bad_field", field="name")
    return given


async def _body(request: web.Request, limit: int) -> bytes:
    """The raw body, refused (413 ``attachment_too_large``) as soon as it is past ``limit``."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"an attachment is at most {limit} bytes", code="attachment_too_large", limit=limit)


async def _store(catalog: Catalog, blobs: Blobs, meta: AttachmentMeta, data: bytes, thumb: bytes) -> None:
    try:
        if thumb:
            await blobs.put(thumb_name(meta.id), thumb)
        await blobs.put(meta.id, data)
        await catalog.create(meta)
    except BaseException:
        await asyncio.shield(_undo(blobs, meta))
        raise


async def _undo(blobs: Blobs, meta: AttachmentMeta) -> None:
    try:
        await blobs.delete(thumb_name(meta.id))
        await blobs.delete(meta.id)
    except Exception:  # the sweep cannot find bytes without a record: say so
        log.exception("attachment %s: a failed upload's bytes could not be deleted", meta.id)


async def _attachment(request: web.Request, claims: Claims) -> AttachmentMeta:
    """The attachment of the URL, in the URL's conversation, which the caller is a member of."""
    conv = await member_conversation(request, claims)
    id = request.match_info["attachment"]
    if not is_valid_id(id):
        raise BadRequest("attachment: not an attachment id", code="bad_field", field="attachment")
    found = await request.app[CATALOG].get(id)
    if found is None or found[0].conv != conv.id or found[0].released_at:
        raise NotFound("no such attachment in this conversation", code="unknown_attachment")
    return found[0]


async def download(request: web.Request) -> web.StreamResponse:
    meta = await _attachment(request, await authed(request))
    data = await request.app[BLOBS].get(meta.id)
    if data is None:
        raise NotFound("no such attachment in this conversation", code="unknown_attachment")
    inline = is_image(meta.type)
    content_type = "text/plain; charset=utf-8" if meta.type == "text/plain" else meta.type
    return _file(data, content_type, content_disposition(meta, inline=inline))


async def thumbnail(request: web.Request) -> web.StreamResponse:
    meta = await _attachment(request, await authed(request))
    data = await request.app[BLOBS].get(thumb_name(meta.id)) if meta.thumb else None
    if data is None:
        raise NotFound("this attachment has no thumbnail", code="unknown_attachment")
    return _file(data, images.THUMB_TYPE, content_disposition(meta, inline=True))


def _file(data: bytes, content_type: str, disposition: str) -> web.Response:
    headers = {"Content-Type": content_type, "Content-Disposition": disposition, "Content-Security-Policy": SANDBOX,
               "Cache-Control": "private, max-age=86400"}
    return web.Response(body=data, headers=headers)


async def sweep_forever(catalog: Catalog, blobs: Blobs, settings: Settings) -> None:
    """The API's part in deleting attachments: a sweep every ``attachment_sweep_s`` (ADR 0024)."""
    while True:
        await asyncio.sleep(settings.attachment_sweep_s)
        try:
            await sweep(catalog, blobs, settings, int(time.time() * 1000))
        except Exception:  # the bus away for a moment: the next sweep tries again
            log.warning("attachments: sweep failed", exc_info=True)


async def sweeping(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.get_running_loop().create_task(sweep_forever(app[CATALOG], app[BLOBS], app[SETTINGS]))
    yield
    await cancel_and_wait(task)


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_post("/v1/conversations/{conv}/attachments", upload)
    r.add_get("/v1/conversations/{conv}/attachments/{attachment}", download)
    r.add_get("/v1/conversations/{conv}/attachments/{attachment}/thumb", thumbnail)

