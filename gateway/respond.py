"""Respond stage: the LC2 envelope and every error body, rendered in one place.

An error body never carries what only the operator should see.  The detail
of a backend, gateway or credential error (a driver's message, a backend
name, which username was tried) stays in the audit record and the access
log; the client gets the code, the messages and the request id to quote.
Any citizen ID or configured secret left in what is sent (a path echoed in a
404, an upstream fault string) is masked as in the logs.
"""

from __future__ import annotations

import decimal
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from gateway.config.models import LC2Config
from gateway.errors import (
    AuditUnavailable,
    BackendBadResponse,
    BackendBusy,
    BackendError,
    BackendTimeout,
    BackendTLSError,
    BackendUnavailable,
    CircuitOpen,
    GatewayError,
    InternalError,
    Unauthorized,
)
from gateway.security.errors import (
    AddressNotAllowed,
    AuthLockedOut,
    CertificateNotAccepted,
    MalformedRequest,
)
from gateway.security.redact import REDACTOR

__all__ = [
    "CONTENT_TYPE",
    "error_response",
    "json_response",
    "public_detail",
    "success_response",
]

CONTENT_TYPE = "application/json; charset=utf-8"

# Errors whose detail and extras are for the operator only (audit, log), never for the client.
_PRIVATE: tuple[type[GatewayError], ...] = (
    BackendUnavailable,
    BackendTimeout,
    BackendError,
    BackendBusy,
    BackendBadResponse,
    BackendTLSError,
    CircuitOpen,
    AuditUnavailable,
    InternalError,
    Unauthorized,
    AuthLockedOut,
    AddressNotAllowed,
    CertificateNotAccepted,
    MalformedRequest,
)


def _default(value: Any) -> Any:
    # Drivers hand back types JSON lacks; never fall back to repr().
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():  # PostgreSQL NUMERIC holds NaN; JSON has no NaN: null
            return None
        return (
            float(value) if value == value.to_integral_value() or abs(value) < 1e15 else str(value)
        )
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def _writable(value: Any) -> Any:
    """``value`` with what orjson refuses made writable: every integer beyond 64 bits as its
    digits, and a lone surrogate in text (a driver's ``surrogateescape`` of bytes that were
    not text) as U+FFFD."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, Mapping):
        return {_writable(k): _writable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_writable(v) for v in value]
    return value


def _dumps(body: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(body, default=_default, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        # a legacy NUMERIC(30) read as an int, or broken text: rare, so the walk is only
        # paid when it happens
        return orjson.dumps(_writable(body), default=_default, option=orjson.OPT_NON_STR_KEYS)


def json_response(
    body: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=_dumps(body),
        status=status,
        headers={"Content-Type": CONTENT_TYPE, **(headers or {})},
    )


def success_response(
    lc2: LC2Config, data: list[dict[str, Any]], headers: Mapping[str, str]
) -> web.Response:
    env = lc2.envelope
    return json_response(
        {env.code: env.success_code, env.message: env.success_message, env.data: data},
        headers=headers,
    )


def error_response(
    lc2: LC2Config, err: GatewayError, request_id: str, headers: Mapping[str, str]
) -> web.Response:
    env = lc2.envelope
    body: dict[str, Any] = {
        env.code: err.code,
        env.message: err.message_en,
        "messageTh": err.message_th,
        "requestId": request_id,
        **public_detail(err),
    }
    return json_response(body, status=err.status, headers={**headers, **err.headers})


def public_detail(err: GatewayError) -> dict[str, Any]:
    """The error-specific part of a body as a client may see it."""
    if isinstance(err, _PRIVATE):
        # a malformed request's reason is harmless and helps the caller fix it
        if isinstance(err, MalformedRequest) and err.detail:
            return {"error": type(err).__name__, "detail": REDACTOR.text(err.detail)}
        return {"error": type(err).__name__}
    out: dict[str, Any] = REDACTOR.value(err.body())
    return out
