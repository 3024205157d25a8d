"""A small SQLite state file (counters) that every worker of one machine shares.

The quota counters and the failed-sign-in counts live in one such file.
Each user of it holds its own connection on its own dedicated thread:
SQLite connections are not to be shared across threads, and the event loop
must never wait on a lock.  Every write is one ``BEGIN IMMEDIATE``
transaction, its writers queued by :class:`~gateway.turns.Turns`, so workers
never count the same call twice.  The file is created 0600.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from gateway.security.files import create_private
from gateway.turns import Turns

__all__ = ["StateFile"]

T = TypeVar("T")


class StateFile:
    def __init__(self, path: Path, thread_name: str) -> None:
        self.path = path
        self._thread_name = thread_name
        self._db: sqlite3.Connection | None = None
        self._turns: Turns | None = None
        self._pool: ThreadPoolExecutor | None = None

    async def open(self, setup: Callable[[sqlite3.Connection], None]) -> None:
        """Connect on the thread, then ``setup(db)`` there (schema, sweeps)."""
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=self._thread_name)
        await self.run(self._connect, setup)

    def _connect(self, setup: Callable[[sqlite3.Connection], None]) -> None:
        create_private(self.path)  # callers' addresses, officers, offices: 0600
        db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # counters, not evidence: the audit is that
        setup(db)
        self._db = db
        self._turns = Turns(self.path)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` on this file's thread."""
        assert self._pool is not None
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def transaction(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(db, *args)`` in one write transaction; on this file's thread only."""
        db, turns = self._db, self._turns
        assert db is not None and turns is not None
        with turns.transaction(db):  # workers queue for the file (see gateway/turns.py)
            return fn(db, *args)

    def read(self, sql: str) -> list[tuple[object, ...]]:
        """Rows of one query; on this file's thread only."""
        assert self._db is not None
        return [tuple(r) for r in self._db.execute(sql).fetchall()]

    async def close(self) -> None:
        if self._pool is None:
            return
        if self._db is not None:
            await self.run(self._db.close)
            self._db = None
        if self._turns is not None:
            self._turns.close()
            self._turns = None
        self._pool.shutdown(wait=True)
        self._pool = None
