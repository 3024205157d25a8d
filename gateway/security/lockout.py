"""Failed sign-ins: counted per client address and per username, then locked out.

Brute force must cost the attacker and not us.  Each failure is counted for
the caller's address and for the username it tried (unknown usernames too,
so a lock-out says nothing about which usernames exist).  When a count
reaches its limit within ``window`` seconds, that address or username is
locked for ``lockout`` seconds: every call from it is answered 429 at once,
with the same answer whether its password is right or wrong, and without
running the slow password hash at all.

A username lock never applies to an address that username has signed in
from successfully: an attacker hammering ``Linkage Service`` from elsewhere
must not lock LC2 itself out.  The address limit still bounds what any one
address can try, whatever it has done before.

State is kept in memory, per worker process, for the life of the process
(a config reload changes the limits, not the counts).  Memory is bounded:
at most ``max_tracked`` addresses and usernames are counted, the oldest
forgotten first, and usernames are kept only as keyed digests.  While
nothing is locked, the check on a call is one attribute read.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["LockoutPolicy", "Lockouts"]


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    enabled: bool = True
    window: float = 300.0  # seconds over which failures are counted
    per_address: int = 20
    per_username: int = 10
    lockout: float = 900.0  # seconds a locked address or username is refused


class _Counter:
    __slots__ = ("count", "since")

    def __init__(self, now: float) -> None:
        self.since = now
        self.count = 0


class Lockouts:
    def __init__(
        self,
        policy: LockoutPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_tracked: int = 50_000,
    ) -> None:
        self.policy = policy or LockoutPolicy()
        self._clock = clock
        self._max = max_tracked
        self._key = secrets.token_bytes(16)
        self._failures: OrderedDict[tuple[str, str | bytes], _Counter] = OrderedDict()
        self._locked: dict[tuple[str, str | bytes], float] = {}  # key -> locked until
        self._earliest = math.inf
        self._known: dict[str, OrderedDict[str, None]] = {}  # username -> good addresses
        self.started = {"address": 0, "username": 0}  # locks begun, for metrics

    # -- read -----------------------------------------------------------------

    @property
    def active(self) -> bool:
        """True while anything is locked; the per-call fast path reads only this."""
        if not self._locked:
            return False
        now = self._clock()
        if now >= self._earliest:
            self._locked = {k: t for k, t in self._locked.items() if t > now}
            self._earliest = min(self._locked.values(), default=math.inf)
        return bool(self._locked)

    def locked(self) -> dict[str, int]:
        """How many addresses and usernames are locked now."""
        out = {"address": 0, "username": 0}
        if self.active:
            for scope, _ in self._locked:
                out[scope] += 1
        return out

    def retry_after(self, address: str, username: str | None) -> float | None:
        """Seconds until this caller may try again, or None if it is not locked out."""
        if not self.policy.enabled or not self.active:
            return None
        now = self._clock()
        until = self._locked.get(("address", address), 0.0)
        if username is not None and address not in self._known.get(username, ()):
            until = max(until, self._locked.get(("username", self._digest(username)), 0.0))
        return until - now if until > now else None

    # -- write ----------------------------------------------------------------

    def failure(self, address: str, username: str | None) -> None:
        policy = self.policy
        if not policy.enabled:
            return
        now = self._clock()
        if address:
            self._count(("address", address), policy.per_address, now)
        if username is not None:
            self._count(("username", self._digest(username)), policy.per_username, now)

    def success(self, address: str, username: str) -> None:
        """Remember ``address`` as one ``username`` signs in from (a bounded, recent set)."""
        known = self._known.setdefault(username, OrderedDict())
        known[address] = None
        known.move_to_end(address)
        if len(known) > 32:
            known.popitem(last=False)

    # -- inside -----------------------------------------------------------------

    def _digest(self, username: str) -> bytes:
        raw = username.encode("utf-8", "surrogateescape")
        return hashlib.blake2b(raw, key=self._key, digest_size=16).digest()

    def _count(self, key: tuple[str, str | bytes], limit: int, now: float) -> None:
        counter = self._failures.get(key)
        if counter is None or now - counter.since > self.policy.window:
            counter = _Counter(now)
            self._failures[key] = counter
            if len(self._failures) > self._max:
                self._failures.popitem(last=False)
        self._failures.move_to_end(key)
        counter.count += 1
        if counter.count >= limit:
            until = now + self.policy.lockout
            self._locked[key] = until
            self._earliest = min(self._earliest, until)
            self.started[key[0]] += 1
            del self._failures[key]  # counting starts again once the lock ends
