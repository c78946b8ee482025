"""The FCM stand-in, driven by the real firebase-admin (7.7): OAuth token, FCM v1 sends, errors and retries.

Nothing of firebase-admin is mocked; only its FCM URL is pointed at the stub (``point_firebase_at``). The stub
serves from a thread of its own: google-auth fetches the token synchronously inside this test's event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import firebase_admin
import pytest
from firebase_admin import credentials, exceptions, messaging
from parley.tools.fcm_stub import FcmStub, point_firebase_at, service_account_file, target

_names = itertools.count()


@pytest.fixture(scope="module")
def fcm() -> Iterator[FcmStub]:
    original = messaging._MessagingService.FCM_URL
    stub = FcmStub()
    stub.start_in_thread()
    point_firebase_at(stub.url)
    yield stub
    messaging._MessagingService.FCM_URL = original
    stub.stop_in_thread()


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory, fcm: FcmStub) -> Path:
    return service_account_file(tmp_path_factory.mktemp("fcm-key"), fcm.token_uri)


async def close_app(app: firebase_admin.App) -> None:
    """``firebase_admin.delete_app`` closes the messaging httpx client with ``asyncio.run()``: inside a running
    loop that raises RuntimeError (and warns "coroutine 'HttpxAsyncClient.aclose' was never awaited"), and from
    another thread it would close this loop's sockets from a foreign loop. So close the client here first, then
    let ``delete_app`` run (its second ``aclose`` is a no-op) where no loop is running."""
    await messaging._get_messaging_service(app)._async_client.aclose()
    await asyncio.to_thread(firebase_admin.delete_app, app)


def new_app(key: Path) -> firebase_admin.App:
    return firebase_admin.initialize_app(credentials.Certificate(str(key)), name=f"fcm-stub-test-{next(_names)}")


@pytest.fixture
async def app(key_file: Path) -> AsyncIterator[firebase_admin.App]:
    a = new_app(key_file)
    yield a
    await close_app(a)


def token_message(token: str, title: str = "alice", body: str = "hello") -> messaging.Message:
    """What the pusher builds. ``Message(token=...)`` warns in firebase-admin 7.7 (``fid`` replaces it)."""
    with pytest.warns(DeprecationWarning, match="Message.token is deprecated"):
        return messaging.Message(token=token, notification=messaging.Notification(title=title, body=body),
                                 data={"conv": "c1", "message_id": "42"},
                                 android=messaging.AndroidConfig(collapse_key="c1", priority="high"))


async def send(app: firebase_admin.App, *messages: messaging.Message) -> list[messaging.SendResponse]:
    result = await messaging.send_each_async(list(messages), dry_run=False, app=app)
    return result.responses


def statuses(stub: FcmStub, token: str) -> list[int]:
    return [s["status"] for s in stub.sends if target(s["message"]) == token]


async def test_good_unregistered_and_invalid_tokens(fcm: FcmStub, app: firebase_admin.App) -> None:
    fcm.unregistered.add("tok-gone")
    fcm.invalid.add("tok-bad")
    tokens_before = fcm.token_requests
    good, gone, bad = await send(app, token_message("tok-good"), token_message("tok-gone"), token_message("tok-bad"))

    assert good.success and good.exception is None
    assert good.message_id.startswith("projects/parley-test/messages/")
    assert not gone.success and isinstance(gone.exception, messaging.UnregisteredError)
    assert gone.exception.code == exceptions.NOT_FOUND
    assert not bad.success and type(bad.exception) is exceptions.InvalidArgumentError

    assert fcm.token_requests == tokens_before + 1  # one OAuth token for the three sends
    [sent] = fcm.delivered("tok-good")
    assert sent["project"] == "parley-test" and sent["validate_only"] is False
    assert sent["authorization"].startswith("Bearer ya29.stub-")
    assert sent["authorization"][len("Bearer "):] in fcm._issued
    assert sent["message"] == {"token": "tok-good", "notification": {"title": "alice", "body": "hello"},
                               "data": {"conv": "c1", "message_id": "42"},
                               "android": {"collapse_key": "c1", "priority": "high"}}
    assert statuses(fcm, "tok-gone") == [404] and statuses(fcm, "tok-bad") == [400]


async def test_library_retries_500_and_503_itself_but_not_429(fcm: FcmStub, app: firebase_admin.App) -> None:
    fcm.fail_next(1, 503)
    [r] = await send(app, token_message("tok-503"))
    assert r.success  # firebase-admin retried at once; the caller never sees the 503
    assert statuses(fcm, "tok-503") == [503, 200]

    fcm.fail_next(1, 500)
    [r] = await send(app, messaging.Message(fid="fid-500", data={"k": "v"}))  # the non-deprecated target
    assert r.success and statuses(fcm, "fid-500") == [500, 200]
    assert len(fcm.delivered("fid-500")) == 1

    fcm.fail_next(1, 429)
    [r] = await send(app, token_message("tok-429"))
    assert isinstance(r.exception, messaging.QuotaExceededError)
    assert isinstance(r.exception, exceptions.ResourceExhaustedError)
    assert statuses(fcm, "tok-429") == [429]  # not retried: left to the caller


async def test_503_surfaces_after_four_library_retries(fcm: FcmStub, app: firebase_admin.App) -> None:
    fcm.fail_next(5, 503)
    started = time.monotonic()
    [r] = await send(app, token_message("tok-down"))
    elapsed = time.monotonic() - started
    assert type(r.exception) is exceptions.UnavailableError
    assert statuses(fcm, "tok-down") == [503] * 5
    assert 6.5 < elapsed < 20  # backoff 0 + 1 + 2 + 4 s


async def test_bearer_token_the_stub_did_not_issue(fcm: FcmStub, tmp_path: Path) -> None:
    """A key whose token endpoint is another server: FCM answers 401, the library refreshes twice, then gives up."""
    other = FcmStub()
    other.start_in_thread()
    try:
        a = new_app(service_account_file(tmp_path, other.token_uri))
        try:
            [r] = await send(a, token_message("tok-401"))
        finally:
            await close_app(a)
    finally:
        other.stop_in_thread()
    assert type(r.exception) is exceptions.UnauthenticatedError
    assert other.token_requests == 3
    assert statuses(fcm, "tok-401") == [401, 401, 401]


def test_the_readme_demo_command_starts_on_a_fresh_clone(tmp_path: Path) -> None:
    """`python -m parley.tools.fcm_stub --key-dir .parley` before .parley exists (a fresh clone) writes the key
    there and serves, instead of a traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    proc = subprocess.Popen([sys.executable, "-m", "parley.tools.fcm_stub", "--port", "0", "--key-dir", ".parley"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        head = proc.stdout.readline()
        variables = proc.stdout.readline().split()
        assert head.startswith("FCM stand-in on http://127.0.0.1:"), head + (proc.stderr.read() if proc.stderr else "")
        key, endpoint = (v.split("=", 1)[1] for v in variables)
        assert Path(key) == Path(".parley/service-account.json")
        assert json.loads((tmp_path / key).read_text())["token_uri"] == endpoint + "/token"
        try:  # it serves: a token request without an assertion is refused the way Google refuses it
            urllib.request.urlopen(endpoint + "/token", data=b"grant_type=x", timeout=5)
            raise AssertionError("a bad grant was accepted")
        except urllib.error.HTTPError as err:
            assert err.code == 400
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()  # closes the pipes
            raise
    assert proc.returncode == 0 and "Traceback" not in err, err
