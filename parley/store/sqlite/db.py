"""One process's connection to the SQLite file, and the one thread every statement runs on.

The event loop never blocks on disk, and the connection is never used from two threads. WAL mode,
``synchronous=FULL``: a commit is on disk when it returns. The first statement connects and brings
the schema up to date. "Database is locked" and other operational errors become
``Unavailable(store_unavailable)``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from parley.errors import Unavailable
from parley.store.sqlite.schema import migrate

T = TypeVar("T")


class Database:
    def __init__(self, path: str) -> None:
        self._path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
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
        """``fn(connection)`` on the database thread, in autocommit mode."""
        def call() -> T:
            try:
                return fn(self._connect())
            except sqlite3.OperationalError as err:
                raise Unavailable(f"sqlite: {err}", code="store_unavailable") from err

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

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
        self._pool.shutdown(wait=True)
