"""Failed sign-ins: counted before the password is hashed, shared by all workers, kept on disk.

Brute force must cost the attacker and not us.  An attempt takes its place
in the counters *before* its password is hashed: the counters hold failures
and attempts still being checked, and an attempt that would take a count
past its limit is refused (429) without hashing anything.  So N parallel
guesses never cost more than the limit, and the right password sent among
them is refused like the rest.  When failures reach a limit within
``window`` seconds, that scope is locked for ``lockout`` seconds.

Two scopes are counted for a password attempt from address A for username U:

``address``   every failed sign-in from A (wrong password, unknown username,
              wrong API key, right credentials from a wrong place), limit
              ``per_address``; locks A alone, so an attacker can only lock
              itself out.
``username``  failures for U from addresses that are neither in U's
              consumer ``allow_from`` nor ones U has signed in from, limit
              ``per_username``; the lock applies only to such addresses.
              LC2 calling from its own addresses is never refused by a
              lock someone else caused.  An unknown username has no allow
              list, so every address counts: it locks like a real one.

The counters live in a :class:`CounterStore`; :class:`SqliteCounters` keeps
them in the quota store's SQLite file, which every worker of one machine
shares and which survives restarts.  A call is one round trip to the store
before the hash and one after; a call whose credentials were already
verified from that address makes none.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from gateway.config.models import AuthFailuresConfig
from gateway.statefile import StateFile

__all__ = [
    "CounterStore",
    "Lockouts",
    "Reservation",
    "Slot",
    "SqliteCounters",
]

T = TypeVar("T")
# an attempt refused because others are still being checked: they will be answered in
# well under a second, so the caller may try again soon
_BUSY_RETRY = 1.0
_KNOWN_PER_USER = 32  # addresses remembered per username
_PURGE_EVERY = 500  # writes between sweeps of counters whose window has passed


@dataclass(frozen=True, slots=True)
class Slot:
    scope: str  # "address" or "username"
    key: str  # the address, or the username's keyed digest
    limit: int


@dataclass(frozen=True, slots=True)
class Reservation:
    slots: tuple[Slot, ...]  # the counters this attempt holds a place in
    address: str
    user: str | None  # the username's digest, remembered with the address on success


@dataclass(frozen=True, slots=True)
class Outcome:
    wait: float | None  # seconds to wait if refused, else None
    slots: tuple[Slot, ...] = ()  # reserved (on success)
    locked: tuple[tuple[str, str, float], ...] = ()  # locks seen or begun: scope, key, until
    begun: tuple[str, ...] = ()  # scopes this call locked


class CounterStore(Protocol):
    """Where the counters live.  Each method is one atomic round trip.

    ``reserve`` takes a place in every slot or in none; a username slot is
    skipped when ``known`` (username digest, address) has signed in before.
    ``settle`` gives the places back, counting a failure in each if ``failed``,
    and remembers ``known`` on success.  ``fail`` is ``reserve`` and
    ``settle(failed=True)`` at once, for failures that need no hash.
    """

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def digest(self, username: str) -> str: ...

    async def reserve(
        self, slots: Sequence[Slot], policy: AuthFailuresConfig, known: tuple[str, str] | None
    ) -> Outcome: ...

    async def settle(
        self,
        slots: Sequence[Slot],
        policy: AuthFailuresConfig,
        *,
        failed: bool,
        known: tuple[str, str] | None,
    ) -> Outcome: ...

    async def fail(self, slots: Sequence[Slot], policy: AuthFailuresConfig) -> Outcome: ...


class Lockouts:
    """The per-process face of the counters: builds the slots, keeps metrics."""

    def __init__(
        self,
        store: CounterStore,
        policy: AuthFailuresConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.policy = policy or AuthFailuresConfig()
        self._clock = clock
        self.started = {"address": 0, "username": 0}  # locks this process began, for metrics
        self._seen: dict[tuple[str, str], float] = {}  # locks this process knows of -> until

    def locked(self) -> dict[str, int]:
        """How many addresses and usernames this process knows to be locked now."""
        now = self._clock()
        self._seen = {k: t for k, t in self._seen.items() if t > now}
        out = {"address": 0, "username": 0}
        for scope, _ in self._seen:
            out[scope] += 1
        return out

    def _note(self, outcome: Outcome) -> float | None:
        for scope, key, until in outcome.locked:
            self._seen[(scope, key)] = until
        for scope in outcome.begun:
            self.started[scope] += 1
        return outcome.wait

    async def reserve(self, address: str, username: str, *, exempt: bool) -> Reservation | float:
        """A place for one password check, or the seconds to wait before trying again.

        ``exempt``: the address is in the username's consumer ``allow_from``.
        """
        policy = self.policy
        if not policy.enabled:
            return Reservation((), address, None)
        user = self.store.digest(username)
        slots = [Slot("address", address, policy.per_address)]
        if not exempt:
            slots.append(Slot("username", user, policy.per_username))
        outcome = await self.store.reserve(slots, policy, (user, address))
        wait = self._note(outcome)
        if wait is not None:
            return wait
        return Reservation(outcome.slots, address, user)

    async def settle(self, reservation: Reservation, *, failed: bool, remember: bool) -> None:
        """Give the place back; a failure is counted, a success may remember the address."""
        if not reservation.slots:  # lock-outs are off
            return
        known = None
        if remember and not failed and reservation.user is not None:
            known = (reservation.user, reservation.address)
        self._note(
            await self.store.settle(reservation.slots, self.policy, failed=failed, known=known)
        )

    async def fail(self, address: str) -> float | None:
        """Count a failure that needed no hash; the seconds to wait if the address is locked."""
        if not self.policy.enabled or not address:
            return None
        slot = Slot("address", address, self.policy.per_address)
        return self._note(await self.store.fail([slot], self.policy))


# -- SQLite, on one machine ------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS auth_counter (
    scope        TEXT NOT NULL,
    key          TEXT NOT NULL,
    since        REAL NOT NULL,
    failures     INTEGER NOT NULL,
    pending      INTEGER NOT NULL,
    locked_until REAL NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS auth_known (
    user    TEXT NOT NULL,
    address TEXT NOT NULL,
    seen    REAL NOT NULL,
    PRIMARY KEY (user, address)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS auth_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
"""

_Row = tuple[float, int, int, float]  # since, failures, pending, locked_until


class SqliteCounters:
    """Counters in an SQLite file shared by the workers of one machine (the quota store's).

    Every method is one ``BEGIN IMMEDIATE`` transaction on a dedicated thread,
    so workers never count the same place twice and the event loop never
    waits on a lock.
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._file = StateFile(path, "lockout")  # the quota store's file
        self._key = b""
        self._writes = 0
        self._window = 3600.0  # the longest a counter is kept; the policy's once one is seen

    async def open(self) -> None:
        await self._file.open(self._setup)
        await self._file.run(self._tx, self._purge)

    def _setup(self, db: sqlite3.Connection) -> None:
        db.executescript(_SCHEMA)
        # usernames are kept as digests under one key all workers share: a password typed
        # into the username field never lands on disk in clear
        db.execute(
            "INSERT OR IGNORE INTO auth_meta VALUES ('user_key', ?)", (secrets.token_bytes(16),)
        )
        self._key = bytes(
            db.execute("SELECT value FROM auth_meta WHERE name = 'user_key'").fetchone()[0]
        )

    async def close(self) -> None:
        await self._file.close()

    def digest(self, username: str) -> str:
        raw = username.encode("utf-8", "surrogateescape")
        return hashlib.blake2b(raw, key=self._key, digest_size=16).hexdigest()

    def _tx(self, fn: Callable[..., T], *args: object) -> T:
        out = self._file.transaction(fn, *args)
        self._writes += 1
        if self._writes % _PURGE_EVERY == 0:
            self._file.transaction(self._purge)
        return out

    def _purge(self, db: sqlite3.Connection) -> None:
        now = self._clock()
        db.execute(
            "DELETE FROM auth_counter WHERE locked_until <= ? AND since < ?",
            (now, now - self._window),
        )

    @staticmethod
    def _row(db: sqlite3.Connection, slot: Slot, now: float, window: float) -> _Row:
        got = db.execute(
            "SELECT since, failures, pending, locked_until FROM auth_counter "
            "WHERE scope = ? AND key = ?",
            (slot.scope, slot.key),
        ).fetchone()
        if got is None:
            return now, 0, 0, 0.0
        since, failures, pending, until = got
        if now - since > window and until <= now:
            # a new window; places left by a worker that died mid-check go with the old one
            return now, 0, 0, until
        return float(since), int(failures), int(pending), float(until)

    @staticmethod
    def _put(db: sqlite3.Connection, slot: Slot, row: _Row) -> None:
        db.execute(
            "INSERT OR REPLACE INTO auth_counter VALUES (?, ?, ?, ?, ?, ?)",
            (slot.scope, slot.key, *row),
        )

    @staticmethod
    def _is_known(db: sqlite3.Connection, known: tuple[str, str] | None) -> bool:
        if known is None:
            return False
        return (
            db.execute("SELECT 1 FROM auth_known WHERE user = ? AND address = ?", known).fetchone()
            is not None
        )

    def _reserve(
        self,
        db: sqlite3.Connection,
        slots: Sequence[Slot],
        policy: AuthFailuresConfig,
        known: tuple[str, str] | None,
        then_fail: bool,
    ) -> Outcome:
        now = self._clock()
        self._window = policy.window
        if any(s.scope == "username" for s in slots) and self._is_known(db, known):
            slots = [s for s in slots if s.scope != "username"]
        wait: float | None = None
        locked: list[tuple[str, str, float]] = []
        rows: list[_Row] = []
        for slot in slots:
            row = self._row(db, slot, now, policy.window)
            since, failures, pending, until = row
            if until > now:
                locked.append((slot.scope, slot.key, until))
                wait = max(wait or 0.0, until - now)
            elif failures + pending >= slot.limit:
                wait = max(wait or 0.0, _BUSY_RETRY)
            rows.append(row)
        if wait is not None:
            return Outcome(wait, locked=tuple(locked))
        for slot, (since, failures, pending, until) in zip(slots, rows, strict=True):
            self._put(db, slot, (since, failures, pending + 1, until))
        if then_fail:
            return self._settle(db, slots, policy, True, None)
        return Outcome(None, tuple(slots))

    def _settle(
        self,
        db: sqlite3.Connection,
        slots: Sequence[Slot],
        policy: AuthFailuresConfig,
        failed: bool,
        known: tuple[str, str] | None,
    ) -> Outcome:
        now = self._clock()
        locked: list[tuple[str, str, float]] = []
        begun: list[str] = []
        for slot in slots:
            since, failures, pending, until = self._row(db, slot, now, policy.window)
            pending = max(pending - 1, 0)
            if failed:
                failures += 1
                if failures >= slot.limit:
                    # counting starts again once the lock ends
                    since, failures, until = now, 0, now + policy.lockout
                    locked.append((slot.scope, slot.key, until))
                    begun.append(slot.scope)
            self._put(db, slot, (since, failures, pending, until))
        if known is not None:
            db.execute("INSERT OR REPLACE INTO auth_known VALUES (?, ?, ?)", (*known, now))
            db.execute(
                "DELETE FROM auth_known WHERE user = ? AND address NOT IN (SELECT address "
                "FROM auth_known WHERE user = ? ORDER BY seen DESC LIMIT ?)",
                (known[0], known[0], _KNOWN_PER_USER),
            )
        return Outcome(None, locked=tuple(locked), begun=tuple(begun))

    async def reserve(
        self, slots: Sequence[Slot], policy: AuthFailuresConfig, known: tuple[str, str] | None
    ) -> Outcome:
        out: Outcome = await self._file.run(self._tx, self._reserve, slots, policy, known, False)
        return out

    async def settle(
        self,
        slots: Sequence[Slot],
        policy: AuthFailuresConfig,
        *,
        failed: bool,
        known: tuple[str, str] | None,
    ) -> Outcome:
        out: Outcome = await self._file.run(self._tx, self._settle, slots, policy, failed, known)
        return out

    async def fail(self, slots: Sequence[Slot], policy: AuthFailuresConfig) -> Outcome:
        out: Outcome = await self._file.run(self._tx, self._reserve, slots, policy, None, True)
        return out

    async def rows(self) -> int:
        """How many counters are kept (the store's bound is tested with it)."""
        got = await self._file.run(self._file.read, "SELECT count(*) FROM auth_counter")
        return int(str(got[0][0]))
