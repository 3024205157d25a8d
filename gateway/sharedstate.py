"""The shared state store on PostgreSQL, for several gateways behind a load balancer.

With ``state: {store: postgresql}`` the counters and switches that must be
exact across every process of a fleet live here instead of in the SQLite
file of one machine: quota counters, the maintenance switch and its
message, and each instance's config generation (failed sign-in counts are
:class:`gateway.security.lockout_pg.PgCounters`, on the same pool).

A quota decision is one round trip: one call of ``quota_take``, a function
made at start-up whose every statement is ``INSERT ... ON CONFLICT DO UPDATE
... WHERE calls < limit RETURNING``.  The row lock of the conflict makes the
check and the count one step, so concurrent calls on any number of gateways
never take a counter past its limit; when any rule refuses, the function's
own sub-transaction undoes the counts of the rules before it, so a refused
call uses nothing.

When the store can not be reached, :attr:`up` turns False (shown in /health
and the metrics) and callers apply the operator's ``on_unreachable``.  The
pool is made again on the next use, so the gateway recovers without a
restart once the store is back; the maintenance poll, once a second, is the
probe that notices it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from gateway.audit.config import PgAuditSettings
from gateway.audit.store_postgres import create_pool

__all__ = ["SharedState", "StoreUnreachable", "shared_maintenance"]

log = logging.getLogger("lc2_gateway.state")
T = TypeVar("T")
_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


class StoreUnreachable(Exception):
    """The shared state store did not answer; the caller applies the fail mode."""


def _ddl(schema: str) -> list[str]:
    s = f'"{schema}"'
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"""CREATE TABLE IF NOT EXISTS {s}.quota_counter (
            rule text NOT NULL, subject text NOT NULL, win text NOT NULL,
            calls integer NOT NULL, PRIMARY KEY (rule, subject, win))""",
        f"""CREATE TABLE IF NOT EXISTS {s}.switch (
            name text PRIMARY KEY, message text, since timestamptz NOT NULL DEFAULT now())""",
        f"""CREATE TABLE IF NOT EXISTS {s}.instance (
            instance text PRIMARY KEY, config_version text NOT NULL,
            generation bigint NOT NULL, changed timestamptz NOT NULL DEFAULT now())""",
        # Returns 0 when every rule counted the call, else the (1-based) rule that refused it.
        # The inner block is a sub-transaction: leaving it by the exception undoes the
        # counts already made, while the loop variable keeps which rule refused.
        f"""CREATE OR REPLACE FUNCTION {s}.quota_take(
                rules text[], subjects text[], wins text[], limits integer[])
            RETURNS integer LANGUAGE plpgsql AS $$
            DECLARE n integer := 0; got integer;
            BEGIN
                BEGIN
                    FOR i IN 1 .. coalesce(array_length(rules, 1), 0) LOOP
                        n := i;  -- the loop's own i is gone once the exception leaves it
                        INSERT INTO {s}.quota_counter AS q (rule, subject, win, calls)
                        VALUES (rules[i], subjects[i], wins[i], 1)
                        ON CONFLICT (rule, subject, win)
                        DO UPDATE SET calls = q.calls + 1 WHERE q.calls < limits[i]
                        RETURNING q.calls INTO got;
                        IF NOT FOUND THEN
                            RAISE EXCEPTION USING ERRCODE = 'LC2QF';
                        END IF;
                    END LOOP;
                EXCEPTION WHEN SQLSTATE 'LC2QF' THEN
                    RETURN n;
                END;
                RETURN 0;
            END $$""",
    ]


class SharedState:
    def __init__(self, pg: PgAuditSettings, *, fail_closed: bool) -> None:
        self.pg = pg
        self.fail_closed = fail_closed
        self.up = False
        self.error: str | None = None  # why it is down (None before the first try)
        self.uncounted = 0  # calls served without a quota decision (fail_open), for metrics
        self._pool: asyncpg.Pool | None = None
        self._s = f'"{pg.schema}"'

    def status(self) -> dict[str, Any]:
        return {
            "store": "postgresql",
            "status": "up" if self.up else "down",
            "onUnreachable": "fail_closed" if self.fail_closed else "fail_open",
            "error": self.error,
        }

    async def open(self) -> None:
        """Connect and make the tables; an unreachable store is not fatal (see run)."""
        try:
            await self.run(lambda conn: conn.execute("SELECT 1"))
        except StoreUnreachable:
            log.error("shared state store unreachable at start: %s", self.error)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def _ensure(self) -> asyncpg.Pool:
        if self._pool is None:
            pool = await create_pool(
                self.pg,
                # counters, not evidence (the audit is that): no WAL flush to wait for on
                # each call; a crash of the server may forget the last few counts
                server_settings={"synchronous_commit": "off"},
                # nothing here leaves session state behind (only transaction locks), so
                # the reset asyncpg runs on every release would be a second round trip
                reset=_no_reset,
            )
            try:
                async with pool.acquire() as conn, conn.transaction():
                    # instances starting together must not race on CREATE
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self._s)
                    for ddl in _ddl(self.pg.schema):
                        await conn.execute(ddl)
            except BaseException:
                pool.terminate()
                raise
            self._pool = pool
        return self._pool

    async def run(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """``fn(conn)`` on a pooled connection, or StoreUnreachable."""
        try:
            pool = await self._ensure()
            # no acquire timeout: waiting for a busy pool is load, not an unreachable store
            async with pool.acquire() as conn:
                out = await fn(conn)
        except _ERRORS as exc:
            if self.up:
                log.error("shared state store unreachable: %s", exc)
            self.up, self.error = False, str(exc) or type(exc).__name__
            if self._pool is not None and not isinstance(exc, asyncpg.PostgresError):
                pool, self._pool = self._pool, None
                pool.terminate()  # connections to a restarted server are useless
            raise StoreUnreachable(self.error) from exc
        if self.error is not None:
            log.warning("shared state store reachable again")
        self.up, self.error = True, None
        return out

    async def quota_take(self, keys: Sequence[tuple[str, str, str, int]]) -> int:
        """Count a call under every (rule, subject, window, limit), or none: 0, or the refuser."""
        args = [list(col) for col in zip(*keys, strict=True)]
        sql = f"SELECT {self._s}.quota_take($1, $2, $3, $4)"
        got: int = await self.run(lambda conn: conn.fetchval(sql, *args))
        return got

    async def sweep_quota(self, before: str) -> None:
        """Forget the counters of windows that began before ``before`` (ISO, like the keys)."""
        sql = f"DELETE FROM {self._s}.quota_counter WHERE win < $1"
        await self.run(lambda conn: conn.execute(sql, before))

    async def maintenance(self) -> str | None:
        sql = f"SELECT message FROM {self._s}.switch WHERE name = 'maintenance'"
        got: str | None = await self.run(lambda conn: conn.fetchval(sql))
        return got

    async def set_maintenance(self, message: str | None) -> None:
        if message is None:
            sql = f"DELETE FROM {self._s}.switch WHERE name = 'maintenance'"
            await self.run(lambda conn: conn.execute(sql))
            return
        sql = (
            f"INSERT INTO {self._s}.switch (name, message) VALUES ('maintenance', $1) "
            "ON CONFLICT (name) DO UPDATE SET message = $1, since = now()"
        )
        await self.run(lambda conn: conn.execute(sql, message))

    async def note_generation(self, instance: str, version: str) -> None:
        """Record that ``instance`` now runs config ``version`` (its generation counts reloads)."""
        sql = (
            f"INSERT INTO {self._s}.instance AS i (instance, config_version, generation) "
            "VALUES ($1, $2, 1) ON CONFLICT (instance) DO UPDATE SET config_version = $2, "
            "generation = i.generation + 1, changed = now()"
        )
        await self.run(lambda conn: conn.execute(sql, instance, version))

    async def generations(self) -> dict[str, tuple[str, int]]:
        """Every instance's config version and generation: a fleet half-reloaded shows here."""
        sql = f"SELECT instance, config_version, generation FROM {self._s}.instance"
        rows = await self.run(lambda conn: conn.fetch(sql))
        return {r["instance"]: (r["config_version"], int(r["generation"])) for r in rows}


async def shared_maintenance(pg: PgAuditSettings, state: str, message: str | None) -> str | None:
    """``lc2-gateway maintenance on|off|status`` for a fleet: the switch's message after."""
    store = SharedState(pg, fail_closed=True)
    try:
        if state == "on":
            await store.set_maintenance(message or "under maintenance")
        elif state == "off":
            await store.set_maintenance(None)
        return await store.maintenance()
    finally:
        await store.close()
