"""Failed sign-in counts in the shared state store, so a fleet holds one limit.

The same counters as :class:`gateway.security.lockout.SqliteCounters` (read
that module for what they mean), kept on PostgreSQL beside the quota
counters.  Each method is one transaction that locks the rows it decides on
(``SELECT ... FOR UPDATE``, in a fixed order so two gateways never
deadlock), so guesses spread over the gateways of a fleet are counted
against one limit.  This costs a few round trips, but only for a sign-in
not yet remembered from its address; remembered ones never come here.

While the store is unreachable no attempt can be counted: with
``fail_closed`` such a sign-in is refused (the caller is told to wait),
with ``fail_open`` it is checked uncounted.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from gateway.config.models import AuthFailuresConfig
from gateway.security.lockout import _BUSY_RETRY, _KNOWN_PER_USER, Outcome, Slot
from gateway.sharedstate import SharedState, StoreUnreachable

__all__ = ["PgCounters"]

_Row = list[float]  # since, failures, pending, locked_until
_Rows = dict[tuple[str, str], _Row]
_UNREACHABLE_RETRY = 5.0


def _ddl(s: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS {s}.auth_counter (
            scope text NOT NULL, key text NOT NULL, since double precision NOT NULL,
            failures integer NOT NULL, pending integer NOT NULL,
            locked_until double precision NOT NULL, PRIMARY KEY (scope, key))""",
        f"""CREATE TABLE IF NOT EXISTS {s}.auth_known (
            "user" text NOT NULL, address text NOT NULL, seen double precision NOT NULL,
            PRIMARY KEY ("user", address))""",
        f"CREATE TABLE IF NOT EXISTS {s}.auth_meta (name text PRIMARY KEY, value bytea NOT NULL)",
    ]


class PgCounters:
    def __init__(self, shared: SharedState, *, clock: Callable[[], float] = time.time) -> None:
        self._shared = shared
        self._clock = clock
        self._s = f'"{shared.pg.schema}"'
        self._key = b""

    async def open(self) -> None:
        with contextlib.suppress(StoreUnreachable):  # else set up on first use
            await self._shared.run(self._setup)

    async def _setup(self, conn: asyncpg.Connection) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self._s + " auth")
            for ddl in _ddl(self._s):
                await conn.execute(ddl)
            # one key for the whole fleet: the same username has the same digest everywhere
            await conn.execute(
                f"INSERT INTO {self._s}.auth_meta VALUES ('user_key', $1) ON CONFLICT DO NOTHING",
                secrets.token_bytes(16),
            )
            self._key = bytes(
                await conn.fetchval(f"SELECT value FROM {self._s}.auth_meta WHERE name='user_key'")
            )

    async def close(self) -> None:
        return None  # the pool is the shared store's

    def digest(self, username: str) -> str:
        raw = username.encode("utf-8", "surrogateescape")
        return hashlib.blake2b(raw, key=self._key, digest_size=16).hexdigest()

    async def _tx(
        self,
        slots: Sequence[Slot],
        policy: AuthFailuresConfig,
        decide: Callable[[asyncpg.Connection, float, _Rows], Awaitable[Outcome]],
    ) -> Outcome:
        if not self._key:
            try:
                await self._shared.run(self._setup)
            except StoreUnreachable:
                return self._unreachable()
        order = sorted(slots, key=lambda x: (x.scope, x.key))

        async def tx(conn: asyncpg.Connection) -> Outcome:
            async with conn.transaction():
                now = self._clock()
                await conn.executemany(
                    f"INSERT INTO {self._s}.auth_counter VALUES ($1, $2, $3, 0, 0, 0) "
                    "ON CONFLICT DO NOTHING",
                    [(x.scope, x.key, now) for x in order],
                )
                rows: _Rows = {}
                for x in order:  # one at a time, in order: the locks are taken in that order
                    r = await conn.fetchrow(
                        f"SELECT since, failures, pending, locked_until FROM "
                        f"{self._s}.auth_counter WHERE scope = $1 AND key = $2 FOR UPDATE",
                        x.scope,
                        x.key,
                    )
                    since, failures, pending, until = (float(v) for v in r)
                    if now - since > policy.window and until <= now:
                        since, failures, pending = now, 0, 0  # a new window
                    rows[(x.scope, x.key)] = [since, failures, pending, until]
                out = await decide(conn, now, rows)
                await conn.executemany(
                    f"UPDATE {self._s}.auth_counter SET since = $3, failures = $4, "
                    "pending = $5, locked_until = $6 WHERE scope = $1 AND key = $2",
                    [(*k, v[0], int(v[1]), int(v[2]), v[3]) for k, v in rows.items()],
                )
                return out

        try:
            out: Outcome = await self._shared.run(tx)
        except StoreUnreachable:
            return self._unreachable()
        return out

    def _unreachable(self) -> Outcome:
        if self._shared.fail_closed:
            return Outcome(_UNREACHABLE_RETRY)
        return Outcome(None)

    async def _known(self, conn: asyncpg.Connection, known: tuple[str, str] | None) -> bool:
        if known is None:
            return False
        sql = f'SELECT 1 FROM {self._s}.auth_known WHERE "user" = $1 AND address = $2'
        return await conn.fetchval(sql, *known) is not None

    async def reserve(
        self, slots: Sequence[Slot], policy: AuthFailuresConfig, known: tuple[str, str] | None
    ) -> Outcome:
        return await self._reserve(slots, policy, known, then_fail=False)

    async def fail(self, slots: Sequence[Slot], policy: AuthFailuresConfig) -> Outcome:
        return await self._reserve(slots, policy, None, then_fail=True)

    async def _reserve(
        self,
        slots: Sequence[Slot],
        policy: AuthFailuresConfig,
        known: tuple[str, str] | None,
        *,
        then_fail: bool,
    ) -> Outcome:
        async def decide(conn: asyncpg.Connection, now: float, rows: _Rows) -> Outcome:
            held = list(slots)
            if any(x.scope == "username" for x in held) and await self._known(conn, known):
                held = [x for x in held if x.scope != "username"]
            wait: float | None = None
            locked = []
            for x in held:
                _, failures, pending, until = rows[(x.scope, x.key)]
                if until > now:
                    locked.append((x.scope, x.key, until))
                    wait = max(wait or 0.0, until - now)
                elif failures + pending >= x.limit:
                    wait = max(wait or 0.0, _BUSY_RETRY)
            if wait is not None:
                return Outcome(wait, locked=tuple(locked))
            for x in held:
                rows[(x.scope, x.key)][2] += 1
            if then_fail:
                return self._count(held, policy, now, rows, failed=True)
            return Outcome(None, tuple(held))

        return await self._tx(slots, policy, decide)

    async def settle(
        self,
        slots: Sequence[Slot],
        policy: AuthFailuresConfig,
        *,
        failed: bool,
        known: tuple[str, str] | None,
    ) -> Outcome:
        async def decide(conn: asyncpg.Connection, now: float, rows: _Rows) -> Outcome:
            out = self._count(slots, policy, now, rows, failed=failed)
            if known is not None:
                t = f"{self._s}.auth_known"
                await conn.execute(
                    f"INSERT INTO {t} VALUES ($1, $2, $3) ON CONFLICT ON CONSTRAINT "
                    f"auth_known_pkey DO UPDATE SET seen = $3",
                    *known,
                    now,
                )
                await conn.execute(
                    f'DELETE FROM {t} WHERE "user" = $1 AND address NOT IN (SELECT address '
                    f'FROM {t} WHERE "user" = $1 ORDER BY seen DESC LIMIT $2)',
                    known[0],
                    _KNOWN_PER_USER,
                )
            return out

        return await self._tx(slots, policy, decide)

    @staticmethod
    def _count(
        slots: Sequence[Slot],
        policy: AuthFailuresConfig,
        now: float,
        rows: _Rows,
        *,
        failed: bool,
    ) -> Outcome:
        """Give each slot's place back, counting a failure (and maybe a lock) if ``failed``."""
        locked = []
        begun = []
        for x in slots:
            row = rows[(x.scope, x.key)]
            row[2] = max(row[2] - 1, 0)
            if failed:
                row[1] += 1
                if row[1] >= x.limit:
                    # counting starts again once the lock ends
                    row[0], row[1], row[3] = now, 0, now + policy.lockout
                    locked.append((x.scope, x.key, row[3]))
                    begun.append(x.scope)
        return Outcome(None, locked=tuple(locked), begun=tuple(begun))
