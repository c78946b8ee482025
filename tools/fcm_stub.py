"""A local stand-in for FCM's HTTP API, so tests run the real firebase-admin code path.

It speaks what firebase-admin talks to:
- the OAuth2 token endpoint of a service account (``token_uri`` in the key file): google-auth posts a
  signed JWT assertion and gets ``{"access_token", "expires_in", "token_type"}``;
- FCM HTTP v1 ``POST /v1/projects/{project}/messages:send`` with ``Authorization: Bearer <token>``:
  ``{"name": "projects/{p}/messages/<id>"}`` on success, FCM's error JSON otherwise, which firebase-admin
  (7.7) turns into these exceptions (``SendResponse.exception`` of ``send_each_async``):

  ====================================  ============================================================
  stub answer                           firebase-admin raises
  ====================================  ============================================================
  404 NOT_FOUND, errorCode UNREGISTERED ``messaging.UnregisteredError`` (a ``NotFoundError``)
  400 INVALID_ARGUMENT                  ``exceptions.InvalidArgumentError``
  503 UNAVAILABLE                       ``exceptions.UnavailableError`` (only after the library's retries)
  500 INTERNAL                          ``exceptions.InternalError`` (only after the library's retries)
  429 RESOURCE_EXHAUSTED/QUOTA_EXCEEDED ``messaging.QuotaExceededError`` (a ``ResourceExhaustedError``)
  401 UNAUTHENTICATED (unknown Bearer)  ``exceptions.UnauthenticatedError`` (after 2 token refreshes)
  ====================================  ============================================================

Retries inside firebase-admin (``_http_client.HttpxAsyncClient`` mounts ``_retry.HttpxRetryTransport`` with
``HttpxRetry(max_retries=4, status_forcelist=[500, 503], backoff_factor=0.5)``): a 500 or 503 is retried up to
4 times, so 5 HTTP attempts in all, sleeping 0, 1, 2 and 4 s between them (the first retry is immediate; the
``Retry-After`` header is ignored); after that the last 5xx becomes the exception. So ``fail_next(n, 503)``
with n <= 4 still ends in a success the caller never sees fail. 429 (and 400/404) is not retried. A 401
makes the auth flow fetch a new token and resend, at most twice.

Gotcha: google-auth fetches and refreshes the token with the *synchronous* ``requests`` library, inside the
event loop that calls ``send_each_async``. A stub served on that same loop can never answer, and the send
hangs (until google-auth's 120 s timeout). When firebase-admin runs in the test process, serve the stub from
its own thread: ``stub.start_in_thread()`` / ``stub.stop_in_thread()``. (A Parley pusher in another process
can use ``await stub.start()``.)

    stub = FcmStub(); await stub.start()          # 127.0.0.1, a free port
    key = service_account_file(tmp, stub.token_uri)
    # run Parley with PARLEY_FCM_CREDENTIALS=key PARLEY_FCM_ENDPOINT=stub.url
    stub.delivered(token)                         # the pushes that token got

In this process: ``point_firebase_at(stub.url)`` before the app's first messaging call, then
``firebase_admin.initialize_app(credentials.Certificate(key), name=...)``.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import itertools
import json
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ERRORS = {
    400: ("INVALID_ARGUMENT", "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token"),
    401: ("UNAUTHENTICATED", None, "Request had invalid authentication credentials. Expected OAuth 2 access token, "
          "login cookie or other valid authentication credential."),
    404: ("NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded for quota metric"),
    500: ("INTERNAL", "INTERNAL", "Internal error encountered."),
    503: ("UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."),
}


def fcm_error(status: int) -> web.Response:
    code, fcm_code, message = ERRORS[status]
    error: dict[str, Any] = {"code": status, "message": message, "status": code}
    if fcm_code:  # Google's front end rejects a bad Bearer token before FCM: no FcmError detail then
        error["details"] = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}]
    return web.json_response({"error": error}, status=status)


def target(message: dict[str, Any]) -> str:
    """The device a message is for: ``token``, or ``fid`` (firebase-admin 7.7 deprecates ``Message.token``)."""
    return str(message.get("token") or message.get("fid") or "")


def point_firebase_at(url: str) -> None:
    """Make firebase-admin send FCM requests to ``url`` (the stub's, or any FCM-compatible endpoint).

    The library formats ``_MessagingService.FCM_URL`` (a class attribute, so for every app in the process) when
    an app's messaging service is created, which is on that app's first ``messaging`` call, not at
    ``initialize_app``. So call this before the app's first send; an app that has already sent keeps its URL.
    """
    from firebase_admin import messaging

    messaging._MessagingService.FCM_URL = url.rstrip("/") + "/v1/projects/{0}/messages:send"


class FcmStub:
    def __init__(self) -> None:
        self.sends: list[dict[str, Any]] = []
        self.unregistered: set[str] = set()
        self.invalid: set[str] = set()
        self.token_requests = 0
        self._issued: set[str] = set()
        self._failures: list[int] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._thread: tuple[threading.Thread, asyncio.AbstractEventLoop] | None = None
        self.url = ""

    @property
    def token_uri(self) -> str:
        return self.url + "/token"

    def fail_next(self, n: int, status: int = 503) -> None:
        """The next ``n`` send requests, whatever their token, fail with ``status`` (503, 500 or 429).

        Each HTTP attempt counts, including firebase-admin's own retries of 500/503 (up to 4).
        """
        self._failures += [status] * n

    def delivered(self, token: str | None = None) -> list[dict[str, Any]]:
        """The successful sends, optionally only those to ``token`` (a ``token`` or ``fid`` target)."""
        return [s for s in self.sends if s["status"] == 200 and (token is None or target(s["message"]) == token)]

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post("/v1/projects/{project}/messages:send", self._send)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{bound}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def start_in_thread(self, port: int = 0) -> None:
        """Serve from a thread with an event loop of its own (see the module's note on google-auth)."""
        loop = asyncio.new_event_loop()
        started: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                loop.run_until_complete(self.start(port))
            except BaseException as err:
                started.set_exception(err)
                loop.close()
                return
            started.set_result(None)
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        thread = threading.Thread(target=run, name="fcm-stub", daemon=True)
        thread.start()
        started.result(timeout=10)
        self._thread = (thread, loop)

    def stop_in_thread(self) -> None:
        if self._thread is not None:
            thread, loop = self._thread
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            self._thread = None

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or not form.get("assertion"):
            return web.json_response({"error": "invalid_grant"}, status=400)
        self.token_requests += 1
        token = "ya29.stub-" + secrets.token_urlsafe(24)
        self._issued.add(token)
        return web.json_response({"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        message = body.get("message", {})
        auth = request.headers.get("Authorization", "")
        record = {"project": request.match_info["project"], "message": message, "authorization": auth,
                  "validate_only": body.get("validate_only", False), "at": time.time()}
        status = self._status(auth, target(message))
        record["status"] = status
        self.sends.append(record)
        if status != 200:
            return fcm_error(status)
        return web.json_response({"name": f"projects/{record['project']}/messages/{next(self._ids)}"})

    def _status(self, auth: str, token: str) -> int:
        if not auth.startswith("Bearer ") or auth[7:] not in self._issued:
            return 401
        if self._failures:
            return self._failures.pop(0)
        if token in self.unregistered:
            return 404
        if token in self.invalid:
            return 400
        return 200


def service_account_file(dir: Path, token_uri: str, project_id: str = "parley-test") -> Path:
    """A service-account key (a fresh RSA key) whose token_uri is the stub."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = Path(dir) / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": project_id, "private_key_id": secrets.token_hex(20),
        "private_key": pem, "client_email": f"parley@{project_id}.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": token_uri,
    }))
    return path


async def _serve(port: int, key_dir: Path) -> None:
    stub = FcmStub()
    await stub.start(port)
    key_dir.mkdir(parents=True, exist_ok=True)  # a fresh clone has no .parley yet
    key = service_account_file(key_dir, stub.token_uri)
    print(f"FCM stand-in on {stub.url}\n  PARLEY_FCM_CREDENTIALS={key} PARLEY_FCM_ENDPOINT={stub.url}", flush=True)
    seen = 0
    while True:
        await asyncio.sleep(0.5)
        for s in stub.sends[seen:]:
            note, token = s["message"].get("notification", {}), target(s["message"])
            print(f"push {s['status']} → {token[:24]}…  {note.get('title')}: {note.get('body')}", flush=True)
        seen = len(stub.sends)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parley.tools.fcm_stub",
                                     description="A local FCM stand-in that prints every push it gets")
    parser.add_argument("--port", type=int, default=8079, help="where it listens (0: a free port)")
    parser.add_argument("--key-dir", type=Path, default=None,
                        help="where to write service-account.json (created if missing; default: the run dir, "
                             "PARLEY_RUN_DIR or .parley)")
    args = parser.parse_args(argv)
    key_dir = args.key_dir or Path(os.environ.get("PARLEY_RUN_DIR") or ".parley")
    # Ctrl-C and SIGTERM stop it cleanly, even when started from a background job of a script (which
    # inherits SIGINT ignored, so Python would install no KeyboardInterrupt for it)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        asyncio.run(_serve(args.port, key_dir))
    except OSError as err:  # the port taken, the folder not writable: one line, not a traceback
        print(f"fcm_stub: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
