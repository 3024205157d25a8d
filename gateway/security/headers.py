"""Security headers on every response the gateway's applications produce.

Added in ``on_response_prepare``, so JSON answers, errors, metrics and any
page a handler builds get them alike.  A handler that sets one of them
itself (an HTML page with its own Content-Security-Policy) keeps its own.
The ``Server`` header names the product without a version.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from aiohttp import web

__all__ = ["SERVER_NAME", "security_headers", "with_security_headers"]

SERVER_NAME = "lc2-gateway"

_BASE = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "Cross-Origin-Resource-Policy": "same-origin",
}
_HSTS = "max-age=31536000"


def security_headers(*, tls: bool = False) -> Mapping[str, str]:
    headers = dict(_BASE)
    if tls:
        headers["Strict-Transport-Security"] = _HSTS
    return MappingProxyType(headers)


def with_security_headers(app: web.Application, *, tls: bool = False) -> None:
    """Add the headers to every response ``app`` prepares."""
    items = tuple(security_headers(tls=tls).items())

    async def on_prepare(_: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        for name, value in items:
            headers.setdefault(name, value)
        headers["Server"] = SERVER_NAME

    app.on_response_prepare.append(on_prepare)
