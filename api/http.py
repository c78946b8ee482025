"""What every API handler module shares: the app's keys, JSON in and out, the caller's claims, and the
three middlewares.

Invariants: every response says ``X-Content-Type-Options: nosniff`` (``nosniff``); every request but
health and metrics is charged to its address first (``budgeted``, ``api/limits.py``); errors become
``{"code", "message", ...}`` JSON with their HTTP status here and nowhere else (``errors``); a handler
raises a ``ParleyError`` and never builds an error response itself. Request metrics are labelled by
route pattern, never by the path (it holds ids). This module imports no handler module, so every
handler module can import it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import orjson
from aiohttp import web
from nats.js.kv import KeyValue
from parley.api.limits import EXEMPT, AuthLimits, PasswordHashing, RequestBudget

from parley.auth import Claims, live_session, verify_token
from parley.bus import BusClient
from parley.bus.outage import as_unavailable
from parley.errors import BadRequest, ParleyError, Unauthorized
from parley.metrics import ApiMetrics
from parley.ratelimit import retry_after_header
from parley.settings import Settings
from parley.store import Session, Store

log = logging.getLogger("parley.api")

T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STORE: web.AppKey[Store] = web.AppKey("store", Store)
SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)
NATS: web.AppKey[BusClient] = web.AppKey("nats", BusClient)
HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("http", aiohttp.ClientSession)
HASHING: web.AppKey[PasswordHashing] = web.AppKey("hashing", PasswordHashing)
LIMITS: web.AppKey[AuthLimits] = web.AppKey("limits", AuthLimits)
BUDGET: web.AppKey[RequestBudget] = web.AppKey("budget", RequestBudget)
PRESENCE: web.AppKey[tuple[KeyValue, KeyValue]] = web.AppKey("presence")
METRICS: web.AppKey[ApiMetrics] = web.AppKey("metrics", ApiMetrics)


def now_ms() -> int:
    return int(time.time() * 1000)


def json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def body_of(request: web.Request) -> dict[str, Any]:
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise BadRequest("request body is not valid JSON", code="bad_json") from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object", code="bad_json")
    return data


async def authed(request: web.Request) -> Claims:
    """The caller's claims: a valid token of a live session (401 otherwise)."""
    return (await authed_session(request))[0]


async def authed_session(request: web.Request) -> tuple[Claims, Session]:
    """The caller's claims and session: not logged out (``session_revoked``), not past its lifetime
    (``session_expired``)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthorized("send 'Authorization: Bearer <token>'", code="bad_token")
    settings, now = request.app[SETTINGS], int(time.time())
    claims = verify_token(settings.secret.reveal(), header[7:].strip(), now=now)
    return claims, live_session(await request.app[STORE].get_session(claims.session), now=now)


async def nosniff(_: web.Request, response: web.StreamResponse) -> None:
    """Every answer, errors included: a browser never reads our JSON as anything but JSON."""
    response.headers["X-Content-Type-Options"] = "nosniff"


@web.middleware
async def measured(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Requests by route pattern (never the path itself: it holds ids) and status."""
    began = time.perf_counter()
    response = await handler(request)
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    metrics = request.app[METRICS]
    metrics.requests.labels(route, request.method, str(response.status)).inc()
    metrics.seconds.labels(route).observe(time.perf_counter() - began)
    return response


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ParleyError as err:
        if not err.peer_fault:
            log.warning("%s %s: %s", request.method, request.path, err.message)
        response = json(err.as_dict(), status=err.http_status)
        if "retry_after_ms" in err.details:
            response.headers["Retry-After"] = retry_after_header(err.details["retry_after_ms"] / 1000)
        return response
    except web.HTTPException as exc:
        if exc.status == 404:
            return json({"code": "not_found", "message": "no such route"}, status=404)
        if exc.status == 413:
            return json({"code": "too_large", "message": "request body is too large"}, status=413)
        if exc.status == 405:  # with aiohttp's Allow header: RFC 9110 requires it
            response = json({"code": "method_not_allowed", "message": f"{request.method} is not allowed here"}, 405)
            response.headers["Allow"] = exc.headers.get("Allow", "")
            return response
        raise
    except Exception as err:
        fault = as_unavailable(err, f"{request.method} {request.path}")
        if fault is not None:  # an election or a reconnect: 503, retryable; not a bug, so no traceback
            log.warning("%s %s: %s", request.method, request.path, fault.message)
            return json(fault.as_dict(), status=fault.http_status)
        log.exception("%s %s failed", request.method, request.path)
        return json({"code": "internal", "message": "internal error"}, status=500)


@web.middleware
async def budgeted(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request but health and metrics takes from its address's budget (429 ``rate_limited``)."""
    if request.path not in EXEMPT:
        request.app[BUDGET].take(request)
    return await handler(request)
