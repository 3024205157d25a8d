"""The admin listener's guard: its own Host names only, and state changes only with its token.

A browser on the server (or one led there by DNS rebinding) can send
requests to a loopback port: a cross-origin "simple" POST needs no
preflight.  So every request to the admin listener must name it by an
address (``Host: 127.0.0.1:9108``, ``[::1]``, ``localhost``) or a name the
operator listed in ``admin.hosts``, never by a DNS name an attacker could
point at it; a request that changes state (``POST
/-/reload``) is refused when it comes from another origin (``Origin``,
``Sec-Fetch-Site``), and must carry ``Authorization: Bearer <token>``.

The token is 256 random bits in ``admin-token`` beside the quota store
(``limits.store``), created 0600 at the first start and kept: whoever may
read it is the service user, and ``lc2-gateway reload`` reads it there.
A wrong token counts as a failed sign-in from that address.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from aiohttp import web

from gateway.security.errors import AuthLockedOut
from gateway.security.lockout import Lockouts

__all__ = ["TOKEN_FILE", "admin_guard", "ensure_token", "read_token", "token_path"]

TOKEN_FILE = "admin-token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def token_path(quota_store: Path) -> Path:
    return quota_store.parent / TOKEN_FILE


def read_token(path: Path) -> str:
    return path.read_text(encoding="ascii").strip()


def ensure_token(path: Path) -> str:
    """The token in ``path``, made (0600, atomically: workers may start together) if missing."""
    with contextlib.suppress(FileNotFoundError):
        return read_token(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    try:
        os.link(tmp, path)  # fails if another worker's token is already in place
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return read_token(path)


def _host_allowed(host: str, names: frozenset[str]) -> bool:
    if host.startswith("["):  # [::1]:9108
        name = host[1 : host.find("]")] if "]" in host else host
    else:
        name = host.split(":")[0] if host.count(":") == 1 else host
    if name.lower() == "localhost" or name.lower() in names:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _refuse(status: int, error: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": error}, status=status, headers=headers)


def admin_guard(
    token: Callable[[], str], lockouts: Lockouts, hosts: Iterable[str] = ()
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Middleware for the admin app; ``token`` gives the reload token once it is loaded.

    ``hosts``: names (``admin.hosts``) it answers to besides addresses and localhost.
    """
    names = frozenset(h.lower() for h in hosts)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        if host is not None and not _host_allowed(host, names):
            return _refuse(421, "the admin listener answers only to its address, not a name")
        if request.method in _SAFE:
            return await handler(request)
        origin = request.headers.get("Origin")
        fetch_site = request.headers.get("Sec-Fetch-Site", "same-origin")
        if (origin is not None and origin != f"http://{host}") or fetch_site not in (
            "same-origin",
            "none",
        ):
            return _refuse(403, "cross-origin requests may not change the gateway")
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        expected = token()
        if not (
            scheme.lower() == "bearer"
            and expected
            and hmac.compare_digest(given.strip().encode(), expected.encode())
        ):
            address = request.remote or ""
            wait = await lockouts.fail(address)
            if wait is not None:
                locked = AuthLockedOut(wait)
                return _refuse(429, "too many failed sign-ins", dict(locked.headers))
            return _refuse(
                401,
                "the admin token is required (Authorization: Bearer, from admin-token "
                "beside the quota store)",
                {"WWW-Authenticate": "Bearer"},
            )
        return await handler(request)

    return guard
