"""The shared audit store: PostgreSQL, for several gateway instances behind a load balancer.

Each instance appends to its own chain (``audit.instance``); worker
processes of one instance share that chain.  An append locks the chain's
row in ``audit_chain`` (``SELECT ... FOR UPDATE``), links the batch after
the head it reads, copies the rows in and moves the head, all in one
transaction: appends to one chain are serialised, appends to different
chains never wait for each other.  One global chain would make every
instance wait on one row lock and make one slow instance stall all others;
per-instance chains keep each instance's order exact and verification
simple (see docs/audit.md).

The content is stored as text where its bytes are hashed (``ts``, and
``params`` as ``text``, not ``jsonb``, which would reorder keys), so a
record reads back exactly as it was hashed.

:class:`PgSyncStore` is the same store for tools that run outside the event
loop (the command line, the sealing thread): it owns a private event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import asyncpg

from gateway.audit.chain import GENESIS, Head, Segmenter, link
from gateway.audit.config import PgAuditSettings
from gateway.audit.record import CHAIN_COLUMNS, CONTENT_COLUMNS, Content
from gateway.audit.seal import SEAL_COLUMNS, Seal
from gateway.audit.store import LateCommit, SqlReader, StoreError, quoted
from gateway.audit.store_sqlite import SCHEMA_VERSION, KeyMismatch

__all__ = ["PgSyncStore", "PostgresWriterStore", "create_pool", "pg_ddl"]

T = TypeVar("T")
_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
_Q = re.compile(r"\?")


def _tables(schema: str) -> dict[str, str]:
    return {n: f'"{schema}".audit_{n}' for n in ("log", "seal", "chain", "meta")}


def pg_ddl(schema: str) -> list[str]:
    t = _tables(schema)
    return [
        f'CREATE SCHEMA IF NOT EXISTS "{schema}"',
        f"""CREATE TABLE IF NOT EXISTS {t["log"]} (
            id bigserial PRIMARY KEY, ts text NOT NULL, request_id text NOT NULL,
            consumer text, office text, officer text, client_ip text, user_agent text,
            method text NOT NULL, path text NOT NULL, service text NOT NULL, kind text NOT NULL,
            sandbox integer NOT NULL, subject_hash text, subject_hint text, params text NOT NULL,
            status integer NOT NULL, code text NOT NULL, "rows" integer NOT NULL,
            latency_ms double precision NOT NULL, backend_ms double precision, error text,
            chain text, seq bigint, segment text, prev_hash text, row_hash text)""",
        f"""CREATE TABLE IF NOT EXISTS {t["seal"]} (
            chain text NOT NULL, segment text NOT NULL, first_seq bigint NOT NULL,
            last_seq bigint NOT NULL, "count" bigint NOT NULL, first_ts text NOT NULL,
            last_ts text NOT NULL, prev_hash text NOT NULL, last_hash text NOT NULL,
            prev_seal text NOT NULL, sealed_at text NOT NULL, key_id text NOT NULL,
            signature text NOT NULL, seal_hash text NOT NULL, archive text,
            archive_sha256 text, archived_at text, PRIMARY KEY (chain, segment))""",
        f"""CREATE TABLE IF NOT EXISTS {t["chain"]} (
            chain text PRIMARY KEY, head_seq bigint NOT NULL, head_hash text NOT NULL,
            head_segment text, sealed_seq bigint NOT NULL DEFAULT 0, sealed_segment text,
            seal_hash text)""",
        f"CREATE TABLE IF NOT EXISTS {t['meta']} (key text PRIMARY KEY, value text NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS audit_log_subject ON {t['log']} (subject_hash)",
        f"CREATE INDEX IF NOT EXISTS audit_log_ts ON {t['log']} (ts, id)",
        f"CREATE INDEX IF NOT EXISTS audit_log_officer ON {t['log']} (officer, ts)",
        f"CREATE INDEX IF NOT EXISTS audit_log_office ON {t['log']} (office, ts)",
        f"CREATE UNIQUE INDEX IF NOT EXISTS audit_log_chain_seq ON {t['log']} (chain, seq)",
        f"CREATE INDEX IF NOT EXISTS audit_log_segment ON {t['log']} (chain, segment, seq)",
    ]


def _dollars(sql: str) -> str:
    n = 0

    def repl(_: re.Match[str]) -> str:
        nonlocal n
        n += 1
        return f"${n}"

    return _Q.sub(repl, sql)


async def create_pool(pg: PgAuditSettings, **options: Any) -> asyncpg.Pool:
    """A pool on ``pg``'s settings (the audit store's, the shared state store's)."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        pg.dsn,
        password=pg.password,
        min_size=1,
        max_size=pg.pool_size,
        timeout=pg.connect_timeout,
        command_timeout=pg.command_timeout,
        **options,
    )
    return pool


async def _prepare(conn: asyncpg.Connection, schema: str, fingerprint: str) -> None:
    t = _tables(schema)
    async with conn.transaction():
        # instances starting together must not race on CREATE TABLE
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"lc2-audit {schema}")
        for ddl in pg_ddl(schema):
            await conn.execute(ddl)
        await conn.executemany(
            f"INSERT INTO {t['meta']} (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            [("key_fingerprint", fingerprint), ("schema_version", SCHEMA_VERSION)],
        )
        stored = await conn.fetchval(f"SELECT value FROM {t['meta']} WHERE key = 'key_fingerprint'")
    if stored != fingerprint:
        raise KeyMismatch(
            f"audit key does not match the one schema {schema} was written with; "
            "restore the original key (audit.key / audit.key_file)"
        )


class PostgresWriterStore:
    """The gateway writer's handle: an asyncpg pool, created again after a failure.

    Every method is synchronous and is called on the audit writer's thread, which
    gives the pool an event loop of its own: the chain's round trips never queue
    behind the calls on the gateway's loop, nor the other way round.
    """

    def __init__(self, pg: PgAuditSettings, chain: str, segmenter: Segmenter) -> None:
        self.pg = pg
        self.chain = chain
        self.segmenter = segmenter
        self.t = _tables(pg.schema)
        self._pool: asyncpg.Pool | None = None
        self._fingerprint = ""
        self._loop: asyncio.AbstractEventLoop | None = None

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    async def _ensure(self) -> asyncpg.Pool:
        if self._pool is None:
            pool = await create_pool(self.pg)
            try:
                async with pool.acquire() as conn:
                    await _prepare(conn, self.pg.schema, self._fingerprint)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool
        return self._pool

    async def _fail(self, exc: BaseException) -> StoreError:
        if self._pool is not None and isinstance(exc, (OSError, asyncpg.InterfaceError)):
            pool, self._pool = self._pool, None
            pool.terminate()  # connections to a restarted server are useless
        return StoreError(f"audit store {self.pg.dsn}: {exc}")

    def open(self, fingerprint: str) -> None:
        self._fingerprint = fingerprint
        self._run(self._open())

    async def _open(self) -> None:
        try:
            await self._ensure()
        except _ERRORS as exc:
            raise await self._fail(exc) from exc

    def append(
        self, take: Callable[[], Sequence[tuple[Content, float]]], in_time: Callable[[], bool]
    ) -> Head | None:
        """Append what ``take()`` returns once the chain's row is locked (see writer.py).

        Rolled back instead of committed, with :class:`LateCommit`, if ``in_time()`` says
        the callers' deadline passed meanwhile.
        """
        return self._run(self._append(take, in_time))

    async def _append(
        self, take: Callable[[], Sequence[tuple[Content, float]]], in_time: Callable[[], bool]
    ) -> Head | None:
        try:
            pool = await self._ensure()
            async with pool.acquire() as conn, conn.transaction():
                head = await self._lock_head(conn)
                items = take()
                if not items:
                    return None
                rows, new = link(head, self.chain, items, self.segmenter)
                await conn.copy_records_to_table(
                    "audit_log",
                    schema_name=self.pg.schema,
                    columns=list(CONTENT_COLUMNS + CHAIN_COLUMNS),
                    records=rows,
                )
                await conn.execute(
                    f"UPDATE {self.t['chain']} SET head_seq = $2, head_hash = $3, "
                    "head_segment = $4 WHERE chain = $1",
                    self.chain,
                    new.seq,
                    new.hash,
                    new.segment,
                )
                if not in_time():
                    raise LateCommit("audit commit outlived commit_timeout: rolled back")
            return new
        except _ERRORS as exc:
            raise await self._fail(exc) from exc

    async def _lock_head(self, conn: asyncpg.Connection) -> Head:
        sql = (
            f"SELECT head_seq, head_hash, head_segment, sealed_segment FROM {self.t['chain']} "
            "WHERE chain = $1 FOR UPDATE"
        )
        row = await conn.fetchrow(sql, self.chain)
        if row is None:
            await conn.execute(
                f"INSERT INTO {self.t['chain']} (chain, head_seq, head_hash) VALUES ($1, 0, $2) "
                "ON CONFLICT DO NOTHING",
                self.chain,
                GENESIS,
            )
            row = await conn.fetchrow(sql, self.chain)
        return Head(*row)

    def probe(self, now: str) -> None:
        self._run(self._probe(now))

    async def _probe(self, now: str) -> None:
        try:
            pool = await self._ensure()
            await pool.execute(
                f"INSERT INTO {self.t['meta']} (key, value) VALUES ($1, $2) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                f"heartbeat:{self.chain}",
                now,
            )
        except _ERRORS as exc:
            raise await self._fail(exc) from exc

    def free_bytes(self) -> None:
        return None  # the database server's disk is its own operator's to watch

    def close(self) -> None:
        if self._loop is None:
            return
        try:
            if self._pool is not None:
                pool, self._pool = self._pool, None
                self._run(pool.close())
        finally:
            self._loop.close()
            self._loop = None

    def reader(self) -> PgSyncStore:
        return PgSyncStore(self.pg)


class PgSyncStore(SqlReader):
    """The PostgreSQL store for synchronous callers: a private loop and one connection."""

    def __init__(self, pg: PgAuditSettings) -> None:
        t = _tables(pg.schema)
        self.log, self.seal_table, self.chain_table, self.meta_table = (
            t["log"],
            t["seal"],
            t["chain"],
            t["meta"],
        )
        self.pg = pg
        self._loop = asyncio.new_event_loop()
        connect = asyncpg.connect(
            pg.dsn,
            password=pg.password,
            timeout=pg.connect_timeout,
            command_timeout=max(pg.command_timeout, 60.0),
        )
        try:
            self._conn: asyncpg.Connection = self._loop.run_until_complete(connect)
        except BaseException as exc:
            connect.close()
            self._loop.close()
            if isinstance(exc, _ERRORS):
                raise StoreError(f"audit store {pg.dsn}: {exc}") from exc
            raise

    def _run(self, coro: Any) -> Any:
        try:
            return self._loop.run_until_complete(coro)
        except _ERRORS as exc:
            raise StoreError(f"audit store {self.pg.dsn}: {exc}") from exc

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        records = self._run(self._conn.fetch(_dollars(sql), *params))
        return [tuple(r) for r in records]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> str:
        out: str = self._run(self._conn.execute(_dollars(self._sql(sql)), *params))
        return out

    def close(self) -> None:
        try:
            self._run(self._conn.close())
        finally:
            self._loop.close()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        # REPEATABLE READ: every statement of the transaction sees the snapshot its
        # first statement took, whatever the instances commit meanwhile.
        tx = self._conn.transaction(isolation="repeatable_read", readonly=True)
        self._run(tx.start())
        try:
            yield
        finally:
            with contextlib.suppress(StoreError):
                self._run(tx.rollback())

    def prepare(self, fingerprint: str) -> None:
        self._run(_prepare(self._conn, self.pg.schema, fingerprint))

    def insert_seal(self, seal: Seal, previous: Seal | None) -> bool:
        async def run() -> bool:
            c = self._conn
            async with c.transaction():
                await c.fetchrow(
                    f"SELECT 1 FROM {self.chain_table} WHERE chain = $1 FOR UPDATE", seal.chain
                )
                latest = await c.fetchval(
                    f"SELECT seal_hash FROM {self.seal_table} WHERE chain = $1 "
                    "ORDER BY first_seq DESC LIMIT 1",
                    seal.chain,
                )
                if latest != (previous.seal_hash if previous else None):
                    return False
                end = await c.fetchval(
                    f"SELECT max(seq) FROM {self.log} WHERE chain = $1 AND segment = $2",
                    seal.chain,
                    seal.segment,
                )
                last = await c.fetchval(
                    f"SELECT row_hash FROM {self.log} WHERE chain = $1 AND seq = $2",
                    seal.chain,
                    seal.last_seq,
                )
                if end != seal.last_seq or last != seal.last_hash:
                    return False
                n = len(SEAL_COLUMNS) + 1
                await c.execute(
                    f"INSERT INTO {self.seal_table} ({quoted(SEAL_COLUMNS)}, seal_hash) "
                    f"VALUES ({', '.join(f'${i}' for i in range(1, n + 1))})",
                    *seal.values(),
                    seal.seal_hash,
                )
                await c.execute(
                    f"UPDATE {self.chain_table} SET sealed_seq = $2, sealed_segment = $3, "
                    "seal_hash = $4 WHERE chain = $1",
                    seal.chain,
                    seal.last_seq,
                    seal.segment,
                    seal.seal_hash,
                )
            return True

        ok: bool = self._run(run())
        return ok

    def mark_archived(self, seal: Seal, name: str, sha256: str, at: str) -> None:
        self.execute(
            "UPDATE {seal} SET archive = ?, archive_sha256 = ?, archived_at = ? "
            "WHERE chain = ? AND segment = ?",
            (name, sha256, at, seal.chain, seal.segment),
        )

    def purge_segment(self, seal: Seal, batch: int = 2000) -> int:
        total = 0
        while True:
            status = self.execute(
                "DELETE FROM {log} WHERE id IN (SELECT id FROM {log} WHERE chain = ? "
                "AND segment = ? AND seq BETWEEN ? AND ? LIMIT ?)",
                (seal.chain, seal.segment, seal.first_seq, seal.last_seq, batch),
            )
            n = int(status.split()[-1])
            total += n
            if n < batch:
                return total
