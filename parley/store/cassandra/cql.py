"""One process's way to Cassandra: the cluster and session, statements prepared by name, and the
bridge that runs them from asyncio.

One ``Cluster`` per process with token-aware, DC-aware routing; every query a prepared statement; consistency
from settings, checked at start so reads in any datacenter meet the archiver's writes: the statements sync
trusts below the ack floor (``trusted_writes``) go out at the write consistency (``EACH_QUORUM`` across
datacenters), everything else at the read/write one (``LOCAL_QUORUM``); lightweight transactions are decided
at ``SERIAL``, across every datacenter. Requests run on the driver's I/O thread and come back to asyncio
through callbacks, so the event loop never waits on Cassandra; only connecting, preparing and schema changes
run in a worker thread. Large reads page. At most ``cassandra_concurrency`` requests are in flight, and apart
from them at most ``cassandra_background_concurrency`` background writes (``in_background``: receipts,
cursors), so a burst of those, each held up to its full timeout by a slow Cassandra, never takes a foreground
read's slot. Any "cannot reach Cassandra" error (``DOWN``) becomes ``Unavailable(store_unavailable)``.

This module knows no table: the statements and the schema migration are handed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from cassandra import ConsistencyLevel, OperationTimedOut, ProtocolVersion, RequestExecutionException
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    ResponseFuture,
)
from cassandra.cluster import (
    Session as CqlSession,
)
from cassandra.connection import ConnectionException
from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, TokenAwarePolicy
from cassandra.protocol import ErrorMessage
from cassandra.query import BatchStatement, BatchType, PreparedStatement, Statement

from parley.errors import Unavailable
from parley.settings import Settings
from parley.store.cassandra.consistency import check as check_levels
from parley.store.cassandra.replication import replication_map

DOWN = (NoHostAvailable, OperationTimedOut, RequestExecutionException, ConnectionException)
# protocol v5's CAS_WRITE_UNKNOWN, which this driver has no class for: a lightweight transaction that a
# minority accepted (contention across datacenters, a replica lost mid-way) may or may not take effect
CAS_WRITE_UNKNOWN = 0x1700
PAGE = 1000
# set while a background write runs (``Cql.in_background``); tasks it starts (``gather``) inherit it
_BACKGROUND: contextvars.ContextVar[bool] = contextvars.ContextVar("cassandra_background", default=False)

# migrate(session, keyspace, replication): blocking, run once connected and before anything is prepared
Migrate = Callable[[CqlSession, str, str], None]
# (statement name, bound values): one member of a batch
Bound = tuple[str, tuple[Any, ...]]


T = TypeVar("T")


CELL_BYTES = 16  # what Cassandra counts per cell beyond its value (measured: 9-column rows, 60-200 B bodies)


def _bytes(params: tuple[Any, ...]) -> int:
    """About how many bytes the bound values take in the mutation Cassandra's batch thresholds measure
    (an estimate on the high side: a batch it measures over 5 KiB logs a warning on both ends)."""
    return sum(CELL_BYTES + (len(p) if isinstance(p, bytes) or (isinstance(p, str) and p.isascii())
                             else len(p.encode()) if isinstance(p, str) else 8) for p in params)


def pack(items: Iterable[tuple[Hashable, int, T]], *, parts: int, size: int) -> list[list[T]]:
    """Items ``(group, bytes, item)`` into lists of one group each, at most ``parts`` items and ``size``
    bytes per list (an item bigger than ``size`` alone), in the order they came within a group."""
    open_: dict[Hashable, tuple[list[T], int]] = {}
    out: list[list[T]] = []
    for group, nbytes, item in items:
        current = open_.get(group)
        if current is not None and (len(current[0]) >= parts or current[1] + nbytes > size):
            out.append(current[0])
            current = None
        members, filled = current or ([], 0)
        members.append(item)
        open_[group] = (members, filled + nbytes)
    out.extend(members for members, _ in open_.values())
    return out


def check_consistency(settings: Settings) -> None:
    """Refuse consistency levels with which a reader in some datacenter can miss an archiver write."""
    check_levels(replication_map(settings.cassandra_replication), settings.cassandra_consistency,
                 settings.cassandra_write_consistency)


def write_level(settings: Settings) -> int:
    """The level of the writes sync trusts (the archiver's): the write setting, else the read one."""
    level: int = ConsistencyLevel.name_to_value[(settings.cassandra_write_consistency or
                                                 settings.cassandra_consistency).upper()]
    return level


def new_cluster(s: Settings) -> Cluster:
    consistency = ConsistencyLevel.name_to_value[s.cassandra_consistency.upper()]
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=s.cassandra_local_dc or None)),
        consistency_level=consistency,
        # SERIAL, never LOCAL_SERIAL: a claim (username, group seat) is decided by a quorum of ALL
        # replicas, so two datacenters cannot both win it (ADR 0007 has the cost)
        serial_consistency_level=ConsistencyLevel.SERIAL,
        request_timeout=s.cassandra_timeout_s,
    )
    auth = (PlainTextAuthProvider(s.cassandra_username, s.cassandra_password.reveal())
            if s.cassandra_username else None)
    return Cluster(
        contact_points=[h.strip() for h in s.cassandra_hosts.split(",") if h.strip()],
        port=s.cassandra_port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        auth_provider=auth,
        # come back within seconds of an outage, not after the default's minutes
        reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.5, max_delay=2.0),
        connect_timeout=5,
        protocol_version=ProtocolVersion.V5,  # Cassandra 5.0's; no downgrade dance at every connect
    )


def join_queries(*groups: Mapping[str, str]) -> dict[str, str]:
    """The statements of every concept module under one set of names; a name used twice is a bug."""
    out: dict[str, str] = {}
    for group in groups:
        twice = out.keys() & group.keys()
        if twice:
            raise ValueError(f"statement names defined twice: {sorted(twice)}")
        out.update(group)
    return out


class Cql:
    def __init__(self, settings: Settings, queries: Mapping[str, str], trusted_writes: Iterable[str] = ()) -> None:
        self._settings = settings
        self._queries = dict(queries)
        self._trusted = frozenset(trusted_writes)
        unknown = self._trusted - self._queries.keys()
        if unknown:
            raise ValueError(f"trusted writes that are no statements: {sorted(unknown)}")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cassandra-setup")
        self._cluster: Cluster | None = None
        self._session: CqlSession | None = None
        self._q: dict[str, PreparedStatement] = {}
        self._limit = asyncio.Semaphore(settings.cassandra_concurrency)
        self._background = asyncio.Semaphore(settings.cassandra_background_concurrency)

    @staticmethod
    @contextlib.contextmanager
    def in_background() -> Iterator[None]:
        """The requests made within (and by the tasks started within) go on the background budget."""
        token = _BACKGROUND.set(True)
        try:
            yield
        finally:
            _BACKGROUND.reset(token)

    def _connect(self, migrate: Migrate) -> None:
        """Blocking: connect, bring the schema up to date, prepare every statement."""
        check_consistency(self._settings)
        cluster = new_cluster(self._settings)
        try:
            session = cluster.connect()
            migrate(session, self._settings.cassandra_keyspace, self._settings.cassandra_replication)
            session.set_keyspace(self._settings.cassandra_keyspace)
            self._q = {name: session.prepare(cql) for name, cql in self._queries.items()}
            for name in self._trusted:  # bound statements inherit it; batches are set in batch()
                self._q[name].consistency_level = write_level(self._settings)
        except BaseException:
            cluster.shutdown()
            raise
        self._cluster, self._session = cluster, session

    async def open(self, migrate: Migrate) -> None:
        if self._session is not None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._connect, migrate)
        except DOWN as err:
            raise Unavailable(f"cassandra: {err}", code="store_unavailable") from err

    async def close(self) -> None:
        cluster, self._cluster, self._session = self._cluster, None, None
        if cluster is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, cluster.shutdown)
        self._pool.shutdown(wait=True)

    async def _page(self, statement: Statement, paging_state: bytes | None = None) -> tuple[list[Any], bytes | None]:
        """One page of a statement's rows and the state to ask for the next (None: that was all)."""
        if self._session is None:
            raise Unavailable("cassandra: not connected (migrate() first)", code="store_unavailable")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle(error: BaseException | None) -> None:
            if not done.done():
                done.set_exception(error) if error is not None else done.set_result(None)

        def wake(error: BaseException | None) -> None:  # on the driver's thread
            try:
                loop.call_soon_threadsafe(settle, error)
            except RuntimeError:  # the loop closed while Cassandra answered: nobody is waiting
                pass

        async with self._background if _BACKGROUND.get() else self._limit:
            try:
                future: ResponseFuture = self._session.execute_async(statement, paging_state=paging_state)
                future.add_callbacks(lambda _rows: wake(None), wake)
                await done
                result = future.result()  # already there: the callback ran after the result was set
            except DOWN as err:
                raise Unavailable(f"cassandra: {err}", code="store_unavailable") from err
            except ErrorMessage as err:
                if err.code != CAS_WRITE_UNKNOWN:
                    raise
                raise Unavailable(f"cassandra: {err.message}", code="store_unavailable") from err
        return list(result.current_rows), result.paging_state

    async def rows(self, name: str, *params: Any, limit: int | None = None) -> list[Any]:
        """All rows (or the first ``limit``) of a prepared query, a page at a time."""
        statement = self._q[name].bind(params)
        statement.fetch_size = min(limit, PAGE) if limit else PAGE
        rows, state = await self._page(statement)
        while state is not None and (limit is None or len(rows) < limit):
            more, state = await self._page(statement, state)
            rows += more
        return rows[:limit] if limit else rows

    async def one(self, name: str, *params: Any) -> Any:
        rows = await self.rows(name, *params, limit=1)
        return rows[0] if rows else None

    async def serial_one(self, name: str, *params: Any) -> Any:
        """The row read at SERIAL: any lightweight transaction still in flight on it is settled first,
        so this tells whether a claim whose outcome was unknown took effect."""
        statement = self._q[name].bind(params)
        statement.consistency_level = ConsistencyLevel.SERIAL
        rows, _ = await self._page(statement)
        return rows[0] if rows else None

    async def write(self, name: str, *params: Any) -> None:
        await self._page(self._q[name].bind(params))

    async def applied(self, name: str, *params: Any) -> tuple[bool, Any]:
        """A lightweight transaction: whether it applied, and the row that was there if not."""
        row = (await self._page(self._q[name].bind(params)))[0][0]
        return bool(row.applied), row

    async def batch(self, statements: Sequence[Bound], logged: bool = False) -> None:
        if len(statements) == 1:
            await self.write(statements[0][0], *statements[0][1])
            return
        trusted = any(name in self._trusted for name, _ in statements)
        batch = BatchStatement(batch_type=BatchType.LOGGED if logged else BatchType.UNLOGGED,
                               consistency_level=write_level(self._settings) if trusted else None)
        for name, params in statements:
            batch.add(self._q[name], params)
        await self._page(batch)

    async def write_partitions(self, partitions: Iterable[Sequence[Bound]]) -> None:
        """Write each partition's statements (one element: the statements of one partition), all at once,
        in few requests: partitions whose replicas are the same share an unlogged batch, routed to one of those
        replicas (the batch takes its first statement's routing key), up to ``cassandra_batch_partitions``
        partitions and about ``cassandra_batch_kib`` (40 and 40 KiB: a quarter of the requests that Cassandra's
        default warning thresholds, 10 and 5 KiB, allow, and less CPU per archived message on both ends,
        ADR 0058); a bigger partition goes alone."""
        if self._session is None or self._cluster is None:
            raise Unavailable("cassandra: not connected (migrate() first)", code="store_unavailable")
        metadata, keyspace = self._cluster.metadata, self._settings.cassandra_keyspace
        items = []
        for statements in partitions:
            bound = [self._q[name].bind(params) for name, params in statements]
            key = bound[0].routing_key
            replicas = tuple(h.endpoint for h in metadata.get_replicas(keyspace, key)) if key else ()
            trusted = any(name in self._trusted for name, _ in statements)
            items.append((replicas, sum(_bytes(params) for _, params in statements), (bound, trusted)))
        requests: list[Statement] = []
        for group in pack(items, parts=self._settings.cassandra_batch_partitions,
                          size=self._settings.cassandra_batch_kib * 1024):
            members = [b for bound, _ in group for b in bound]
            if len(members) == 1:
                requests.append(members[0])  # bound: the trusted level is the prepared statement's
                continue
            trusted = any(t for _, t in group)
            batch = BatchStatement(batch_type=BatchType.UNLOGGED,
                                   consistency_level=write_level(self._settings) if trusted else None)
            for b in members:
                batch.add(b)
            requests.append(batch)
        await self.gather(self._page(r) for r in requests)

    @staticmethod
    async def gather(calls: Iterable[Any]) -> list[Any]:
        """Run the calls at once (the semaphore still bounds what is in flight); results in order."""
        return list(await asyncio.gather(*calls))
