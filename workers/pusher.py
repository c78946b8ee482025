"""The pusher: a push notification through FCM for each message a recipient has not got on any device.

A durable JetStream consumer (``pusher``, from the messages stored after it was first created) on
each message stream hands out messages in order; any number of pushers share it, each batch going
to one of them (a batch it does not finish goes to another after ``ack_wait``). Each batch waits
until its newest message is ``push_grace_s`` old, giving online devices (and devices that come
online meanwhile) the time to take and ack it; then
``parley.push.notices`` decides who gets a push from the store's facts (members, tokens, mutes,
delivered marks), and firebase-admin sends them (``send_each_async``, up to 500 a call, each
message to one token, so one bad token never holds up the others). Edits, deletes and reactions (entries with a
``kind``, ADR 0025) are not pushed.

- At most one push per (message, device), across retries, redeliveries, restarts and pushers: a push is
  claimed in the ``pushed`` KV bucket (create-if-absent) before it is sent. A crash between the
  claim and the send loses that push rather than doubling it.
- FCM's "unregistered" / "invalid token" answers delete the token (only if the device still has
  that token). 5xx, quota and network failures are retried with exponential backoff, up to
  ``push_retries`` tries; the message is acked once its pushes are done or given up.
- Prometheus metrics on ``/metrics``: pushes by outcome, tokens removed, delay from message to push,
  the consumer's lag (refreshed every few seconds, like the archiver's) and what this pusher holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any, Protocol

import firebase_admin
from aiohttp import web
from firebase_admin import credentials, exceptions, messaging
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from parley.workers.archiver import decode_batch
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from parley import bus
from parley.bus import BusClient, buckets, ensure
from parley.errors import ParleyError, Unavailable
from parley.ids import UserId, dm_members, is_group
from parley.push import Notice, notices
from parley.runtime import StoreProbe, run_until_stopped, serve, serve_health
from parley.settings import Settings
from parley.shards import shard_of_stream, shard_subjects
from parley.store import Accounts, Conversations, Push, PushPrefs, Receipts, StoredMessage, open_store
from parley.tasks import cancel_and_wait

log = logging.getLogger("parley.pusher")
CONSUMER, PUSHED_BUCKET = "pusher", buckets.PUSHED
FCM_BATCH = 500
ACK_WAIT_S = 10.0  # a dead pusher's batch goes to another this soon (live ones keep theirs with in_progress)
REMOVE = (messaging.UnregisteredError, messaging.SenderIdMismatchError, exceptions.InvalidArgumentError)
RETRY = (exceptions.UnavailableError, messaging.QuotaExceededError, exceptions.InternalError,
         exceptions.UnknownError, exceptions.DeadlineExceededError)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.pushes = Counter("parley_pushes", "Push notifications by outcome", ["outcome"], registry=self.registry)
        self.removed = Counter("parley_push_tokens_removed", "Tokens FCM rejected, deleted", registry=self.registry)
        self.delay = Histogram("parley_push_delay_seconds", "From a message being sent to its push being sent",
                               buckets=(0.5, 1, 2, 3, 5, 10, 30, 60, 300), registry=self.registry)
        self.lag = Gauge("parley_pusher_lag", "Messages in the streams the pushers (all of them) have not yet "
                         "acked", registry=self.registry)
        self.held = Gauge("parley_pusher_in_flight", "Messages this pusher took and has not yet acked",
                          registry=self.registry)


def load_firebase(settings: Settings) -> firebase_admin.App:
    """firebase-admin with the configured service account, pointed at ``fcm_endpoint``."""
    path = settings.fcm_credentials
    if not path:
        raise ParleyError("push is off: set PARLEY_FCM_CREDENTIALS to a Firebase service-account file",
                          code="bad_setting")
    try:
        cred = credentials.Certificate(path)
    except (OSError, ValueError) as err:
        raise ParleyError(f"PARLEY_FCM_CREDENTIALS={path}: not a usable service-account file: {err}",
                          code="bad_setting") from err
    # The library builds each app's FCM URL from this when its messaging service is first made.
    messaging._MessagingService.FCM_URL = settings.fcm_endpoint.rstrip("/") + "/v1/projects/{0}/messages:send"
    return firebase_admin.initialize_app(cred, name=f"parley-pusher-{id(settings)}")


async def close_firebase(app: firebase_admin.App) -> None:
    """delete_app runs asyncio.run() to close the async HTTP client, which fails inside a running loop:
    close that client here first, then delete the app off the loop."""
    try:
        await messaging._get_messaging_service(app)._async_client.aclose()
    except Exception as err:  # closing on the way out: nothing to do about it
        log.info("closing the FCM client: %s", err)
    await asyncio.to_thread(firebase_admin.delete_app, app)


def fcm_message(n: Notice) -> messaging.Message:
    return messaging.Message(
        token=n.token,
        notification=messaging.Notification(title=n.title, body=n.body),
        data={"conv": n.conv, "message_id": str(n.message_id)},
        android=messaging.AndroidConfig(collapse_key=n.conv, priority="high"),
        apns=messaging.APNSConfig(headers={"apns-collapse-id": n.conv[:64]}),
    )


class PusherStore(Accounts, Conversations, Receipts, Push, Protocol):
    """What the pusher reads: a group's members, the recipients' tokens, preferences and receipts, the
    sender's name; and the one thing it writes: it deletes tokens FCM says are dead."""


class Pusher:
    def __init__(self, settings: Settings, store: PusherStore, app: firebase_admin.App, pushed: KeyValue,
                 metrics: Metrics) -> None:
        self._settings, self._store, self._app, self._pushed, self.metrics = settings, store, app, pushed, metrics

    async def handle(self, rows: list[StoredMessage]) -> None:
        if not rows:
            return
        wait = max(m.ts for m in rows) / 1000 + self._settings.push_grace_s - time.time()
        await asyncio.sleep(min(max(wait, 0.0), self._settings.push_grace_s))
        planned = [n for m in rows for n in await self._plan(m)]
        sent_at: dict[int, int] = {int(m.id): m.ts for m in rows}
        for start in range(0, len(planned), FCM_BATCH):
            batch: list[Notice] = []
            try:
                batch = [n for n in planned[start:start + FCM_BATCH] if await self._claim(n)]
                await self._send(batch, sent_at)
            except BaseException:
                # not sent: release the claims, so the redelivered messages push them (best effort)
                await self._release(batch)
                raise

    async def _plan(self, m: StoredMessage) -> list[Notice]:
        if m.kind:  # an edit, delete or reaction (ADR 0025): no push
            return []
        members: tuple[str, ...]
        group_name = None
        if is_group(m.conv):
            conv = await self._store.get_conversation(m.conv)
            if conv is None:
                return []
            members, group_name = conv.members, conv.name
        else:
            members = dm_members(m.conv) or ()
        others = [UserId(u) for u in members if u != m.sender]
        tokens = await self._store.push_tokens(others)
        if not tokens:
            return []
        users = sorted({t.user for t in tokens})
        sender = await self._store.get_user(UserId(m.sender))
        prefs: dict[str, PushPrefs] = dict(zip(
            users, await asyncio.gather(*(self._store.push_prefs(UserId(u)) for u in users)), strict=True))
        delivered: dict[str, int] = {r.user: r.delivered for r in await self._store.receipts(m.conv)}
        return notices(m, members, sender_name=sender.display_name if sender else "Someone", group_name=group_name,
                       tokens=tokens, prefs=prefs, delivered=delivered)

    async def _claim(self, n: Notice) -> bool:
        try:
            await self._pushed.create(n.key, b"1")
            return True
        except KeyWrongLastSequenceError:
            self.metrics.pushes.labels("duplicate_skipped").inc()
            return False

    async def _release(self, notices: list[Notice]) -> None:
        for n in notices:
            try:
                await self._pushed.delete(n.key)
            except Exception as err:  # NATS away: these pushes are lost rather than doubled
                log.warning("could not release the claim %s: %s", n.key, err)
                return

    async def _send(self, pending: list[Notice], sent_at: dict[int, int]) -> None:
        """Send one batch (≤ 500); what FCM could not take now is tried again with backoff."""
        delay = 0.5
        for attempt in range(1, self._settings.push_retries + 1):
            try:
                retry = await self._send_batch(pending, sent_at)
            except (exceptions.FirebaseError, OSError, ValueError) as err:  # the whole call failed (auth, transport)
                log.warning("FCM call failed (%s); %d pushes to try again", err, len(pending))
                retry = pending
            if not retry:
                return
            if attempt == self._settings.push_retries:
                self.metrics.pushes.labels("gave_up").inc(len(retry))
                log.warning("gave up on %d pushes after %d tries", len(retry), attempt)
                return
            pending = retry
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _send_batch(self, batch: list[Notice], sent_at: dict[int, int]) -> list[Notice]:
        """Send; return the notices worth another try."""
        if not batch:
            return []
        result = await messaging.send_each_async([fcm_message(n) for n in batch], dry_run=False, app=self._app)
        retry = []
        for n, response in zip(batch, result.responses, strict=True):
            if response.success:
                self.metrics.pushes.labels("sent").inc()
                self.metrics.delay.observe(max(0.0, time.time() - sent_at[n.message_id] / 1000))
            elif isinstance(response.exception, REMOVE):
                self.metrics.pushes.labels("token_rejected").inc()
                try:
                    if await self._store.delete_push_token(UserId(n.user), n.device, only=n.token):  # type: ignore[arg-type]
                        self.metrics.removed.inc()
                except Unavailable as err:  # FCM will say so again next time
                    log.warning("could not delete a rejected token: %s", err.message)
                log.info("removed the push token of device %s: %s", n.device, response.exception)
            elif isinstance(response.exception, RETRY) or _is_network(response.exception):
                self.metrics.pushes.labels("retried").inc()
                retry.append(n)
            else:
                self.metrics.pushes.labels("failed").inc()
                log.warning("push to device %s failed: %r", n.device, response.exception)
        return retry


def _is_network(err: BaseException | None) -> bool:
    return isinstance(err, exceptions.FirebaseError) and err.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED")


async def open_pushed(js: JetStreamContext, settings: Settings) -> KeyValue:
    return await ensure.open_bucket(js, buckets.pushed(settings))


async def consume(settings: Settings, pusher: Pusher, nc: BusClient, stop: asyncio.Event) -> None:
    """Every message stream's shared ``pusher`` consumer until ``stop``: any number of pushers take
    batches from it, each message to one of them at a time."""
    js = nc.jetstream()
    await bus.ensure_stream(js, settings)
    subs = []
    for stream in bus.message_streams(settings):
        shard = shard_of_stream(settings.stream_name, stream) or 0
        await js.add_consumer(stream, ConsumerConfig(
            durable_name=CONSUMER, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.NEW,
            ack_wait=ACK_WAIT_S, max_ack_pending=10000, filter_subject=shard_subjects(shard)))
        subs.append(await js.pull_subscribe_bind(consumer=CONSUMER, stream=stream))
    log.info("pusher consuming %s (grace %.1fs)", bus.message_streams(settings), settings.push_grace_s)
    try:
        await asyncio.gather(*(pull(sub, pusher, stop) for sub in subs))
    finally:
        for sub in subs:
            await sub.unsubscribe()


async def pull(sub: JetStreamContext.PullSubscription, pusher: Pusher, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            msgs = await sub.fetch(batch=FCM_BATCH, timeout=1)
        except (NatsTimeout, TimeoutError):
            continue
        except Exception as err:  # NATS away: the client reconnects by itself
            log.warning("fetch failed: %s", err)
            await asyncio.sleep(0.5)
            continue
        pusher.metrics.held.inc(len(msgs))
        keep = asyncio.get_running_loop().create_task(_keep_claimed(msgs))
        try:
            await pusher.handle(decode_batch(msgs))
        except Exception as err:  # the store or NATS away: JetStream hands them out again
            log.warning("pushing %d messages failed (%r); they will be retried", len(msgs), err)
            await _settle(msgs, ack=False)
            await asyncio.sleep(1.0)
            continue
        finally:
            keep.cancel()
            pusher.metrics.held.dec(len(msgs))
        await _settle(msgs, ack=True)


async def _keep_claimed(msgs: list[Any]) -> None:
    """While a batch waits out the grace and FCM's retries, tell JetStream it is still being worked on:
    the ack wait stays short, so a pusher that dies hands its batch to another within ``ACK_WAIT_S``."""
    while True:
        await asyncio.sleep(ACK_WAIT_S / 3)
        for m in msgs:
            try:
                await m.in_progress()
            except Exception:  # NATS away: the batch may be handed out again; the pushed bucket dedups
                return


async def watch_lag(settings: Settings, nc: BusClient, metrics: Metrics) -> None:
    """How far the pushers are behind the streams, every few seconds: messages not yet handed out plus
    those handed out and not yet acked (a batch waits out the push grace, and FCM may be retrying)."""
    js = nc.jetstream()
    while True:
        try:
            infos = [await js.consumer_info(stream, CONSUMER) for stream in bus.message_streams(settings)]
            metrics.lag.set(sum((i.num_pending or 0) + (i.num_ack_pending or 0) for i in infos))
        except Exception as err:  # NATS away, or the consumer not made yet: the gauge keeps its last value
            log.debug("lag: %s", err)
        await asyncio.sleep(5)


async def _settle(msgs: Iterable[object], *, ack: bool) -> None:
    for m in msgs:
        await (m.ack() if ack else m.nak(delay=1.0))  # type: ignore[attr-defined]


async def run_pusher(settings: Settings) -> None:
    app = load_firebase(settings)  # a missing or broken key file stops us here, saying which
    store = open_store(settings)
    await store.migrate()
    nc = await bus.connect(settings, "pusher")
    metrics = Metrics()
    pusher = Pusher(settings, store, app, await open_pushed(nc.jetstream(), settings), metrics)
    web_app = web.Application()
    probe = StoreProbe(store, registry=metrics.registry)
    probe.start()
    serve_health(web_app, ready=lambda: nc.is_connected and probe.ok, registry=metrics.registry)
    runner = await serve(web_app, settings.pusher_host, settings.pusher_port)
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(consume(settings, pusher, nc, stop))
    lag = asyncio.get_running_loop().create_task(watch_lag(settings, nc, metrics))
    waiter = asyncio.get_running_loop().create_task(run_until_stopped())
    await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    await cancel_and_wait(lag, waiter)
    await asyncio.gather(task, return_exceptions=True)
    await probe.stop()
    await runner.cleanup()
    await bus.close_quietly(nc)
    await store.close()
    await close_firebase(app)
    if task.done() and task.exception():
        raise task.exception()  # type: ignore[misc]
