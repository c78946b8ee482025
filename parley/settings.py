"""Settings: one frozen object, read once from ``PARLEY_*`` environment variables and passed down.

No module reads ``os.environ`` on import. Every field has a default that suits one machine; the
README lists them all. Secrets are wrapped in ``Secret`` so they never show up in a repr or a log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from parley.errors import ParleyError
from parley.layout import Layout, LayoutError
from parley.ratelimit import FRAME_KINDS, FrameRates, Rate

PREFIX = "PARLEY_"
MIN_SECRET_BYTES = 32  # the HMAC key of tokens and cursors (HS256): shorter ones can be guessed offline


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


class SettingsError(ParleyError):
    default_code = "bad_setting"


# a zero or negative value would hang (a semaphore of 0), divide by zero or refuse everything
POSITIVE = (
    "cassandra_bucket_s", "cassandra_timeout_s", "cassandra_concurrency", "cassandra_batch_partitions",
    "archiver_batch", "archiver_concurrency",
    "group_max_members", "typing_interval_s", "max_body_bytes", "max_frame_bytes", "rate_per_s", "rate_burst",
    "sends_in_flight", "heartbeat_s", "idle_timeout_s", "hello_timeout_s", "sync_batch", "sync_max", "cursor_flush_s",
    "max_connections", "node_ttl_s", "node_beat_s", "token_ttl_s", "session_lifetime_s",
    "argon2_time_cost", "argon2_memory_kib",
    "last_seen_ttl_s",
    "presence_beat_s", "presence_timeout_s", "drain_timeout_s", "push_grace_s", "push_retries", "stream_replicas",
    "bounds_refresh_s", "floor_wait_s", "cursor_every_s", "store_deadline_s", "cassandra_background_concurrency",
    "edit_window_s", "cursor_slices",
    "archiver_ack_wait_s", "presence_partitions", "presence_lease_s", "live_viewer_queue", "live_stream_max_age_s",
    "sync_rate_per_s", "sync_rate_burst", "presence_rate_per_s", "presence_rate_burst", "read_rate_per_s",
    "read_rate_burst", "typing_rate_per_s", "typing_rate_burst", "cheap_rate_per_s", "cheap_rate_burst",
    "max_strikes", "strike_decay_per_s", "login_account_failures", "login_account_window_s",
    "auth_address_failures", "auth_address_window_s", "signup_address_limit", "signup_address_window_s",
    "api_rate_per_s", "api_rate_burst", "hash_wait_s", "limits_scale",
    "flood_rate_messages", "flood_rate_window_s", "flood_new_rate_messages", "flood_duplicate_window_s",
    "flood_duplicate_similarity", "flood_duplicate_history", "flood_links_window_s", "flood_warnings",
    "flood_warning_window_s", "flood_timeout_s", "flood_timeouts_to_ban", "flood_timeout_window_s", "flood_tracked",
    "flood_slow_mode_max_s", "live_audit_max_age_s",
    "attachment_max_bytes", "attachment_max_pixels", "attachment_thumb_px", "attachment_unreferenced_s",
    "attachment_grace_s", "attachment_sweep_s",
)


@dataclass(frozen=True)
class Settings:
    # where things are
    nats_url: str = "nats://127.0.0.1:4222"  # comma-separated: every server of the cluster (any may be down)
    nats_user: str = ""  # NATS credentials: user + password, or a token, or a .creds file (JWT + nkey)
    nats_password: Secret = field(default_factory=lambda: Secret(""))
    nats_token: Secret = field(default_factory=lambda: Secret(""))
    nats_creds: str = ""  # path of a .creds file
    nats_tls_ca: str = ""  # CA file that signed the servers' certificates (turns TLS on)
    nats_tls_cert: str = ""  # client certificate and key, when the servers verify clients
    nats_tls_key: str = ""
    # TLS of Parley's own ports: with a certificate and its key (PEM files), edge nodes serve wss:// and the
    # API and discovery https:// (workers' health ports stay plain); docs/adr/0014-tls.md
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""  # the CA that Parley's HTTP clients (API → discovery, discovery → nodes, tools) trust
    store: str = "sqlite"  # sqlite | cassandra
    sqlite_path: str = "parley.db"
    # a node's or the API's store call (a membership check, history, a sync page) that has no answer after
    # this long fails with store_unavailable (protocol.md §13): a hung store is an answer, never silence
    store_deadline_s: float = 3.0
    run_dir: str = ".parley"
    secret: Secret = field(default_factory=lambda: Secret(""))
    # Cassandra (when store == "cassandra")
    cassandra_hosts: str = "127.0.0.1"  # comma-separated contact points
    cassandra_port: int = 9042
    cassandra_keyspace: str = "parley"
    # "SimpleStrategy:1" locally; "NetworkTopologyStrategy:dc1=3,dc2=3" for a cluster
    cassandra_replication: str = "SimpleStrategy:1"
    cassandra_consistency: str = "ONE"  # LOCAL_QUORUM in a cluster
    # the archiver's writes (what sync trusts below the ack floor); "" = cassandra_consistency.
    # EACH_QUORUM when the keyspace spans several datacenters (start-up refuses LOCAL_* there)
    cassandra_write_consistency: str = ""
    cassandra_local_dc: str = ""  # the datacenter this process is in (token-aware, DC-aware routing)
    cassandra_username: str = ""
    cassandra_password: Secret = field(default_factory=lambda: Secret(""))
    cassandra_bucket_s: int = 10 * 86400  # time window of one messages partition
    cassandra_timeout_s: float = 10.0  # per request
    cassandra_concurrency: int = 64  # statements in flight per process (foreground: what someone waits for)
    # receipt and cursor writes in flight, on their own budget: they never take a foreground read's slot
    cassandra_background_concurrency: int = 16
    # partitions and KiB per multi-partition unlogged batch (the archiver's writes); Cassandra warns past its
    # unlogged_batch_across_partitions_warn_threshold (10) and batch_size_warn_threshold (5 KiB) and refuses past
    # batch_size_fail_threshold (50 KiB): raise the first two on the nodes, or set 10 / 5 here (ADR 0058)
    cassandra_batch_partitions: int = 40
    cassandra_batch_kib: int = 40
    cassandra_dir: str = ""  # `parley up --store cassandra`: instance dir (default <run dir>/cassandra)
    cassandra_heap: str = "1G"
    # the API
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    discovery_url: str = "http://127.0.0.1:8070"
    discovery_host: str = "127.0.0.1"
    discovery_port: int = 8070
    token_ttl_s: int = 86400
    # operators: comma-separated user ids who may edit the global banned-word list (and any room's)
    admins: str = ""
    # a login's absolute lifetime: refresh renews its tokens up to here, never past it; then log in again
    session_lifetime_s: int = 30 * 86400
    # a hello whose session the store cannot check (store down) is refused, retryable (1 = fail closed)
    revocation_fail_closed: bool = True
    argon2_time_cost: int = 3  # password hashing cost (argon2-cffi's defaults)
    argon2_memory_kib: int = 65536
    web_test_hooks: bool = False  # the browser client's test hooks (browser tests only; never in production)
    hash_concurrency: int = 0  # passwords hashed at once per API process; 0 = 2 x CPU cores
    hash_wait_s: float = 2.0  # a login or signup waits this long for a hashing slot, then 503 busy
    # brute force (docs/openapi.yaml "Limits"): counted in NATS KV, shared by every API process
    login_account_failures: int = 5  # failed logins of one username in login_account_window_s → 429
    login_account_window_s: float = 300.0
    auth_address_failures: int = 20  # failed logins and refreshes from one address in auth_address_window_s
    auth_address_window_s: float = 60.0
    signup_address_limit: int = 20  # signups from one address in signup_address_window_s
    signup_address_window_s: float = 3600.0
    api_rate_per_s: float = 20.0  # every other request: a token bucket per address per API process
    api_rate_burst: int = 100
    trusted_proxies: str = ""  # comma-separated peer addresses whose X-Forwarded-For names the client
    # an edge node
    node_id: str = ""
    node_host: str = "127.0.0.1"
    node_port: int = 8090
    node_public_url: str = ""  # the ws:// (wss://) URL clients use; derived from host and port if empty
    region: str = "local"  # with PARLEY_REGIONS: one of its regions (where this process runs)
    max_connections: int = 50000  # the node's capacity; load = connections / max_connections
    node_ttl_s: float = 6.0  # a node missing heartbeats this long is dropped from placement
    node_beat_s: float = 2.0
    drain_timeout_s: float = 30.0  # a draining node exits after this long even if clients linger
    drain_spread_s: float = 5.0  # a draining node moves its clients over this long (no reconnect stampede)
    # groups, typing
    group_max_members: int = 100
    typing_interval_s: float = 2.0  # a typist's "start" is forwarded at most this often; shown for 3x
    # a group's delivered receipts to one sender are gathered this long and published as one bus message
    # (ADR 0048); 0: one message each, as nodes before it did (and the only kind they read: a rolling upgrade)
    receipt_gather_s: float = 0.025
    # a node writes a group's frames to a member's device at most once per this gap while busy, every group frame
    # queued meanwhile in one write (ADRs 0053, 0056): fewer writes per delivery under load, each up to the gap
    # later; any other frame goes at once (with the group frames queued before it); 0: every loop turn
    write_gap_s: float = 0.005
    # protocol limits
    max_body_bytes: int = 4096
    edit_window_s: float = 900.0  # a message can be edited by its sender this long after it was sent (ADR 0025)
    max_frame_bytes: int = 65536
    rate_per_s: float = 20.0
    rate_burst: int = 40
    # frame budgets per connection (protocol.md §11); presence counts the users asked, not frames
    sync_rate_per_s: float = 0.5
    sync_rate_burst: int = 5
    presence_rate_per_s: float = 20.0
    presence_rate_burst: int = 500  # a client opening with a few hundred contacts asks for them all at once
    read_rate_per_s: float = 5.0
    read_rate_burst: int = 20
    typing_rate_per_s: float = 5.0
    typing_rate_burst: int = 10
    cheap_rate_per_s: float = 20.0  # ack and ping
    cheap_rate_burst: int = 60
    max_strikes: int = 50  # refused frames outstanding before the connection is closed (4029)
    strike_decay_per_s: float = 0.5  # strikes fade at this rate; nothing else clears them
    # multiplies every frame budget above and every HTTP limit (not rate_per_s): scratch clusters for tests
    # and benchmarks raise it; production keeps 1
    limits_scale: float = 1.0
    sends_in_flight: int = 32  # a connection's sends admitted and not yet answered; more wait in the socket
    heartbeat_s: float = 25.0  # clients ping at least this often
    idle_timeout_s: float = 75.0  # a connection silent this long is closed (4008)
    hello_timeout_s: float = 10.0
    sync_batch: int = 200
    sync_max: int = 10000  # sizes a device's outbound queue (4x); a device further behind is closed (4009)
    cursor_flush_s: float = 1.0
    # the stream
    stream_name: str = "MSG"  # shard i's stream is <stream_name>_<i>
    shards: int = 4  # shard streams; raise it to grow (new conversations spread over all; nothing moves)
    # several regions: "eu:4,us:4" (region:shards, in order; shard indices follow it); sets shards to the total
    regions: str = ""
    bounds_refresh_s: float = 1.0  # a node reads every shard's bounds and archiver floor this often
    floor_wait_s: float = 1.0  # a sync round waits this long for the archiver before reading the stream
    cursor_every_s: float = 0.25  # a device is offered a new cursor at most this often
    cursor_slices: int = 10  # a round of cursor offers spread over this many ticks (ADR 0040); 1: all at once
    stream_max_age_s: int = 7 * 86400
    stream_replicas: int = 1  # created with this; a stream that differs is refused until `parley bus migrate`
    kv_replicas: int = 0  # replicas of the KV buckets; 0 = the same as stream_replicas
    dedup_window_s: int = 300
    # live rooms (docs/adr/0018-live-rooms.md)
    live_join_backlog: int = 50  # messages a live_join answers with (the newest the store has)
    live_viewer_queue: int = 256  # frames a live viewer may have waiting; past it it is dropped from the room
    live_stream_max_age_s: int = 86400  # the LIVE stream keeps a day (the store keeps everything)
    # attachments (docs/adr/0024-attachments.md): the object store ``attachments``, replicas as the KV buckets'
    attachment_max_bytes: int = 25 * 1024 * 1024  # one upload; a larger one is refused (413) with nothing stored
    attachment_max_pixels: int = 50_000_000  # an image larger than this is refused undecoded (decompression bombs)
    attachment_thumb_px: int = 320  # a thumbnail's longer side
    attachment_unreferenced_s: float = 86400.0  # an upload no message referenced is deleted after this
    attachment_grace_s: float = 3600.0  # a released attachment (its message deleted) is deleted after this
    attachment_sweep_s: float = 600.0  # the API looks for attachments to delete this often
    live_metrics_top_rooms: int = 20  # rooms with their own `room` label in the metrics; the rest are "_other"
    # workers
    archiver_batch: int = 5000  # a backlog in few large writes: Cassandra pays per partition written (ADR 0058)
    archiver_concurrency: int = 4  # batches written at once
    # the archiver fetches what is pending this often, not each message as it comes (0: as it comes; ADR 0038)
    archiver_linger_s: float = 0.1
    # the archiver's nice value (its store's thread excepted), with SCHED_BATCH, so that it yields a core it shares
    # with the node and nats-server (0: as they are; ADR 0060)
    archiver_nice: int = 10
    archiver_host: str = "127.0.0.1"
    archiver_port: int = 8075  # health endpoints
    # a message an archiver took and neither acked nor gave back (it died) goes to another after this
    archiver_ack_wait_s: float = 30.0
    # presence
    presence_beat_s: float = 5.0  # nodes beat once per presence partition this often (ADR 0049)
    presence_timeout_s: float = 30.0  # offline after this long with no heartbeat from any device
    last_seen_ttl_s: float = 365 * 86400.0  # a user's "last seen" is forgotten this long after it was written
    presence_host: str = "127.0.0.1"
    presence_port: int = 8076  # the presence worker's health endpoints
    # users are split into this many partitions, shared by the presence workers; nodes and workers must agree
    presence_partitions: int = 16
    presence_lease_s: float = 6.0  # a dead presence worker's partitions are taken over within about this
    # push (FCM through firebase-admin); off without a service-account file
    fcm_credentials: str = ""  # path of the Firebase service-account JSON
    fcm_endpoint: str = "https://fcm.googleapis.com"  # FCM's base URL (a local stand-in in tests)
    push_grace_s: float = 3.0  # wait for a recipient's device to take the message (> ack time + cursor_flush_s)
    push_retries: int = 5  # tries for a push FCM could not take (5xx, quota, network)
    pusher_host: str = "127.0.0.1"
    pusher_port: int = 8077  # the pusher's health and metrics endpoints
    # live rooms: flood and spam rules (docs/adr/0020); rates, duplicates and links are counted per node,
    # warnings, time-outs, bans and slow mode are shared through the live_mod bucket
    flood_rate_messages: int = 5  # messages one user may send in one room per flood_rate_window_s
    flood_rate_window_s: float = 10.0
    flood_new_account_s: float = 86400.0  # accounts younger than this: the lower rate below, and no links
    flood_new_rate_messages: int = 2
    flood_duplicate_window_s: float = 60.0  # a text like one of the user's recent ones within this is refused
    flood_duplicate_similarity: float = 0.8  # 3-gram Jaccard index from which two texts are "the same"
    flood_duplicate_history: int = 5  # recent texts per user per room compared with
    flood_links_per_message: int = 2
    flood_links_per_window: int = 4  # links one user may post in one room per flood_links_window_s
    flood_links_window_s: float = 60.0
    flood_warnings: int = 3  # refusals (warnings) within flood_warning_window_s that make a time-out
    flood_warning_window_s: float = 300.0
    flood_timeout_s: float = 300.0  # an automatic time-out's length
    flood_timeouts_to_ban: int = 3  # automatic time-outs within flood_timeout_window_s that make a ban
    flood_timeout_window_s: float = 86400.0
    flood_tracked: int = 100000  # (room, user) pairs whose recent messages a node remembers (least recent go)
    flood_slow_mode_max_s: float = 3600.0  # the longest slow mode a moderator may set
    live_audit_max_age_s: int = 90 * 86400  # moderation decisions are kept this long (the LIVE_AUDIT stream)
    # ops
    prometheus_url: str = ""  # the cluster page shows its firing alerts (GET <url>/api/v1/alerts); '' for none
    log_level: str = "INFO"
    log_json: bool = False

    def __post_init__(self) -> None:
        if self.regions:
            try:
                layout = Layout.parse(self.regions)
                layout.shards_in(self.region)
            except LayoutError as err:
                raise SettingsError(f"{PREFIX}REGIONS / {PREFIX}REGION: {err}") from None
            object.__setattr__(self, "shards", layout.total)
        if not 1 <= self.shards <= 64:
            raise SettingsError(f"{PREFIX}SHARDS={self.shards!r} must be between 1 and 64")
        for name in POSITIVE:
            if getattr(self, name) <= 0:
                raise SettingsError(f"{PREFIX}{name.upper()}={getattr(self, name)!r} must be greater than 0")
        if not 0 <= self.live_join_backlog <= 1000:
            raise SettingsError(f"{PREFIX}LIVE_JOIN_BACKLOG={self.live_join_backlog!r} must be from 0 to 1000")
        if not 0 <= self.live_metrics_top_rooms <= 1000:
            raise SettingsError(f"{PREFIX}LIVE_METRICS_TOP_ROOMS={self.live_metrics_top_rooms!r} must be 0 to 1000")
        if not 0 <= self.receipt_gather_s <= 1:
            raise SettingsError(f"{PREFIX}RECEIPT_GATHER_S={self.receipt_gather_s!r} must be 0 (one message each) to 1")
        if not 0 <= self.write_gap_s <= 0.05:
            raise SettingsError(f"{PREFIX}WRITE_GAP_S={self.write_gap_s!r} must be 0 (every loop turn) to 0.05")
        if not 1 <= self.cassandra_batch_kib <= 45:
            raise SettingsError(f"{PREFIX}CASSANDRA_BATCH_KIB={self.cassandra_batch_kib!r} must be 1 to 45 (Cassandra "
                                "refuses a batch over batch_size_fail_threshold, 50 KiB by default)")
        if not 0 <= self.archiver_linger_s <= 1:
            raise SettingsError(f"{PREFIX}ARCHIVER_LINGER_S={self.archiver_linger_s!r} must be 0 (no linger) to 1")
        if not 0 <= self.archiver_nice <= 19:
            raise SettingsError(f"{PREFIX}ARCHIVER_NICE={self.archiver_nice!r} must be 0 (as other processes) to 19")
        if self.hash_concurrency < 0:
            raise SettingsError(f"{PREFIX}HASH_CONCURRENCY={self.hash_concurrency!r} must be 0 (2 x CPU cores) or more")
        if not self.nats_servers():
            raise SettingsError(f"{PREFIX}NATS_URL is empty: give one or more nats:// URLs, comma-separated")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SettingsError(f"{PREFIX}TLS_CERT and {PREFIX}TLS_KEY go together: set both (or neither)")
        size = len(self.secret.reveal().encode())
        if 0 < size < MIN_SECRET_BYTES:  # unset (0) is refused by each process's start (tools/cli.py)
            raise SettingsError(f"{PREFIX}SECRET is {size} bytes; it must be at least {MIN_SECRET_BYTES} "
                                "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(48))')")

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> Settings:
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _cast(f.name, f.type, raw)
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def layout(self) -> Layout:
        """The regions and the shards each homes (``parley.layout``)."""
        return Layout.parse(self.regions) if self.regions else Layout.single(self.shards)

    def nats_servers(self) -> list[str]:
        return [url.strip() for url in self.nats_url.split(",") if url.strip()]

    def frame_rates(self) -> FrameRates:
        """Each frame kind's budget on one connection (``limits_scale`` applied), and the strike rules."""
        rates = {kind: Rate(getattr(self, f"{kind}_rate_per_s"), getattr(self, f"{kind}_rate_burst"))
                 for kind in FRAME_KINDS}
        return FrameRates({k: r.scaled(self.limits_scale) for k, r in rates.items()}, self.max_strikes,
                          self.strike_decay_per_s)

    def admin_ids(self) -> frozenset[str]:
        """The operators (``PARLEY_ADMINS``): who may edit the global banned-word list (docs/adr/0019)."""
        return frozenset(a.strip() for a in self.admins.split(",") if a.strip())

    def bucket_replicas(self) -> int:
        return self.kv_replicas or self.stream_replicas

    def tls_on(self) -> bool:
        """Whether the edge nodes, the API and discovery serve TLS (a certificate is configured)."""
        return bool(self.tls_cert)

    def http_scheme(self) -> str:
        return "https" if self.tls_on() else "http"

    def ws_url(self) -> str:
        return self.node_public_url or f"{'wss' if self.tls_on() else 'ws'}://{self.node_host}:{self.node_port}/ws"

    def as_env(self) -> dict[str, str]:
        """The environment that rebuilds these settings in a child process (secrets included)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Secret):
                value = value.reveal()
            elif isinstance(value, bool):
                value = "1" if value else "0"
            out[PREFIX + f.name.upper()] = str(value)
        return out


def _cast(name: str, kind: Any, raw: str) -> Any:
    kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind == "Secret":
            return Secret(raw)
        return raw
    except ValueError:
        raise SettingsError(f"{PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from None
