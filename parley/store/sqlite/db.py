"""One process's connection to the SQLite file, and the one thread every statement runs on (thread.py).

The event loop never blocks on disk, and the connection is never used from two threads. WAL mode,
``synchronous=FULL``: a commit is on disk when it returns. The first statement connects and brings
the schema up to date. An outage of the file ("database is locked", a disk I/O error, a full disk, a file
that cannot be opened) becomes ``Unavailable(store_unavailable)``, retryable; any other SQLite error is a
bug in a query (a syntax error, a missing column, too many variables) and becomes ``ServerError(internal)``,
not retryable, so it is logged as one rather than reported as an outage. ``IN (…)`` lists are read in
chunks of at most ``IN_CHUNK`` values (``chunks``), far below SQLite's variable limit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from parley.errors import ServerError, Unavailable
from parley.store.sqlite.schema import migrate
from parley.store.sqlite.thread import DatabaseThread

T = TypeVar("T")
IN_CHUNK = 500  # values in one ``IN (…)`` list (SQLite allows 32766 variables; older builds 999)
OUTAGES = ("locked", "busy", "disk i/o error", "unable to open", "disk is full", "readonly", "interrupted",
           "not a database", "malformed")  # an OperationalError saying one of these is the file's, not ours


def chunks(values: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """``values`` in slices of at most ``size``: one ``IN (…)`` list each."""
    for start in range(0, len(values), size):
        yield values[start:start + size]


def marks(n: int) -> str:
    """``?,?,…``: the placeholders of an ``IN (…)`` list of ``n`` values."""
    return ",".join("?" * n)


def store_error(err: sqlite3.Error) -> ServerError:
    """An outage (retryable) or a bug in our SQL (not retryable: logged as a failure, not an outage)."""
    text = str(err).lower()
    if isinstance(err, sqlite3.OperationalError) and any(o in text for o in OUTAGES):
        return Unavailable(f"sqlite: {err}", code="store_unavailable")
    return ServerError(f"sqlite: {err}", code="internal")


class Database:
    def __init__(self, path: str) -> None:
        self._path = path
        self._thread = DatabaseThread("sqlite")
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=10)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=10000")
            migrate(db)
            self._db = db
        return self._db

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` on the database thread, in autocommit mode; ``RuntimeError`` after ``close``."""
        def call() -> T:
            try:
                return fn(self._connect())
            except (sqlite3.OperationalError, sqlite3.ProgrammingError) as err:
                raise store_error(err) from err

        return await self._thread.submit(call)

    async def tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` in one write transaction: committed if it returns, rolled back if it raises."""
        def body(db: sqlite3.Connection) -> T:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

        return await self.run(body)

    async def close(self) -> None:
        def shut(_: sqlite3.Connection) -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        if self._db is not None:
            await self.run(shut)
        await self._thread.stop()
