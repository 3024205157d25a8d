"""Consumer credentials: scrypt hashes and API-key digests in config, verified off the loop.

HTTP Basic is what LC2 sends.  Secrets are stored only as scrypt hashes
(``lc2-gateway passwd`` makes one); a consumer may list two while its
password is rotated.  scrypt is deliberately slow, so a successful
verification is remembered for the life of the process under a keyed digest
of the header (the clear header never stays in memory); failed attempts are
never cached and always pay the full cost, and at most a few run at once so
an attack can not take every thread.  An unknown username is verified
against as many dummy hashes of the same strength as a known one, so the
time taken does not tell which usernames exist.

API keys (``X-API-Key`` by default) are long random tokens stored as SHA-256
digests; a consumer with keys and a password must send both.  A password
attempt takes its place in the lock-out counts (:mod:`gateway.security.lockout`)
before it is hashed, so a locked-out caller, or one past the limit with
attempts still being checked, costs no hash at all.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gateway.errors import Unauthorized
from gateway.policy import FieldPolicy
from gateway.security.apikey import key_digest
from gateway.security.errors import AuthLockedOut
from gateway.security.lockout import Lockouts, Reservation
from gateway.security.network import Networks

__all__ = [
    "Consumer",
    "CredentialStore",
    "check_hash_format",
    "hash_password",
    "parse_basic",
    "verify_password",
]

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_CACHE_MAX = 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_password(
    password: str, *, n: int = _SCRYPT_N, r: int = _SCRYPT_R, p: int = _SCRYPT_P
) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def check_hash_format(stored: str) -> None:
    """Raise ValueError if ``stored`` is not a hash this module can verify."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("not a scrypt hash from `lc2-gateway passwd` (scrypt$N$r$p$salt$hash)")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        _unb64(parts[4]), _unb64(parts[5])
    except (ValueError, binascii.Error):
        raise ValueError("malformed scrypt hash") from None
    if n < 2**10 or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise ValueError("scrypt parameters out of range")


def verify_password(password: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    want = _unb64(digest)
    got = hashlib.scrypt(
        password.encode("utf-8", "surrogateescape"),
        salt=_unb64(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        dklen=len(want),
        maxmem=128 * int(n) * int(r) * 2 + 1024 * 1024,
    )
    return hmac.compare_digest(got, want)


def _verify_any(password: str, hashes: Sequence[str]) -> bool:
    ok = False
    for stored in hashes:  # every one is tried: the time taken does not depend on which matched
        ok = verify_password(password, stored) or ok
    return ok


def parse_basic(header: str) -> tuple[str, str] | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        raw = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = raw.partition(":")
    return (user, password) if sep else None


@dataclass(frozen=True, slots=True)
class Consumer:
    name: str
    username: str
    password_hashes: tuple[str, ...]
    services: frozenset[str]  # "*" grants all
    offices: frozenset[str]  # "*" allows all
    api_key_hashes: frozenset[bytes] = frozenset()  # SHA-256 digests of its API keys
    allow_from: Networks | None = None  # None: any address (the gateway-wide list still applies)
    cert_sha256: frozenset[str] = frozenset()  # pinned client certificates; empty: any valid one
    policies: Mapping[str, FieldPolicy] = field(default_factory=dict, compare=False)

    def may_call(self, service: str) -> bool:
        return "*" in self.services or service in self.services

    def may_act_for(self, office: str) -> bool:
        return "*" in self.offices or office in self.offices


def _second_factor(consumer: Consumer, api_key: str) -> bool:
    """A consumer with API keys must send one of them along with its Basic credentials."""
    if not consumer.api_key_hashes:
        return True
    return bool(api_key) and key_digest(api_key) in consumer.api_key_hashes


def _dummy_hashes(consumers: Sequence[Consumer]) -> tuple[str, ...]:
    """Random hashes as strong as the strongest configured, as many as the most any has."""
    n, r, p = _SCRYPT_N, _SCRYPT_R, _SCRYPT_P
    count = 1
    params = [h.split("$")[1:4] for c in consumers for h in c.password_hashes]
    if params:
        n, r, p = (max(int(x[i]) for x in params) for i in range(3))
        count = max(len(c.password_hashes) for c in consumers)
    return tuple(
        f"scrypt${n}${r}${p}${_b64(os.urandom(16))}${_b64(os.urandom(32))}" for _ in range(count)
    )


# (consumer, username tried, reason if refused, freshly verified, failure already counted)
_Outcome = tuple[Consumer | None, str | None, str, bool, bool]


class CredentialStore:
    def __init__(self, consumers: Mapping[str, Consumer]) -> None:
        self._by_username = {c.username: c for c in consumers.values() if c.password_hashes}
        self._by_key = {d: c for c in consumers.values() for d in c.api_key_hashes}
        self._cache: OrderedDict[bytes, Consumer] = OrderedDict()
        self._cache_key = secrets.token_bytes(32)
        self._dummy = _dummy_hashes(list(consumers.values()))
        # each verification holds a thread and (at N=2**14, r=8) 16 MiB for tens of ms
        self._slots = asyncio.Semaphore(max(2, (os.cpu_count() or 2) // 2))
        self._inflight: dict[bytes, asyncio.Future[_Outcome]] = {}

    async def authenticate(self, header: str) -> Consumer | None:
        """The consumer whose Basic credentials these are, or None (no lock-outs, no API key)."""
        consumer, _, _, _, _ = await self._basic(header, "", None)
        return consumer

    async def check(
        self,
        header: str,
        *,
        api_key: str = "",
        address: str = "",
        lockouts: Lockouts | None = None,
    ) -> Consumer:
        """The caller's consumer; raises Unauthorized (401) or AuthLockedOut (429).

        The reason of a refusal is in the error's detail, for the audit only.
        """
        username: str | None = None
        counted = False
        if header:
            consumer, username, reason, _, counted = await self._basic(header, address, lockouts)
            if consumer is not None and not _second_factor(consumer, api_key):
                consumer = None
                reason = f"consumer {username!r}: API key missing or wrong"
        elif api_key:
            # a 256-bit key is not guessed: checking one costs a digest, so it takes no place
            # before the check, and a right key is never refused by a lock-out
            consumer = self._by_key.get(key_digest(api_key))
            reason = "API key not recognised"
            if consumer is not None and consumer.password_hashes:
                reason = f"consumer {consumer.username!r} needs Basic credentials too"
                consumer = None
        else:
            consumer, reason = None, "no credentials"
        if consumer is None:
            if lockouts is not None and not counted:
                await self.failed(lockouts, address)
            raise Unauthorized(reason)
        return consumer

    @staticmethod
    async def failed(lockouts: Lockouts, address: str) -> None:
        """Count a failed sign-in that cost no hash; AuthLockedOut if the address is locked."""
        wait = await lockouts.fail(address)
        if wait is not None:
            raise AuthLockedOut(wait, "refused unverified: too many failed sign-ins")

    async def _basic(self, header: str, address: str, lockouts: Lockouts | None) -> _Outcome:
        # Keyed BLAKE2b is a MAC in its own right, and CPython's own code: HMAC-SHA256 goes
        # through OpenSSL, whose digest lookup contends with the audit thread's hashing.
        # The address is part of the key: a header verified for LC2's address is not a
        # shortcut past the lock-out for anyone else who sends the same one.
        tag = hashlib.blake2b(
            f"{address}\n{header}".encode("utf-8", "surrogateescape"),
            key=self._cache_key,
            digest_size=32,
        ).digest()
        hit = self._cache.get(tag)
        if hit is not None:
            self._cache.move_to_end(tag)
            return hit, hit.username, "", False, False
        # Calls that bring a header while it is being verified wait for that verification:
        # LC2 opening its connections at once after a start or reload costs one scrypt
        # (and one 16 MiB buffer, and one place in the lock-out counts), not one per
        # connection queued on the slots.
        pending = self._inflight.get(tag)
        if pending is None:
            pending = asyncio.ensure_future(self._verify(tag, header, address, lockouts))
            self._inflight[tag] = pending
            pending.add_done_callback(lambda done: self._forget(tag, done))
        return await asyncio.shield(pending)

    def _forget(self, tag: bytes, done: asyncio.Future[_Outcome]) -> None:
        if self._inflight.get(tag) is done:
            del self._inflight[tag]
        if not done.cancelled():
            done.exception()  # retrieved: followers may all have gone

    async def _verify(
        self, tag: bytes, header: str, address: str, lockouts: Lockouts | None
    ) -> _Outcome:
        creds = parse_basic(header)
        if creds is None:
            reason = "the Authorization header is not HTTP Basic credentials"
            return None, None, reason, False, False
        user, password = creds
        consumer = self._by_username.get(user)
        reservation = None
        if lockouts is not None:
            # the attempt takes its place in the counts before the hash, or is refused unhashed
            allow = consumer.allow_from if consumer is not None else None
            got = await lockouts.reserve(
                address, user, exempt=allow is not None and address in allow
            )
            if not isinstance(got, Reservation):
                raise AuthLockedOut(got, "refused unverified: too many failed sign-ins")
            reservation = got
        known = consumer.password_hashes if consumer is not None else ()
        hashes = known + self._dummy[: max(0, len(self._dummy) - len(known))]
        try:
            async with self._slots:  # scrypt takes tens of ms: in a thread, a few at a time
                ok = await asyncio.to_thread(_verify_any, password, hashes)
        except BaseException:
            if lockouts is not None and reservation is not None:
                await asyncio.shield(lockouts.settle(reservation, failed=False, remember=False))
            raise
        ok = ok and consumer is not None
        if lockouts is not None and reservation is not None:
            # an address is remembered as the username's own only where no allow list says
            # where it belongs (a stolen password used elsewhere must not earn an exemption)
            remember = consumer is not None and consumer.allow_from is None
            await lockouts.settle(reservation, failed=not ok, remember=remember)
        if not ok or consumer is None:
            # only a configured username is named: a mistyped password must not reach the audit
            reason = "unknown username" if consumer is None else f"wrong password for {user!r}"
            return None, user, reason, False, True
        self._cache[tag] = consumer
        if len(self._cache) > _CACHE_MAX:
            self._cache.popitem(last=False)
        return consumer, user, "", True, False
